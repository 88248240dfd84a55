// Package sqsbatch is the SQS plumbing every function shares: it runs the
// records of an SQS event concurrently and reports partial batch failures,
// sends messages in batches retrying only what failed, postpones records
// that failed transiently, and moves unparseable bodies to a dead-letter
// queue (contract §2, §3, §6; issue 4).
package sqsbatch

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	lru "github.com/hashicorp/golang-lru/v2"
)

// Defaults of Options.
const (
	DefaultConcurrency    = 10
	DefaultDeadlineMargin = 2 * time.Second
	DefaultCancelMargin   = 500 * time.Millisecond
	// DefaultCompletedSize bounds the per-instance record of completed
	// message ids: a few thousand ids cost well under a megabyte.
	DefaultCompletedSize = 4096
)

// Options tunes Run. The zero value uses the defaults.
type Options struct {
	// Concurrency bounds the records processed at once (default 10).
	Concurrency int
	// DeadlineMargin: a record is not started when less than this is left
	// before the invocation's deadline; it is reported as failed so that SQS
	// redelivers it (default 2s).
	DeadlineMargin time.Duration
	// CancelMargin: the context given to process ends this long before the
	// invocation's deadline, leaving time to report (default 500ms; kept
	// below DeadlineMargin).
	CancelMargin time.Duration
	// Completed is the record of completed message ids used to skip
	// redeliveries; nil means the instance-wide DefaultCompleted.
	Completed *Completed
	// AllowDuplicates turns the skipping of completed message ids off.
	AllowDuplicates bool
	// OnDuplicate, when set, is called for each record skipped because its
	// message id already completed in this instance (for a metric or log).
	OnDuplicate func(ctx context.Context, rec events.SQSMessage)
	// Logger receives the package's log lines; nil means slog.Default().
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.DeadlineMargin <= 0 {
		o.DeadlineMargin = DefaultDeadlineMargin
	}
	if o.CancelMargin <= 0 {
		o.CancelMargin = DefaultCancelMargin
	}
	if o.CancelMargin >= o.DeadlineMargin {
		// Otherwise a record started just inside the margin would get an
		// already expired context.
		o.CancelMargin = o.DeadlineMargin / 4
	}
	if o.Completed == nil {
		o.Completed = DefaultCompleted
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Completed remembers the message ids that were processed successfully in
// this instance, bounded by least-recent use. SQS delivers at least once:
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

// DefaultCompleted is the instance-wide record Run uses unless told otherwise.
var DefaultCompleted = NewCompleted(DefaultCompletedSize)

// Add records that a message id completed. Callers that finish a message
// outside Run use it so that Run skips its redelivery.
func (c *Completed) Add(messageID string) {
	if messageID != "" {
		c.cache.Add(messageID, struct{}{})
	}
}

// Contains reports whether a message id completed in this instance.
func (c *Completed) Contains(messageID string) bool {
	return messageID != "" && c.cache.Contains(messageID)
}

// Remove forgets a message id, so that its next delivery is processed again.
func (c *Completed) Remove(messageID string) { c.cache.Remove(messageID) }

// Len is how many ids are remembered.
func (c *Completed) Len() int { return c.cache.Len() }

// PanicError is how a panic in process is reported: the panic value is not
// kept, since it could carry data; only its type and where it happened.
type PanicError struct {
	// Type is the Go type of the panic value.
	Type string
	// Location is the function and file:line that panicked.
	Location string
	// Stack is the goroutine's frames (function and file:line, no arguments).
	Stack []string
}

// Error names the panic's type and location, not its value.
func (e *PanicError) Error() string {
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
// that SQS redelivers exactly those. A record whose message id already
// completed in this instance is skipped as a success.
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
		workCtx, cancel = context.WithDeadline(ctx, deadline.Add(-o.CancelMargin))
		defer cancel()
	}

	var wg sync.WaitGroup
	sem := make(chan struct{}, o.Concurrency)
	stopped := false
	for i, rec := range recs {
		alias[i] = i
		if j, ok := first[rec.MessageId]; ok && rec.MessageId != "" {
			alias[i] = j
			continue
		}
		first[rec.MessageId] = i
		if !o.AllowDuplicates && o.Completed.Contains(rec.MessageId) {
			state[i] = skipped
			o.Logger.InfoContext(ctx, "sqsbatch: skipped a message that already completed in this instance", "message_id", rec.MessageId)
			if o.OnDuplicate != nil {
				o.OnDuplicate(ctx, rec)
			}
			continue
		}
		if !stopped {
			acquired := false
			select {
			case sem <- struct{}{}:
				acquired = true
			case <-ctx.Done():
			}
			// The time check comes after the wait for a slot: that wait
			// can take most of what was left.
			if ctx.Err() != nil || (hasDeadline && time.Until(deadline) < o.DeadlineMargin) {
				stopped = true
				if acquired {
					<-sem
				}
			}
		}
		if stopped {
			state[i] = unstarted
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			err := safeProcess(workCtx, rec, process)
			if err != nil {
				state[i] = failed
				logFailure(ctx, o.Logger, rec, err)
				return
			}
			state[i] = succeeded
			if !o.AllowDuplicates {
				o.Completed.Add(rec.MessageId)
			}
		}()
	}
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

// safeProcess runs process and turns a panic into a *PanicError.
func safeProcess(ctx context.Context, rec events.SQSMessage, process func(context.Context, events.SQSMessage) error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = newPanicError(v)
		}
	}()
	return process(ctx, rec)
}

// newPanicError describes a recovered panic from inside the deferred
// function that recovered it.
func newPanicError(v any) *PanicError {
	pcs := make([]uintptr, 32)
	// Skip runtime.Callers, newPanicError and the deferred function.
	n := runtime.Callers(3, pcs)
	frames := runtime.CallersFrames(pcs[:n])
	e := &PanicError{Type: fmt.Sprintf("%T", v), Location: "unknown"}
	afterPanic := false
	for {
		f, more := frames.Next()
		if f.Function != "" {
			e.Stack = append(e.Stack, fmt.Sprintf("%s (%s:%d)", f.Function, f.File, f.Line))
			// The frames begin in the runtime's panic machinery; the first
			// frame outside it is where the panic happened.
			if f.Function == "runtime.gopanic" {
				afterPanic = true
			} else if afterPanic && e.Location == "unknown" && !strings.HasPrefix(f.Function, "runtime.") {
				e.Location = fmt.Sprintf("%s (%s:%d)", f.Function, f.File, f.Line)
			}
		}
		if !more {
			break
		}
	}
	return e
}

func logFailure(ctx context.Context, log *slog.Logger, rec events.SQSMessage, err error) {
	if pe, ok := err.(*PanicError); ok {
		log.ErrorContext(ctx, "sqsbatch: record processing panicked",
			"message_id", rec.MessageId, "panic_type", pe.Type, "panic_location", pe.Location, "stack", pe.Stack)
		return
	}
	log.WarnContext(ctx, "sqsbatch: record failed; SQS will redeliver it",
		"message_id", rec.MessageId, "receive_count", ReceiveCount(rec), "error", err.Error())
}
