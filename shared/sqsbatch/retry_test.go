package sqsbatch

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
)

func recWithCount(count string) events.SQSMessage {
	rec := events.SQSMessage{MessageId: "m1"}
	if count != "-" {
		rec.Attributes = map[string]string{"ApproximateReceiveCount": count}
	}
	return rec
}

func TestReceiveCount(t *testing.T) {
	tests := []struct {
		attr string
		want int
	}{
		{attr: "-", want: 1},
		{attr: "", want: 1},
		{attr: "garbage", want: 1},
		{attr: "0", want: 1},
		{attr: "-3", want: 1},
		{attr: "1", want: 1},
		{attr: "4", want: 4},
		{attr: "12", want: 12},
	}
	for _, tc := range tests {
		if got := ReceiveCount(recWithCount(tc.attr)); got != tc.want {
			t.Errorf("ReceiveCount(%q) = %d, want %d", tc.attr, got, tc.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	const samples = 400
	tests := []struct {
		name       string
		count      int
		retryAfter time.Duration
		lo, hi     time.Duration // every sample within [lo, hi]
		spread     bool          // samples must differ (jitter) and reach the upper half
	}{
		{name: "first receive", count: 1, lo: MinBackoff, hi: 10 * time.Second, spread: true},
		{name: "count 0 treated as first", count: 0, lo: MinBackoff, hi: 10 * time.Second, spread: true},
		{name: "third receive doubles twice", count: 3, lo: MinBackoff, hi: 40 * time.Second, spread: true},
		{name: "capped at 15 minutes", count: 30, lo: MinBackoff, hi: BackoffCap, spread: true},
		{name: "huge count does not overflow", count: 1 << 40, lo: MinBackoff, hi: BackoffCap, spread: true},
		{name: "retry-after is a floor, spread by up to a fifth", count: 1, retryAfter: 30 * time.Second, lo: 30 * time.Second, hi: 36 * time.Second},
		{name: "retry-after above the jitter", count: 30, retryAfter: 20 * time.Minute, lo: 20 * time.Minute, hi: 24 * time.Minute},
		{name: "retry-after capped at SQS maximum", count: 1, retryAfter: 48 * time.Hour, lo: MaxVisibility, hi: MaxVisibility},
		{name: "small retry-after within jitter", count: 8, retryAfter: 5 * time.Second, lo: 5 * time.Second, hi: BackoffCap, spread: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			seen := map[time.Duration]bool{}
			var top time.Duration
			for range samples {
				d := Backoff(tc.count, tc.retryAfter)
				if d < tc.lo || d > tc.hi {
					t.Fatalf("Backoff(%d, %v) = %v, outside [%v, %v]", tc.count, tc.retryAfter, d, tc.lo, tc.hi)
				}
				seen[d] = true
				top = max(top, d)
			}
			if tc.spread {
				// With full jitter, 400 samples all equal or all in the
				// lower half has probability below 2^-400.
				if len(seen) < 2 || top <= tc.hi/2 {
					t.Errorf("no jitter: %d distinct values, max %v of ceiling %v", len(seen), top, tc.hi)
				}
			}
		})
	}
}

func TestVisibilitySeconds(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want int32
	}{
		{-time.Second, 0}, {0, 0}, {time.Millisecond, 1}, {time.Second, 1},
		{1500 * time.Millisecond, 2}, {15 * time.Minute, 900}, {13 * time.Hour, 43200},
	}
	for _, tc := range tests {
		if got := visibilitySeconds(tc.d); got != tc.want {
			t.Errorf("visibilitySeconds(%v) = %d, want %d", tc.d, got, tc.want)
		}
	}
}

func TestQueueURLResolver(t *testing.T) {
	const arn = "arn:aws:sqs:us-east-1:111122223333:aws-queue"
	f := &fakeSQS{urls: map[string]string{"111122223333/aws-queue": "https://sqs.us-east-1.amazonaws.com/111122223333/aws-queue"}}
	r := NewQueueURLResolver(f)
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			url, err := r.QueueURL(context.Background(), arn)
			if err != nil || url != "https://sqs.us-east-1.amazonaws.com/111122223333/aws-queue" {
				t.Errorf("QueueURL = %q, %v", url, err)
			}
		}()
	}
	wg.Wait()
	if f.getURLs != 1 {
		t.Errorf("GetQueueUrl called %d times, want once", f.getURLs)
	}

	bad := []string{"", "not-an-arn", "arn:aws:sns:us-east-1:111122223333:topic", "arn:aws:sqs:us-east-1::q", "arn:aws:sqs:us-east-1:111122223333:", "arn:aws:sqs:us-east-1:111122223333:a/b"}
	for _, a := range bad {
		if _, err := r.QueueURL(context.Background(), a); err == nil {
			t.Errorf("QueueURL(%q) succeeded", a)
		}
	}
	if _, err := r.QueueURL(context.Background(), "arn:aws:sqs:us-east-1:111122223333:missing"); err == nil || !strings.Contains(err.Error(), "get queue url") {
		t.Errorf("missing queue: %v", err)
	}

	flaky := &fakeSQS{getURLErrs: 1, urls: f.urls}
	r = NewQueueURLResolver(flaky)
	if _, err := r.QueueURL(context.Background(), arn); err == nil {
		t.Fatal("first call should fail")
	}
	if _, err := r.QueueURL(context.Background(), arn); err != nil {
		t.Errorf("a failure was cached: %v", err)
	}
}

func TestDelay(t *testing.T) {
	f := &fakeSQS{urls: map[string]string{"111122223333/q": "https://queue/q"}}
	r := NewQueueURLResolver(f)
	rec := events.SQSMessage{
		MessageId: "m1", ReceiptHandle: "rh-1", EventSourceARN: "arn:aws:sqs:us-east-1:111122223333:q",
		Attributes: map[string]string{"ApproximateReceiveCount": "2"},
	}
	if err := Delay(context.Background(), r, rec, 2500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	d := Backoff(ReceiveCount(rec), 90*time.Second)
	if d < 90*time.Second || d > 108*time.Second {
		t.Fatalf("Backoff = %v; want 90s to 108s (retry-after above the 20s ceiling, spread by up to a fifth)", d)
	}
	if err := Delay(context.Background(), r, rec, d); err != nil {
		t.Fatal(err)
	}
	if len(f.visibility) != 2 {
		t.Fatalf("ChangeMessageVisibility calls = %d", len(f.visibility))
	}
	for i, want := range []int32{3, int32((d + time.Second - 1) / time.Second)} {
		v := f.visibility[i]
		if aws.ToString(v.QueueUrl) != "https://queue/q" || aws.ToString(v.ReceiptHandle) != "rh-1" || v.VisibilityTimeout != want {
			t.Errorf("call %d: %s %s %d, want visibility %d", i, aws.ToString(v.QueueUrl), aws.ToString(v.ReceiptHandle), v.VisibilityTimeout, want)
		}
	}
	if f.getURLs != 1 {
		t.Errorf("GetQueueUrl called %d times", f.getURLs)
	}

	f.visErr = errors.New("receipt handle expired")
	if err := Delay(context.Background(), r, rec, time.Second); err == nil || !strings.Contains(err.Error(), "m1") {
		t.Errorf("Delay error = %v, want one naming the message", err)
	}
	rec.EventSourceARN = "bogus"
	if err := Delay(context.Background(), r, rec, time.Second); err == nil {
		t.Error("Delay with a bad ARN succeeded")
	}
}
