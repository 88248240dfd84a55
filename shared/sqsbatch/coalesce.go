package sqsbatch

import (
	"context"
	"errors"
	"sync"
	"time"
)

// DefaultLinger is how long a Coalescer holds the first message of a
// shared send for others to join. The records of one invocation start
// together and their partner calls end within the partner's jitter (tens
// of milliseconds), so most of an invocation's results leave in one
// SendMessageBatch instead of one each; the wait is small beside a
// partner call.
const DefaultLinger = 40 * time.Millisecond

// BodySender is what a Coalescer sends through: a *Sender.
type BodySender interface {
	Send(ctx context.Context, bodies [][]byte) error
}

// Coalescer gathers Send calls made at about the same time into shared
// sends, so that results of records processed concurrently cost one SQS
// request per ten rather than one each. Each caller waits until its own
// bodies are sent (or not) and learns only about its own: a record is
// still reported done only after its results are on the queue. Safe for
// concurrent use.
type Coalescer struct {
	next   BodySender
	linger time.Duration

	mu      sync.Mutex
	pending []*joined
	count   int
	timer   *time.Timer
}

// joined is one Send call waiting for its shared send.
type joined struct {
	ctx    context.Context
	bodies [][]byte
	done   chan error
}

// NewCoalescer returns a Coalescer sending through next, holding a shared
// send at most linger (DefaultLinger when 0 or less) for others to join.
func NewCoalescer(next BodySender, linger time.Duration) *Coalescer {
	if linger <= 0 {
		linger = DefaultLinger
	}
	return &Coalescer{next: next, linger: linger}
}

// Send sends bodies with whatever other calls arrive within the linger,
// or at once when MaxBatchEntries messages are waiting. It returns nil
// when every body was sent, and otherwise a *SendError whose positions are
// those of this call's bodies (or the shared send's error).
func (c *Coalescer) Send(ctx context.Context, bodies [][]byte) error {
	if len(bodies) == 0 {
		return nil
	}
	j := &joined{ctx: ctx, bodies: bodies, done: make(chan error, 1)}
	c.mu.Lock()
	c.pending = append(c.pending, j)
	c.count += len(bodies)
	var full []*joined
	switch {
	case c.count >= MaxBatchEntries:
		full = c.takeLocked()
	case c.timer == nil:
		c.timer = time.AfterFunc(c.linger, c.flushPending)
	}
	c.mu.Unlock()
	if full != nil {
		c.send(full)
	}
	return <-j.done
}

// takeLocked hands over everything waiting; c.mu must be held.
func (c *Coalescer) takeLocked() []*joined {
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	batch := c.pending
	c.pending, c.count = nil, 0
	return batch
}

func (c *Coalescer) flushPending() {
	c.mu.Lock()
	batch := c.takeLocked()
	c.mu.Unlock()
	if len(batch) > 0 {
		c.send(batch)
	}
}

// send makes one shared send of batch and tells each caller its part.
// It runs under the earliest deadline of its callers, and not cancelled
// by any one of them: the others' results must still go.
func (c *Coalescer) send(batch []*joined) {
	var bodies [][]byte
	offsets := make([]int, len(batch))
	ctx := context.WithoutCancel(batch[0].ctx)
	var deadline time.Time
	for i, j := range batch {
		offsets[i] = len(bodies)
		bodies = append(bodies, j.bodies...)
		if d, ok := j.ctx.Deadline(); ok && (deadline.IsZero() || d.Before(deadline)) {
			deadline = d
		}
	}
	if !deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	err := c.next.Send(ctx, bodies)
	var se *SendError
	for i, j := range batch {
		switch {
		case err == nil:
			j.done <- nil
		case errors.As(err, &se):
			j.done <- se.part(offsets[i], len(j.bodies))
		default:
			j.done <- err
		}
	}
}

// part is the error of the messages at [from, from+n) of e's send,
// renumbered from 0; nil when all of them were sent.
func (e *SendError) part(from, n int) error {
	var failed []int
	for _, i := range e.Failed {
		if i >= from && i < from+n {
			failed = append(failed, i-from)
		}
	}
	if len(failed) == 0 {
		return nil
	}
	return &SendError{QueueURL: e.QueueURL, Failed: failed, Total: n, Causes: e.Causes, Err: e.Err}
}
