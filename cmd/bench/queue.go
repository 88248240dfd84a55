package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
)

// sourceARN names the emulated partner queue in the records (the worker
// reads it only to delay a record, which the emulated queue does itself).
const sourceARN = "arn:aws:sqs:us-east-1:123456789012:bench-partner-queue"

// visibilityTimeout is the partner queues' visibility timeout in
// template.yaml: a failed record the handler did not delay comes back only
// after it, which in a benchmark run means never.
const visibilityTimeout = 180 * time.Second

// messageSeq makes message ids unique for the whole process: sqsbatch
// skips ids that already completed in this instance.
var messageSeq atomic.Int64

// queue is an SQS queue as an event source mapping sees it: records are
// received up to a batch at a time, become invisible, are deleted when the
// handler reports them done, and come back when their visibility ends
// (pushed out by the handler's Delay for records handed back). It is the
// worker's Requeuer.
type queue struct {
	mu    sync.Mutex
	items map[string]*item
	order []string // ids in arrival order, for oldest-first receives
	// handedBack counts Delay calls: records the handler gave back to SQS.
	handedBack int
	receives   int
}

type item struct {
	msg       events.SQSMessage
	arrived   time.Time
	visibleAt time.Time
	receives  int
	delayed   bool
}

func newQueue() *queue { return &queue{items: map[string]*item{}} }

// add enqueues one message body.
func (q *queue) add(body []byte) {
	id := "bench-" + strconv.FormatInt(messageSeq.Add(1), 10)
	now := time.Now()
	q.mu.Lock()
	defer q.mu.Unlock()
	q.items[id] = &item{
		msg:     events.SQSMessage{MessageId: id, Body: string(body), EventSource: "aws:sqs", EventSourceARN: sourceARN, AWSRegion: "us-east-1"},
		arrived: now, visibleAt: now,
	}
	q.order = append(q.order, id)
}

// receive returns up to max visible records, oldest first, waiting until
// one is visible or until passes (then it returns none).
func (q *queue) receive(ctx context.Context, max int, until time.Time) []events.SQSMessage {
	for {
		recs, next := q.take(max)
		if len(recs) > 0 {
			return recs
		}
		now := time.Now()
		if next.IsZero() || !next.Before(until) || ctx.Err() != nil {
			return nil
		}
		select {
		case <-time.After(next.Sub(now)):
		case <-ctx.Done():
			return nil
		}
	}
}

// take receives up to max visible records, or returns when the next one becomes visible.
func (q *queue) take(max int) ([]events.SQSMessage, time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := time.Now()
	var out []events.SQSMessage
	var next time.Time
	live := q.order[:0]
	for _, id := range q.order {
		it, ok := q.items[id]
		if !ok {
			continue // deleted
		}
		live = append(live, id)
		if len(out) < max && !it.visibleAt.After(now) {
			it.receives++
			q.receives++
			it.visibleAt = now.Add(visibilityTimeout)
			it.delayed = false
			msg := it.msg
			msg.Attributes = map[string]string{
				"ApproximateReceiveCount":          strconv.Itoa(it.receives),
				"SentTimestamp":                    strconv.FormatInt(it.arrived.UnixMilli(), 10),
				"ApproximateFirstReceiveTimestamp": strconv.FormatInt(now.UnixMilli(), 10),
			}
			out = append(out, msg)
			continue
		}
		if next.IsZero() || it.visibleAt.Before(next) {
			next = it.visibleAt
		}
	}
	q.order = live
	return out, next
}

// Delay implements pipeline.Requeuer: the record comes back after d.
func (q *queue) Delay(_ context.Context, rec events.SQSMessage, d time.Duration) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	it, ok := q.items[rec.MessageId]
	if !ok {
		return fmt.Errorf("delay %s: no such message in flight", rec.MessageId)
	}
	it.visibleAt = time.Now().Add(d)
	it.delayed = true
	q.handedBack++
	return nil
}

// settle applies an invocation's response: records not reported as failed
// are deleted; failed ones stay, visible again when their delay or the
// visibility timeout ends. It returns how many failed without a delay.
func (q *queue) settle(recs []events.SQSMessage, resp events.SQSEventResponse) (undelayed int) {
	failed := map[string]bool{}
	for _, f := range resp.BatchItemFailures {
		failed[f.ItemIdentifier] = true
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, r := range recs {
		it, ok := q.items[r.MessageId]
		if !ok {
			continue
		}
		switch {
		case !failed[r.MessageId]:
			delete(q.items, r.MessageId)
		case !it.delayed:
			undelayed++
		}
	}
	return undelayed
}

// counts returns the receives and hand-backs so far.
func (q *queue) counts() (receives, handedBack int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.receives, q.handedBack
}

// sink is the results queue: it keeps when each result arrived and its
// body, decoded only when read, so the handler's time holds no bench work.
type sink struct {
	mu      sync.Mutex
	arrived []arrival
}

type arrival struct {
	at   time.Time
	body []byte
}

// sunk is one result as the benchmark reads it.
type sunk struct {
	at     time.Time
	status finding.Status
	reason finding.Reason
	cached bool
}

// Send implements pipeline.Sink. The worker sends one record's results as
// soon as that record is decided, so the arrival time is the record's end.
func (s *sink) Send(_ context.Context, bodies [][]byte) error {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range bodies {
		s.arrived = append(s.arrived, arrival{now, b})
	}
	return nil
}

// len is how many results arrived so far.
func (s *sink) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.arrived)
}

// since decodes the results that arrived after the first n.
func (s *sink) since(n int) ([]sunk, error) {
	s.mu.Lock()
	got := append([]arrival(nil), s.arrived[n:]...)
	s.mu.Unlock()
	out := make([]sunk, len(got))
	for i, a := range got {
		var r finding.Result
		if err := json.Unmarshal(a.body, &r); err != nil {
			return nil, fmt.Errorf("results: decode result: %w", err)
		}
		out[i] = sunk{at: a.at, status: r.Status, reason: r.Reason, cached: r.Cached}
	}
	return out, nil
}
