// Package pipeline is what the dispatcher and partner functions do with a batch of SQS
// records: the dispatcher (validate, gate, route, fan out) and the partner
// worker (gate, verify, retry or conclude). Both write exactly one terminal
// result per accepted finding to the results queue, one structured log line
// per outcome and one EMF record set per invocation. The SQS mechanics
// (concurrency, partial failures, deadlines, batched sends) live in sqsbatch.
package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/metrics"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/registry"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/sqsbatch"
)

// Gate says whether the feature flag lets a project's finding reach a
// partner; an error means the flag could not be read at all, and the record
// is retried rather than decided wrongly.
type Gate func(ctx context.Context, project finding.Project, partner finding.Partner) (bool, error)

// Sink sends message bodies to one queue in batches (sqsbatch.Sender).
type Sink interface {
	Send(ctx context.Context, bodies [][]byte) error
}

// DeadLetterer moves a record whose body cannot be parsed to the source
// queue's dead-letter queue at once; it returns an error when it could not,
// and the record then reaches the DLQ through the redrive policy.
type DeadLetterer interface {
	DeadLetter(ctx context.Context, rec events.SQSMessage, reason error) error
}

// Common is the configuration both kinds of function share.
type Common struct {
	// Results is the results queue.
	Results Sink
	// Gate is the feature flag.
	Gate Gate
	// DeadLetter handles unparseable bodies (nil: batch item failure).
	DeadLetter DeadLetterer
	// Logger writes one JSON line per finding outcome.
	Logger *slog.Logger
	// MetricsOut receives the EMF records (stdout in Lambda).
	MetricsOut io.Writer
	// Now is the clock (tests inject one).
	Now func() time.Time
	// Concurrency bounds records processed at once in an invocation.
	Concurrency int
	// DeadlineMargin is the time kept free before the Lambda deadline.
	DeadlineMargin time.Duration
}

func (c *Common) defaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.MetricsOut == nil {
		c.MetricsOut = io.Discard
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 10
	}
}

// runOptions are the sqsbatch options of one invocation of a handler that
// owns the record of completed message ids given: handlers never share one,
// so a message one of them completed is still processed by another. idle
// is the handler's flushAll of its sinks.
func (c *Common) runOptions(completed *sqsbatch.Completed, idle func()) sqsbatch.Options {
	return sqsbatch.Options{Concurrency: c.Concurrency, DeadlineMargin: c.DeadlineMargin, Completed: completed,
		Logger: c.Logger, Idle: idle}
}

// flushAll returns what flushes every sqsbatch.Coalescer among sinks at
// once (sqsbatch.FlushAll); nil when none is one. A handler builds it once:
// when every record in progress waits for a shared send (sqsbatch.Options.Idle),
// it sends them.
func flushAll(sinks []Sink) func() {
	var cs []*sqsbatch.Coalescer
	for _, s := range sinks {
		if c, ok := s.(*sqsbatch.Coalescer); ok {
			cs = append(cs, c)
		}
	}
	if len(cs) == 0 {
		return nil
	}
	return func() { sqsbatch.FlushAll(cs...) }
}

// recordError marks a record left for SQS to redeliver or redrive.
type recordError struct {
	op  string
	err error
}

func (e *recordError) Error() string { return e.op + ": " + e.err.Error() }
func (e *recordError) Unwrap() error { return e.err }

// deadLetter handles a body that finding.Parse rejected. The reason names
// the field at fault and never quotes the body.
func (c *Common) deadLetter(ctx context.Context, rec events.SQSMessage, perr error) error {
	if c.DeadLetter == nil {
		c.Logger.WarnContext(ctx, "unparseable message left to the redrive policy", "message_id", rec.MessageId, "reason", perr.Error())
		return &recordError{"dead-letter", perr}
	}
	if err := c.DeadLetter.DeadLetter(ctx, rec, perr); err != nil {
		return &recordError{"dead-letter", err}
	}
	return nil
}

// deadLetterRejected moves a message some of whose findings could not be
// identified to the dead-letter queue, body unchanged, with the rejected
// findings' indexes. Call it once the accepted findings are done (forwarded
// or concluded), so that nothing valid waits for a redrive and nothing
// rejected is lost.
func (c *Common) deadLetterRejected(ctx context.Context, rec events.SQSMessage, b finding.Batch) error {
	re := b.Rejection()
	if re == nil {
		return nil
	}
	reason := sqsbatch.WithAttributes(re, map[string]string{sqsbatch.RejectedFindingsAttribute: re.Indexes()})
	return c.deadLetter(ctx, rec, reason)
}

// outcome is a terminal result with what its log line needs besides it.
type outcome struct {
	result  finding.Result
	latency time.Duration
}

// emit sends the terminal results of one record, then logs and counts them.
// Nothing is logged or counted before the send succeeds, so a record that
// is retried is not counted twice.
func (c *Common) emit(ctx context.Context, attempt int, outs []outcome) error {
	if len(outs) == 0 {
		return nil
	}
	bodies := make([][]byte, len(outs))
	for i, o := range outs {
		b, err := json.Marshal(o.result)
		if err != nil {
			return &recordError{"encode result", err}
		}
		bodies[i] = b
	}
	if err := c.Results.Send(ctx, bodies); err != nil {
		return &recordError{"send results", err}
	}
	rec := metrics.FromContext(ctx)
	for _, o := range outs {
		r := o.result
		rec.Verification(string(r.Partner), r.Status)
		attrs := []any{
			"scan_id", r.ScanID, "project_id", r.ProjectID, "finding_id", r.FindingID,
			"partner", string(r.Partner), "token_type", string(r.TokenType),
			"status", string(r.Status), "reason", string(r.Reason), "cached", r.Cached,
			"latency_ms", o.latency.Milliseconds(), "attempt", attempt,
		}
		if r.Message != "" {
			attrs = append(attrs, "detail", r.Message)
		}
		c.Logger.InfoContext(ctx, "finding outcome", attrs...)
	}
	return nil
}

// flush writes the invocation's metrics; a write failure is logged, never
// fatal, because the results are already out.
func (c *Common) flush(ctx context.Context, rec *metrics.Recorder) {
	if err := rec.Flush(c.MetricsOut, c.Now()); err != nil {
		c.Logger.ErrorContext(ctx, "metrics flush failed", "error", err.Error())
	}
}

// precheck routes a finding and returns its terminal result when it must
// not reach a partner (schema, format, routing); done is false when it may.
func precheck(b finding.Batch, f finding.Finding, now time.Time) (rt finding.Route, r finding.Result, done bool) {
	rt, reason, msg := registry.Check(f)
	if reason == "" {
		return rt, finding.Result{}, false
	}
	r = newResult(b, f, rt, reason, now)
	r.Message = msg
	return rt, r, true
}

// newResult is finding.NewResult with the details the finding's partner
// knows without a call (registry.Known). Every result goes through here,
// in the dispatcher and the worker alike, so that such details reach each
// result of the finding: malformed, disabled, canary, faulted or
// verified.
func newResult(b finding.Batch, f finding.Finding, rt finding.Route, reason finding.Reason, now time.Time) finding.Result {
	r := finding.NewResult(b, f, rt, reason, now)
	r.Details = registry.Known(rt, f)
	return r
}

// withVerdict adds a verdict's details to the known ones; the partner's
// answer wins a key both hold, since it is what the partner says now.
func withVerdict(known, verdict finding.Details) finding.Details {
	if len(known) == 0 {
		return verdict
	}
	out := maps.Clone(known)
	maps.Copy(out, verdict)
	return out
}

// gated returns the feature_disabled result when the flag is off for the
// finding's project or partner.
func (c *Common) gated(ctx context.Context, b finding.Batch, f finding.Finding, rt finding.Route) (finding.Result, bool, error) {
	p := rt.Partner
	on, err := c.Gate(ctx, b.Project, p)
	if err != nil {
		return finding.Result{}, false, &recordError{"feature flag", err}
	}
	if on {
		return finding.Result{}, false, nil
	}
	r := newResult(b, f, rt, finding.ReasonFeatureDisabled, c.Now())
	r.Message = fmt.Sprintf("feature flag is off for this project or for partner %s", p)
	return r, true, nil
}
