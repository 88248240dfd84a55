package sqsbatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/awstest"
)

func TestMain(m *testing.M) { awstest.Main(m) }

func motoClient(t *testing.T) *sqs.Client {
	t.Helper()
	return sqs.NewFromConfig(awstest.Shared(t).Config())
}

// createQueue makes a uniquely named queue and returns its URL and ARN.
func createQueue(t *testing.T, c *sqs.Client, prefix string, attrs map[string]string) (string, string) {
	t.Helper()
	ctx := context.Background()
	name := fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano())
	out, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	if err != nil {
		t.Fatalf("CreateQueue %s: %v", name, err)
	}
	url := aws.ToString(out.QueueUrl)
	a, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: out.QueueUrl, AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatalf("GetQueueAttributes: %v", err)
	}
	t.Cleanup(func() { _, _ = c.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: out.QueueUrl}) })
	return url, a.Attributes[string(types.QueueAttributeNameQueueArn)]
}

// receive fetches messages until n have arrived or a few seconds pass, and
// returns them as a Lambda event source mapping would present them.
func receive(t *testing.T, c *sqs.Client, url, arn string, n int, visibility int32) []events.SQSMessage {
	t.Helper()
	var got []events.SQSMessage
	deadline := time.Now().Add(5 * time.Second)
	for len(got) < n && time.Now().Before(deadline) {
		out, err := c.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
			QueueUrl:                    aws.String(url),
			MaxNumberOfMessages:         10,
			VisibilityTimeout:           visibility,
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
			MessageAttributeNames:       []string{"All"},
		})
		if err != nil {
			t.Fatalf("ReceiveMessage: %v", err)
		}
		for _, m := range out.Messages {
			rec := events.SQSMessage{
				MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle),
				Body: aws.ToString(m.Body), Attributes: m.Attributes, EventSourceARN: arn,
				MessageAttributes: map[string]events.SQSMessageAttribute{},
			}
			for k, v := range m.MessageAttributes {
				rec.MessageAttributes[k] = events.SQSMessageAttribute{StringValue: v.StringValue, DataType: aws.ToString(v.DataType)}
			}
			got = append(got, rec)
		}
		if len(out.Messages) == 0 {
			time.Sleep(50 * time.Millisecond)
		}
	}
	return got
}

// countingClient counts GetQueueUrl calls made through a real client.
type countingClient struct {
	*sqs.Client
	getURLs atomic.Int32
}

func (c *countingClient) GetQueueUrl(ctx context.Context, in *sqs.GetQueueUrlInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueUrlOutput, error) {
	c.getURLs.Add(1)
	return c.Client.GetQueueUrl(ctx, in, optFns...)
}

func TestMotoSendBatches(t *testing.T) {
	c := motoClient(t)
	url, arn := createQueue(t, c, "results", nil)
	sizes := []int{100 << 10, 100 << 10, 100 << 10, 60 << 10}
	bodies := bodiesOf(23, sizes...)
	if err := NewSender(c, url).Send(context.Background(), bodies); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := receive(t, c, url, arn, len(bodies), 60)
	var gotBodies, want []string
	for _, m := range got {
		gotBodies = append(gotBodies, m.Body)
	}
	for _, b := range bodies {
		want = append(want, string(b))
	}
	slices.Sort(gotBodies)
	slices.Sort(want)
	if !reflect.DeepEqual(gotBodies, want) {
		t.Errorf("received %d bodies, want the %d sent, each once", len(gotBodies), len(want))
	}
}

func TestMotoSendOversizedEntry(t *testing.T) {
	c := motoClient(t)
	url, arn := createQueue(t, c, "oversized", nil)
	secret := randomToken()
	bodies := [][]byte{[]byte("small-1"), []byte(secret + strings.Repeat("o", MaxPayloadBytes)), []byte("small-2")}
	err := NewSender(c, url).Send(context.Background(), bodies)
	var se *SendError
	if !errors.As(err, &se) || !reflect.DeepEqual(se.Failed, []int{1}) || strings.Contains(err.Error(), secret) {
		t.Fatalf("Send = %v, want entry 1 failed and no body in the error", err)
	}
	got := receive(t, c, url, arn, 2, 60)
	if len(got) != 2 {
		t.Fatalf("received %d messages, want the 2 small ones", len(got))
	}
}

func TestMotoResolveQueueURLFromARN(t *testing.T) {
	c := motoClient(t)
	url, arn := createQueue(t, c, "resolve", nil)
	cc := &countingClient{Client: c}
	r := NewQueueURLResolver(cc)
	for range 3 {
		got, err := r.QueueURL(context.Background(), arn)
		if err != nil || got != url {
			t.Fatalf("QueueURL(%s) = %q, %v; want %q", arn, got, err, url)
		}
	}
	if n := cc.getURLs.Load(); n != 1 {
		t.Errorf("GetQueueUrl called %d times, want once", n)
	}
	missing := strings.TrimSuffix(arn, arn[strings.LastIndexByte(arn, ':')+1:]) + "no-such-queue"
	if _, err := r.QueueURL(context.Background(), missing); err == nil {
		t.Errorf("QueueURL(%s) succeeded", missing)
	}
}

func TestMotoDelayChangesVisibility(t *testing.T) {
	c := motoClient(t)
	url, arn := createQueue(t, c, "delay", nil)
	if err := NewSender(c, url).Send(context.Background(), [][]byte{[]byte(`{"n":1}`)}); err != nil {
		t.Fatal(err)
	}
	r := NewQueueURLResolver(c)
	first := receive(t, c, url, arn, 1, 300)
	if len(first) != 1 || ReceiveCount(first[0]) != 1 {
		t.Fatalf("first receive: %+v", first)
	}
	// Zero visibility: the message is back at once, with its count grown.
	if err := Delay(context.Background(), r, first[0], 0); err != nil {
		t.Fatalf("Delay: %v", err)
	}
	second := receive(t, c, url, arn, 1, 300)
	if len(second) != 1 || ReceiveCount(second[0]) != 2 || second[0].MessageId != first[0].MessageId {
		t.Fatalf("after Delay(0): %+v, want the same message with receive count 2", second)
	}
	// A postponement keeps it hidden.
	if err := Delay(context.Background(), r, second[0], Backoff(ReceiveCount(second[0]), 0)); err != nil {
		t.Fatalf("Delay: %v", err)
	}
	out, err := c.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10})
	if err != nil || len(out.Messages) != 0 {
		t.Errorf("a postponed message was delivered at once (%v)", err)
	}
}

func TestMotoDeadLetter(t *testing.T) {
	c := motoClient(t)
	dlqURL, dlqARN := createQueue(t, c, "ingress-dlq", nil)
	srcURL, srcARN := createQueue(t, c, "ingress", nil)
	body := "not json {" + randomToken()
	if err := NewSender(c, srcURL).Send(context.Background(), [][]byte{[]byte(body)}); err != nil {
		t.Fatal(err)
	}
	recs := receive(t, c, srcURL, srcARN, 1, 300)
	if len(recs) != 1 {
		t.Fatal("source message not received")
	}
	log, buf := testLogger()
	d := NewDeadLetterer(c, dlqURL, log)
	resp := Run(context.Background(), events.SQSEvent{Records: recs}, freshOptions(), func(ctx context.Context, rec events.SQSMessage) error {
		return d.DeadLetter(ctx, rec, errors.New("finding batch: not a JSON object of the finding-batch schema: invalid JSON at byte 1"))
	})
	if len(resp.BatchItemFailures) != 0 {
		t.Fatalf("failures %v: a dead-lettered record counts as processed", failureIDs(resp))
	}
	got := receive(t, c, dlqURL, dlqARN, 1, 300)
	if len(got) != 1 || got[0].Body != body {
		t.Fatalf("DLQ holds %d messages, want the original body", len(got))
	}
	attr := func(name string) string { return aws.ToString(got[0].MessageAttributes[name].StringValue) }
	if attr(OriginalMessageIDAttribute) != recs[0].MessageId || !strings.Contains(attr(ReasonAttribute), "invalid JSON at byte 1") || attr(SourceQueueAttribute) != srcARN {
		t.Errorf("DLQ attributes: reason %q, id %q, source %q", attr(ReasonAttribute), attr(OriginalMessageIDAttribute), attr(SourceQueueAttribute))
	}
	if strings.Contains(buf.String(), body) {
		t.Error("the log quotes the body")
	}
}

// TestMotoRedrivePolicy checks that moto moves a message to the DLQ once it
// has been received maxReceiveCount times, as SQS does: the local poller of
// `make run` relies on it.
func TestMotoRedrivePolicy(t *testing.T) {
	c := motoClient(t)
	dlqURL, dlqARN := createQueue(t, c, "redrive-dlq", nil)
	policy, _ := json.Marshal(map[string]string{"deadLetterTargetArn": dlqARN, "maxReceiveCount": "2"})
	srcURL, srcARN := createQueue(t, c, "redrive", map[string]string{"RedrivePolicy": string(policy)})
	if err := NewSender(c, srcURL).Send(context.Background(), [][]byte{[]byte("poison")}); err != nil {
		t.Fatal(err)
	}
	r := NewQueueURLResolver(c)
	for i := 1; i <= 2; i++ {
		got := receive(t, c, srcURL, srcARN, 1, 300)
		if len(got) != 1 || ReceiveCount(got[0]) != i {
			t.Fatalf("receive %d: %d messages", i, len(got))
		}
		// A reported batch item failure whose visibility ran out.
		if err := Delay(context.Background(), r, got[0], 0); err != nil {
			t.Fatal(err)
		}
	}
	out, err := c.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(srcURL), MaxNumberOfMessages: 10})
	if err != nil || len(out.Messages) != 0 {
		t.Fatalf("third receive gave %d messages (%v), want none: redriven", len(out.Messages), err)
	}
	got := receive(t, c, dlqURL, dlqARN, 1, 300)
	if len(got) != 1 || got[0].Body != "poison" {
		t.Fatalf("DLQ holds %d messages, want the poison message", len(got))
	}
}
