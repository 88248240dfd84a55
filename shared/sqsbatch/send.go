package sqsbatch

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
)

// SQSAPI is the part of the SQS client this package uses; *sqs.Client
// satisfies it and tests substitute a fake.
type SQSAPI interface {
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
	ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
	GetQueueUrl(ctx context.Context, in *sqs.GetQueueUrlInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueUrlOutput, error)
}

var _ SQSAPI = (*sqs.Client)(nil)

// Limits of SendMessageBatch.
const (
	// MaxBatchEntries is the most entries one SendMessageBatch call takes.
	MaxBatchEntries = 10
	// MaxPayloadBytes bounds one message and also the sum of all messages of
	// one call. SQS now accepts up to 1 MiB, but the contract (§2) fixes
	// 256 KiB, which every queue of the stack honours.
	MaxPayloadBytes = 256 * 1024
)

// Defaults of a Sender's retry policy.
const (
	// DefaultSendAttempts bounds the calls made for one entry.
	DefaultSendAttempts = 5
	// DefaultSendRetryBase is the first retry's backoff ceiling.
	DefaultSendRetryBase = 100 * time.Millisecond
	// DefaultSendRetryCap bounds any one retry's backoff.
	DefaultSendRetryCap = 2 * time.Second
)

// message is one message to send, with optional String message attributes.
type message struct {
	Body       []byte
	Attributes map[string]string
	// GroupID is the MessageGroupId, "" for none.
	GroupID string
}

// size is what SQS counts against the payload limit: the body plus each
// attribute's name, data type and value.
func (m message) size() int {
	n := len(m.Body)
	for k, v := range m.Attributes {
		n += len(k) + len("String") + len(v)
	}
	return n
}

// Sender sends messages to one queue in as few SendMessageBatch calls as the
// limits allow, retrying only the entries that failed. Safe for concurrent use.
type Sender struct {
	client   SQSAPI
	queueURL string

	// Attempts bounds the calls made for one entry, first try included.
	Attempts int
	// RetryBase and RetryCap shape the full-jitter backoff between attempts.
	RetryBase, RetryCap time.Duration
	// Parallel bounds the SendMessageBatch calls in flight at once.
	Parallel int
}

// NewSender returns a Sender for queueURL with the default retry policy.
func NewSender(client SQSAPI, queueURL string) *Sender {
	return &Sender{
		client:    client,
		queueURL:  queueURL,
		Attempts:  DefaultSendAttempts,
		RetryBase: DefaultSendRetryBase,
		RetryCap:  DefaultSendRetryCap,
		Parallel:  4,
	}
}

// SendError reports the messages that could not be sent. It never carries a
// message body: only positions, counts and SQS error codes.
type SendError struct {
	// QueueURL is the destination queue.
	QueueURL string
	// Failed holds the positions (in the slice given to Send) of the
	// messages that were not sent, ascending.
	Failed []int
	// Total is how many messages Send was given.
	Total int
	// Causes counts the failed messages by their last cause.
	Causes map[string]int
	// Err is the last whole-call error, if any, for errors.Is/As.
	Err error
}

// Error names the queue, how many messages failed and why, never a body.
func (e *SendError) Error() string {
	causes := make([]string, 0, len(e.Causes))
	for c, n := range e.Causes {
		causes = append(causes, fmt.Sprintf("%s: %d", c, n))
	}
	sort.Strings(causes)
	return fmt.Sprintf("sqs send to %s: %d of %d messages not sent (%s)",
		queueName(e.QueueURL), len(e.Failed), e.Total, strings.Join(causes, ", "))
}

// Unwrap gives the last whole-call error, so errors.Is sees a deadline.
func (e *SendError) Unwrap() error { return e.Err }

// Send sends each body as one message. It returns a *SendError naming how
// many could not be sent, after retries.
func (s *Sender) Send(ctx context.Context, bodies [][]byte) error {
	msgs := make([]message, len(bodies))
	for i, b := range bodies {
		msgs[i] = message{Body: b}
	}
	return s.sendMessages(ctx, msgs)
}

// sendMessages sends messages with their attributes; see Send.
func (s *Sender) sendMessages(ctx context.Context, msgs []message) error {
	if len(msgs) == 0 {
		return nil
	}
	// final holds the messages that failed for good; last the latest
	// cause of each message still pending.
	final := make(map[int]string)
	last := make(map[int]string)
	pending := make([]int, 0, len(msgs))
	for i, m := range msgs {
		if c := checkMessage(m); c != "" {
			final[i] = c
			continue
		}
		pending = append(pending, i)
	}

	var lastErr error
	attempts := max(s.Attempts, 1)
	for attempt := 1; len(pending) > 0 && attempt <= attempts; attempt++ {
		if attempt > 1 && !s.sleep(ctx, attempt-1) {
			break
		}
		var next []int
		var mu sync.Mutex
		var wg sync.WaitGroup
		sem := make(chan struct{}, max(s.Parallel, 1))
		for _, batch := range pack(msgs, pending) {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				r := s.sendBatch(ctx, msgs, batch)
				mu.Lock()
				defer mu.Unlock()
				for i, c := range r.retry {
					next = append(next, i)
					last[i] = c
				}
				for i, c := range r.permanent {
					final[i] = c
				}
				if r.err != nil {
					lastErr = r.err
				}
			}()
		}
		wg.Wait()
		sort.Ints(next)
		pending = next
	}
	for _, i := range pending {
		final[i] = last[i]
	}
	if len(final) == 0 {
		return nil
	}
	se := &SendError{QueueURL: s.queueURL, Total: len(msgs), Causes: make(map[string]int), Err: lastErr}
	for i, c := range final {
		se.Failed = append(se.Failed, i)
		se.Causes[c]++
	}
	sort.Ints(se.Failed)
	return se
}

// batchResult is the outcome of one SendMessageBatch call, by position:
// the entries worth another attempt and those that failed for good, each
// with its cause, and the call's error if the call as a whole failed.
type batchResult struct {
	retry, permanent map[int]string
	err              error
}

// sendBatch makes one SendMessageBatch call for the given positions.
func (s *Sender) sendBatch(ctx context.Context, msgs []message, batch []int) batchResult {
	entries := make([]types.SendMessageBatchRequestEntry, len(batch))
	for k, i := range batch {
		e := types.SendMessageBatchRequestEntry{
			Id:          aws.String(strconv.Itoa(i)),
			MessageBody: aws.String(string(msgs[i].Body)),
		}
		if msgs[i].GroupID != "" {
			e.MessageGroupId = aws.String(msgs[i].GroupID)
		}
		if len(msgs[i].Attributes) > 0 {
			e.MessageAttributes = make(map[string]types.MessageAttributeValue, len(msgs[i].Attributes))
			for name, v := range msgs[i].Attributes {
				e.MessageAttributes[name] = types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
			}
		}
		entries[k] = e
	}
	res := batchResult{retry: make(map[int]string), permanent: make(map[int]string)}
	out, err := s.client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(s.queueURL), Entries: entries}, noSDKRetries)
	if err != nil {
		res.err = err
		dest := res.permanent
		if isRetryable(ctx, err) {
			dest = res.retry
		}
		for _, i := range batch {
			dest[i] = describeCallError(err)
		}
		return res
	}
	inBatch := make(map[int]bool, len(batch))
	for _, i := range batch {
		inBatch[i] = true
	}
	settled := make(map[int]bool, len(batch))
	for _, ok := range out.Successful {
		if i, err := strconv.Atoi(aws.ToString(ok.Id)); err == nil && inBatch[i] {
			settled[i] = true
		}
	}
	for _, f := range out.Failed {
		i, err := strconv.Atoi(aws.ToString(f.Id))
		if err != nil || !inBatch[i] || settled[i] {
			continue
		}
		settled[i] = true
		code := aws.ToString(f.Code)
		if code == "" {
			code = "unknown error"
		}
		if f.SenderFault {
			// The entry itself is wrong: sending it again cannot help.
			res.permanent[i] = code
			continue
		}
		res.retry[i] = code
	}
	// An entry SQS did not mention was not confirmed: send it again rather
	// than assume it arrived.
	for _, i := range batch {
		if !settled[i] {
			res.retry[i] = "entry not acknowledged"
		}
	}
	return res
}

// noSDKRetries turns the SDK's own retries off for one call. The Sender
// retries exactly the entries that failed, with its own backoff and within
// the invocation's deadline; SDK retries underneath would multiply the
// attempts (each of the Sender's attempts becoming up to three calls, with
// the SDK's backoff between them).
func noSDKRetries(o *sqs.Options) { o.Retryer = aws.NopRetryer{} }

// sleep waits before retry number n (1-based) and reports whether there is
// still time to retry: it never sleeps past the context's deadline.
func (s *Sender) sleep(ctx context.Context, n int) bool {
	d := jitter(s.RetryBase, s.RetryCap, n)
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= d {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// jitter returns a full-jitter delay: uniform in [0, min(ceil, base·2^(n-1))].
func jitter(base, ceil time.Duration, n int) time.Duration {
	d := expo(base, ceil, n)
	if d <= 0 {
		return 0
	}
	return rand.N(d + 1)
}

// expo returns min(ceil, base·2^(n-1)) without overflowing.
func expo(base, ceil time.Duration, n int) time.Duration {
	if base <= 0 {
		return 0
	}
	d := base
	for k := 1; k < n; k++ {
		if d >= ceil/2 {
			return ceil
		}
		d *= 2
	}
	return min(d, ceil)
}

// pack groups positions into batches of at most MaxBatchEntries entries and
// MaxPayloadBytes bytes, keeping their order.
func pack(msgs []message, pending []int) [][]int {
	var batches [][]int
	var cur []int
	size := 0
	for _, i := range pending {
		n := msgs[i].size()
		if len(cur) == MaxBatchEntries || (len(cur) > 0 && size+n > MaxPayloadBytes) {
			batches = append(batches, cur)
			cur, size = nil, 0
		}
		cur = append(cur, i)
		size += n
	}
	if len(cur) > 0 {
		batches = append(batches, cur)
	}
	return batches
}

// checkMessage returns why SQS would refuse the message, or "". Refusing it
// here keeps one bad entry from failing the whole call it would share.
func checkMessage(m message) string {
	switch {
	case len(m.Body) == 0:
		return "empty body"
	case m.size() > MaxPayloadBytes:
		return "message too large"
	case !validSQSText(m.Body):
		return "body has characters SQS does not accept"
	}
	for k, v := range m.Attributes {
		if k == "" || !validSQSText([]byte(v)) || !validSQSText([]byte(k)) {
			return "attribute SQS does not accept"
		}
	}
	return ""
}

// validSQSText reports whether b is UTF-8 made only of the characters SQS
// allows in a message: #x9 #xA #xD #x20-#xD7FF #xE000-#xFFFD #x10000-#x10FFFF.
func validSQSText(b []byte) bool {
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n <= 1 {
			return false
		}
		switch {
		case r == 0x9 || r == 0xA || r == 0xD:
		case r >= 0x20 && r <= 0xD7FF:
		case r >= 0xE000 && r <= 0xFFFD:
		case r >= 0x10000 && r <= 0x10FFFF:
		default:
			return false
		}
		b = b[n:]
	}
	return true
}

// isRetryable reports whether a whole-call error may pass on a new attempt.
func isRetryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	switch retry.IsErrorRetryables(retry.DefaultRetryables).IsErrorRetryable(err) {
	case aws.TrueTernary:
		return true
	case aws.FalseTernary:
		return false
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorFault() != smithy.FaultClient
	}
	// No response or one the SDK could not read: assume a transient fault.
	return true
}

// describeCallError names a whole-call failure by its SQS error code, which
// unlike the free-text message is sure not to echo request content.
func describeCallError(err error) string {
	var ae smithy.APIError
	switch {
	case errors.As(err, &ae):
		return ae.ErrorCode()
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline exceeded"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.As(err, new(net.Error)):
		return "network error"
	default:
		return "call failed"
	}
}

// queueName is the last path element of a queue URL, for short messages.
func queueName(url string) string {
	if i := strings.LastIndexByte(url, '/'); i >= 0 && i < len(url)-1 {
		return url[i+1:]
	}
	return url
}
