package awstest

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

func TestMain(m *testing.M) { Main(m) }

func TestSharedMotoServesSQS(t *testing.T) {
	m := Shared(t)
	c := sqs.NewFromConfig(m.Config())
	out, err := c.CreateQueue(context.Background(), &sqs.CreateQueueInput{QueueName: aws.String("awstest-probe")})
	if err != nil {
		t.Fatalf("CreateQueue: %v", err)
	}
	if aws.ToString(out.QueueUrl) == "" {
		t.Fatal("CreateQueue returned no URL")
	}
	if err := m.Reset(); err != nil {
		t.Fatal(err)
	}
	list, err := c.ListQueues(context.Background(), &sqs.ListQueuesInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.QueueUrls) != 0 {
		t.Fatalf("after Reset, queues = %v", list.QueueUrls)
	}
}
