// Package sqsbatch is the SQS plumbing every function shares: it runs the
// records of an SQS event concurrently and reports partial batch failures,
// sends messages in batches retrying only what failed, postpones records
// that failed transiently, and moves unparseable bodies to a dead-letter
// queue (contract §2, §3, §6).
package sqsbatch

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	lru "github.com/hashicorp/golang-lru/v2"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/panics"
)

// Defaults of Options.
const (
	// DefaultConcurrency is Options.Concurrency when unset.
	DefaultConcurrency = 10
	// DefaultDeadlineMargin is Options.DeadlineMargin when unset.
	DefaultDeadlineMargin = 2 * time.Second
	// DefaultCompletedSize bounds a handler's record of completed message
	// ids: a few thousand ids cost well under a megabyte.
	DefaultCompletedSize = 4096
	// defaultCancelMargin: the context given to process ends this long
	// before the invocation's deadline, leaving time to report.
	defaultCancelMargin = 500 * time.Millisecond
)

// Options tunes Run. The zero value uses the defaults.
type Options struct {
	// Concurrency bounds the records processed at once (default 10); a
	// record waiting for a Coalescer's shared send gives its slot back.
	Concurrency int
	// DeadlineMargin: a record is not started when less than this is left
	// before the invocation's deadline; it is reported as failed so that SQS
	// redelivers it (default 2s).
	DeadlineMargin time.Duration
	// Completed is the calling handler's record of completed message ids:
	// a record whose id is in it is skipped as a success, and a record that
	// succeeds is added to it. Each handler owns its own (NewCompleted);
	// nil turns the skipping off.
	Completed *Completed
	// Logger receives the package's log lines; nil means slog.Default().
	Logger *slog.Logger
	// Idle, when set, is called whenever every record still in progress is
	// waiting for a shared send (Coalescer) and none is left to start:
	// nothing more will join those sends, so they should go now rather
	// than at the end of their linger. Handlers flush their Coalescers.
	Idle func()

	// cancelMargin: the context given to process ends this long before the
	// invocation's deadline (default 500ms; kept below DeadlineMargin).
	cancelMargin time.Duration
}

func (o Options) withDefaults() Options {
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.DeadlineMargin <= 0 {
		o.DeadlineMargin = DefaultDeadlineMargin
	}
	if o.cancelMargin <= 0 {
		o.cancelMargin = defaultCancelMargin
	}
	if o.cancelMargin >= o.DeadlineMargin {
		// Otherwise a record started just inside the margin would get an
		// already expired context.
		o.cancelMargin = o.DeadlineMargin / 4
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Completed remembers the message ids that one handler processed
// successfully in this instance, bounded by least-recent use. SQS delivers at least once:
// a message whose success was not deleted (the invocation timed out after
// it, or its visibility ran out) comes back, and must not be done twice.
// Safe for concurrent use.
type Completed struct {
	cache *lru.Cache[string, struct{}]
}

// NewCompleted returns a record holding at most size ids.
func NewCompleted(size int) *Completed {
	c, err := lru.New[string, struct{}](max(size, 1))
	if err != nil {
		// lru.New fails only for a size below 1, which max rules out.
		panic("sqsbatch: " + err.Error())
	}
	return &Completed{cache: c}
}

// add records that a message id completed.
func (c *Completed) add(messageID string) {
	if c != nil && messageID != "" {
		c.cache.Add(messageID, struct{}{})
	}
}

// contains reports whether a message id completed in this record; a nil
// record contains nothing.
func (c *Completed) contains(messageID string) bool {
	return c != nil && messageID != "" && c.cache.Contains(messageID)
}

// panicError is how a panic in process is reported: the panic value is not
// kept, since it could carry data; only its type and where it happened.
type panicError struct{ panics.Site }

// Error names the panic's type and location, not its value.
func (e *panicError) Error() string {
	return fmt.Sprintf("sqsbatch: process panicked with a %s at %s", e.Type, e.Location)
}

// outcome of one record.
const (
	_ = iota // not run (yet)
	succeeded
	failed
	unstarted
	skipped
)

// Run processes the event's records, at most opts.Concurrency at once, and
// returns the records that failed (process returned an error or panicked, or
// the record was not started for lack of time) as batch item failures, so
// that SQS redelivers exactly those. A record whose message id is in
// opts.Completed is skipped as a success.
//
// The records share one pool of opts.Concurrency slots: a slot takes the
// next record the moment its record ends, so a batch larger than the
// concurrency keeps every slot busy until the batch runs out, instead of
// waiting for the slowest of each group; a record that waits for a
// Coalescer's shared send holds no slot, and when every record in progress
// waits for one, opts.Idle sends them. Records start in the order of
// StartOrder: those SQS delivered more often first, so that a record left
// unstarted by one invocation is not left unstarted again by the next,
// each time spending one of its receives (MAX_ATTEMPTS, maxReceiveCount).
func Run(ctx context.Context, ev events.SQSEvent, opts Options, process func(ctx context.Context, rec events.SQSMessage) error) events.SQSEventResponse {
	o := opts.withDefaults()
	recs := ev.Records
	state := make([]int, len(recs))
	// alias[i] is the first record with the same message id: SQS may hand
	// one message twice in a batch, and it must be worked on once.
	alias := make([]int, len(recs))
	first := make(map[string]int, len(recs))

	deadline, hasDeadline := ctx.Deadline()
	workCtx := ctx
	if hasDeadline {
		var cancel context.CancelFunc
		workCtx, cancel = context.WithDeadline(ctx, deadline.Add(-o.cancelMargin))
		defer cancel()
	}

	var wg sync.WaitGroup
	p := &pool{sem: make(chan struct{}, o.Concurrency), idle: o.Idle}
	stopped := false
	for _, i := range StartOrder(recs) {
		rec := recs[i]
		alias[i] = i
		if j, ok := first[rec.MessageId]; ok && rec.MessageId != "" {
			alias[i] = j
			continue
		}
		first[rec.MessageId] = i
		if o.Completed.contains(rec.MessageId) {
			state[i] = skipped
			o.Logger.InfoContext(ctx, "sqsbatch: skipped a message that already completed in this instance", "message_id", rec.MessageId)
			continue
		}
		if !stopped {
			acquired := false
			select {
			case p.sem <- struct{}{}:
				acquired = true
			case <-ctx.Done():
			}
			// The time check comes after the wait for a slot: that wait
			// can take most of what was left.
			if ctx.Err() != nil || (hasDeadline && time.Until(deadline) < o.DeadlineMargin) {
				stopped = true
				if acquired {
					<-p.sem
				}
			}
		}
		if stopped {
			state[i] = unstarted
			continue
		}
		s := p.start()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer p.finish(s)
			err := safeProcess(context.WithValue(workCtx, slotKey{}, s), rec, process)
			if err != nil {
				state[i] = failed
				logFailure(ctx, o.Logger, rec, err)
				return
			}
			state[i] = succeeded
			o.Completed.add(rec.MessageId)
		}()
	}
	p.allStarted()
	wg.Wait()

	// An empty list, not null: both mean success to Lambda, but the list is
	// what the documentation shows.
	resp := events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{}}
	left := 0
	reported := make(map[string]bool)
	for i, rec := range recs {
		s := state[alias[i]]
		if s == unstarted && alias[i] == i {
			left++
		}
		if (s == failed || s == unstarted) && !reported[rec.MessageId] {
			reported[rec.MessageId] = true
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: rec.MessageId})
		}
	}
	if left > 0 {
		o.Logger.WarnContext(ctx, "sqsbatch: records left unstarted for lack of time; SQS will redeliver them",
			"unstarted", left, "records", len(recs), "deadline_margin", o.DeadlineMargin.String())
	}
	return resp
}

// pool is one Run's slots and what it knows of the records in progress:
// how many there are and how many of them wait for a shared send, so that
// it can tell when nothing more will join those sends.
type pool struct {
	sem  chan struct{}
	idle func()

	mu      sync.Mutex
	live    int  // records started and not yet ended
	waiting int  // live records waiting for a shared send
	started bool // no record is left to start
}

// slot is one record's hold on the pool, kept in the context process gets.
type slot struct {
	p       *pool
	release sync.Once
	// waitings counts the record's sends it is counted waiting for (its
	// goroutines may wait for several); guarded by p.mu.
	waitings int
}

type slotKey struct{}

func (p *pool) start() *slot {
	p.mu.Lock()
	p.live++
	p.mu.Unlock()
	return &slot{p: p}
}

// finish ends a record: its slot goes back if it still held it.
func (p *pool) finish(s *slot) {
	s.release.Do(func() { <-p.sem })
	p.change(func() {
		p.live--
		p.waiting -= min(s.waitings, 1)
		s.waitings = 0
	})
}

func (p *pool) allStarted() { p.change(func() { p.started = true }) }

// change applies f under p.mu, then runs Idle if f left every live record
// waiting for a shared send with none left to start.
func (p *pool) change(f func()) {
	p.mu.Lock()
	f()
	idle := p.idle != nil && p.started && p.live > 0 && p.waiting == p.live
	p.mu.Unlock()
	if idle {
		p.idle()
	}
}

// sendWait is a record's wait for a shared send, as its pool sees it.
// Its fields are guarded by the pool's mu.
type sendWait struct {
	s       *slot
	counted bool // the pool counts the record as waiting for this send
	ended   bool
}

// beginWait gives ctx's record's slot back at once, since what is left of
// it (a shared send) makes no partner call, and the next record can
// start. The caller then puts its messages where the send will take them
// and calls joined; the sender calls end before it tells the caller the
// outcome, so that a record counts as working again from that moment.
// Outside Run it returns nil, on which both do nothing.
func beginWait(ctx context.Context) *sendWait {
	s, _ := ctx.Value(slotKey{}).(*slot)
	if s == nil {
		return nil
	}
	s.release.Do(func() { <-s.p.sem })
	return &sendWait{s: s}
}

// joined counts the record as waiting, its messages being in place, and
// runs the pool's Idle when that made every record in progress a waiting
// one: nothing more will join those sends. A send that already ended
// (its messages went with another caller's) counts for nothing.
func (w *sendWait) joined() {
	if w == nil {
		return
	}
	p := w.s.p
	p.change(func() {
		if !w.ended && !w.counted {
			w.counted = true
			w.s.waitings++
			if w.s.waitings == 1 {
				p.waiting++
			}
		}
	})
}

// end ends the wait; only its first call counts.
func (w *sendWait) end() {
	if w == nil {
		return
	}
	p := w.s.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if w.ended {
		return
	}
	w.ended = true
	if w.counted {
		w.s.waitings--
		if w.s.waitings == 0 {
			p.waiting--
		}
	}
}

// StartOrder is the order in which Run starts an event's records, as
// indexes into recs: by ApproximateReceiveCount, highest first, and in
// the event's order among equals. A record that a previous invocation left
// unstarted, or handed back, has been received more often than the fresh
// records beside it and goes ahead of them.
func StartOrder(recs []events.SQSMessage) []int {
	order := make([]int, len(recs))
	counts := make([]int, len(recs))
	for i, rec := range recs {
		order[i], counts[i] = i, ReceiveCount(rec)
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(counts[b], counts[a]) })
	return order
}

// safeProcess runs process and turns a panic into a *panicError.
func safeProcess(ctx context.Context, rec events.SQSMessage, process func(context.Context, events.SQSMessage) error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &panicError{panics.Recovered(v)}
		}
	}()
	return process(ctx, rec)
}

func logFailure(ctx context.Context, log *slog.Logger, rec events.SQSMessage, err error) {
	if pe, ok := err.(*panicError); ok {
		log.ErrorContext(ctx, "sqsbatch: record processing panicked",
			"message_id", rec.MessageId, "panic_type", pe.Type, "panic_location", pe.Location, "stack", pe.Stack)
		return
	}
	log.WarnContext(ctx, "sqsbatch: record failed; SQS will redeliver it",
		"message_id", rec.MessageId, "receive_count", ReceiveCount(rec), "error", err.Error())
}
