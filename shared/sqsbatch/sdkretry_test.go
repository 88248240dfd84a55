package sqsbatch

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// TestSenderTurnsSDKRetriesOff sends through a real SQS client whose
// endpoint always answers 500: the SDK would retry that three times per
// call, so the number of HTTP requests shows whose retries ran.
func TestSenderTurnsSDKRetriesOff(t *testing.T) {
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(`{"__type":"com.amazonaws.sqs#InternalError","message":"try again"}`))
	}))
	defer srv.Close()
	client := sqs.New(sqs.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(srv.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
	})
	if _, ok := client.Options().Retryer.(aws.NopRetryer); ok {
		t.Fatal("the client already has no retries: the test would prove nothing")
	}

	s := fastSender(client)
	s.Attempts = 3
	err := s.Send(context.Background(), bodiesOf(2))
	var se *SendError
	if !errors.As(err, &se) || len(se.Failed) != 2 {
		t.Fatalf("Send = %v, want both messages failed", err)
	}
	if got := requests.Load(); got != 3 {
		t.Errorf("HTTP requests = %d, want 3 (the Sender's attempts, no SDK retries under them)", got)
	}
}

// TestSenderPassesNoSDKRetries checks the option the Sender gives each
// SendMessageBatch call, on a recording client.
func TestSenderPassesNoSDKRetries(t *testing.T) {
	rc := &optsRecorder{fakeSQS: &fakeSQS{}}
	if err := fastSender(rc).Send(context.Background(), bodiesOf(1)); err != nil {
		t.Fatal(err)
	}
	var o sqs.Options
	for _, fn := range rc.optFns {
		fn(&o)
	}
	if _, ok := o.Retryer.(aws.NopRetryer); !ok {
		t.Errorf("Retryer after the call's options = %T, want aws.NopRetryer", o.Retryer)
	}
}

type optsRecorder struct {
	*fakeSQS
	optFns []func(*sqs.Options)
}

func (r *optsRecorder) SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	r.optFns = append(r.optFns, optFns...)
	return r.fakeSQS.SendMessageBatch(ctx, in, optFns...)
}
