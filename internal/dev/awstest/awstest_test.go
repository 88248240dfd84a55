package awstest

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
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

// A local AWS that accepts a request and never answers must not hang the
// tooling: each attempt ends at the configured timeout and the call fails.
func TestConfigBoundsUnansweredRequests(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // read by nobody, answered never
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}()
	c := sqs.NewFromConfig(ConfigWithTimeout("http://"+ln.Addr().String(), 100*time.Millisecond))
	done := make(chan error, 1)
	go func() {
		_, err := c.ListQueues(context.Background(), &sqs.ListQueuesInput{})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("ListQueues against a server that never answers succeeded")
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("ListQueues against a server that never answers is still waiting: no request timeout")
	}
	mu.Lock()
	attempts := len(conns)
	mu.Unlock()
	if attempts < 2 {
		t.Errorf("%d connection(s): a timed-out attempt was not retried", attempts)
	}
}

func TestConfigHasARequestTimeout(t *testing.T) {
	hc, ok := Config("http://127.0.0.1:1").HTTPClient.(*awshttp.BuildableClient)
	if !ok {
		t.Fatalf("HTTPClient is %T, not the SDK's buildable client", Config("http://127.0.0.1:1").HTTPClient)
	}
	if got := hc.GetTimeout(); got != RequestTimeout || got <= 0 {
		t.Errorf("request timeout = %s, want %s", got, RequestTimeout)
	}
}
