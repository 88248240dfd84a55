package sqsbatch

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"golang.org/x/sync/singleflight"
)

// Retry policy of a record that failed transiently.
const (
	// BackoffBase is the ceiling of the first retry's delay; it doubles with
	// every further receive.
	BackoffBase = 10 * time.Second
	// BackoffCap bounds the exponential part of the delay.
	BackoffCap = 15 * time.Minute
	// MinBackoff keeps a postponed record from becoming visible at once:
	// SQS counts visibility in whole seconds.
	MinBackoff = time.Second
	// MaxVisibility is the longest visibility timeout SQS accepts.
	MaxVisibility = 12 * time.Hour
	// DefaultMaxAttempts is MAX_ATTEMPTS when the variable is unset (contract §6).
	DefaultMaxAttempts = 5
)

// ReceiveCount is how many times SQS has delivered the record, from its
// ApproximateReceiveCount attribute; 1 when absent or unreadable.
func ReceiveCount(rec events.SQSMessage) int {
	n, err := strconv.Atoi(rec.Attributes["ApproximateReceiveCount"])
	if err != nil || n < 1 {
		return 1
	}
	return n
}

// Backoff returns how long to keep a record invisible before its next
// attempt: full jitter, uniform in [0, min(BackoffCap, BackoffBase·2^(n-1))]
// for the n-th receive, but at least retryAfter (the partner's Retry-After,
// 0 when it gave none; then up to a fifth more) and MinBackoff, and at most
// MaxVisibility.
func Backoff(receiveCount int, retryAfter time.Duration) time.Duration {
	return BackoffFrom(BackoffBase)(receiveCount, retryAfter)
}

// BackoffFrom is Backoff with another base: local runs and end-to-end tests
// use a short one (RETRY_BACKOFF_BASE) so a retried record comes back in
// seconds, not minutes.
func BackoffFrom(base time.Duration) func(receiveCount int, retryAfter time.Duration) time.Duration {
	return func(receiveCount int, retryAfter time.Duration) time.Duration {
		d := jitter(base, BackoffCap, max(receiveCount, 1))
		if retryAfter > d {
			// Every record held back by one 429 carries the same
			// Retry-After; up to a fifth more spreads their return so they
			// do not hit the partner together again.
			d = retryAfter + rand.N(retryAfter/5+1)
		}
		d = max(d, MinBackoff)
		return min(d, MaxVisibility)
	}
}

// QueueURLResolver finds a queue's URL from its ARN with GetQueueUrl, once
// per ARN, so that the URL always comes from the service (moto and AWS
// format them differently). Safe for concurrent use.
type QueueURLResolver struct {
	client SQSAPI
	group  singleflight.Group
	mu     sync.Mutex
	urls   map[string]string
}

// NewQueueURLResolver returns a resolver that asks client.
func NewQueueURLResolver(client SQSAPI) *QueueURLResolver {
	return &QueueURLResolver{client: client, urls: make(map[string]string)}
}

// QueueURL returns the URL of the queue named by queueARN
// (arn:aws:sqs:region:account:name). Failures are not cached.
func (r *QueueURLResolver) QueueURL(ctx context.Context, queueARN string) (string, error) {
	r.mu.Lock()
	url, ok := r.urls[queueARN]
	r.mu.Unlock()
	if ok {
		return url, nil
	}
	a, err := parseQueueARN(queueARN)
	if err != nil {
		return "", err
	}
	v, err, _ := r.group.Do(queueARN, func() (any, error) {
		// A call that missed the cache above may start after another one
		// for the same ARN has finished and filled it.
		r.mu.Lock()
		url, ok := r.urls[queueARN]
		r.mu.Unlock()
		if ok {
			return url, nil
		}
		out, err := r.client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{
			QueueName:              aws.String(a.Resource),
			QueueOwnerAWSAccountId: aws.String(a.AccountID),
		})
		if err != nil {
			return "", fmt.Errorf("sqs get queue url of %s: %w", queueARN, err)
		}
		url = aws.ToString(out.QueueUrl)
		if url == "" {
			return "", fmt.Errorf("sqs get queue url of %s: empty answer", queueARN)
		}
		r.mu.Lock()
		r.urls[queueARN] = url
		r.mu.Unlock()
		return url, nil
	})
	if err != nil {
		return "", err
	}
	return v.(string), nil
}

func parseQueueARN(s string) (arn.ARN, error) {
	a, err := arn.Parse(s)
	if err != nil || a.Service != "sqs" || a.AccountID == "" || a.Resource == "" || strings.ContainsAny(a.Resource, ":/") {
		return arn.ARN{}, fmt.Errorf("sqs queue url: %q is not an SQS queue ARN", s)
	}
	return a, nil
}

// Delay makes the record invisible for d (rounded up to whole seconds,
// within SQS's bounds) from now, so that its redelivery after a reported
// batch item failure waits that long.
func Delay(ctx context.Context, queues *QueueURLResolver, rec events.SQSMessage, d time.Duration) error {
	url, err := queues.QueueURL(ctx, rec.EventSourceARN)
	if err != nil {
		return fmt.Errorf("sqs delay message %s: %w", rec.MessageId, err)
	}
	_, err = queues.client.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl:          aws.String(url),
		ReceiptHandle:     aws.String(rec.ReceiptHandle),
		VisibilityTimeout: visibilitySeconds(d),
	})
	if err != nil {
		return fmt.Errorf("sqs delay message %s: change visibility: %w", rec.MessageId, err)
	}
	return nil
}

// visibilitySeconds rounds d up to whole seconds within [0, MaxVisibility].
func visibilitySeconds(d time.Duration) int32 {
	if d <= 0 {
		return 0
	}
	s := math.Ceil(min(d, MaxVisibility).Seconds())
	return int32(s)
}
