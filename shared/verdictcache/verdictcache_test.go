package verdictcache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

// fakeClock moves only when the test says so.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fakeInner answers with answer (partner_confirmed by default), counts its
// calls, reports each start on started, and, when gate is set, holds every
// call until gate is closed or the call's context ends.
type fakeInner struct {
	calls   atomic.Int64
	started chan finding.Finding
	gate    chan struct{}
	mu      sync.Mutex
	answer  func(ctx context.Context, f finding.Finding) (verify.Verdict, error)
	// ctxErrs records the context error each call saw when it returned.
	ctxErrs []error
}

func newInner() *fakeInner { return &fakeInner{started: make(chan finding.Finding, 100)} }

func (fi *fakeInner) Verify(ctx context.Context, _ finding.TokenType, f finding.Finding) (verify.Verdict, error) {
	fi.calls.Add(1)
	fi.mu.Lock()
	answer, gate := fi.answer, fi.gate
	fi.mu.Unlock()
	// Reported after reading gate: a test that changes gate once it sees
	// this start does not change this call. Never blocks, so that a
	// regression making far more calls than expected fails instead of hanging.
	select {
	case fi.started <- f:
	default:
	}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
		}
	}
	var v verify.Verdict
	var err error
	if answer == nil {
		v = verify.Verdict{Reason: finding.ReasonPartnerConfirmed}
	} else {
		v, err = answer(ctx, f)
	}
	fi.mu.Lock()
	fi.ctxErrs = append(fi.ctxErrs, ctx.Err())
	fi.mu.Unlock()
	return v, err
}

func (fi *fakeInner) set(answer func(ctx context.Context, f finding.Finding) (verify.Verdict, error), gate chan struct{}) {
	fi.mu.Lock()
	defer fi.mu.Unlock()
	fi.answer, fi.gate = answer, gate
}

func reason(r finding.Reason) func(context.Context, finding.Finding) (verify.Verdict, error) {
	return func(context.Context, finding.Finding) (verify.Verdict, error) { return verify.Verdict{Reason: r}, nil }
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// newFinding is an AWS finding with a generated key id and secret key.
func newFinding(t testing.TB) finding.Finding {
	t.Helper()
	return finding.Finding{
		ID: "f-1", RuleID: "AWS",
		Token:   finding.Secret("AKIA" + strings.ToUpper(randomHex(t, 8))),
		Context: map[string]finding.Secret{"aws_secret_access_key": finding.Secret(randomHex(t, 20))},
	}
}

func newCache(inner verify.Verifier, o Options) (*Verifier, *fakeClock) {
	clock := &fakeClock{t: time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC)}
	o.Clock = clock.Now
	return New(inner, finding.PartnerAWS, o), clock
}

// joinCounter returns a hook for afterJoin and a function that blocks until
// n callers have joined flights.
func joinCounter() (func(), func(n int)) {
	var mu sync.Mutex
	cond := sync.NewCond(&mu)
	joined := 0
	hook := func() {
		mu.Lock()
		joined++
		mu.Unlock()
		cond.Broadcast()
	}
	wait := func(n int) {
		mu.Lock()
		defer mu.Unlock()
		for joined < n {
			cond.Wait()
		}
	}
	return hook, wait
}

type result struct {
	v   verify.Verdict
	err error
}

// goVerify runs Verify in its own goroutine and delivers the outcome.
func goVerify(v *Verifier, ctx context.Context, f finding.Finding) <-chan result {
	ch := make(chan result, 1)
	go func() {
		verdict, err := v.Verify(ctx, finding.TokenAWSAccessKey, f)
		ch <- result{verdict, err}
	}()
	return ch
}

func check(t *testing.T, v *Verifier, ctx context.Context, f finding.Finding) verify.Verdict {
	t.Helper()
	verdict, err := v.Verify(ctx, finding.TokenAWSAccessKey, f)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return verdict
}

func TestTTLPerKindOfVerdict(t *testing.T) {
	cases := []struct {
		name   string
		reason finding.Reason
		opts   Options
		ttl    time.Duration // 0: not cached
	}{
		{"active, default TTL", finding.ReasonPartnerConfirmed, Options{}, DefaultActiveTTL},
		{"inactive, default TTL", finding.ReasonPartnerRejected, Options{}, DefaultInactiveTTL},
		{"active, configured TTL", finding.ReasonPartnerConfirmed, Options{ActiveTTL: time.Minute, InactiveTTL: time.Hour}, time.Minute},
		{"inactive, configured TTL", finding.ReasonPartnerRejected, Options{ActiveTTL: time.Minute, InactiveTTL: 2 * time.Hour}, 2 * time.Hour},
		{"active not cached", finding.ReasonPartnerConfirmed, Options{ActiveTTL: -1}, 0},
		{"inactive not cached", finding.ReasonPartnerRejected, Options{InactiveTTL: -1}, 0},
		{"cache off", finding.ReasonPartnerRejected, Options{Size: -1}, 0},
		{"malformed not cached", finding.ReasonMalformedToken, Options{}, 0},
		{"unsupported not cached", finding.ReasonUnsupportedTokenType, Options{}, 0},
		{"missing context not cached", finding.ReasonMissingContext, Options{}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			inner := newInner()
			inner.set(reason(tc.reason), nil)
			v, clock := newCache(inner, tc.opts)
			f := newFinding(t)
			ctx := context.Background()

			if got := check(t, v, ctx, f); got.Reason != tc.reason || got.Cached {
				t.Fatalf("first verdict = %+v, want %s not cached", got, tc.reason)
			}
			second := check(t, v, ctx, f)
			if tc.ttl == 0 {
				if second.Cached || inner.calls.Load() != 2 {
					t.Fatalf("verdict was cached (cached=%v, calls=%d)", second.Cached, inner.calls.Load())
				}
				return
			}
			if !second.Cached || second.Reason != tc.reason || inner.calls.Load() != 1 {
				t.Fatalf("second verdict = %+v after %d calls, want a cached %s after 1", second, inner.calls.Load(), tc.reason)
			}
			clock.Advance(tc.ttl - time.Nanosecond)
			if got := check(t, v, ctx, f); !got.Cached {
				t.Fatalf("verdict expired before its TTL")
			}
			clock.Advance(time.Nanosecond)
			if got := check(t, v, ctx, f); got.Cached || inner.calls.Load() != 2 {
				t.Fatalf("verdict served after its TTL (cached=%v, calls=%d)", got.Cached, inner.calls.Load())
			}
			if got := check(t, v, ctx, f); !got.Cached || inner.calls.Load() != 2 {
				t.Fatalf("the fresh verdict was not cached again (cached=%v, calls=%d)", got.Cached, inner.calls.Load())
			}
		})
	}
}

func TestKey(t *testing.T) {
	base := newFinding(t)
	withContext := func(ctx map[string]finding.Secret) finding.Finding {
		f := base
		f.Context = ctx
		return f
	}
	secret := base.Context["aws_secret_access_key"]
	cases := []struct {
		name      string
		tokenType finding.TokenType
		f         finding.Finding
		same      bool
	}{
		{"same finding, other id", finding.TokenAWSAccessKey, func() finding.Finding { f := base; f.ID = "f-2"; return f }(), true},
		{"same context, new map", finding.TokenAWSAccessKey, withContext(map[string]finding.Secret{"aws_secret_access_key": secret}), true},
		{"other token", finding.TokenAWSAccessKey, func() finding.Finding { f := base; f.Token = newFinding(t).Token; return f }(), false},
		{"other token type", finding.TokenGCPAPIKey, base, false},
		{"other context value", finding.TokenAWSAccessKey, withContext(map[string]finding.Secret{"aws_secret_access_key": finding.Secret(randomHex(t, 20))}), false},
		{"no context", finding.TokenAWSAccessKey, withContext(nil), false},
		{"extra context value", finding.TokenAWSAccessKey, withContext(map[string]finding.Secret{"aws_secret_access_key": secret, "x": "y"}), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			inner := newInner()
			v, _ := newCache(inner, Options{})
			check(t, v, context.Background(), base)
			got, err := v.Verify(context.Background(), tc.tokenType, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			if got.Cached != tc.same || (inner.calls.Load() == 1) != tc.same {
				t.Errorf("cached=%v after %d calls, want shared key=%v", got.Cached, inner.calls.Load(), tc.same)
			}
		})
	}

	t.Run("context boundaries", func(t *testing.T) {
		v, _ := newCache(newInner(), Options{})
		a := v.keyOf(finding.TokenAWSAccessKey, withContext(map[string]finding.Secret{"ab": "cdef"}))
		b := v.keyOf(finding.TokenAWSAccessKey, withContext(map[string]finding.Secret{"a": "bcdef"}))
		empty := v.keyOf(finding.TokenAWSAccessKey, withContext(map[string]finding.Secret{}))
		none := v.keyOf(finding.TokenAWSAccessKey, withContext(nil))
		if a == b {
			t.Error("contexts differing only in where the name ends share a key")
		}
		named := v.keyOf(finding.TokenAWSAccessKey, withContext(map[string]finding.Secret{"b": "bcdef"}))
		if named == b {
			t.Error("contexts differing only in a name share a key")
		}
		if empty != none {
			t.Error("an empty and an absent context have different keys")
		}
	})

	t.Run("no secret in keys", func(t *testing.T) {
		v, _ := newCache(newInner(), Options{})
		k := v.keyOf(finding.TokenAWSAccessKey, base)
		for _, fk := range []string{k.flightKey(false), k.flightKey(true), k.fingerprint} {
			if strings.Contains(fk, base.Token.Reveal()) || strings.Contains(fk, secret.Reveal()) {
				t.Fatal("a key holds credential material")
			}
		}
	})
}

func TestConcurrentIdenticalCallsShareOne(t *testing.T) {
	cases := []struct {
		name    string
		recheck bool
		answer  func(context.Context, finding.Finding) (verify.Verdict, error)
		wantErr bool
	}{
		{"verdict", false, nil, false},
		{"rechecks", true, nil, false},
		{"fault", false, func(context.Context, finding.Finding) (verify.Verdict, error) {
			return verify.Verdict{}, &verify.Fault{Kind: verify.PartnerError, Partner: finding.PartnerAWS, HTTPStatus: 503}
		}, true},
	}
	const n = 20
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			inner := newInner()
			gate := make(chan struct{})
			inner.set(tc.answer, gate)
			// Caching off: a caller that missed the flight would call again.
			v, _ := newCache(inner, Options{Size: -1})
			hook, waitJoined := joinCounter()
			v.afterJoin = hook
			f := newFinding(t)
			f.Recheck = tc.recheck

			results := make([]<-chan result, n)
			for i := range n {
				results[i] = goVerify(v, context.Background(), f)
			}
			waitJoined(n)
			close(gate)
			for _, ch := range results {
				r := <-ch
				if (r.err != nil) != tc.wantErr {
					t.Fatalf("err = %v, want error %v", r.err, tc.wantErr)
				}
				if !tc.wantErr && (r.v.Reason != finding.ReasonPartnerConfirmed || r.v.Cached) {
					t.Fatalf("verdict = %+v, want partner_confirmed, not cached", r.v)
				}
			}
			if got := inner.calls.Load(); got != 1 {
				t.Fatalf("inner called %d times for %d identical findings, want 1", got, n)
			}
			if s := v.Stats(); s.Calls != 1 || s.Joined != n-1 {
				t.Errorf("stats = %+v, want 1 call and %d joined", s, n-1)
			}
		})
	}
}

func TestManyFindingsOfOneTokenCostOneCall(t *testing.T) {
	inner := newInner()
	v, _ := newCache(inner, Options{})
	f := newFinding(t)
	var wg sync.WaitGroup
	var cached atomic.Int64
	for range 1000 {
		wg.Go(func() {
			verdict, err := v.Verify(context.Background(), finding.TokenAWSAccessKey, f)
			if err != nil {
				t.Error(err)
				return
			}
			if verdict.Cached {
				cached.Add(1)
			}
		})
	}
	wg.Wait()
	s := v.Stats()
	if inner.calls.Load() != 1 || s.Calls != 1 {
		t.Fatalf("inner called %d times, want 1", inner.calls.Load())
	}
	if s.Hits != cached.Load() || s.Hits+s.Joined != 999 {
		t.Errorf("stats = %+v with %d cached results, want hits+joined = 999", s, cached.Load())
	}
}

func TestDifferentFindingsDoNotShare(t *testing.T) {
	inner := newInner()
	gate := make(chan struct{})
	inner.set(nil, gate)
	v, _ := newCache(inner, Options{})
	hook, waitJoined := joinCounter()
	v.afterJoin = hook
	done := make(chan error, 2)
	for range 2 {
		f := newFinding(t)
		go func() { _, err := v.Verify(context.Background(), finding.TokenAWSAccessKey, f); done <- err }()
	}
	waitJoined(2)
	<-inner.started
	<-inner.started // both calls are in the partner at once
	close(gate)
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if got := inner.calls.Load(); got != 2 {
		t.Errorf("inner called %d times, want 2", got)
	}
}

func TestCancelledCallerDoesNotFailOthers(t *testing.T) {
	inner := newInner()
	gate := make(chan struct{})
	inner.set(nil, gate)
	v, _ := newCache(inner, Options{})
	hook, waitJoined := joinCounter()
	v.afterJoin = hook
	f := newFinding(t)

	leaderCtx, cancel := context.WithCancel(context.Background())
	leader := make(chan error, 1)
	go func() { _, err := v.Verify(leaderCtx, finding.TokenAWSAccessKey, f); leader <- err }()
	waitJoined(1)
	<-inner.started
	other := goVerify(v, context.Background(), f)
	waitJoined(2)

	cancel()
	if err := <-leader; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller got %v, want context.Canceled", err)
	}
	close(gate)
	if got := <-other; got.err != nil || got.v.Reason != finding.ReasonPartnerConfirmed {
		t.Fatalf("other caller got %+v, %v", got.v, got.err)
	}
	inner.mu.Lock()
	errs := inner.ctxErrs
	inner.mu.Unlock()
	if len(errs) != 1 || errs[0] != nil {
		t.Fatalf("the shared call saw context errors %v, want none", errs)
	}
	if got := check(t, v, context.Background(), f); !got.Cached || inner.calls.Load() != 1 {
		t.Fatalf("the shared call's verdict was not cached (cached=%v, calls=%d)", got.Cached, inner.calls.Load())
	}
}

func TestJoinerRetriesAfterSharedCallRanOutOfTime(t *testing.T) {
	inner := newInner()
	// The first call waits for its context to end and reports a timeout.
	var n atomic.Int64
	inner.set(func(ctx context.Context, f finding.Finding) (verify.Verdict, error) {
		if n.Add(1) == 1 {
			<-ctx.Done()
			return verify.Verdict{}, &verify.Fault{Kind: verify.PartnerError, Partner: finding.PartnerAWS, Network: true, Msg: "timeout"}
		}
		return verify.Verdict{Reason: finding.ReasonPartnerRejected}, nil
	}, nil)
	v, _ := newCache(inner, Options{})
	hook, waitJoined := joinCounter()
	v.afterJoin = hook
	f := newFinding(t)

	leaderCtx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	leader := make(chan error, 1)
	go func() { _, err := v.Verify(leaderCtx, finding.TokenAWSAccessKey, f); leader <- err }()
	waitJoined(1)
	<-inner.started
	other := goVerify(v, context.Background(), f)
	waitJoined(2)
	if err := <-leader; err == nil {
		t.Fatal("the caller whose deadline passed got no error")
	}
	if got := <-other; got.err != nil || got.v.Reason != finding.ReasonPartnerRejected || got.v.Cached {
		t.Fatalf("joiner got %+v, %v, want a fresh partner_rejected", got.v, got.err)
	}
	if got := inner.calls.Load(); got != 2 {
		t.Errorf("inner called %d times, want 2", got)
	}
}

func TestFaultsAreNotCached(t *testing.T) {
	inner := newInner()
	fault := &verify.Fault{Kind: verify.RateLimited, Partner: finding.PartnerAWS, HTTPStatus: 429, RetryAfter: time.Second}
	inner.set(func(context.Context, finding.Finding) (verify.Verdict, error) { return verify.Verdict{}, fault }, nil)
	v, _ := newCache(inner, Options{})
	f := newFinding(t)
	for i := range 2 {
		if _, err := v.Verify(context.Background(), finding.TokenAWSAccessKey, f); !errors.Is(err, fault) {
			t.Fatalf("call %d: err = %v, want the inner fault", i, err)
		}
	}
	inner.set(nil, nil)
	if got := check(t, v, context.Background(), f); got.Cached {
		t.Fatal("verdict after faults claims to be cached")
	}
	if got := inner.calls.Load(); got != 3 {
		t.Errorf("inner called %d times, want 3", got)
	}
}

func TestRecheckBypassesAndRefreshes(t *testing.T) {
	inner := newInner()
	v, clock := newCache(inner, Options{})
	f := newFinding(t)
	ctx := context.Background()
	check(t, v, ctx, f) // caches active

	recheck := f
	recheck.Recheck = true
	inner.set(reason(finding.ReasonPartnerRejected), nil)
	clock.Advance(time.Minute)
	if got := check(t, v, ctx, recheck); got.Reason != finding.ReasonPartnerRejected || got.Cached {
		t.Fatalf("recheck = %+v, want a fresh partner_rejected", got)
	}
	if got := check(t, v, ctx, f); got.Reason != finding.ReasonPartnerRejected || !got.Cached {
		t.Fatalf("after recheck = %+v, want the refreshed verdict from the cache", got)
	}
	// The refreshed entry lives for the inactive TTL from the recheck.
	clock.Advance(DefaultInactiveTTL - time.Nanosecond)
	if got := check(t, v, ctx, f); !got.Cached {
		t.Fatal("refreshed verdict expired early")
	}

	// A recheck that faults leaves the cached verdict in place.
	inner.set(func(context.Context, finding.Finding) (verify.Verdict, error) {
		return verify.Verdict{}, &verify.Fault{Kind: verify.PartnerError, Partner: finding.PartnerAWS, HTTPStatus: 500}
	}, nil)
	if _, err := v.Verify(ctx, finding.TokenAWSAccessKey, recheck); err == nil {
		t.Fatal("recheck fault was swallowed")
	}
	if got := check(t, v, ctx, f); !got.Cached || got.Reason != finding.ReasonPartnerRejected {
		t.Fatalf("after a failed recheck = %+v, want the cached partner_rejected", got)
	}

	// A recheck whose fresh verdict is not cached still retires the old one.
	inner.set(reason(finding.ReasonUnsupportedTokenType), nil)
	check(t, v, ctx, recheck)
	inner.set(nil, nil)
	if got := check(t, v, ctx, f); got.Cached || got.Reason != finding.ReasonPartnerConfirmed {
		t.Fatalf("after an uncached recheck = %+v, want a fresh call", got)
	}
	if got := inner.calls.Load(); got != 5 {
		t.Errorf("inner called %d times, want 5", got)
	}
}

func TestRecheckDoesNotJoinOrdinaryCall(t *testing.T) {
	inner := newInner()
	gate := make(chan struct{})
	// Ordinary calls wait at the gate and answer active; rechecks answer
	// inactive at once, as a credential revoked meanwhile would.
	inner.set(func(_ context.Context, f finding.Finding) (verify.Verdict, error) {
		if f.Recheck {
			return verify.Verdict{Reason: finding.ReasonPartnerRejected}, nil
		}
		return verify.Verdict{Reason: finding.ReasonPartnerConfirmed}, nil
	}, nil)
	v, clock := newCache(inner, Options{})
	hook, waitJoined := joinCounter()
	v.afterJoin = hook
	f := newFinding(t)
	recheck := f
	recheck.Recheck = true

	inner.mu.Lock()
	inner.gate = gate
	inner.mu.Unlock()
	ordinary := goVerify(v, context.Background(), f)
	waitJoined(1)
	<-inner.started
	inner.mu.Lock()
	inner.gate = nil
	inner.mu.Unlock()

	clock.Advance(time.Second)
	if got := check(t, v, context.Background(), recheck); got.Reason != finding.ReasonPartnerRejected {
		t.Fatalf("recheck = %+v, want its own fresh call", got)
	}
	close(gate)
	if got := <-ordinary; got.err != nil || got.v.Reason != finding.ReasonPartnerConfirmed {
		t.Fatalf("ordinary call = %+v, %v", got.v, got.err)
	}
	// The ordinary call started before the recheck: it must not overwrite it.
	if got := check(t, v, context.Background(), f); got.Reason != finding.ReasonPartnerRejected || !got.Cached {
		t.Fatalf("cached verdict = %+v, want the recheck's partner_rejected", got)
	}
	if got := inner.calls.Load(); got != 2 {
		t.Errorf("inner called %d times, want 2", got)
	}
}

func TestDetailsAreNotShared(t *testing.T) {
	inner := newInner()
	innerDetails := finding.Details{"aws_account_id": "123456789012"}
	inner.set(func(context.Context, finding.Finding) (verify.Verdict, error) {
		return verify.Verdict{Reason: finding.ReasonPartnerConfirmed, Details: innerDetails}, nil
	}, nil)
	v, _ := newCache(inner, Options{})
	f := newFinding(t)
	ctx := context.Background()

	first := check(t, v, ctx, f)
	first.Details["aws_account_id"] = "changed by the first caller"
	innerDetails["aws_account_id"] = "changed by the verifier"
	second := check(t, v, ctx, f)
	if !second.Cached || second.Details["aws_account_id"] != "123456789012" {
		t.Fatalf("cached details = %v, want the original", second.Details)
	}
	second.Details["extra"] = "x"
	if third := check(t, v, ctx, f); len(third.Details) != 1 || third.Details["aws_account_id"] != "123456789012" {
		t.Fatalf("cached details = %v after a caller changed its copy", third.Details)
	}
}

func TestContextEndedBeforeVerify(t *testing.T) {
	inner := newInner()
	v, _ := newCache(inner, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := v.Verify(ctx, finding.TokenAWSAccessKey, newFinding(t)); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if got := inner.calls.Load(); got != 0 {
		t.Errorf("inner called %d times for a cancelled context", got)
	}
}

func BenchmarkCacheHit(b *testing.B) {
	inner := newInner()
	inner.started = make(chan finding.Finding, 1)
	v := New(inner, finding.PartnerAWS, Options{})
	f := newFinding(b)
	if _, err := v.Verify(context.Background(), finding.TokenAWSAccessKey, f); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			verdict, err := v.Verify(context.Background(), finding.TokenAWSAccessKey, f)
			if err != nil || !verdict.Cached {
				b.Fatalf("want a cache hit, got %+v, %v", verdict, err)
			}
		}
	})
}

// TestVerifierPanicIsTheFindingsFault: the inner call runs on singleflight's
// goroutine, where an unrecovered panic would end the process (and fail
// every record of the batch). It must come back to each caller of the
// flight as a fault that names the panic's type and place, not its value.
func TestVerifierPanicIsTheFindingsFault(t *testing.T) {
	inner := newInner()
	gate := make(chan struct{})
	inner.set(func(_ context.Context, f finding.Finding) (verify.Verdict, error) {
		panic(fmt.Errorf("verifier bug on %s", f.Token.Reveal()))
	}, gate)
	v, _ := newCache(inner, Options{})
	hook, waitJoined := joinCounter()
	v.afterJoin = hook
	f := newFinding(t)
	errs := make(chan error, 3)
	for range 3 {
		go func() {
			_, err := v.Verify(context.Background(), finding.TokenAWSAccessKey, f)
			errs <- err
		}()
	}
	waitJoined(3)
	close(gate)
	for range 3 {
		err := <-errs
		fault, ok := verify.AsFault(err)
		if !ok || fault.Kind != verify.PartnerError || !strings.Contains(fault.Msg, "verifier panicked with a *errors.errorString at") ||
			!strings.Contains(fault.Msg, "verdictcache") {
			t.Errorf("err = %v, want a partner-error fault naming the panic's type and place", err)
		}
		if err != nil && strings.Contains(err.Error(), f.Token.Reveal()) {
			t.Error("the fault quotes the panic value, and with it the token")
		}
	}
	// Nothing was cached: the next call asks the (now fixed) verifier.
	inner.set(nil, nil)
	if got := check(t, v, context.Background(), f); got.Cached || got.Reason != finding.ReasonPartnerConfirmed {
		t.Errorf("after the panic: %+v, want a fresh call", got)
	}
}
