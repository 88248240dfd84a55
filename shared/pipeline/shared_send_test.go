package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/registry"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/sqsbatch"
)

// countingSQS answers every SendMessageBatch with success and keeps the
// size of each call by queue URL.
type countingSQS struct {
	mu    sync.Mutex
	sends map[string][]int
	// groups counts the messages sent by MessageGroupId ("" for none).
	groups map[string]int
}

func (c *countingSQS) SendMessageBatch(_ context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sends == nil {
		c.sends, c.groups = map[string][]int{}, map[string]int{}
	}
	c.sends[*in.QueueUrl] = append(c.sends[*in.QueueUrl], len(in.Entries))
	out := &sqs.SendMessageBatchOutput{}
	for _, e := range in.Entries {
		if *in.QueueUrl != "q/results" {
			c.groups[aws.ToString(e.MessageGroupId)]++
		}
		out.Successful = append(out.Successful, types.SendMessageBatchResultEntry{Id: e.Id})
	}
	return out, nil
}

func (c *countingSQS) ChangeMessageVisibility(context.Context, *sqs.ChangeMessageVisibilityInput, ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error) {
	return &sqs.ChangeMessageVisibilityOutput{}, nil
}

func (c *countingSQS) GetQueueUrl(context.Context, *sqs.GetQueueUrlInput, ...func(*sqs.Options)) (*sqs.GetQueueUrlOutput, error) {
	return nil, fmt.Errorf("not used")
}

func (c *countingSQS) calls(url string) []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sends[url]
}

// shared is a Coalescer with an hour's linger: only a full send or the
// handler's Idle sends it, so a test that passes sends at the end of each
// invocation, not at the end of a linger.
func shared(c *countingSQS, url string) Sink {
	return sqsbatch.NewCoalescer(sqsbatch.NewSender(c, url), time.Hour)
}

// handle runs h within a bound, failing rather than hanging for the hour.
func handle(t *testing.T, h func(context.Context, events.SQSEvent) (events.SQSEventResponse, error), ev events.SQSEvent) events.SQSEventResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan events.SQSEventResponse, 1)
	go func() {
		resp, err := h(ctx, ev)
		if err != nil {
			t.Error(err)
		}
		done <- resp
	}()
	select {
	case resp := <-done:
		return resp
	case <-time.After(25 * time.Second):
		t.Fatal("the handler still waits for its sends after 25s")
		return events.SQSEventResponse{}
	}
}

// The dispatcher's records forward together: three scans with two AWS
// findings and one Postman finding each cost one send to each queue, and
// their concluded results one send to the results queue.
func TestDispatcherForwardsAnInvocationsScansTogether(t *testing.T) {
	c := &countingSQS{}
	sinks := map[finding.Partner]Sink{}
	for _, p := range registry.Names() {
		sinks[p] = shared(c, "q/"+string(p))
	}
	d, err := NewDispatcher(DispatcherConfig{
		Common:        Common{Results: shared(c, "q/results"), Gate: gateAll(true), Now: func() time.Time { return fixed }},
		PartnerQueues: sinks, FairQueues: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	var ev events.SQSEvent
	for i := range 3 {
		tk := newTokens()
		ev.Records = append(ev.Records, record(t, fmt.Sprint("scan-", i), 1, map[string]any{
			"version": 1, "scan_id": fmt.Sprint("scan-", i), "project": map[string]any{"id": 100 + i, "full_path": "g/p"},
			"findings": []map[string]any{
				{"id": "a1", "rule_id": "AWS", "token": tk.akia, "context": map[string]string{"aws_secret_access_key": tk.secret}},
				{"id": "a2", "rule_id": "AWS", "token": newTokens().akia, "context": map[string]string{"aws_secret_access_key": tk.secret}},
				{"id": "p", "rule_id": "Postman API token", "token": tk.pmak},
				{"id": "bad", "rule_id": "Postman API token", "token": "PMAK-nothex"},
			},
		}))
	}
	resp := handle(t, d.Handle, ev)
	if len(resp.BatchItemFailures) != 0 {
		t.Fatalf("failures %v", resp.BatchItemFailures)
	}
	for url, want := range map[string]string{"q/aws": "[6]", "q/postman": "[3]", "q/results": "[3]"} {
		if got := fmt.Sprint(c.calls(url)); got != want {
			t.Errorf("sends to %s of %s messages, want %s", url, got, want)
		}
	}
	// Fair queues: each forward keeps its own project's group in the
	// shared sends.
	if got := fmt.Sprint(c.groups); got != "map[100:3 101:3 102:3]" {
		t.Errorf("forwards by message group %s, want 3 in each project's", got)
	}
}

// A partner function's results leave together: seven records through two
// slots cost one results send, not one per record or per wave.
func TestWorkerSendsAnInvocationsResultsTogether(t *testing.T) {
	c := &countingSQS{}
	var logs bytes.Buffer
	w, err := NewWorker(WorkerConfig{
		Common: Common{Results: shared(c, "q/results"), Gate: gateAll(true), Now: func() time.Time { return fixed },
			Logger: slog.New(slog.NewJSONHandler(&logs, nil)), Concurrency: 2},
		Partner: finding.PartnerPostman, Verifier: &scriptedVerifier{}, Requeue: &delays{}, MaxAttempts: 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	var ev events.SQSEvent
	for i := range 7 {
		ev.Records = append(ev.Records, record(t, fmt.Sprint(i), 1, postmanScan(newTokens(), fmt.Sprint("f-", i))))
	}
	resp := handle(t, w.Handle, ev)
	if len(resp.BatchItemFailures) != 0 {
		t.Fatalf("failures %v", resp.BatchItemFailures)
	}
	if got := fmt.Sprint(c.calls("q/results")); got != "[7]" {
		t.Errorf("results sends of %s messages, want [7]", got)
	}
}
