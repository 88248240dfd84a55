package main

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// TestQueue follows records through the emulated event source: oldest
// first, invisible while in flight, deleted on success, back after the
// handler's delay, gone for the visibility timeout when failed undelayed.
func TestQueue(t *testing.T) {
	q := newQueue()
	for _, b := range []string{"a", "b", "c"} {
		q.add([]byte(b))
	}
	ctx := context.Background()
	soon := time.Now().Add(time.Second)
	first := q.receive(ctx, 2, soon)
	if len(first) != 2 || first[0].Body != "a" || first[1].Body != "b" {
		t.Fatalf("first receive = %v, want a and b", bodies(first))
	}
	if n := first[0].Attributes["ApproximateReceiveCount"]; n != "1" {
		t.Fatalf("ApproximateReceiveCount = %q, want 1", n)
	}
	// a is handed back for 50ms, b fails without a delay.
	if err := q.Delay(ctx, first[0], 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	resp := events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{{ItemIdentifier: first[0].MessageId}, {ItemIdentifier: first[1].MessageId}}}
	if undelayed := q.settle(first, resp); undelayed != 1 {
		t.Fatalf("settle: %d undelayed failures, want 1", undelayed)
	}
	tests := []struct {
		name  string
		want  []string
		count string
	}{
		{"c is visible now", []string{"c"}, "1"},
		{"a comes back after its delay", []string{"a"}, "2"},
		{"b stays invisible for the visibility timeout", nil, ""},
	}
	for _, tt := range tests {
		got := q.receive(ctx, 10, time.Now().Add(300*time.Millisecond))
		if len(got) != len(tt.want) || (len(got) > 0 && (got[0].Body != tt.want[0] || got[0].Attributes["ApproximateReceiveCount"] != tt.count)) {
			t.Fatalf("%s: got %v", tt.name, bodies(got))
		}
		q.settle(got, events.SQSEventResponse{})
	}
	if receives, handedBack := q.counts(); receives != 4 || handedBack != 1 {
		t.Fatalf("counts = %d receives, %d handed back; want 4, 1", receives, handedBack)
	}
}

func bodies(recs []events.SQSMessage) []string {
	var out []string
	for _, r := range recs {
		out = append(out, r.Body)
	}
	return out
}
