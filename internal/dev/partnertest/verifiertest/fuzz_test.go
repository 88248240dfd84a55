package verifiertest_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/verifiertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

// capture runs fn against a fake testing.TB on its own goroutine (Fatal
// ends it) and returns what it reported.
func capture(fn func(testing.TB)) *fakeTB {
	tb := &fakeTB{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(tb)
	}()
	<-done
	for i := len(tb.cleanups) - 1; i >= 0; i-- {
		tb.cleanups[i]()
	}
	return tb
}

func TestFuzzToken(t *testing.T) {
	a := verifiertest.FuzzToken(1, 2, "tok_", "ab", 40)
	if a != verifiertest.FuzzToken(1, 2, "tok_", "ab", 40) {
		t.Error("the same seed drew another token")
	}
	if a == verifiertest.FuzzToken(1, 3, "tok_", "ab", 40) {
		t.Error("another seed drew the same token")
	}
	if !strings.HasPrefix(a, "tok_") || len(a) != 44 || strings.Trim(a[4:], "ab") != "" {
		t.Errorf("token %q: want tok_ and 40 of a, b", a)
	}
	r := verifiertest.NewFuzzRand(1, 2)
	if first, second := r.Pick("ab", 20), r.Pick("ab", 20); "tok_"+first+second != a {
		t.Errorf("one FuzzRand drew %q then %q; FuzzToken drew %q from the same seed", first, second, a)
	}
}

func TestFuzzTarget(t *testing.T) {
	var got partnerhttp.Options
	srv, v := verifiertest.FuzzTarget(t, func(o partnerhttp.Options) (*fakeVerifier, error) {
		got = o
		return &fakeVerifier{}, nil
	})
	if v == nil || len(got.Endpoints) != 1 || got.Endpoints[0].String() != srv.URL || got.Timeout <= 0 {
		t.Errorf("the verifier was built with %+v, want the fuzz server %s and a timeout", got, srv.URL)
	}
	tb := capture(func(tb testing.TB) {
		verifiertest.FuzzTarget(tb, func(partnerhttp.Options) (*fakeVerifier, error) { return nil, errors.New("bad endpoint") })
	})
	if !tb.fatal || !strings.Contains(strings.Join(tb.failures, " "), "bad endpoint") {
		t.Errorf("a New that fails: %q, want the target to stop with its error", tb.failures)
	}
}

func TestFuzzContract(t *testing.T) {
	const secret = "sk_SECRETsecret0123456789"
	fault := func(kind verify.FaultKind, network bool, retry time.Duration) error {
		return &verify.Fault{Kind: kind, Partner: partnerName, Op: "GET /me", Network: network, RetryAfter: retry, Msg: "m"}
	}
	ok := verify.Verdict{Reason: finding.ReasonPartnerConfirmed, Message: "live"}
	answer := func(status int, truncate bool) partnertest.FuzzAnswer {
		return partnertest.FuzzAnswer{Status: status, Truncate: truncate}
	}
	base := verifiertest.FuzzContract{Secrets: []string{secret}}
	with := func(f func(*verifiertest.FuzzContract)) verifiertest.FuzzContract {
		c := base
		f(&c)
		return c
	}
	tests := []struct {
		name    string
		c       verifiertest.FuzzContract
		resp    partnertest.FuzzAnswer
		verdict verify.Verdict
		err     error
		fails   string // a substring of the failure; "" when Check must pass
		decides bool   // with no failure: what Check returns
	}{
		{"a verdict for the oracle", base, answer(200, false), ok, nil, "", true},
		{"a fault for a 500", base, answer(500, false), verify.Verdict{}, fault(verify.PartnerError, false, 0), "", false},
		{"a rate limit for a 429", base, answer(429, false), verify.Verdict{}, fault(verify.RateLimited, false, 0), "", false},
		{"the token in the message", base, answer(200, false), verify.Verdict{Reason: finding.ReasonPartnerConfirmed, Message: "key " + secret}, nil, "secret", false},
		{"the token in the details", base, answer(200, false), verify.Verdict{Reason: finding.ReasonPartnerConfirmed, Details: finding.Details{"k": secret}}, nil, "secret", false},
		{"the token in the fault", base, answer(500, false), verify.Verdict{}, errors.New("boom " + secret), "secret", false},
		{"the token in another case", base, answer(200, false), verify.Verdict{Reason: finding.ReasonPartnerConfirmed, Message: strings.ToUpper(secret)}, nil, "", true},
		{"the token in another case, folded", with(func(c *verifiertest.FuzzContract) { c.FoldCase = true }), answer(200, false),
			verify.Verdict{Reason: finding.ReasonPartnerConfirmed, Message: strings.ToUpper(secret)}, nil, "secret", false},
		{"a window of the token", with(func(c *verifiertest.FuzzContract) { c.Window = 8 }), answer(200, false),
			verify.Verdict{Reason: finding.ReasonPartnerConfirmed, Message: "…" + secret[5:13] + "…"}, nil, "secret", false},
		{"a shorter run than the window", with(func(c *verifiertest.FuzzContract) { c.Window = 8 }), answer(200, false),
			verify.Verdict{Reason: finding.ReasonPartnerConfirmed, Message: "…" + secret[5:12] + "…"}, nil, "", true},
		{"an error that is not a fault", base, answer(500, false), verify.Verdict{}, errors.New("boom"), "not a *verify.Fault", false},
		{"a fault with a verdict", base, answer(500, false), ok, fault(verify.PartnerError, false, 0), "both a verdict", false},
		{"a 429 as a partner error", base, answer(429, false), verify.Verdict{}, fault(verify.PartnerError, false, 0), "want rate limited", false},
		{"a truncated 429 as a partner error", base, answer(429, true), verify.Verdict{}, fault(verify.PartnerError, true, 0), "", false},
		{"a truncated 429 as a partner error, status first", with(func(c *verifiertest.FuzzContract) { c.Truncated429 = true }), answer(429, true),
			verify.Verdict{}, fault(verify.PartnerError, true, 0), "want rate limited", false},
		{"an unreadable 429", with(func(c *verifiertest.FuzzContract) { c.Unreadable429 = true }), answer(429, false),
			verify.Verdict{}, fault(verify.PartnerError, true, 0), "", false},
		{"a 429 as a network fault", base, answer(429, false), verify.Verdict{}, fault(verify.PartnerError, true, 0), "want rate limited", false},
		{"a 429 as a non-network partner error, unreadable allowed", with(func(c *verifiertest.FuzzContract) { c.Unreadable429 = true }), answer(429, false),
			verify.Verdict{}, fault(verify.PartnerError, false, 0), "want rate limited", false},
		{"a 429 without a wait", with(func(c *verifiertest.FuzzContract) { c.WantRetryAfter = true }), answer(429, false),
			verify.Verdict{}, fault(verify.RateLimited, false, 0), "want a wait", false},
		{"a 429 with a wait", with(func(c *verifiertest.FuzzContract) { c.WantRetryAfter = true }), answer(429, false),
			verify.Verdict{}, fault(verify.RateLimited, false, time.Second), "", false},
		{"a verdict without an answer", base, answer(0, false), ok, nil, "no answer", false},
		{"a verdict from a truncated answer", base, answer(200, true), ok, nil, "truncated", false},
		{"a verdict from a 429", base, answer(429, false), ok, nil, "http 429", false},
		{"a verdict from a 503", base, answer(503, false), ok, nil, "http 503", false},
		{"a verdict from a 403", base, answer(403, false), ok, nil, "", true},
		{"a verdict from a 403 that must not give one", with(func(c *verifiertest.FuzzContract) { c.NoVerdict = []int{403} }), answer(403, false), ok, nil, "http 403", false},
		{"a label", with(func(c *verifiertest.FuzzContract) { c.Label = "gcp_api_key" }), answer(0, false), ok, nil, "gcp_api_key: no answer", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var decides bool
			tb := capture(func(tb testing.TB) { decides = tc.c.Check(tb, tc.resp, tc.verdict, tc.err) })
			expectFailure(t, "Check", tb.failures, tc.fails)
			if tc.fails == "" && decides != tc.decides {
				t.Errorf("Check = %v, want %v", decides, tc.decides)
			}
			if len(tb.failures) > 0 && strings.Contains(tb.failures[0], secret) {
				t.Errorf("the failure quotes the secret: %q", tb.failures[0])
			}
		})
	}
}

func TestJSONObject(t *testing.T) {
	cases := []struct {
		body string
		ok   bool
	}{
		{`{"id":"x"}`, true},
		{" {\"id\":\"x\"}\n", true},
		{`{}`, true},
		{`null`, false},
		{`[{"id":"x"}]`, false},
		{`"x"`, false},
		{`{"id":"x"}{"id":"x"}`, false},
		{`{"id":"x"}x`, false},
		{`{"id":"x"}}`, false},
		{`{"id":"x"`, false},
		{``, false},
		{`<html>{"id":"x"}</html>`, false},
	}
	for _, tc := range cases {
		if _, ok := verifiertest.JSONObject([]byte(tc.body)); ok != tc.ok {
			t.Errorf("JSONObject(%q) ok = %v, want %v", tc.body, ok, tc.ok)
		}
	}
	doc, _ := verifiertest.JSONObject([]byte(`{"s":"v","n":1,"ID":"upper"}`))
	for _, tc := range []struct {
		key  string
		want string
		ok   bool
	}{{"s", "v", true}, {"n", "", false}, {"id", "", false}, {"missing", "", false}} {
		if got, ok := verifiertest.JSONString(doc, tc.key); got != tc.want || ok != tc.ok {
			t.Errorf("JSONString(%q) = %q, %v; want %q, %v", tc.key, got, ok, tc.want, tc.ok)
		}
	}
}
