package sqsbatch

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
)

const testQueue = "https://sqs.example/123456789012/results"

func fastSender(c SQSAPI) *Sender {
	s := NewSender(c, testQueue)
	s.RetryBase, s.RetryCap = time.Millisecond, 5*time.Millisecond
	return s
}

// bodiesOf makes n distinct bodies, body i of size sizes[i] (or 20 bytes).
func bodiesOf(n int, sizes ...int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		b := fmt.Sprintf("body-%03d-", i)
		size := 20
		if i < len(sizes) {
			size = sizes[i]
		}
		if size > len(b) {
			b += strings.Repeat("x", size-len(b))
		}
		out[i] = []byte(b)
	}
	return out
}

func sentBodies(calls [][]types.SendMessageBatchRequestEntry) []string {
	var out []string
	for _, c := range calls {
		for _, e := range c {
			out = append(out, aws.ToString(e.MessageBody))
		}
	}
	return out
}

func TestSendBatchesByCountAndSize(t *testing.T) {
	const kib = 1024
	tests := []struct {
		name      string
		n         int
		sizes     []int
		wantSizes []int // entries per call, in order
	}{
		{name: "one", n: 1, wantSizes: []int{1}},
		{name: "exactly ten", n: 10, wantSizes: []int{10}},
		{name: "count splits 25", n: 25, wantSizes: []int{10, 10, 5}},
		{name: "size splits 100KiB bodies", n: 5, sizes: []int{100 * kib, 100 * kib, 100 * kib, 100 * kib, 100 * kib}, wantSizes: []int{2, 2, 1}},
		{name: "full-size body goes alone", n: 3, sizes: []int{20, MaxPayloadBytes, 20}, wantSizes: []int{1, 1, 1}},
		{name: "exact fit of two halves", n: 3, sizes: []int{MaxPayloadBytes / 2, MaxPayloadBytes / 2, 1 * kib}, wantSizes: []int{2, 1}},
		{name: "small entries fill up after a large one", n: 12, sizes: []int{200 * kib, 10 * kib, 10 * kib}, wantSizes: []int{10, 2}},
		{name: "one byte over splits", n: 3, sizes: []int{200 * kib, 56*kib + 1, 10}, wantSizes: []int{1, 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeSQS{}
			s := fastSender(f)
			s.Parallel = 1 // keeps the call order that of the batches
			bodies := bodiesOf(tc.n, tc.sizes...)
			if err := s.Send(context.Background(), bodies); err != nil {
				t.Fatalf("Send: %v", err)
			}
			calls := f.calls()
			var got []int
			for _, c := range calls {
				got = append(got, len(c))
				total := 0
				for _, e := range c {
					total += len(aws.ToString(e.MessageBody))
				}
				if len(c) > MaxBatchEntries || total > MaxPayloadBytes {
					t.Errorf("a call carried %d entries, %d bytes", len(c), total)
				}
			}
			if !reflect.DeepEqual(got, tc.wantSizes) {
				t.Errorf("entries per call = %v, want %v", got, tc.wantSizes)
			}
			want := make([]string, len(bodies))
			for i, b := range bodies {
				want[i] = string(b)
			}
			if sent := sentBodies(calls); !reflect.DeepEqual(sent, want) {
				t.Errorf("sent %d bodies, want each of %d exactly once in order", len(sent), len(want))
			}
		})
	}
}

func TestSendRetriesOnlyFailedEntries(t *testing.T) {
	bodies := bodiesOf(14)
	flaky := map[string]bool{string(bodies[2]): true, string(bodies[11]): true}
	f := &fakeSQS{batchHook: func(n int, in *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error) {
		if n < 2 { // the two calls of the first attempt
			return failSome(in, flaky, false), nil
		}
		return allOK(in), nil
	}}
	s := fastSender(f)
	s.Parallel = 1
	if err := s.Send(context.Background(), bodies); err != nil {
		t.Fatalf("Send: %v", err)
	}
	calls := f.calls()
	if len(calls) != 3 {
		t.Fatalf("calls = %d, want 3 (two batches, then one retry)", len(calls))
	}
	if got, want := sentBodies(calls[2:]), []string{string(bodies[2]), string(bodies[11])}; !reflect.DeepEqual(got, want) {
		t.Errorf("retried %q, want only the failed entries %q", got, want)
	}
}

func TestSendOutcomes(t *testing.T) {
	bodies := bodiesOf(4)
	clientErr := &smithy.GenericAPIError{Code: "AccessDenied", Message: "no", Fault: smithy.FaultClient}
	tests := []struct {
		name       string
		hook       func(n int, in *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error)
		wantCalls  int
		wantFailed []int
		wantCause  string
	}{
		{
			name: "sender fault is not retried",
			hook: func(n int, in *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error) {
				return failSome(in, map[string]bool{string(bodies[3]): true}, true), nil
			},
			wantCalls: 1, wantFailed: []int{3}, wantCause: "InternalError: 1",
		},
		{
			name: "whole-call transient error is retried",
			hook: func(n int, in *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error) {
				if n == 0 {
					return nil, &smithy.GenericAPIError{Code: "ServiceUnavailable", Fault: smithy.FaultServer}
				}
				return allOK(in), nil
			},
			wantCalls: 2,
		},
		{
			name: "unclassified call error is retried",
			hook: func(n int, in *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error) {
				if n < 2 {
					return nil, errors.New("garbled response")
				}
				return allOK(in), nil
			},
			wantCalls: 3,
		},
		{
			name: "client error is not retried",
			hook: func(n int, in *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error) {
				return nil, clientErr
			},
			wantCalls: 1, wantFailed: []int{0, 1, 2, 3}, wantCause: "AccessDenied: 4",
		},
		{
			name: "attempts are bounded",
			hook: func(n int, in *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error) {
				return failSome(in, map[string]bool{string(bodies[0]): true, string(bodies[1]): true}, false), nil
			},
			wantCalls: DefaultSendAttempts, wantFailed: []int{0, 1}, wantCause: "InternalError: 2",
		},
		{
			name: "unacknowledged entry is sent again",
			hook: func(n int, in *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error) {
				out := allOK(in)
				if n == 0 {
					out.Successful = out.Successful[1:]
				}
				return out, nil
			},
			wantCalls: 2,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeSQS{batchHook: tc.hook}
			err := fastSender(f).Send(context.Background(), bodies)
			if got := len(f.calls()); got != tc.wantCalls {
				t.Errorf("calls = %d, want %d", got, tc.wantCalls)
			}
			if tc.wantFailed == nil {
				if err != nil {
					t.Fatalf("Send: %v", err)
				}
				return
			}
			var se *SendError
			if !errors.As(err, &se) {
				t.Fatalf("Send error = %v, want a *SendError", err)
			}
			if !reflect.DeepEqual(se.Failed, tc.wantFailed) {
				t.Errorf("Failed = %v, want %v", se.Failed, tc.wantFailed)
			}
			msg := err.Error()
			if !strings.Contains(msg, fmt.Sprintf("%d of %d messages not sent", len(tc.wantFailed), len(bodies))) || !strings.Contains(msg, tc.wantCause) {
				t.Errorf("error %q does not name the count and cause %q", msg, tc.wantCause)
			}
			for _, b := range bodies {
				if strings.Contains(msg, string(b)) {
					t.Errorf("error %q quotes a body", msg)
				}
			}
		})
	}
}

func TestSendRejectsBadEntriesAlone(t *testing.T) {
	secret := randomToken()
	tests := []struct {
		name      string
		bad       []byte
		wantCause string
	}{
		{name: "oversized", bad: []byte(secret + strings.Repeat("y", MaxPayloadBytes)), wantCause: "message too large"},
		{name: "empty", bad: []byte{}, wantCause: "empty body"},
		{name: "control character", bad: []byte(secret + "\x01"), wantCause: "characters SQS does not accept"},
		{name: "invalid UTF-8", bad: []byte(secret + "\xff"), wantCause: "characters SQS does not accept"},
		{name: "noncharacter", bad: []byte(secret + "\uFFFF"), wantCause: "characters SQS does not accept"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeSQS{}
			bodies := [][]byte{[]byte("first"), tc.bad, []byte("third")}
			err := fastSender(f).Send(context.Background(), bodies)
			if got, want := sentBodies(f.calls()), []string{"first", "third"}; !reflect.DeepEqual(got, want) {
				t.Errorf("sent %q, want %q", got, want)
			}
			var se *SendError
			if !errors.As(err, &se) || !reflect.DeepEqual(se.Failed, []int{1}) {
				t.Fatalf("Send error = %v, want entry 1 failed", err)
			}
			if !strings.Contains(err.Error(), tc.wantCause) || strings.Contains(err.Error(), secret) {
				t.Errorf("error %q: want cause %q and no body", err, tc.wantCause)
			}
		})
	}
}

func TestSendAttributesCountTowardSize(t *testing.T) {
	f := &fakeSQS{}
	s := fastSender(f)
	body := strings.Repeat("z", MaxPayloadBytes-10)
	err := s.sendMessages(context.Background(), []message{{Body: []byte(body), Attributes: map[string]string{"dead_letter_reason": "not JSON"}}})
	if err == nil || !strings.Contains(err.Error(), "message too large") {
		t.Fatalf("sendMessages = %v, want message too large", err)
	}
	if len(f.calls()) != 0 {
		t.Errorf("an oversized message was sent")
	}
	if err := s.sendMessages(context.Background(), []message{{Body: []byte("ok"), Attributes: map[string]string{"a": "b"}}}); err != nil {
		t.Fatal(err)
	}
	got := f.calls()[0][0].MessageAttributes["a"]
	if aws.ToString(got.DataType) != "String" || aws.ToString(got.StringValue) != "b" {
		t.Errorf("attribute sent as %+v", got)
	}
}

func TestSendStopsAtDeadline(t *testing.T) {
	f := &fakeSQS{batchHook: func(n int, in *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error) {
		return nil, errors.New("unavailable")
	}}
	s := NewSender(f, testQueue)
	s.Attempts = 100
	s.RetryBase, s.RetryCap = 40*time.Millisecond, 40*time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := s.Send(ctx, bodiesOf(3))
	// A timer wakes a little late, so allow some slack: without the
	// deadline check, 100 attempts would take about 2s.
	if elapsed := time.Since(start); elapsed > 400*time.Millisecond {
		t.Errorf("Send took %v, well past the 300ms deadline", elapsed)
	}
	if calls := len(f.calls()); calls < 2 || calls >= 100 {
		t.Errorf("calls = %d, want a few retries cut short by the deadline", calls)
	}
	var se *SendError
	if !errors.As(err, &se) || !reflect.DeepEqual(se.Failed, []int{0, 1, 2}) {
		t.Errorf("err %v, want all three failed", err)
	}
}

func TestSendParallelBatchesAllArrive(t *testing.T) {
	f := &fakeSQS{batchHook: func(n int, in *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error) {
		time.Sleep(5 * time.Millisecond)
		return allOK(in), nil
	}}
	bodies := bodiesOf(95)
	if err := fastSender(f).Send(context.Background(), bodies); err != nil {
		t.Fatal(err)
	}
	sent := sentBodies(f.calls())
	slices.Sort(sent)
	if len(sent) != 95 || len(slices.Compact(sent)) != 95 {
		t.Errorf("sent %d bodies, want 95 distinct", len(sent))
	}
}

func TestExpoDoesNotOverflow(t *testing.T) {
	tests := []struct {
		n    int
		want time.Duration
	}{
		{1, 10 * time.Second}, {2, 20 * time.Second}, {4, 80 * time.Second},
		{7, 640 * time.Second}, {8, 15 * time.Minute}, {64, 15 * time.Minute}, {1 << 30, 15 * time.Minute},
	}
	for _, tc := range tests {
		if got := expo(BackoffBase, BackoffCap, tc.n); got != tc.want {
			t.Errorf("expo(n=%d) = %v, want %v", tc.n, got, tc.want)
		}
	}
}
