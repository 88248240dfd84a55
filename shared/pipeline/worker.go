package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/metrics"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/sqsbatch"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/tracing"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

// Requeuer pushes a record's visibility out so SQS redelivers it later.
type Requeuer interface {
	Delay(ctx context.Context, rec events.SQSMessage, d time.Duration) error
}

// WorkerConfig configures a partner function.
type WorkerConfig struct {
	Common
	// Partner is the partner this function verifies for.
	Partner finding.Partner
	// Verifier asks the partner (wrapped with the rate limiter and cache).
	Verifier verify.Verifier
	// Requeue delays records that failed transiently.
	Requeue Requeuer
	// MaxAttempts is the receive count at which a transient failure ends
	// in a terminal unknown result instead of another retry.
	MaxAttempts int
	// Backoff gives the visibility delay of a retry from the receive count
	// and the partner's Retry-After.
	Backoff func(receiveCount int, retryAfter time.Duration) time.Duration
	// ProjectCap, when set, hands a project's records back to SQS while
	// the project is over its per-project cap for this partner.
	ProjectCap ProjectCap
}

// NetworkRetries is the partnerhttp.Options.NetworkRetries of the partner
// functions' clients: a request that got no response is sent once more
// within the invocation, while its deadline allows.
const NetworkRetries = 1

// Worker is the handler of a partner function.
type Worker struct {
	cfg WorkerConfig
	// completed is this handler's record of completed message ids.
	completed *sqsbatch.Completed
	// idle flushes the results' shared sends.
	idle func()
}

// NewWorker returns a partner-function handler.
func NewWorker(cfg WorkerConfig) (*Worker, error) {
	cfg.defaults()
	switch {
	case cfg.Partner == "":
		return nil, errors.New("pipeline: worker: no partner")
	case cfg.Verifier == nil || cfg.Results == nil || cfg.Gate == nil:
		return nil, errors.New("pipeline: worker: verifier, results and gate are required")
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = sqsbatch.DefaultMaxAttempts
	}
	if cfg.Backoff == nil {
		cfg.Backoff = sqsbatch.Backoff
	}
	return &Worker{cfg: cfg, completed: sqsbatch.NewCompleted(sqsbatch.DefaultCompletedSize), idle: flushAll([]Sink{cfg.Results})}, nil
}

// Handle is the Lambda handler: one invocation of a batch of partner-queue records.
func (w *Worker) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	rec := metrics.New()
	ctx = metrics.NewContext(ctx, rec)
	defer w.cfg.flush(ctx, rec)
	return sqsbatch.Run(ctx, ev, w.cfg.runOptions(w.completed, w.idle), w.processRecord), nil
}

// retryError is a record handed back to SQS because a partner fault left a
// finding without a verdict; it carries the fault for the log line.
type retryError struct{ fault *verify.Fault }

func (e *retryError) Error() string { return "retry later: " + e.fault.Error() }

// resultReserve is the time a record keeps, after its partner calls, to
// write its results or postpone its retry: a partner slower than the
// invocation's deadline must not leave the last attempt without the time
// to write the terminal result, or the message would reach the DLQ
// without one.
const resultReserve = time.Second

func (w *Worker) processRecord(ctx context.Context, rec events.SQSMessage) error {
	b, err := finding.Parse([]byte(rec.Body))
	if err != nil {
		return w.cfg.deadLetter(ctx, rec, err)
	}
	attempt := sqsbatch.ReceiveCount(rec)
	final := attempt >= w.cfg.MaxAttempts
	checks := make([]checked, len(b.Findings))
	for i, f := range b.Findings {
		c := &checks[i]
		c.rt, c.result, c.done = precheck(b, f, w.cfg.Now())
	}
	if err := w.holdForProject(ctx, rec, b, checks, attempt); err != nil {
		return err
	}
	callCtx := ctx
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		callCtx, cancel = context.WithDeadline(ctx, dl.Add(-resultReserve))
		defer cancel()
	}
	outs := make([]outcome, 0, len(b.Findings))
	var retry *verify.Fault
	for i, f := range b.Findings {
		out, fault, err := w.one(callCtx, b, f, checks[i], final)
		if err != nil {
			return err
		}
		if fault != nil {
			retry = worse(retry, fault)
			continue
		}
		outs = append(outs, out)
	}
	if retry != nil {
		// Results of this record are held back until every finding in it is
		// conclusive, so a retried record never yields a second result.
		d := w.cfg.Backoff(attempt, retry.RetryAfter)
		if w.cfg.Requeue != nil {
			if err := w.cfg.Requeue.Delay(ctx, rec, d); err != nil {
				w.cfg.Logger.WarnContext(ctx, "could not delay retry", "message_id", rec.MessageId, "error", err.Error())
			}
		}
		w.cfg.Logger.InfoContext(ctx, "finding retry", "scan_id", b.ScanID, "message_id", rec.MessageId,
			"partner", string(w.cfg.Partner), "attempt", attempt, "max_attempts", w.cfg.MaxAttempts,
			"retry_in_s", int(d.Seconds()), "fault", retry.Error())
		return &retryError{retry}
	}
	if err := w.cfg.emit(ctx, attempt, outs); err != nil {
		return err
	}
	return w.cfg.deadLetterRejected(ctx, rec, b)
}

// checked is a finding's precheck: its route, or its terminal result
// when it is concluded before any call.
type checked struct {
	rt     finding.Route
	result finding.Result
	done   bool
}

// one decides one finding, given its precheck: a terminal outcome, or a
// fault to retry on.
func (w *Worker) one(ctx context.Context, b finding.Batch, f finding.Finding, c checked, final bool) (outcome, *verify.Fault, error) {
	start := time.Now()
	if c.done {
		return outcome{result: c.result}, nil, nil
	}
	rt := c.rt
	if rt.Partner != w.cfg.Partner {
		r := newResult(b, f, rt, finding.ReasonUnsupportedTokenType, w.cfg.Now())
		r.Message = fmt.Sprintf("the %s function does not verify %s tokens (partner %s)", w.cfg.Partner, rt.TokenType, rt.Partner)
		return outcome{result: r}, nil, nil
	}
	if r, off, err := w.cfg.gated(ctx, b, f, rt); err != nil || off {
		return outcome{result: r}, nil, err
	}
	var verdict verify.Verdict
	var fault *verify.Fault
	_ = tracing.PartnerCall(ctx, string(rt.Partner), string(rt.TokenType), func(ctx context.Context) (tracing.Call, error) {
		ctx, info := partnerhttp.WithCallInfo(ctx)
		v, err := w.cfg.Verifier.Verify(ctx, rt.TokenType, f)
		if err != nil {
			var ok bool
			if fault, ok = verify.AsFault(err); !ok {
				// Not a classified fault (a bug, a cancelled context): still
				// never an answer about the token.
				fault = &verify.Fault{Kind: verify.PartnerError, Partner: rt.Partner, Op: "verify", Msg: "unclassified error"}
			}
			return tracing.Call{Status: string(finding.StatusUnknown), Reason: string(fault.Kind.Reason()), HTTPStatus: info.LastStatus()}, fault
		}
		verdict = v
		return tracing.Call{Status: string(v.Status()), Reason: string(v.Reason), HTTPStatus: info.LastStatus()}, nil
	})
	if fault != nil {
		if !final {
			return outcome{}, fault, nil
		}
		r := newResult(b, f, rt, fault.Kind.Reason(), w.cfg.Now())
		r.Message = "retries spent: " + fault.Error()
		return outcome{result: r, latency: time.Since(start)}, nil, nil
	}
	r := newResult(b, f, rt, verdict.Reason, w.cfg.Now())
	r.Details, r.Message, r.Cached = withVerdict(r.Details, verdict.Details), verdict.Message, verdict.Cached
	return outcome{result: r, latency: time.Since(start)}, nil, nil
}

// worse keeps the fault that should decide the retry: rate limiting (whose
// Retry-After must be honoured) over other errors, then the longer wait.
func worse(a, b *verify.Fault) *verify.Fault {
	switch {
	case a == nil:
		return b
	case a.Kind != b.Kind:
		if b.Kind == verify.RateLimited {
			return b
		}
		return a
	case b.RetryAfter > a.RetryAfter:
		return b
	}
	return a
}
