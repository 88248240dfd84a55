package sqsbatch

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

func TestSendGroupSetsMessageGroupIdOnEveryEntry(t *testing.T) {
	f := &fakeSQS{}
	s := NewSender(f, "https://sqs.test/000000000000/aws")
	bodies := make([][]byte, 13)
	for i := range bodies {
		bodies[i] = []byte(fmt.Sprintf(`{"n":%d}`, i))
	}
	if err := s.SendGroup(context.Background(), "278964", bodies); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, b := range f.batches {
		for _, e := range b {
			n++
			if got := aws.ToString(e.MessageGroupId); got != "278964" {
				t.Errorf("entry %s: MessageGroupId %q, want 278964", aws.ToString(e.Id), got)
			}
		}
	}
	if n != len(bodies) {
		t.Errorf("sent %d entries, want %d", n, len(bodies))
	}
	// Send leaves the group unset.
	f.batches = nil
	if err := s.Send(context.Background(), bodies[:1]); err != nil {
		t.Fatal(err)
	}
	if g := f.batches[0][0].MessageGroupId; g != nil {
		t.Errorf("Send set MessageGroupId %q", *g)
	}
}

func TestSendGroupRefusesAGroupSQSWouldRefuse(t *testing.T) {
	for _, g := range []string{"", strings.Repeat("1", MaxGroupIDLen+1), "a b", "projekt-ü"} {
		f := &fakeSQS{}
		err := NewSender(f, "https://sqs.test/000000000000/aws").SendGroup(context.Background(), g, [][]byte{[]byte("x")})
		if err == nil || len(f.batches) != 0 {
			t.Errorf("group %q: err %v after %d calls, want a refusal before any call", g, err, len(f.batches))
		}
		if err != nil && g != "" && strings.Contains(err.Error(), g) {
			t.Errorf("error quotes the group: %v", err)
		}
	}
}

// TestMotoAcceptsMessageGroupIdOnStandardQueue: the local AWS takes a
// MessageGroupId on a standard queue's SendMessageBatch, as SQS does since
// fair queues, and keeps it on the message; it does not reorder delivery by
// tenant (moto does not emulate fair queues), which this test records so a
// moto that starts to is noticed.
func TestMotoAcceptsMessageGroupIdOnStandardQueue(t *testing.T) {
	c := motoClient(t)
	url, _ := createQueue(t, c, "fair", nil)
	s := NewSender(c, url)
	ctx := context.Background()
	var big [][]byte
	for i := range 30 {
		big = append(big, []byte(fmt.Sprintf("big-%02d", i)))
	}
	if err := s.SendGroup(ctx, "1", big); err != nil {
		t.Fatalf("SendGroup on a standard queue: %v", err)
	}
	if err := s.SendGroup(ctx, "2", [][]byte{[]byte("small-00")}); err != nil {
		t.Fatalf("SendGroup on a standard queue: %v", err)
	}
	var order []string
	groups := map[string]string{}
	for len(order) < 31 {
		out, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10,
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameMessageGroupId}})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			break
		}
		for _, m := range out.Messages {
			order = append(order, aws.ToString(m.Body))
			groups[aws.ToString(m.Body)] = m.Attributes[string(types.MessageSystemAttributeNameMessageGroupId)]
		}
	}
	if len(order) != 31 {
		t.Fatalf("received %d messages, want 31", len(order))
	}
	if groups["small-00"] != "2" || groups["big-00"] != "1" {
		t.Errorf("MessageGroupId not kept: small %q, big %q", groups["small-00"], groups["big-00"])
	}
	if i := indexOf(order, "small-00"); i < 30 {
		t.Logf("moto delivered the quiet tenant's message at position %d: it may have started to emulate fair queues", i)
	}
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}
