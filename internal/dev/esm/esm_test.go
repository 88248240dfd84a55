package esm

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/awstest"
)

func TestMain(m *testing.M) { awstest.Main(m) }

// queuePair creates a source queue whose redrive policy sends a message to
// a DLQ after maxReceive receives, with a short visibility timeout.
func queuePair(t *testing.T, c *sqs.Client, name string, maxReceive int) (url, arn, dlqURL string) {
	t.Helper()
	ctx := context.Background()
	dlq, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name + "-dlq")})
	if err != nil {
		t.Fatal(err)
	}
	dlqArn := queueARN(t, c, *dlq.QueueUrl)
	redrive, _ := json.Marshal(map[string]any{"deadLetterTargetArn": dlqArn, "maxReceiveCount": maxReceive})
	q, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: map[string]string{
		"VisibilityTimeout": "1", "RedrivePolicy": string(redrive),
	}})
	if err != nil {
		t.Fatal(err)
	}
	return *q.QueueUrl, queueARN(t, c, *q.QueueUrl), *dlq.QueueUrl
}

func queueARN(t *testing.T, c *sqs.Client, url string) string {
	out, err := c.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url), AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatal(err)
	}
	return out.Attributes["QueueArn"]
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestMappingDeletesSuccessesAndRedrivesFailures(t *testing.T) {
	moto := awstest.Shared(t)
	c := sqs.NewFromConfig(moto.Config())
	url, arn, dlqURL := queuePair(t, c, "esm-partial", 2)
	ctx := context.Background()
	for i := range 5 {
		if _, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(fmt.Sprintf("m%d", i))}); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var sawDeadline, sawRequestID bool
	m := &Mapping{
		Name: "Test", Client: c, QueueURL: url, QueueARN: arn, BatchSize: 10,
		BatchingWindow: 200 * time.Millisecond, FunctionTimeout: 5 * time.Second,
		Invoke: func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
			mu.Lock()
			defer mu.Unlock()
			_, sawDeadline = ctx.Deadline()
			lc, ok := lambdacontext.FromContext(ctx)
			sawRequestID = ok && lc.AwsRequestID != ""
			var resp events.SQSEventResponse
			for _, r := range ev.Records {
				seen[r.Body]++
				if r.EventSourceARN != arn || r.Attributes["ApproximateReceiveCount"] == "" {
					t.Errorf("record lacks source ARN or receive count: %+v", r)
				}
				if r.Body == "m3" { // always fails: must end in the DLQ
					resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: r.MessageId})
				}
			}
			return resp, nil
		},
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- m.Run(runCtx) }()
	waitFor(t, "m3 in the DLQ", func() bool {
		v, _, _, err := QueueDepth(ctx, c, dlqURL)
		return err == nil && v == 1
	})
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for i := range 5 {
		body := fmt.Sprintf("m%d", i)
		want := 1
		if body == "m3" {
			want = 2
		}
		if seen[body] != want {
			t.Errorf("%s delivered %d times, want %d", body, seen[body], want)
		}
	}
	if !sawDeadline || !sawRequestID {
		t.Errorf("invocation context: deadline %v, request id %v", sawDeadline, sawRequestID)
	}
	if v, nv, _, _ := QueueDepth(ctx, c, url); v+nv != 0 {
		t.Errorf("source queue still holds %d visible, %d in flight", v, nv)
	}
}

func TestMappingLeavesWholeBatchWhenInvocationFails(t *testing.T) {
	moto := awstest.Shared(t)
	c := sqs.NewFromConfig(moto.Config())
	url, arn, _ := queuePair(t, c, "esm-fail", 5)
	ctx := context.Background()
	if _, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("x")}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	calls := 0
	m := &Mapping{Name: "Fail", Client: c, QueueURL: url, QueueARN: arn, FunctionTimeout: time.Second,
		Invoke: func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
			mu.Lock()
			defer mu.Unlock()
			calls++
			if calls == 1 {
				return events.SQSEventResponse{}, fmt.Errorf("function crashed")
			}
			return events.SQSEventResponse{}, nil
		}}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go func() { _ = m.Run(runCtx) }()
	waitFor(t, "redelivery after a failed invocation", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return calls >= 2
	})
	waitFor(t, "the message deleted after success", func() bool {
		v, nv, _, _ := QueueDepth(ctx, c, url)
		return v+nv == 0
	})
}

// TestMappingGathersBatchesAboveTen: with a batching window, a batch is
// the records of several receives up to BatchSize (SQS returns ten at a
// time), and every record the function did not fail is deleted (ten per
// DeleteMessageBatch).
func TestMappingGathersBatchesAboveTen(t *testing.T) {
	moto := awstest.Shared(t)
	c := sqs.NewFromConfig(moto.Config())
	url, arn := slowQueue(t, c, "esm-large")
	ctx := context.Background()
	for i := range 30 {
		if _, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(fmt.Sprintf("m%d", i))}); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	var sizes []int
	seen := map[string]int{}
	m := &Mapping{
		Name: "Large", Client: c, QueueURL: url, QueueARN: arn, BatchSize: 25,
		BatchingWindow: 500 * time.Millisecond, FunctionTimeout: 5 * time.Second,
		Invoke: func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
			mu.Lock()
			defer mu.Unlock()
			sizes = append(sizes, len(ev.Records))
			for _, r := range ev.Records {
				seen[r.Body]++
			}
			return events.SQSEventResponse{}, nil
		},
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- m.Run(runCtx) }()
	waitFor(t, "every message deleted", func() bool {
		v, nv, _, err := QueueDepth(ctx, c, url)
		return err == nil && v+nv == 0
	})
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sizes) == 0 || sizes[0] != 25 {
		t.Errorf("batch sizes %v, want a first batch of 25", sizes)
	}
	for i := range 30 {
		if n := seen[fmt.Sprintf("m%d", i)]; n != 1 {
			t.Errorf("m%d delivered %d times, want once", i, n)
		}
	}
}

// TestGatherStopsBeforeThePayloadLimit: a batch is cut where one more
// full-size message could take it past Lambda's 6 MB.
func TestGatherStopsBeforeThePayloadLimit(t *testing.T) {
	moto := awstest.Shared(t)
	c := sqs.NewFromConfig(moto.Config())
	url, arn := slowQueue(t, c, "esm-payload")
	ctx := context.Background()
	body := strings.Repeat("x", 250<<10)
	for range 30 {
		if _, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(body)}); err != nil {
			t.Fatal(err)
		}
	}
	m := &Mapping{Name: "Payload", Client: c, QueueURL: url, QueueARN: arn, BatchSize: 100, BatchingWindow: 2 * time.Second}
	batch, err := m.gather(ctx)
	if err != nil {
		t.Fatal(err)
	}
	size := 0
	for _, msg := range batch {
		size += len(aws.ToString(msg.Body))
	}
	if len(batch) == 0 || len(batch) >= 30 || size > MaxPayload {
		t.Errorf("gathered %d messages of %d bytes, want some but not all 30, within %d bytes", len(batch), size, MaxPayload)
	}
}

// slowQueue is a queue whose messages stay invisible for 60 s after a
// receive, as the template's stay for longer than a batching window: a
// slow receive on a loaded machine cannot hand one message out twice.
func slowQueue(t *testing.T, c *sqs.Client, name string) (url, arn string) {
	t.Helper()
	q, err := c.CreateQueue(context.Background(), &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: map[string]string{"VisibilityTimeout": "60"}})
	if err != nil {
		t.Fatal(err)
	}
	return *q.QueueUrl, queueARN(t, c, *q.QueueUrl)
}

func TestMappingTellsOnInvoke(t *testing.T) {
	moto := awstest.Shared(t)
	c := sqs.NewFromConfig(moto.Config())
	url, arn, _ := queuePair(t, c, "esm-oninvoke", 3)
	ctx := context.Background()
	for i := range 3 {
		if _, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(fmt.Sprintf("m%d", i))}); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	told := map[string]int{}
	var invoked, badSpan int
	m := &Mapping{
		Name: "Test", Client: c, QueueURL: url, QueueARN: arn, BatchSize: 10, FunctionTimeout: 5 * time.Second,
		Invoke: func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
			mu.Lock()
			invoked++
			mu.Unlock()
			return events.SQSEventResponse{}, nil
		},
		OnInvoke: func(recs []events.SQSMessage, start, end time.Time) {
			mu.Lock()
			defer mu.Unlock()
			for _, r := range recs {
				told[r.Body]++
			}
			if start.IsZero() || end.Before(start) {
				badSpan++
			}
		},
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = m.Run(runCtx) }()
	waitFor(t, "every message told", func() bool { mu.Lock(); defer mu.Unlock(); return len(told) == 3 })
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	for b, n := range told {
		if n != 1 {
			t.Errorf("%s told %d times", b, n)
		}
	}
	if badSpan > 0 || invoked != m.Stats().Invocations {
		t.Errorf("%d spans with a zero start or an end before it; %d invocations, %d counted", badSpan, invoked, m.Stats().Invocations)
	}
}
