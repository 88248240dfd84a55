package sqsbatch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// sendAll makes one Send per body from its own goroutine and returns each
// call's error by body.
func sendAll(c *Coalescer, ctx context.Context, bodies ...string) map[string]error {
	var mu sync.Mutex
	errs := map[string]error{}
	var wg sync.WaitGroup
	for _, b := range bodies {
		wg.Go(func() {
			err := c.Send(ctx, [][]byte{[]byte(b)})
			mu.Lock()
			errs[b] = err
			mu.Unlock()
		})
	}
	wg.Wait()
	return errs
}

func resultBodies(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("result-%d", i)
	}
	return out
}

// Ten concurrent results, an hour's linger: the tenth fills the send, so
// the ten leave in one SendMessageBatch without waiting for the linger.
func TestCoalescerSharesOneSend(t *testing.T) {
	f := &fakeSQS{}
	c := NewCoalescer(NewSender(f, "https://sqs.example/1/results"), time.Hour)
	for b, err := range sendAll(c, context.Background(), resultBodies(MaxBatchEntries)...) {
		if err != nil {
			t.Errorf("%s: %v", b, err)
		}
	}
	calls := f.calls()
	if len(calls) != 1 || len(calls[0]) != MaxBatchEntries {
		t.Fatalf("SendMessageBatch calls %d (entries of the first %d), want 1 of %d", len(calls), len(calls[0]), MaxBatchEntries)
	}
}

// A lone result is not held for ever: the linger ends and it is sent.
func TestCoalescerSendsALoneResultAfterTheLinger(t *testing.T) {
	f := &fakeSQS{}
	c := NewCoalescer(NewSender(f, "https://sqs.example/1/results"), time.Millisecond)
	if err := c.Send(context.Background(), [][]byte{[]byte("alone")}); err != nil {
		t.Fatal(err)
	}
	if calls := f.calls(); len(calls) != 1 || len(calls[0]) != 1 || aws.ToString(calls[0][0].MessageBody) != "alone" {
		t.Fatalf("calls %v, want one of the lone result", calls)
	}
}

// When the shared send loses one entry for good, only the caller whose
// result it was hears of it, with its own position; the others succeed.
func TestCoalescerTellsEachCallerItsOwnFailure(t *testing.T) {
	bodies := resultBodies(MaxBatchEntries)
	lost := bodies[3]
	f := &fakeSQS{batchHook: func(_ int, in *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error) {
		return failSome(in, map[string]bool{lost: true}, true), nil
	}}
	s := NewSender(f, "https://sqs.example/1/results")
	s.Attempts = 1
	errs := sendAll(NewCoalescer(s, time.Hour), context.Background(), bodies...)
	for b, err := range errs {
		var se *SendError
		switch {
		case b == lost && (!errors.As(err, &se) || se.Total != 1 || len(se.Failed) != 1 || se.Failed[0] != 0):
			t.Errorf("the lost result's caller got %v, want a SendError of its one message", err)
		case b != lost && err != nil:
			t.Errorf("%s was sent, yet its caller got %v", b, err)
		}
	}
}

// A whole-call failure reaches every caller of the shared send.
func TestCoalescerPassesAWholeFailureToEveryCaller(t *testing.T) {
	down := errors.New("sqs unavailable")
	f := &fakeSQS{batchHook: func(int, *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error) { return nil, down }}
	s := NewSender(f, "https://sqs.example/1/results")
	s.Attempts = 1
	for b, err := range sendAll(NewCoalescer(s, time.Hour), context.Background(), resultBodies(MaxBatchEntries)...) {
		if !errors.Is(err, down) {
			t.Errorf("%s: %v, want the send's error", b, err)
		}
	}
}

// One caller's cancelled context does not cancel the shared send: the
// others' results still go.
func TestCoalescerSendIsNotCancelledByOneCaller(t *testing.T) {
	f := &fakeSQS{}
	c := NewCoalescer(NewSender(f, "https://sqs.example/1/results"), time.Hour)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	bodies := resultBodies(MaxBatchEntries)
	var wg sync.WaitGroup
	for i, b := range bodies {
		ctx := context.Background()
		if i == 0 {
			ctx = cancelled
		}
		wg.Go(func() {
			if err := c.Send(ctx, [][]byte{[]byte(b)}); err != nil {
				t.Errorf("%s: %v", b, err)
			}
		})
	}
	wg.Wait()
	if calls := f.calls(); len(calls) != 1 || len(calls[0]) != MaxBatchEntries {
		t.Fatalf("calls %d, want one of %d", len(calls), MaxBatchEntries)
	}
}

func TestSendErrorPart(t *testing.T) {
	e := &SendError{QueueURL: "q", Failed: []int{1, 4, 5}, Total: 7, Causes: map[string]int{"InternalError": 3}}
	if err := e.part(2, 2); err != nil {
		t.Errorf("part(2,2) = %v, want nil (positions 2 and 3 were sent)", err)
	}
	got, ok := e.part(4, 3).(*SendError)
	if !ok || fmt.Sprint(got.Failed) != "[0 1]" || got.Total != 3 {
		t.Errorf("part(4,3) = %+v, want positions [0 1] of 3", got)
	}
}
