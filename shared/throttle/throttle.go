// Package throttle keeps one function instance under a partner's request
// rate: a token bucket (golang.org/x/time/rate) in front of a
// verify.Verifier that never sleeps away Lambda time and backs off when the
// partner answers 429.
//
// # Global rate
//
// The limit is per instance. SQS invokes at most MaximumConcurrency instances
// of a partner function at once (the event source mapping's
// ScalingConfig.MaximumConcurrency), so the rate the partner sees is at most
//
//	global rate = MaximumConcurrency × per-instance rate
//
// and both must be set together, per partner, to stay under the partner's
// published limit.
//
// # Rates
//
// Each partner's default rate, burst and global limit, with where the
// figure comes from, are its partner.Definition.Rate; the partner function
// takes them unless PARTNER_RATE_PER_SECOND / PARTNER_RATE_BURST say
// otherwise, and template.yaml sets those per partner and environment
// (docs/template.md, "The global partner rate").
//
// # Reaction to the partner and to the invocation deadline
//
// A call waits for its token up to MaxWait (the steady pace of a batch). A
// call that would have to wait longer, or past its context's deadline,
// does not wait: it returns a *verify.Fault of kind
// RateLimited whose RetryAfter says when a token will be free, and counts a
// local rate-limit hit. The caller hands the record back to SQS with its
// visibility pushed out by that much, so no invocation time is slept away.
//
// When the partner itself answers 429 (a RateLimited fault carrying an HTTP
// status), the limiter pauses for the partner's Retry-After (DefaultPenalty
// when it gave none): every call until then is held back with RetryAfter set
// to the rest of the pause. It also halves its rate (never below 1/8 of the
// configured rate) and doubles it back for every CoolDown that passes without
// another 429, counted from the end of the pause. 429s that arrive during a
// pause answer requests sent before it and do not halve the rate again.
//
// Wrap the throttle inside the verdict cache (verdictcache), so that cache
// hits and shared in-flight calls cost no tokens.
package throttle

import (
	"context"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/metrics"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

// Defaults of Options.
const (
	// DefaultMaxWait is how long a call may wait for a token inside an
	// invocation; longer waits go back to SQS instead. It is long enough
	// for a batch of 10 to pass at Postman's per-instance 1.5 req/s within
	// one invocation: every hand-back costs the record one of its
	// MAX_ATTEMPTS, so a steady backlog handed back at each turn would end
	// in rate_limited results that no partner 429 caused. Waiting out a
	// partner's Retry-After is never done here (see the pause below).
	DefaultMaxWait = 5 * time.Second
	// DefaultPenalty is the pause after a 429 that carried no Retry-After.
	DefaultPenalty = time.Second
	// DefaultCoolDown is how long without a 429 it takes to double a slowed rate.
	DefaultCoolDown = 30 * time.Second
)

// slowestDivisor bounds how far repeated 429s slow the limiter down: a rate
// that keeps halving would starve the queue long after the partner recovered.
const slowestDivisor = 8

// heldBackOp and heldBackMsg name faults made by this package, not by a partner.
const (
	heldBackOp  = "local rate limiter"
	heldBackMsg = "held back by the local rate limiter"
)

// Options configures a throttle; zero fields take the defaults.
type Options struct {
	// RatePerSecond is the steady request rate; 0 means 1 per second.
	RatePerSecond float64
	// Burst is how many requests may go at once after a quiet spell; 0 means 1.
	Burst int
	// MaxWait bounds the wait for a token inside one call; 0 means
	// DefaultMaxWait, a negative value never waits.
	MaxWait time.Duration
	// Penalty is the pause after a 429 without Retry-After; 0 means DefaultPenalty.
	Penalty time.Duration
	// CoolDown is the quiet time that doubles a slowed rate; 0 means DefaultCoolDown.
	CoolDown time.Duration
	// Clock returns the current time; nil means time.Now. Tests inject one.
	Clock func() time.Time
}

// Verifier is a verify.Verifier that admits calls to its inner verifier at
// most at the configured rate. It is safe for concurrent use; build one per
// partner per instance.
type Verifier struct {
	inner    verify.Verifier
	partner  finding.Partner
	base     rate.Limit
	slowest  rate.Limit
	maxWait  time.Duration
	penalty  time.Duration
	coolDown time.Duration
	now      func() time.Time
	lim      *rate.Limiter
	// sleep waits d unless ctx ends first; tests replace it to move a fake clock.
	sleep func(ctx context.Context, d time.Duration) error

	mu          sync.Mutex
	current     rate.Limit
	pausedUntil time.Time
	// lastStep is when the current rate was last changed or last confirmed
	// by a cool-down; the next doubling is due one CoolDown after it.
	lastStep time.Time
}

var _ verify.Verifier = (*Verifier)(nil)

// New wraps inner in a rate limiter for partner.
func New(inner verify.Verifier, partner finding.Partner, o Options) *Verifier {
	if o.RatePerSecond <= 0 || math.IsNaN(o.RatePerSecond) || math.IsInf(o.RatePerSecond, 0) {
		o.RatePerSecond = 1
	}
	if o.Burst <= 0 {
		o.Burst = 1
	}
	switch {
	case o.MaxWait == 0:
		o.MaxWait = DefaultMaxWait
	case o.MaxWait < 0:
		o.MaxWait = 0
	}
	if o.Penalty <= 0 {
		o.Penalty = DefaultPenalty
	}
	if o.CoolDown <= 0 {
		o.CoolDown = DefaultCoolDown
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	base := rate.Limit(o.RatePerSecond)
	v := &Verifier{
		inner:    inner,
		partner:  partner,
		base:     base,
		slowest:  base / slowestDivisor,
		maxWait:  o.MaxWait,
		penalty:  o.Penalty,
		coolDown: o.CoolDown,
		now:      o.Clock,
		sleep:    sleepContext,
		current:  base,
	}
	v.lim = rate.NewLimiter(base, o.Burst)
	// Anchor the limiter's accounting at the injected clock rather than at
	// the zero time, so that tests and production read the same clock.
	v.lim.SetLimitAt(v.now(), base)
	return v
}

// Verify waits at most MaxWait (and never past ctx's deadline) for a token,
// then asks the inner verifier; otherwise it returns a RateLimited fault
// whose RetryAfter says when to try again.
func (v *Verifier) Verify(ctx context.Context, tokenType finding.TokenType, f finding.Finding) (verify.Verdict, error) {
	if err := v.acquire(ctx); err != nil {
		return verify.Verdict{}, err
	}
	verdict, err := v.inner.Verify(ctx, tokenType, f)
	if fault, ok := verify.AsFault(err); ok && fault.Kind == verify.RateLimited && fault.HTTPStatus != 0 {
		v.penalize(v.now(), fault.RetryAfter)
	}
	return verdict, err
}

// acquire takes one token, waiting for it only when that is short and
// ends before ctx's deadline.
func (v *Verifier) acquire(ctx context.Context) error {
	v.mu.Lock()
	// Read the clock under the lock so reservations reach the limiter in time order.
	now := v.now()
	v.recover(now)
	if now.Before(v.pausedUntil) {
		rest := v.pausedUntil.Sub(now)
		v.mu.Unlock()
		return v.heldBack(ctx, rest)
	}
	r := v.lim.ReserveN(now, 1)
	v.mu.Unlock()
	if !r.OK() {
		return v.heldBack(ctx, v.penalty)
	}
	delay := r.DelayFrom(now)
	if delay <= 0 {
		return nil
	}
	deadline, hasDeadline := ctx.Deadline()
	if delay > v.maxWait || (hasDeadline && !now.Add(delay).Before(deadline)) {
		r.CancelAt(now)
		return v.heldBack(ctx, delay)
	}
	if err := v.sleep(ctx, delay); err != nil {
		r.CancelAt(v.now())
		return v.heldBack(ctx, delay)
	}
	return nil
}

// heldBack counts a local rate-limit hit and returns the fault that sends
// the record back to SQS for at least retryAfter.
func (v *Verifier) heldBack(ctx context.Context, retryAfter time.Duration) error {
	metrics.FromContext(ctx).LimitedLocally(string(v.partner))
	return &verify.Fault{
		Kind:       verify.RateLimited,
		Partner:    v.partner,
		Op:         heldBackOp,
		RetryAfter: retryAfter,
		Msg:        heldBackMsg,
	}
}

// penalize reacts to a partner 429 seen at now: no tokens before the
// partner's Retry-After has passed, and a slower rate for a while.
func (v *Verifier) penalize(now time.Time, retryAfter time.Duration) {
	if retryAfter <= 0 {
		retryAfter = v.penalty
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.recover(now)
	newEpisode := !now.Before(v.pausedUntil)
	if until := now.Add(retryAfter); until.After(v.pausedUntil) {
		v.pausedUntil = until
	}
	if newEpisode {
		v.current = max(v.current/2, v.slowest)
		v.lim.SetLimitAt(now, v.current)
	}
	// The cool-down starts when requests may flow again.
	v.lastStep = v.pausedUntil
	// Empty the bucket so that the end of a short pause is not met by a full burst.
	if n := int(v.lim.TokensAt(now)); n > 0 {
		v.lim.ReserveN(now, n)
	}
}

// recover doubles a slowed rate for every CoolDown since the last step.
// Callers hold v.mu.
func (v *Verifier) recover(now time.Time) {
	changed := false
	for v.current < v.base && now.Sub(v.lastStep) >= v.coolDown {
		v.current = min(v.current*2, v.base)
		v.lastStep = v.lastStep.Add(v.coolDown)
		changed = true
	}
	if changed {
		v.lim.SetLimitAt(now, v.current)
	}
}

// sleepContext waits d, or returns ctx's error if it ends first.
func sleepContext(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
