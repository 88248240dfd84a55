package verifiertest_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/verifiertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/metrics"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

// fakeTB records failures instead of failing the real test, so that the
// tests can show Check fails where it must.
type fakeTB struct {
	testing.TB
	failures []string
	fatal    bool
	cleanups []func()
}

func (f *fakeTB) Helper() {}

// Cleanup keeps fn for capture to run once the checked code is done.
func (f *fakeTB) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }

func (f *fakeTB) Errorf(format string, args ...any) {
	f.failures = append(f.failures, fmt.Sprintf(format, args...))
}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.Errorf(format, args...)
	f.fatal = true
	runtime.Goexit()
}

func (f *fakeTB) Fatal(args ...any) {
	f.Errorf("%s", fmt.Sprint(args...))
	f.fatal = true
	runtime.Goexit()
}

// expectFailure fails t unless what reported the failures fails asks for:
// none when fails is "", else a first one that contains fails.
func expectFailure(t *testing.T, what string, failures []string, fails string) {
	t.Helper()
	switch {
	case fails == "" && len(failures) > 0:
		t.Errorf("%s failed: %q", what, failures)
	case fails != "" && len(failures) == 0:
		t.Errorf("%s passed, want a failure about %q", what, fails)
	case fails != "" && !strings.Contains(failures[0], fails):
		t.Errorf("%s failed with %q, want %q", what, failures[0], fails)
	}
}

// check runs Check against a fake testing.TB on its own goroutine (Fatal
// ends it) and returns what it reported.
func check(got verifiertest.Outcome, w verifiertest.Want) *fakeTB {
	tb := &fakeTB{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		verifiertest.Check(tb, got, w)
	}()
	<-done
	return tb
}

const partnerName finding.Partner = "acme"

func fault(kind verify.FaultKind, status int, retry time.Duration) *verify.Fault {
	return &verify.Fault{Kind: kind, Partner: partnerName, Op: "GET /me", HTTPStatus: status, RetryAfter: retry, Msg: "rate limited"}
}

func TestCheck(t *testing.T) {
	one := metrics.Summary{Requests: 1}
	limited := metrics.Summary{Requests: 1, RateLimitHits: 1}
	confirmed := verifiertest.Outcome{Partner: partnerName, Metrics: one,
		Verdict: verify.Verdict{Reason: finding.ReasonPartnerConfirmed, Message: "live", Details: finding.Details{"login": "a"}}}
	wantConfirmed := verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Details: finding.Details{"login": "a"}, Msg: "live", Metrics: one}
	rateLimited := verifiertest.Outcome{Partner: partnerName, Metrics: limited, Err: fault(verify.RateLimited, 429, 7*time.Second)}
	wantLimited := verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 429, Op: "GET /me", RetryMin: 7 * time.Second, RetryMax: 7 * time.Second,
		Msg: "rate limited", Metrics: limited}
	with := func(o verifiertest.Outcome, f func(*verifiertest.Outcome)) verifiertest.Outcome { f(&o); return o }
	withWant := func(w verifiertest.Want, f func(*verifiertest.Want)) verifiertest.Want { f(&w); return w }

	tests := []struct {
		name  string
		got   verifiertest.Outcome
		want  verifiertest.Want
		fails string // a substring of the first failure; "" when Check must pass
	}{
		{"the verdict wanted", confirmed, wantConfirmed, ""},
		{"the fault wanted", rateLimited, wantLimited, ""},
		{"a fault op by prefix", rateLimited, withWant(wantLimited, func(w *verifiertest.Want) { w.Op, w.OpPrefix = "", "GET /" }), ""},
		{"details left to the caller", confirmed, withWant(wantConfirmed, func(w *verifiertest.Want) { w.Details, w.AnyDetails = nil, true }), ""},
		{"a wrong verdict", with(confirmed, func(o *verifiertest.Outcome) { o.Verdict.Reason = finding.ReasonPartnerRejected }), wantConfirmed, "reason ="},
		{"a fault with an inactive verdict",
			with(rateLimited, func(o *verifiertest.Outcome) { o.Verdict = verify.Verdict{Reason: finding.ReasonPartnerRejected} }), wantLimited, "inactive"},
		{"a wrong wait", with(rateLimited, func(o *verifiertest.Outcome) { o.Err = fault(verify.RateLimited, 429, time.Second) }), wantLimited, "RetryAfter"},
		{"a verdict where a fault is wanted", confirmed, wantLimited, "want a fault"},
		{"a fault where a verdict is wanted", rateLimited, wantConfirmed, "Verify error"},
		{"a fault of the wrong kind", with(rateLimited, func(o *verifiertest.Outcome) { o.Err = fault(verify.PartnerError, 429, 7*time.Second) }), wantLimited, "fault ="},
		{"a fault naming another operation", rateLimited, withWant(wantLimited, func(w *verifiertest.Want) { w.Op = "GET /you" }), "operation"},
		{"a fault naming another partner", with(rateLimited, func(o *verifiertest.Outcome) { o.Partner = "other" }), wantLimited, "partner"},
		{"a fault row without an operation", rateLimited, withWant(wantLimited, func(w *verifiertest.Want) { w.Op = "" }), "no operation"},
		{"a fault with details", with(rateLimited, func(o *verifiertest.Outcome) { o.Verdict.Details = finding.Details{"x": 1} }), wantLimited, "a fault came with"},
		{"an error that is not a fault", with(rateLimited, func(o *verifiertest.Outcome) { o.Err = errors.New("boom") }), wantLimited, "not a *verify.Fault"},
		{"a message without the words wanted", confirmed, withWant(wantConfirmed, func(w *verifiertest.Want) { w.Msg = "dead" }), "message ="},
		{"an error without the words wanted", rateLimited, withWant(wantLimited, func(w *verifiertest.Want) { w.Msg = "timeout" }), "error ="},
		{"other details", confirmed, withWant(wantConfirmed, func(w *verifiertest.Want) { w.Details = finding.Details{"login": "b"} }), "details ="},
		{"other metrics", confirmed, withWant(wantConfirmed, func(w *verifiertest.Want) { w.Metrics = metrics.Summary{Requests: 2} }), "metrics ="},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tb := check(tc.got, tc.want)
			expectFailure(t, "Check", tb.failures, tc.fails)
		})
	}
}

// fakeVerifier answers every call with its verdict and records the call
// and a request under the partner, as partnerhttp would.
type fakeVerifier struct {
	calls []finding.TokenType
}

func (v *fakeVerifier) Verify(ctx context.Context, tt finding.TokenType, f finding.Finding) (verify.Verdict, error) {
	v.calls = append(v.calls, tt)
	metrics.FromContext(ctx).Request(string(partnerName), http.StatusOK, time.Millisecond)
	return verify.Verdict{Reason: finding.ReasonPartnerConfirmed}, nil
}

// definition types the rule "acme-key" as key, and a token "other-..." as
// other, by prefix, the way several partners do.
func definition(v verify.Verifier, opts *partnerhttp.Options) partner.Definition {
	return partner.Definition{
		Name:  partnerName,
		Rules: []partner.Rule{{ID: "acme-key", TokenType: "key"}},
		Check: func(rule finding.TokenType, f finding.Finding) (finding.TokenType, finding.Reason, string) {
			switch {
			case strings.HasPrefix(f.Token.Reveal(), "bad"):
				return partner.Malformed(rule, "not an acme key")
			case strings.HasPrefix(f.Token.Reveal(), "other"):
				return partner.Pass("other")
			}
			return partner.Pass(rule)
		},
		New: func(o partnerhttp.Options) (verify.Verifier, error) {
			*opts = o
			return v, nil
		},
	}
}

func TestRun(t *testing.T) {
	tests := []struct {
		name   string
		run    func(partner.Definition, verify.Verifier, finding.TokenType, finding.Finding) verifiertest.Outcome
		tt     finding.TokenType
		token  string
		reason finding.Reason
		calls  []finding.TokenType
	}{
		{"the gate's type", verifiertest.Run, "", "good", finding.ReasonPartnerConfirmed, []finding.TokenType{"key"}},
		{"routed as its own type", verifiertest.Run, "key", "good", finding.ReasonPartnerConfirmed, []finding.TokenType{"key"}},
		{"routed as another type: no call", verifiertest.Run, "elsewhere", "good", finding.ReasonUnsupportedTokenType, nil},
		{"typed by the gate, routed as the rule's: no call", verifiertest.Run, "key", "other", finding.ReasonUnsupportedTokenType, nil},
		{"malformed: no call", verifiertest.Run, "", "bad", finding.ReasonMalformedToken, nil},
		{"RunAs hands the verifier the type", verifiertest.RunAs, "elsewhere", "good", finding.ReasonPartnerConfirmed, []finding.TokenType{"elsewhere"}},
		{"RunAs with the gate's type", verifiertest.RunAs, "", "other", finding.ReasonPartnerConfirmed, []finding.TokenType{"other"}},
		{"RunAs, malformed: no call", verifiertest.RunAs, "key", "bad", finding.ReasonMalformedToken, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := &fakeVerifier{}
			var opts partnerhttp.Options
			got := tc.run(definition(v, &opts), v, tc.tt, finding.Finding{ID: "f-1", RuleID: "acme-key", Token: finding.Secret(tc.token)})
			if got.Verdict.Reason != tc.reason || got.Err != nil || got.Partner != partnerName {
				t.Errorf("outcome %+v, want %s", got, tc.reason)
			}
			if fmt.Sprint(v.calls) != fmt.Sprint(tc.calls) {
				t.Errorf("verifier called with %v, want %v", v.calls, tc.calls)
			}
			want := metrics.Summary{Requests: len(tc.calls)}
			if len(tc.calls) == 0 {
				want = metrics.Summary{}
			}
			if got.Metrics.Requests != want.Requests || got.Metrics.LatencyMS != nil {
				t.Errorf("metrics %+v, want %d requests without latencies", got.Metrics, want.Requests)
			}
		})
	}
}

func TestNewVerifier(t *testing.T) {
	v := &fakeVerifier{}
	var opts partnerhttp.Options
	tr := &http.Transport{}
	got := verifiertest.NewVerifier(t, definition(v, &opts), 3*time.Second, tr, "https://a.example", "https://b.example/p/")
	if got != v {
		t.Error("NewVerifier did not return what Definition.New built")
	}
	if len(opts.Endpoints) != 2 || opts.Endpoints[0].String() != "https://a.example" || opts.Endpoints[1].Path != "/p/" {
		t.Errorf("endpoints %v", opts.Endpoints)
	}
	if opts.Timeout != 3*time.Second || opts.Transport != tr {
		t.Errorf("options %+v", opts)
	}
}

// TestHarnessCheck: a Harness fills only what the row leaves unsaid.
func TestHarnessCheck(t *testing.T) {
	got := verifiertest.Outcome{Partner: partnerName, Err: fault(verify.PartnerError, 500, 0), Metrics: metrics.Summary{Requests: 1, Errors: 1}}
	w := verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 500, Metrics: metrics.Summary{Requests: 1, Errors: 1}}
	run := func(h verifiertest.Harness, w verifiertest.Want) []string {
		tb := &fakeTB{}
		done := make(chan struct{})
		go func() {
			defer close(done)
			h.Check(tb, got, w)
		}()
		<-done
		return tb.failures
	}
	if f := run(verifiertest.Harness{Op: "GET /me"}, w); len(f) > 0 {
		t.Errorf("the harness's operation: %q", f)
	}
	if f := run(verifiertest.Harness{OpPrefix: "GET /"}, w); len(f) > 0 {
		t.Errorf("the harness's operation prefix: %q", f)
	}
	w.Op = "POST /other"
	if f := run(verifiertest.Harness{Op: "GET /me"}, w); len(f) == 0 {
		t.Error("the row's own operation was overridden by the harness's")
	}
	confirmed := verifiertest.Outcome{Partner: partnerName, Verdict: verify.Verdict{Reason: finding.ReasonPartnerConfirmed, Details: finding.Details{"a": 1}}}
	tb := &fakeTB{}
	verifiertest.Harness{AnyDetails: true}.Check(tb, confirmed, verifiertest.Want{Reason: finding.ReasonPartnerConfirmed})
	if len(tb.failures) > 0 {
		t.Errorf("AnyDetails: %q", tb.failures)
	}
	verifiertest.Harness{}.Check(tb, confirmed, verifiertest.Want{Reason: finding.ReasonPartnerConfirmed})
	if len(tb.failures) == 0 {
		t.Error("details went unchecked without AnyDetails")
	}
}
