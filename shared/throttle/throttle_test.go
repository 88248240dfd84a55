package throttle

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/metrics"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

// fakeClock is a clock that moves only when the test says so. It starts an
// hour ahead of real time, so a context deadline set from it is far away in
// real time and only the throttle's own arithmetic can hit it.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Now().Add(time.Hour).Truncate(time.Second)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fakeInner answers with next (a verdict by default) and counts its calls.
type fakeInner struct {
	calls atomic.Int64
	mu    sync.Mutex
	next  func() (verify.Verdict, error)
}

func (f *fakeInner) Verify(context.Context, finding.TokenType, finding.Finding) (verify.Verdict, error) {
	f.calls.Add(1)
	f.mu.Lock()
	next := f.next
	f.mu.Unlock()
	if next == nil {
		return verify.Verdict{Reason: finding.ReasonPartnerConfirmed}, nil
	}
	return next()
}

func (f *fakeInner) answer(next func() (verify.Verdict, error)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next = next
}

func randomToken(t testing.TB) finding.Finding {
	t.Helper()
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return finding.Finding{ID: "f-1", RuleID: "Postman API token", Token: finding.Secret("PMAK-" + hex.EncodeToString(b))}
}

// newTest builds a throttle on a fake clock whose sleeps advance that clock
// and are recorded.
func newTest(t *testing.T, inner verify.Verifier, o Options) (*Verifier, *fakeClock, *[]time.Duration) {
	t.Helper()
	clock := newFakeClock()
	o.Clock = clock.Now
	v := New(inner, finding.PartnerPostman, o)
	var slept []time.Duration
	v.sleep = func(ctx context.Context, d time.Duration) error {
		slept = append(slept, d)
		clock.Advance(d)
		return nil
	}
	return v, clock, &slept
}

func call(t *testing.T, v *Verifier, ctx context.Context) error {
	t.Helper()
	_, err := v.Verify(ctx, finding.TokenPostmanAPIKey, randomToken(t))
	return err
}

// heldBack asserts err is the local limiter's fault and returns its RetryAfter.
func heldBack(t *testing.T, err error) time.Duration {
	t.Helper()
	f, ok := verify.AsFault(err)
	if !ok {
		t.Fatalf("want a held-back fault, got %v", err)
	}
	if f.Kind != verify.RateLimited || f.Op != heldBackOp || f.Msg != heldBackMsg || f.HTTPStatus != 0 || f.Partner != finding.PartnerPostman {
		t.Fatalf("want a held-back fault, got %+v", f)
	}
	if f.RetryAfter <= 0 {
		t.Fatalf("held-back fault without RetryAfter: %+v", f)
	}
	return f.RetryAfter
}

func TestBurstThenHeldBackAndCounted(t *testing.T) {
	inner := &fakeInner{}
	v, clock, slept := newTest(t, inner, Options{RatePerSecond: 2, Burst: 2, MaxWait: 250 * time.Millisecond})
	rec := metrics.New()
	ctx := metrics.NewContext(context.Background(), rec)

	for i := range 2 {
		if err := call(t, v, ctx); err != nil {
			t.Fatalf("call %d within the burst: %v", i, err)
		}
	}
	// The bucket is empty; the next token is 500 ms away, beyond MaxWait.
	if got := heldBack(t, call(t, v, ctx)); got != 500*time.Millisecond {
		t.Errorf("RetryAfter = %v, want 500ms", got)
	}
	if n := inner.calls.Load(); n != 2 {
		t.Errorf("inner called %d times, want 2", n)
	}
	if len(*slept) != 0 {
		t.Errorf("slept %v, want no sleep", *slept)
	}
	if s := rec.Snapshot()[string(finding.PartnerPostman)]; s.RateLimitHits != 1 || s.Requests != 0 {
		t.Errorf("metrics = %+v, want 1 rate-limit hit and no request", s)
	}
	// The held-back call gave its reservation back: one token is free 500 ms on.
	clock.Advance(500 * time.Millisecond)
	if err := call(t, v, ctx); err != nil {
		t.Fatalf("call after the token refilled: %v", err)
	}
	heldBack(t, call(t, v, ctx))
}

func TestWaitOnlyWhenShortAndBeforeDeadline(t *testing.T) {
	cases := []struct {
		name      string
		maxWait   time.Duration
		deadline  time.Duration // from the fake now; 0 means none
		wantSleep bool
	}{
		{"short wait, no deadline", 0, 0, true},
		{"short wait, deadline after it", 0, time.Second, true},
		{"short wait, deadline before it", 0, 50 * time.Millisecond, false},
		{"wait ends exactly at deadline", 0, 100 * time.Millisecond, false},
		{"wait longer than MaxWait", 20 * time.Millisecond, 0, false},
		{"never wait", -1, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			inner := &fakeInner{}
			// 10/s, burst 1: the second call needs a token 100 ms away.
			v, clock, slept := newTest(t, inner, Options{RatePerSecond: 10, Burst: 1, MaxWait: tc.maxWait})
			if err := call(t, v, context.Background()); err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if tc.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithDeadline(ctx, clock.Now().Add(tc.deadline))
				defer cancel()
			}
			err := call(t, v, ctx)
			if tc.wantSleep {
				if err != nil {
					t.Fatalf("want the call to wait and go through, got %v", err)
				}
				if len(*slept) != 1 || (*slept)[0] != 100*time.Millisecond {
					t.Fatalf("slept %v, want [100ms]", *slept)
				}
				if n := inner.calls.Load(); n != 2 {
					t.Fatalf("inner called %d times, want 2", n)
				}
				return
			}
			if got := heldBack(t, err); got != 100*time.Millisecond {
				t.Errorf("RetryAfter = %v, want 100ms", got)
			}
			if len(*slept) != 0 {
				t.Errorf("slept %v, want no sleep", *slept)
			}
			if n := inner.calls.Load(); n != 1 {
				t.Errorf("inner called %d times, want 1", n)
			}
		})
	}
}

func TestWaitInterruptedByContextHandsBack(t *testing.T) {
	inner := &fakeInner{}
	v, clock, _ := newTest(t, inner, Options{RatePerSecond: 10, Burst: 1})
	v.sleep = func(ctx context.Context, d time.Duration) error { return context.Canceled }
	rec := metrics.New()
	ctx := metrics.NewContext(context.Background(), rec)
	if err := call(t, v, ctx); err != nil {
		t.Fatal(err)
	}
	heldBack(t, call(t, v, ctx))
	if n := inner.calls.Load(); n != 1 {
		t.Errorf("inner called %d times, want 1", n)
	}
	if s := rec.Snapshot()[string(finding.PartnerPostman)]; s.RateLimitHits != 1 {
		t.Errorf("rate-limit hits = %d, want 1", s.RateLimitHits)
	}
	// The abandoned reservation was returned: one token is free 100 ms on.
	clock.Advance(100 * time.Millisecond)
	v.sleep = func(context.Context, time.Duration) error { t.Fatal("unexpected wait"); return nil }
	if err := call(t, v, ctx); err != nil {
		t.Fatalf("call after refill: %v", err)
	}
}

func TestPartner429PausesForRetryAfter(t *testing.T) {
	cases := []struct {
		name      string
		header    func(now time.Time) http.Header
		penalty   time.Duration
		wantPause time.Duration
	}{
		{"Retry-After seconds", func(time.Time) http.Header { return http.Header{"Retry-After": {"7"}} }, 0, 7 * time.Second},
		{"Retry-After HTTP date", func(now time.Time) http.Header {
			return http.Header{"Retry-After": {now.Add(10 * time.Second).UTC().Format(http.TimeFormat)}}
		}, 0, 10 * time.Second},
		{"X-RateLimit-Reset delta", func(time.Time) http.Header { return http.Header{"X-Ratelimit-Reset": {"3"}} }, 0, 3 * time.Second},
		{"no header, default penalty", func(time.Time) http.Header { return http.Header{} }, 0, DefaultPenalty},
		{"no header, configured penalty", func(time.Time) http.Header { return http.Header{} }, 4 * time.Second, 4 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			inner := &fakeInner{}
			v, clock, _ := newTest(t, inner, Options{RatePerSecond: 4, Burst: 4, Penalty: tc.penalty})
			inner.answer(func() (verify.Verdict, error) {
				return verify.Verdict{}, &verify.Fault{Kind: verify.RateLimited, Partner: finding.PartnerPostman, Op: "GET /me",
					HTTPStatus: http.StatusTooManyRequests, RetryAfter: partnerhttp.RetryAfter(tc.header(clock.Now()), clock.Now())}
			})
			rec := metrics.New()
			ctx := metrics.NewContext(context.Background(), rec)

			err := call(t, v, ctx)
			if f, ok := verify.AsFault(err); !ok || f.HTTPStatus != http.StatusTooManyRequests {
				t.Fatalf("the partner's 429 must reach the caller unchanged, got %v", err)
			}
			inner.answer(nil)

			// Just after the 429 and just before the pause ends, nothing goes out.
			for _, at := range []time.Duration{0, tc.wantPause - time.Millisecond} {
				now := clock.Now()
				clock.Advance(at)
				if got, want := heldBack(t, call(t, v, ctx)), tc.wantPause-at; got != want {
					t.Errorf("at +%v: RetryAfter = %v, want the rest of the pause %v", at, got, want)
				}
				clock.Set(now)
			}
			if n := inner.calls.Load(); n != 1 {
				t.Fatalf("inner called %d times during the pause, want only the first", n)
			}
			if s := rec.Snapshot()[string(finding.PartnerPostman)]; s.RateLimitHits != 2 {
				t.Errorf("local rate-limit hits = %d, want 2", s.RateLimitHits)
			}
			clock.Advance(tc.wantPause)
			if err := call(t, v, ctx); err != nil {
				t.Fatalf("call after the pause: %v", err)
			}
		})
	}
}

func TestSlowDownThenRecover(t *testing.T) {
	inner := &fakeInner{}
	const base = 4.0
	// Burst 1 and no waiting: a held-back call's RetryAfter shows the rate.
	v, clock, _ := newTest(t, inner, Options{RatePerSecond: base, Burst: 1, MaxWait: -1, Penalty: time.Second, CoolDown: 30 * time.Second})
	ctx := context.Background()
	too := func() (verify.Verdict, error) {
		return verify.Verdict{}, &verify.Fault{Kind: verify.RateLimited, Partner: finding.PartnerPostman, HTTPStatus: 429}
	}
	// spacing returns the gap the limiter enforces between two calls now.
	spacing := func() time.Duration {
		t.Helper()
		clock.Advance(10 * time.Second) // refill the bucket
		if err := call(t, v, ctx); err != nil {
			t.Fatalf("first call: %v", err)
		}
		return heldBack(t, call(t, v, ctx))
	}
	if got := spacing(); got != 250*time.Millisecond {
		t.Fatalf("spacing at full rate = %v, want 250ms", got)
	}

	clock.Advance(10 * time.Second)
	inner.answer(too)
	_ = call(t, v, ctx)
	if got := v.currentRate(); got != base/2 {
		t.Fatalf("rate after a 429 = %v, want %v", got, base/2)
	}
	// Another 429 answering a request sent before the pause does not halve again.
	v.penalize(clock.Now(), 0)
	if got := v.currentRate(); got != base/2 {
		t.Fatalf("rate after a 429 within the pause = %v, want %v", got, base/2)
	}
	inner.answer(nil)
	clock.Advance(time.Second)
	// Spacing is measured inside the cool-down window, so the rate is still halved.
	if got := spacing(); got != 500*time.Millisecond {
		t.Fatalf("spacing while slowed = %v, want 500ms", got)
	}

	// Repeated 429s, each after the previous pause, bottom out at base/8.
	inner.answer(too)
	for range 6 {
		clock.Advance(2 * time.Second)
		_ = call(t, v, ctx)
	}
	inner.answer(nil)
	if got := v.currentRate(); got != base/slowestDivisor {
		t.Fatalf("rate after many 429s = %v, want the floor %v", got, base/slowestDivisor)
	}

	// Recovery: the cool-down counts from the end of the last pause (1 s
	// after the last 429); each quiet cool-down doubles the rate, up to base.
	clock.Advance(time.Second + 30*time.Second - time.Millisecond)
	if got := v.currentRate(); got != base/slowestDivisor {
		t.Fatalf("rate just before a cool-down = %v, want %v", got, base/slowestDivisor)
	}
	clock.Advance(time.Millisecond)
	if got := v.currentRate(); got != base/4 {
		t.Fatalf("rate after one cool-down = %v, want %v", got, base/4)
	}
	clock.Advance(60 * time.Second)
	if got := v.currentRate(); got != base {
		t.Fatalf("rate after three cool-downs = %v, want %v", got, base)
	}
	clock.Advance(time.Hour)
	if got := v.currentRate(); got != base {
		t.Fatalf("rate never exceeds the configured %v, got %v", base, got)
	}
	// The rate really is restored: two calls are 250 ms apart again.
	if got := spacing(); got != 250*time.Millisecond {
		t.Fatalf("spacing after recovery = %v, want 250ms", got)
	}
}

func TestOtherFaultsDoNotSlowDown(t *testing.T) {
	cases := []struct {
		name  string
		fault *verify.Fault
	}{
		{"5xx", &verify.Fault{Kind: verify.PartnerError, HTTPStatus: 503}},
		{"network", &verify.Fault{Kind: verify.PartnerError, Network: true}},
		{"nested local limiter", &verify.Fault{Kind: verify.RateLimited, RetryAfter: time.Minute, Op: heldBackOp, Msg: heldBackMsg}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			inner := &fakeInner{}
			v, _, _ := newTest(t, inner, Options{RatePerSecond: 4, Burst: 4})
			inner.answer(func() (verify.Verdict, error) { return verify.Verdict{}, tc.fault })
			if err := call(t, v, context.Background()); !errors.Is(err, tc.fault) {
				t.Fatalf("want the inner fault unchanged, got %v", err)
			}
			inner.answer(nil)
			if err := call(t, v, context.Background()); err != nil {
				t.Fatalf("next call held back after a %s: %v", tc.name, err)
			}
			if got := v.currentRate(); got != 4 {
				t.Errorf("rate = %v, want 4", got)
			}
		})
	}
}

func TestConcurrentCallsGetExactlyTheBurst(t *testing.T) {
	inner := &fakeInner{}
	const burst = 5
	v, _, _ := newTest(t, inner, Options{RatePerSecond: 1, Burst: burst, MaxWait: -1})
	var wg sync.WaitGroup
	var admitted, held atomic.Int64
	for range 50 {
		wg.Go(func() {
			_, err := v.Verify(context.Background(), finding.TokenPostmanAPIKey, finding.Finding{Token: "x"})
			if err == nil {
				admitted.Add(1)
			} else if f, ok := verify.AsFault(err); ok && f.Kind == verify.RateLimited {
				held.Add(1)
			}
		})
	}
	wg.Wait()
	if admitted.Load() != burst || held.Load() != 50-burst {
		t.Errorf("admitted %d, held back %d; want %d and %d", admitted.Load(), held.Load(), burst, 50-burst)
	}
}

func TestHeldBackFaultNamesNoSecret(t *testing.T) {
	inner := &fakeInner{}
	v, _, _ := newTest(t, inner, Options{RatePerSecond: 1, Burst: 1, MaxWait: -1})
	f := randomToken(t)
	_, _ = v.Verify(context.Background(), finding.TokenPostmanAPIKey, f)
	_, err := v.Verify(context.Background(), finding.TokenPostmanAPIKey, f)
	heldBack(t, err)
	if strings.Contains(err.Error(), f.Token.Reveal()) {
		t.Fatal("fault text contains the token")
	}
}

func BenchmarkLimiterAllow(b *testing.B) {
	v := New(&fakeInner{}, finding.PartnerPostman, Options{RatePerSecond: 1e9, Burst: 1 << 20})
	ctx := context.Background()
	f := randomToken(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Verify(ctx, finding.TokenPostmanAPIKey, f); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// With the default MaxWait a batch keeps its steady pace inside the
// invocation: a call waits for its token instead of going back to SQS,
// where every hand-back would spend one of the record's attempts.
func TestDefaultMaxWaitKeepsABatchInTheInvocation(t *testing.T) {
	inner := &fakeInner{}
	v, _, slept := newTest(t, inner, Options{RatePerSecond: 1.5, Burst: 1})
	ctx := metrics.NewContext(context.Background(), metrics.New())
	for i := range 10 {
		if err := call(t, v, ctx); err != nil {
			t.Fatalf("call %d of a batch of 10 at 1.5/s: %v", i, err)
		}
	}
	if n := inner.calls.Load(); n != 10 {
		t.Fatalf("inner called %d times, want 10", n)
	}
	if len(*slept) != 9 {
		t.Fatalf("slept %d times, want 9 waits for tokens", len(*slept))
	}
}

// currentRate is the rate in requests per second the limiter admits now,
// lower than the configured rate while it recovers from a 429.
func (v *Verifier) currentRate() float64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.recover(v.now())
	return float64(v.current)
}
