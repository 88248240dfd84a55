package sqsbatch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
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

// within fails the test when fn has not returned after a generous while:
// the tests below hold their sends for an hour, so a send that goes only
// at the end of its linger hangs rather than passing slowly.
func within(t *testing.T, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); fn() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: still waiting after 20s; a send waited for its hour-long linger", what)
	}
}

func sendingRecords(n int) events.SQSEvent {
	var ev events.SQSEvent
	for i := range n {
		ev.Records = append(ev.Records, events.SQSMessage{MessageId: fmt.Sprintf("m-%d", i), Body: fmt.Sprintf("result-%d", i)})
	}
	return ev
}

// Seven records, two slots, an hour's linger: each record's send frees its
// slot, so all seven start, and once the last of them waits Run's Idle
// sends the seven together.
func TestRunIdleSendsWhatEveryRecordWaitsFor(t *testing.T) {
	f := &fakeSQS{}
	c := NewCoalescer(NewSender(f, "https://sqs.example/1/results"), time.Hour)
	var resp events.SQSEventResponse
	within(t, "Run", func() {
		resp = Run(context.Background(), sendingRecords(7), Options{Concurrency: 2, Idle: c.Flush}, func(ctx context.Context, rec events.SQSMessage) error {
			return c.Send(ctx, [][]byte{[]byte(rec.Body)})
		})
	})
	if len(resp.BatchItemFailures) != 0 {
		t.Fatalf("failures %v", resp.BatchItemFailures)
	}
	if calls := f.calls(); len(calls) != 1 || len(calls[0]) != 7 {
		t.Fatalf("SendMessageBatch calls %v, want one of all 7 results", calls)
	}
}

// Twelve records: the tenth result fills a send, the last two go at Idle.
func TestRunIdleSendsTheRestOfAFullSend(t *testing.T) {
	f := &fakeSQS{}
	c := NewCoalescer(NewSender(f, "https://sqs.example/1/results"), time.Hour)
	within(t, "Run", func() {
		Run(context.Background(), sendingRecords(12), Options{Concurrency: 3, Idle: c.Flush}, func(ctx context.Context, rec events.SQSMessage) error {
			return c.Send(ctx, [][]byte{[]byte(rec.Body)})
		})
	})
	calls := f.calls()
	if len(calls) != 2 || len(calls[0])+len(calls[1]) != 12 || max(len(calls[0]), len(calls[1])) != MaxBatchEntries {
		t.Fatalf("SendMessageBatch calls of %d entries, want 10 and 2", len(calls))
	}
}

// A record waiting for its send holds no slot: with one slot, the second
// record starts while the first waits, and it is the second that sends
// the first's result.
func TestWaitingForASendFreesTheSlot(t *testing.T) {
	f := &fakeSQS{}
	c := NewCoalescer(NewSender(f, "https://sqs.example/1/results"), time.Hour)
	var resp events.SQSEventResponse
	within(t, "Run", func() {
		resp = Run(context.Background(), sendingRecords(2), Options{Concurrency: 1}, func(ctx context.Context, rec events.SQSMessage) error {
			if rec.MessageId == "m-1" {
				c.Flush()
				return nil
			}
			return c.Send(ctx, [][]byte{[]byte(rec.Body)})
		})
	})
	if calls := f.calls(); len(calls) != 1 || len(calls[0]) != 1 || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("calls %v, failures %v, want the first record's result sent", calls, resp.BatchItemFailures)
	}
}

// A record still running keeps the others' sends waiting, up to the
// linger, and Idle does not fire while it runs.
func TestRunIdleWaitsForARunningRecord(t *testing.T) {
	f := &fakeSQS{}
	c := NewCoalescer(NewSender(f, "https://sqs.example/1/results"), time.Hour)
	release := make(chan struct{})
	within(t, "Run", func() {
		Run(context.Background(), sendingRecords(3), Options{Concurrency: 3, Idle: c.Flush}, func(ctx context.Context, rec events.SQSMessage) error {
			if rec.MessageId == "m-2" {
				// The two others joined; nothing may have gone yet.
				for c.waiting() < 2 {
					time.Sleep(time.Millisecond)
				}
				if n := len(f.calls()); n != 0 {
					t.Errorf("%d sends while a record still ran", n)
				}
				close(release)
			}
			return c.Send(ctx, [][]byte{[]byte(rec.Body)})
		})
	})
	<-release
	if calls := f.calls(); len(calls) != 1 || len(calls[0]) != 3 {
		t.Fatalf("calls %v, want one of all three", calls)
	}
}

// A caller close to its deadline does not wait out the linger: its send
// goes while half of its time is left.
func TestCoalescerKeepsTimeForTheSend(t *testing.T) {
	f := &fakeSQS{}
	c := NewCoalescer(NewSender(f, "https://sqs.example/1/results"), time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var err error
	within(t, "Send", func() { err = c.Send(ctx, [][]byte{[]byte("late")}) })
	if err != nil {
		t.Fatalf("send near the deadline: %v", err)
	}
}

// Forwards of different projects share a send, each in its own message
// group.
func TestCoalescerKeepsEachGroup(t *testing.T) {
	f := &fakeSQS{}
	c := NewCoalescer(NewSender(f, "https://sqs.example/1/aws"), time.Hour)
	var wg sync.WaitGroup
	for i := range MaxBatchEntries {
		wg.Go(func() {
			if err := c.SendGroup(context.Background(), fmt.Sprint(100+i%2), [][]byte{[]byte(fmt.Sprint(i))}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	calls := f.calls()
	if len(calls) != 1 {
		t.Fatalf("%d calls, want 1", len(calls))
	}
	for _, e := range calls[0] {
		var i int
		fmt.Sscan(aws.ToString(e.MessageBody), &i)
		if want := fmt.Sprint(100 + i%2); aws.ToString(e.MessageGroupId) != want {
			t.Errorf("message %d in group %q, want %q", i, aws.ToString(e.MessageGroupId), want)
		}
	}
	if err := c.SendGroup(context.Background(), "bad group", [][]byte{[]byte("x")}); err == nil {
		t.Error("a group id with a space was accepted")
	}
}

// waiting is how many messages wait for c's next shared send.
func (c *Coalescer) waiting() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.count
}
