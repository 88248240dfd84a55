package sqsbatch

import (
	"context"
	"errors"
	"sync"
	"time"
)

// DefaultLinger is the longest a Coalescer holds a message for others to
// join its send. Most shared sends go sooner: at once when ten messages
// wait, and, inside Run, the moment every record in progress waits for a
// send (Options.Idle), which for most invocations is their end. The
// linger only bounds the wait behind a record still running, holding no
// slot meanwhile (Run starts the next record). One second lets the results
// of a batch's waves of partner calls (about 100 ms apart) leave together,
// and delays a verdict behind a slow record no more than the partner
// queues' batching window already may.
const DefaultLinger = time.Second

// Coalescer gathers Send calls made at about the same time into shared
// sends, so that messages of records processed concurrently cost one SQS
// request per ten rather than one each. Each caller waits until its own
// bodies are sent (or not) and learns only about its own: a record is
// still reported done only after its messages are on the queue. Safe for
// concurrent use.
type Coalescer struct {
	next   *Sender
	linger time.Duration

	mu      sync.Mutex
	pending []*joined
	count   int
	timer   *time.Timer
	due     time.Time // when the timer fires
}

// joined is one Send call waiting for its shared send.
type joined struct {
	ctx  context.Context
	msgs []message
	wait *sendWait
	done chan error
}

// NewCoalescer returns a Coalescer sending through next, holding a shared
// send at most linger (DefaultLinger when 0 or less) for others to join.
func NewCoalescer(next *Sender, linger time.Duration) *Coalescer {
	if linger <= 0 {
		linger = DefaultLinger
	}
	return &Coalescer{next: next, linger: linger}
}

// Send sends bodies with whatever other calls join before the shared send
// goes: when MaxBatchEntries messages wait, when Flush is called (Run's
// Idle), or at the end of the linger. It returns nil when every body was
// sent, and otherwise a *SendError whose positions are those of this
// call's bodies (or the shared send's error).
func (c *Coalescer) Send(ctx context.Context, bodies [][]byte) error {
	return c.SendGroup(ctx, "", bodies)
}

// SendGroup is Send with the messages in message group group ("" for
// none): Sender.SendGroup, shared. Messages of different groups share a
// send, each keeping its own group.
func (c *Coalescer) SendGroup(ctx context.Context, group string, bodies [][]byte) error {
	if len(bodies) == 0 {
		return nil
	}
	if group != "" && !validGroupID(group) {
		return c.next.SendGroup(ctx, group, bodies) // its error names the fault
	}
	msgs := make([]message, len(bodies))
	for i, b := range bodies {
		msgs[i] = message{Body: b, GroupID: group}
	}
	j := &joined{ctx: ctx, msgs: msgs, wait: beginWait(ctx), done: make(chan error, 1)}
	c.mu.Lock()
	c.pending = append(c.pending, j)
	c.count += len(msgs)
	var full []*joined
	if c.count >= MaxBatchEntries {
		full = c.takeLocked()
	} else {
		c.scheduleLocked(ctx)
	}
	c.mu.Unlock()
	if full != nil {
		c.send(full)
	}
	j.wait.joined()
	return <-j.done
}

// scheduleLocked sets the timer for the linger of the first message
// waiting, brought forward so that a caller close to its deadline keeps
// half of what it has left for the send itself. c.mu must be held.
func (c *Coalescer) scheduleLocked(ctx context.Context) {
	due := time.Now().Add(c.linger)
	if dl, ok := ctx.Deadline(); ok {
		if half := time.Now().Add(time.Until(dl) / 2); half.Before(due) {
			due = half
		}
	}
	if c.timer != nil && !due.Before(c.due) {
		return
	}
	if c.timer != nil {
		c.timer.Stop()
	}
	c.due = due
	c.timer = time.AfterFunc(time.Until(due), c.Flush)
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

// Flush starts the shared send of what is waiting now, without waiting
// for the linger, and returns at once: the callers hear how it went. What
// joins after Flush returns waits for the next send.
func (c *Coalescer) Flush() { FlushAll(c) }

// FlushAll is Flush of each of cs, taking what waits in every one of them
// before any send starts: a caller whose send ends at once may go on to
// join another of cs, and must not be sent alone by a later Flush meant
// for the callers that were waiting.
func FlushAll(cs ...*Coalescer) {
	batches := make([][]*joined, len(cs))
	for i, c := range cs {
		c.mu.Lock()
		batches[i] = c.takeLocked()
		c.mu.Unlock()
	}
	for i, batch := range batches {
		if len(batch) > 0 {
			go cs[i].send(batch)
		}
	}
}

// send makes one shared send of batch and tells each caller its part.
// It runs under the earliest deadline of its callers, and not cancelled
// by any one of them: the others' results must still go.
func (c *Coalescer) send(batch []*joined) {
	var msgs []message
	offsets := make([]int, len(batch))
	ctx := context.WithoutCancel(batch[0].ctx)
	var deadline time.Time
	for i, j := range batch {
		offsets[i] = len(msgs)
		msgs = append(msgs, j.msgs...)
		if d, ok := j.ctx.Deadline(); ok && (deadline.IsZero() || d.Before(deadline)) {
			deadline = d
		}
	}
	if !deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	err := c.next.sendMessages(ctx, msgs)
	// Every caller counts as working again before any of them hears: one
	// that went on to its next send must not find the others still
	// counted as waiting, and send its messages alone.
	for _, j := range batch {
		j.wait.end()
	}
	var se *SendError
	for i, j := range batch {
		switch {
		case err == nil:
			j.done <- nil
		case errors.As(err, &se):
			j.done <- se.part(offsets[i], len(j.msgs))
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
