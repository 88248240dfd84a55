// Package esm emulates Lambda's SQS event source mapping for local runs and
// end-to-end tests: it long-polls a queue, gathers batches (batch size and
// batching window), invokes a function with an events.SQSEvent under the
// function's timeout, deletes what succeeded and leaves the reported
// batchItemFailures (or the whole batch, when the invocation fails) to
// reappear after their visibility timeout. Redrive to the dead-letter queue
// after maxReceiveCount is the queue's own RedrivePolicy, applied by the
// local AWS on receive, as SQS does.
package esm

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Lambda's limits on an SQS event source mapping's batches.
const (
	// MaxBatchSize is the largest BatchSize of a standard queue.
	MaxBatchSize = 10000
	// MaxPayload is Lambda's synchronous invocation payload: a batch is
	// invoked before its records would exceed it.
	MaxPayload = 6 << 20
	// maxMessage is the largest message a queue of the template accepts
	// (its MaximumMessageSize) with room for the record's other fields.
	maxMessage = 256<<10 + 2<<10
	// receiveMax is the most messages one ReceiveMessage returns.
	receiveMax = 10
)

// InvokeFunc runs one invocation of a function, as Lambda would.
type InvokeFunc func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error)

// Mapping is one event source mapping: a queue feeding a function.
type Mapping struct {
	// Name labels the mapping in logs (the function's logical id).
	Name string
	// Client talks to the local AWS.
	Client *sqs.Client
	// QueueURL and QueueARN identify the source queue.
	QueueURL, QueueARN string
	// BatchSize is the most records per invocation, 1 to MaxBatchSize
	// (default 10); above 10 the records of several receives make a batch,
	// which SQS allows only with a batching window.
	BatchSize int
	// BatchingWindow is how long to gather records before invoking; with
	// none, a batch is what one receive returns (at most 10).
	BatchingWindow time.Duration
	// MaxConcurrency bounds concurrent invocations (ScalingConfig).
	MaxConcurrency int
	// FunctionTimeout is each invocation's deadline.
	FunctionTimeout time.Duration
	// Invoke runs the function.
	Invoke InvokeFunc
	// Logger receives one line per invocation (optional).
	Logger *slog.Logger
	// OnInvoke, when set, is told of every invocation once it returns: its
	// records and when it started and ended (the latency bench's hops).
	OnInvoke func(records []events.SQSMessage, start, end time.Time)

	mu          sync.Mutex
	invocations int
	inFlight    int
}

// Stats are counters of a mapping, for reports.
type Stats struct {
	Invocations int
	InFlight    int
}

// Stats returns the mapping's counters.
func (m *Mapping) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return Stats{m.invocations, m.inFlight}
}

// Run polls until ctx is done. It returns nil on cancellation.
func (m *Mapping) Run(ctx context.Context) error {
	if m.BatchSize <= 0 {
		m.BatchSize = 10
	}
	m.BatchSize = min(m.BatchSize, MaxBatchSize)
	if m.MaxConcurrency <= 0 {
		m.MaxConcurrency = 2
	}
	if m.FunctionTimeout <= 0 {
		m.FunctionTimeout = 30 * time.Second
	}
	if m.Logger == nil {
		m.Logger = slog.New(slog.DiscardHandler)
	}
	slots := make(chan struct{}, m.MaxConcurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	for ctx.Err() == nil {
		batch, err := m.gather(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			m.Logger.Warn("esm: receive failed", "mapping", m.Name, "error", err.Error())
			sleep(ctx, 500*time.Millisecond)
			continue
		}
		if len(batch) == 0 {
			continue
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		wg.Add(1)
		m.mu.Lock()
		m.inFlight++
		m.mu.Unlock()
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			m.invoke(context.WithoutCancel(ctx), batch)
			m.mu.Lock()
			m.inFlight--
			m.mu.Unlock()
		}()
	}
	return nil
}

// gather receives up to BatchSize messages within the batching window,
// ten at most per receive, and stops early when one more full-size message
// could take the batch past Lambda's payload limit.
func (m *Mapping) gather(ctx context.Context) ([]types.Message, error) {
	var batch []types.Message
	size := 0
	deadline := time.Now().Add(m.BatchingWindow)
	for len(batch) < m.BatchSize && size+min(m.BatchSize-len(batch), receiveMax)*maxMessage <= MaxPayload {
		wait := int32(1)
		if len(batch) > 0 {
			left := time.Until(deadline)
			if left <= 0 {
				break
			}
			wait = 0
		}
		out, err := m.Client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:                    aws.String(m.QueueURL),
			MaxNumberOfMessages:         int32(min(m.BatchSize-len(batch), receiveMax)),
			WaitTimeSeconds:             wait,
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
			MessageAttributeNames:       []string{"All"},
		})
		if err != nil {
			return batch, err
		}
		batch = append(batch, out.Messages...)
		for _, msg := range out.Messages {
			size += messageSize(msg)
		}
		if len(out.Messages) == 0 {
			if len(batch) == 0 {
				return nil, nil
			}
			if m.BatchingWindow <= 0 {
				break
			}
			sleep(ctx, min(100*time.Millisecond, time.Until(deadline)))
		}
		if m.BatchingWindow <= 0 && len(batch) > 0 {
			break
		}
	}
	return batch, nil
}

func (m *Mapping) invoke(ctx context.Context, batch []types.Message) {
	ev := events.SQSEvent{Records: make([]events.SQSMessage, len(batch))}
	region := arnRegion(m.QueueARN)
	for i, msg := range batch {
		ev.Records[i] = ToEvent(msg, m.QueueARN, region)
	}
	m.mu.Lock()
	m.invocations++
	n := m.invocations
	m.mu.Unlock()
	reqID := fmt.Sprintf("%s-%06d", strings.ToLower(m.Name), n)
	ictx, cancel := context.WithTimeout(ctx, m.FunctionTimeout)
	ictx = lambdacontext.NewContext(ictx, &lambdacontext.LambdaContext{AwsRequestID: reqID})
	start := time.Now()
	resp, err := m.Invoke(ictx, ev)
	cancel()
	if m.OnInvoke != nil {
		m.OnInvoke(ev.Records, start, time.Now())
	}
	if err != nil {
		// A failed invocation: every record becomes visible again after its
		// visibility timeout, as with Lambda.
		m.Logger.Warn("esm: invocation failed", "mapping", m.Name, "request_id", reqID, "records", len(batch), "error", err.Error())
		return
	}
	failed := map[string]bool{}
	for _, f := range resp.BatchItemFailures {
		failed[f.ItemIdentifier] = true
	}
	var entries []types.DeleteMessageBatchRequestEntry
	for i, msg := range batch {
		if failed[aws.ToString(msg.MessageId)] {
			continue
		}
		entries = append(entries, types.DeleteMessageBatchRequestEntry{Id: aws.String(fmt.Sprint(i)), ReceiptHandle: msg.ReceiptHandle})
	}
	// DeleteMessageBatch takes ten entries at a time.
	for chunk := range slices.Chunk(entries, receiveMax) {
		out, err := m.Client.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(m.QueueURL), Entries: chunk})
		switch {
		case err != nil:
			m.Logger.Warn("esm: delete failed", "mapping", m.Name, "error", err.Error())
		case len(out.Failed) > 0:
			m.Logger.Warn("esm: delete partly failed", "mapping", m.Name, "failed", len(out.Failed))
		}
	}
	m.Logger.Debug("esm: invoked", "mapping", m.Name, "request_id", reqID, "records", len(batch), "failures", len(failed))
}

// messageSize approximates what a message adds to the invocation's
// payload: its body, attributes and message attributes, and the record's
// fixed fields.
func messageSize(msg types.Message) int {
	n := len(aws.ToString(msg.Body)) + 512
	for k, v := range msg.Attributes {
		n += len(k) + len(v)
	}
	for k, v := range msg.MessageAttributes {
		n += len(k) + len(aws.ToString(v.StringValue)) + len(v.BinaryValue)
	}
	return n
}

// ToEvent converts a received message into the record Lambda would pass.
func ToEvent(msg types.Message, queueARN, region string) events.SQSMessage {
	rec := events.SQSMessage{
		MessageId:         aws.ToString(msg.MessageId),
		ReceiptHandle:     aws.ToString(msg.ReceiptHandle),
		Body:              aws.ToString(msg.Body),
		Md5OfBody:         aws.ToString(msg.MD5OfBody),
		Attributes:        map[string]string{},
		MessageAttributes: map[string]events.SQSMessageAttribute{},
		EventSourceARN:    queueARN,
		EventSource:       "aws:sqs",
		AWSRegion:         region,
	}
	for k, v := range msg.Attributes {
		rec.Attributes[k] = v
	}
	for k, v := range msg.MessageAttributes {
		rec.MessageAttributes[k] = events.SQSMessageAttribute{StringValue: v.StringValue, BinaryValue: v.BinaryValue, DataType: aws.ToString(v.DataType)}
	}
	return rec
}

func arnRegion(arn string) string {
	parts := strings.Split(arn, ":")
	if len(parts) > 3 {
		return parts[3]
	}
	return ""
}

func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// QueueDepth is the visible plus in-flight message count of a queue.
func QueueDepth(ctx context.Context, c *sqs.Client, url string) (visible, inFlight, delayed int, err error) {
	out, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url),
		AttributeNames: []types.QueueAttributeName{
			types.QueueAttributeNameApproximateNumberOfMessages,
			types.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
			types.QueueAttributeNameApproximateNumberOfMessagesDelayed,
		},
	})
	if err != nil {
		return 0, 0, 0, fmt.Errorf("get queue attributes: %w", err)
	}
	atoi := func(s string) int {
		var n int
		_, _ = fmt.Sscan(s, &n)
		return n
	}
	return atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessages)]),
		atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessagesNotVisible)]),
		atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessagesDelayed)]), nil
}
