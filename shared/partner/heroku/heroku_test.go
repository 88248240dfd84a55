package herokupartner_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/herokudouble"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/verifiertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/metrics"
	herokupartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/heroku"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

const (
	ruleV2     = "heroku-api-key-v2"
	ruleGitLab = "Heroku API Key"
)

// harness is the shared verifier harness bound to heroku.
var harness = verifiertest.Harness{Def: herokupartner.Definition, Op: "GET /account", AnyDetails: true}

// herokuFinding is tok as found: a UUID under GitLab's rule (the legacy
// form it finds), anything else under gitleaks' v2 rule.
func herokuFinding(tok string) finding.Finding {
	rule := ruleV2
	if !strings.HasPrefix(tok, "HRKU-") {
		rule = ruleGitLab
	}
	return finding.Finding{ID: "f-1", RuleID: rule, Token: finding.Secret(tok)}
}

// TestVerifyAgainstDouble has one row per answer Heroku can give, served by
// the double, and the verdict or fault each must give.
func TestVerifyAgainstDouble(t *testing.T) {
	srv := partnertest.StartDouble(t, herokudouble.Start)
	one := metrics.Summary{Requests: 1}
	errored := metrics.Summary{Requests: 1, Errors: 1}
	network := metrics.Summary{Requests: 1, Errors: 1, NetworkErrors: 1}
	limited := metrics.Summary{Requests: 1, RateLimitHits: 1}
	httpDate := func() string { return time.Now().Add(30 * time.Second).UTC().Format(http.TimeFormat) }
	const account = "01234567-89ab-4cde-8f01-23456789abcd"

	tests := []struct {
		name       string
		legacy     bool // a UUID key rather than an HRKU-AA token
		tokenType  finding.TokenType
		setup      func(t *testing.T, key string) finding.Finding // registers keys, pushes faults
		retryAfter string
		timeout    time.Duration
		want       verifiertest.Want
	}{
		{name: "live token", setup: func(t *testing.T, key string) finding.Finding {
			srv.AddToken(key, account)
			return herokuFinding(key)
		}, want: verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Metrics: one, Calls: 1}},
		{name: "live legacy UUID key", legacy: true, setup: func(t *testing.T, key string) finding.Finding {
			srv.AddToken(key, account)
			return herokuFinding(key)
		}, want: verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Metrics: one, Calls: 1}},
		{name: "live legacy key in upper case", legacy: true, setup: func(t *testing.T, key string) finding.Finding {
			srv.AddToken(strings.ToUpper(key), account)
			return herokuFinding(strings.ToUpper(key))
		}, want: verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Metrics: one, Calls: 1}},
		{name: "unknown token: 401 unauthorized", setup: func(t *testing.T, key string) finding.Finding {
			return herokuFinding(key)
		}, want: verifiertest.Want{Reason: finding.ReasonPartnerRejected, Metrics: one, Calls: 1}},
		{name: "revoked token: 401 unauthorized", setup: func(t *testing.T, key string) finding.Finding {
			srv.AddToken(key, account)
			srv.RevokeToken(key)
			return herokuFinding(key)
		}, want: verifiertest.Want{Reason: finding.ReasonPartnerRejected, Metrics: one, Calls: 1}},
		{name: "revoked legacy key", legacy: true, setup: func(t *testing.T, key string) finding.Finding {
			return herokuFinding(key)
		}, want: verifiertest.Want{Reason: finding.ReasonPartnerRejected, Metrics: one, Calls: 1}},
		{name: "expired token: 401 unauthorized", setup: func(t *testing.T, key string) finding.Finding {
			srv.AddTokenMode(key, account, herokudouble.Expired)
			return herokuFinding(key)
		}, want: verifiertest.Want{Reason: finding.ReasonPartnerRejected, Metrics: one, Calls: 1}},
		{name: "scoped or expired token: 403 forbidden", setup: func(t *testing.T, key string) finding.Finding {
			srv.AddTokenMode(key, account, herokudouble.Forbidden)
			return herokuFinding(key)
		}, want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 403, Msg: "403 forbidden", Metrics: errored, Calls: 1}},
		{name: "suspended account: 403 suspended", setup: func(t *testing.T, key string) finding.Finding {
			srv.AddTokenMode(key, account, herokudouble.Suspended)
			return herokuFinding(key)
		}, want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 403, Msg: "403 suspended", Metrics: errored, Calls: 1}},
		{name: "delinquent account: 402 delinquent", setup: func(t *testing.T, key string) finding.Finding {
			srv.AddTokenMode(key, account, herokudouble.Delinquent)
			return herokuFinding(key)
		}, want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 402, Msg: "402 delinquent", Metrics: errored, Calls: 1}},
		{name: "malformed token: no call", setup: func(t *testing.T, key string) finding.Finding {
			srv.AddToken(key[:40], account)
			return herokuFinding(key[:40])
		}, want: verifiertest.Want{Reason: finding.ReasonMalformedToken, Msg: "not a Heroku API token"}},
		{name: "token one character long: no call", setup: func(t *testing.T, key string) finding.Finding {
			return herokuFinding(key + "x")
		}, want: verifiertest.Want{Reason: finding.ReasonMalformedToken}},
		{name: "not a UUID: no call", setup: func(t *testing.T, key string) finding.Finding {
			return finding.Finding{ID: "f-1", RuleID: ruleGitLab, Token: "0123456789abcdef0123456789abcdef"}
		}, want: verifiertest.Want{Reason: finding.ReasonMalformedToken, Msg: "legacy UUID"}},
		{name: "other partner's token type: no call", tokenType: finding.TokenPostmanAPIKey, setup: func(t *testing.T, key string) finding.Finding {
			srv.AddToken(key, account)
			return herokuFinding(key)
		}, want: verifiertest.Want{Reason: finding.ReasonUnsupportedTokenType, Msg: "heroku_api_key"}},
		{name: "500", setup: fault(srv, partnertest.Fault500), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 500, Msg: "server error", Metrics: errored, Calls: 1}},
		{name: "502 HTML", setup: fault(srv, partnertest.Fault502), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 502, Metrics: errored, Calls: 1}},
		{name: "503", setup: fault(srv, partnertest.Fault503), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 503, Metrics: errored, Calls: 1}},
		{name: "504 HTML", setup: fault(srv, partnertest.Fault504), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 504, Metrics: errored, Calls: 1}},
		{name: "429 rate_limit as documented: RateLimit-Remaining 0, no wait header", retryAfter: "", setup: fault(srv, partnertest.Fault429),
			want: verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 429, RetryMin: 0, RetryMax: 0, Msg: "rate limited", Metrics: limited, Calls: 1}},
		{name: "429 rate_limit with Retry-After seconds", retryAfter: "7", setup: fault(srv, partnertest.Fault429),
			want: verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 429, RetryMin: 7 * time.Second, RetryMax: 7 * time.Second, Msg: "rate limited", Metrics: limited, Calls: 1}},
		{name: "429 rate_limit with Retry-After HTTP date", retryAfter: httpDate(), setup: fault(srv, partnertest.Fault429),
			want: verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 429, RetryMin: 27 * time.Second, RetryMax: 30 * time.Second, Metrics: limited, Calls: 1}},
		{name: "429 on a live key", retryAfter: "1", setup: func(t *testing.T, key string) finding.Finding {
			srv.AddToken(key, account)
			srv.Controls.Push(partnertest.Fault429)
			return herokuFinding(key)
		}, want: verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 429, RetryMin: time.Second, RetryMax: time.Second, Metrics: limited, Calls: 1}},
		{name: "reset", setup: fault(srv, partnertest.FaultReset), want: verifiertest.Want{Kind: verify.PartnerError, Network: true, Msg: "network error", Metrics: network, Calls: 1}},
		{name: "hang with a short timeout", timeout: 300 * time.Millisecond, setup: fault(srv, partnertest.FaultHang),
			want: verifiertest.Want{Kind: verify.PartnerError, Network: true, Msg: "timeout", Metrics: network, Calls: 1}},
		{name: "slow live answer within the timeout", timeout: 2 * time.Second, setup: func(t *testing.T, key string) finding.Finding {
			srv.AddToken(key, account)
			srv.Controls.SetLatency(100*time.Millisecond, 0)
			return herokuFinding(key)
		}, want: verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Metrics: one, Calls: 1}},
		{name: "garbled 200", setup: fault(srv, partnertest.FaultGarbled), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 200, Msg: "proves nothing", Metrics: errored, Calls: 1}},
		{name: "empty 200", setup: fault(srv, partnertest.FaultEmpty), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 200, Msg: "proves nothing", Metrics: errored, Calls: 1}},
		{name: "truncated 200", setup: fault(srv, partnertest.FaultTruncated), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 200, Msg: "read body", Metrics: errored, Calls: 1}},
		{name: "HTML 401 from a proxy", setup: fault(srv, partnertest.FaultHTML401), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 401, Msg: "HTML page", Metrics: errored, Calls: 1}},
		{name: "HTML 403 from a WAF", setup: fault(srv, partnertest.FaultHTML403), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 403, Msg: "HTML page", Metrics: errored, Calls: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv.Controls.Reset()
			srv.Controls.SetRetryAfter(tc.retryAfter)
			key := herokudouble.NewToken()
			if tc.legacy {
				key = herokudouble.NewLegacyKey()
			}
			f := tc.setup(t, key)
			tt := tc.tokenType
			if tt == "" {
				tt = herokupartner.TokenAPIKey
			}
			got := harness.Run(harness.NewVerifier(t, tc.timeout, nil, srv.URL), tt, f)
			harness.Check(t, got, tc.want)
			if got.Verdict.Reason == finding.ReasonPartnerConfirmed {
				if !reflect.DeepEqual(got.Verdict.Details, finding.Details{herokupartner.DetailAccountID: account}) {
					t.Errorf("details = %v, want only %s = the registered account", got.Verdict.Details, herokupartner.DetailAccountID)
				}
			} else if got.Verdict.Details != nil {
				t.Errorf("details on a %q verdict: %v", got.Verdict.Reason, got.Verdict.Details)
			}
			if calls := srv.Controls.Requests(); calls != tc.want.Calls {
				t.Errorf("double saw %d requests, want %d", calls, tc.want.Calls)
			}
		})
	}
}

// fault returns a row setup that registers the key as live and scripts f, so
// that any verdict but a fault would be wrong.
func fault(srv *herokudouble.Server, f partnertest.Fault) func(*testing.T, string) finding.Finding {
	return func(_ *testing.T, key string) finding.Finding {
		srv.AddToken(key, "01234567-89ab-4cde-8f01-23456789abcd")
		srv.Controls.Push(f)
		return herokuFinding(key)
	}
}

// TestAccountPoolExhausted drives the double's own per-account pool rather
// than a scripted 429: once the account's request tokens are spent Heroku
// answers 429 rate_limit with RateLimit-Remaining 0 and no wait header.
func TestAccountPoolExhausted(t *testing.T) {
	srv := partnertest.StartDouble(t, herokudouble.Start)
	srv.SetPoolSize(1)
	key := herokudouble.NewToken()
	srv.AddToken(key, herokudouble.NewUUID())
	v := harness.NewVerifier(t, 0, nil, srv.URL)
	harness.Check(t, harness.Run(v, herokupartner.TokenAPIKey, herokuFinding(key)),
		verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Metrics: metrics.Summary{Requests: 1}})
	harness.Check(t, harness.Run(v, herokupartner.TokenAPIKey, herokuFinding(key)),
		verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 429, Msg: "rate limited", Metrics: metrics.Summary{Requests: 1, RateLimitHits: 1}})
}

// TestEnforcedRateLimit drives the shared limiter knob: the second request
// inside the window is refused with the Retry-After the knob sets.
func TestEnforcedRateLimit(t *testing.T) {
	srv := partnertest.StartDouble(t, herokudouble.Start)
	key := herokudouble.NewToken()
	srv.AddToken(key, herokudouble.NewUUID())
	srv.Controls.SetRetryAfter("2")
	v := harness.NewVerifier(t, 0, nil, srv.URL)
	harness.EnforcedRateLimit(t, v, srv.Controls, herokupartner.TokenAPIKey, herokuFinding(key),
		verifiertest.Want{}, verifiertest.Want{RetryMin: 2 * time.Second, RetryMax: 2 * time.Second})
}

// TestVerifyUnusableAnswers covers answers the double never gives but a
// proxy, a partner change or a misconfiguration can: each proves nothing.
func TestVerifyUnusableAnswers(t *testing.T) {
	canary := partnertest.RedirectCanary(t)
	const acct = `"id":"01234567-89ab-4cde-8f01-23456789abcd"`
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string
		header      map[string]string
		wantStatus  int
		wantMsg     string
	}{
		{"200 JSON without id", 200, "application/json", `{"email":"someone@example.com"}`, nil, 200, "proves nothing"},
		{"200 id not a UUID", 200, "application/json", `{"id":"someone"}`, nil, 200, "proves nothing"},
		{"200 id a number", 200, "application/json", `{"id":7}`, nil, 200, "proves nothing"},
		{"200 id in upper case", 200, "application/json", `{"id":"01234567-89AB-4CDE-8F01-23456789ABCD"}`, nil, 200, "proves nothing"},
		{"200 ID key of another case", 200, "application/json", `{"ID":"01234567-89ab-4cde-8f01-23456789abcd"}`, nil, 200, "proves nothing"},
		{"200 an array", 200, "application/json", `[{` + acct + `}]`, nil, 200, "proves nothing"},
		{"200 two documents", 200, "application/json", `{` + acct + `}{` + acct + `}`, nil, 200, "proves nothing"},
		{"200 trailing garbage", 200, "application/json", `{` + acct + `}x`, nil, 200, "proves nothing"},
		{"200 HTML captive portal", 200, "text/html", `<html><body>Sign in to Wi-Fi</body></html>`, nil, 200, "HTML page"},
		{"200 too long", 200, "application/json", `{` + acct + `,"pad":"` + strings.Repeat("x", 70*1024) + `"}`, nil, 200, "read body"},
		{"401 HTML without a content type", 401, "", `<!DOCTYPE html><title>401</title>`, nil, 401, "HTML page"},
		{"401 another id", 401, "application/json", `{"id":"two_factor","message":"Two-factor code required"}`, nil, 401, "unauthorized error id"},
		{"401 id without message", 401, "application/json", `{"id":"unauthorized"}`, nil, 401, "unauthorized error id"},
		{"401 nested error", 401, "application/json", `{"error":{"id":"unauthorized","message":"x"}}`, nil, 401, "unauthorized error id"},
		{"401 ID of another case", 401, "application/json", `{"ID":"unauthorized","message":"x"}`, nil, 401, "unauthorized error id"},
		{"401 empty", 401, "", ``, nil, 401, "unauthorized error id"},
		{"403 another id", 403, "application/json", `{"id":"sso_required","message":"x"}`, nil, 403, "unexpected http status 403"},
		{"403 forbidden with Retry-After: a rate limit", 403, "application/json", `{"id":"forbidden","message":"x"}`, map[string]string{"Retry-After": "3"}, 403, "rate limited"},
		{"406 not_acceptable", 406, "application/json", `{"id":"not_acceptable","message":"Please specify a version"}`, nil, 406, "406 not acceptable"},
		{"404 not_found", 404, "application/json", `{"id":"not_found","message":"x"}`, nil, 404, "unexpected http status 404"},
		{"302 to elsewhere", 302, "", "", map[string]string{"Location": canary.URL + "/account"}, 302, "unexpected http status 302"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := partnertest.ServeAnswer(t, tc.status, tc.contentType, tc.body, tc.header)
			got := harness.Run(harness.NewVerifier(t, 0, nil, srv.URL), herokupartner.TokenAPIKey, herokuFinding(herokudouble.NewToken()))
			w := verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: tc.wantStatus, Msg: tc.wantMsg, Metrics: metrics.Summary{Requests: 1, Errors: 1}}
			if tc.header["Retry-After"] != "" {
				w = verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: tc.wantStatus, Msg: tc.wantMsg, RetryMin: 3 * time.Second, RetryMax: 3 * time.Second,
					Metrics: metrics.Summary{Requests: 1, RateLimitHits: 1}}
			}
			harness.Check(t, got, w)
		})
	}
}

// recordingTransport passes requests on and remembers what they carried.
type recordingTransport struct {
	mu   sync.Mutex
	base http.RoundTripper
	reqs []*http.Request
}

func (rt *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rt.mu.Lock()
	rt.reqs = append(rt.reqs, req.Clone(context.Background()))
	rt.mu.Unlock()
	return rt.base.RoundTrip(req)
}

// TestRequestShape: GET /account with the key only in the Authorization
// header (never in the URL or a body), the version-3 Accept header and
// this project's User-Agent.
func TestRequestShape(t *testing.T) {
	srv := partnertest.StartDouble(t, herokudouble.Start)
	rt := &recordingTransport{base: &http.Transport{}}
	v := harness.NewVerifier(t, 0, rt, srv.URL+"/")
	keys := []string{herokudouble.NewToken(), herokudouble.NewLegacyKey()}
	for _, key := range keys {
		srv.AddToken(key, herokudouble.NewUUID())
		if got := harness.Run(v, herokupartner.TokenAPIKey, herokuFinding(key)); got.Verdict.Reason != finding.ReasonPartnerConfirmed {
			t.Fatalf("Verify = %+v, %v", got.Verdict, got.Err)
		}
	}
	if len(rt.reqs) != len(keys) {
		t.Fatalf("transport saw %d requests", len(rt.reqs))
	}
	for i, r := range rt.reqs {
		key := keys[i]
		if r.Method != http.MethodGet || r.URL.String() != srv.URL+"/account" {
			t.Errorf("request %d: %s %s, want GET %s/account", i, r.Method, r.URL, srv.URL)
		}
		if strings.Contains(r.URL.String(), key) {
			t.Errorf("request %d carries the key in its URL", i)
		}
		if r.Body != nil && r.Body != http.NoBody {
			t.Errorf("request %d has a body", i)
		}
		if got := r.Header.Get("Authorization"); got != "Bearer "+key {
			t.Errorf("request %d: Authorization is not the Bearer key", i)
		}
		if got := r.Header.Get("Accept"); got != herokudouble.Accept {
			t.Errorf("request %d: Accept = %q", i, got)
		}
		if got := r.Header.Get("User-Agent"); got != partnerhttp.UserAgent {
			t.Errorf("request %d: User-Agent = %q", i, got)
		}
		for name, vs := range r.Header {
			if name == "Authorization" {
				continue
			}
			for _, val := range vs {
				if strings.Contains(val, key) {
					t.Errorf("request %d: header %s carries the key", i, name)
				}
			}
		}
		if got := srv.Controls.CountFor(key); got != 1 {
			t.Errorf("double counted %d requests for key %d", got, i)
		}
	}
}

func TestEndpointWithPathPrefix(t *testing.T) {
	var path string
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		path = r.URL.Path
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"01234567-89ab-4cde-8f01-23456789abcd","email":"a@example.com"}`))
	}))
	defer srv.Close()
	got := harness.Run(harness.NewVerifier(t, 0, nil, srv.URL+"/heroku/"), herokupartner.TokenAPIKey, herokuFinding(herokudouble.NewToken()))
	harness.Check(t, got, verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Metrics: metrics.Summary{Requests: 1}})
	mu.Lock()
	defer mu.Unlock()
	if path != "/heroku/account" {
		t.Errorf("path = %q, want /heroku/account", path)
	}
	if len(got.Verdict.Details) != 1 || strings.Contains(fmt.Sprint(got.Verdict.Details), "@") {
		t.Errorf("details = %v: only the account id, never the e-mail", got.Verdict.Details)
	}
}

func TestConcurrentVerifications(t *testing.T) {
	srv := partnertest.StartDouble(t, herokudouble.Start)
	cases := make([]verifiertest.ConcurrentCase, 16)
	for i := range cases {
		key, account := herokudouble.NewToken(), herokudouble.NewUUID()
		cases[i] = verifiertest.ConcurrentCase{TokenType: herokupartner.TokenAPIKey, Finding: herokuFinding(key), Want: finding.ReasonPartnerRejected}
		if i%2 == 0 {
			srv.AddToken(key, account)
			cases[i].Want, cases[i].Details = finding.ReasonPartnerConfirmed, finding.Details{herokupartner.DetailAccountID: account}
		}
	}
	harness.Concurrent(t, harness.NewVerifier(t, 0, nil, srv.URL), cases)
}

func TestCancelledContextIsAFault(t *testing.T) {
	srv := partnertest.StartDouble(t, herokudouble.Start)
	key := herokudouble.NewToken()
	srv.AddToken(key, herokudouble.NewUUID())
	verifiertest.CancelledIsAFault(t, harness.NewVerifier(t, 0, nil, srv.URL), herokupartner.TokenAPIKey, herokuFinding(key))
}

// TestNoSecretLeaks runs every class of answer and checks that no verdict,
// error or log line of the outcomes carries the key or a part of it.
func TestNoSecretLeaks(t *testing.T) {
	srv := partnertest.StartDouble(t, herokudouble.Start)
	modes := []herokudouble.Mode{herokudouble.Live, herokudouble.Forbidden, herokudouble.Suspended, herokudouble.Delinquent, herokudouble.Expired}
	sweep := harness.LeakSweep(t, harness.NewVerifier(t, 300*time.Millisecond, nil, srv.URL))
	for _, legacy := range []bool{false, true} {
		newKey := herokudouble.NewToken
		if legacy {
			newKey = herokudouble.NewLegacyKey
		}
		for _, live := range []bool{true, false} {
			for _, fl := range partnertest.Faults() {
				key := newKey()
				if live {
					srv.AddToken(key, herokudouble.NewUUID())
				}
				srv.Controls.Push(fl)
				sweep.Verify(fl.String(), herokupartner.TokenAPIKey, herokuFinding(key))
			}
		}
		for _, m := range modes {
			key := herokudouble.NewToken()
			srv.AddTokenMode(key, herokudouble.NewUUID(), m)
			sweep.Verify(fmt.Sprint("mode ", m), herokupartner.TokenAPIKey, herokuFinding(key))
		}
	}
	// A malformed key never leaves the process, but its message must not quote it either.
	sweep.Verify("malformed", "", herokuFinding(herokudouble.NewToken()[:50]))
	sweep.Check([]string{`"reason":"partner_confirmed"`, "http 500", "403 suspended", `"reason":"malformed_token"`}, func(k string) []string {
		if strings.HasPrefix(k, "HRKU-") {
			return []string{k[7:30], k[30:]}
		}
		return []string{k[:18], k[19:]}
	})
}

func TestNew(t *testing.T) {
	verifiertest.RefusesEndpoints(t, herokupartner.New, "heroku: new verifier:", herokupartner.DefaultEndpoint, "", "/account", "ftp://api.heroku.com")
}

// TestDefinition: the rule ids of contract §7 in both families, the one
// endpoint, and a rate whose least deployment (two instances) stays within
// the Limit.
func TestDefinition(t *testing.T) {
	d := herokupartner.Definition
	if d.Name != "heroku" || d.Title != "Heroku" {
		t.Errorf("name %q, title %q", d.Name, d.Title)
	}
	want := map[string]bool{"Heroku API Key": true, "heroku-api-key": true, "heroku-api-key-v2": true}
	for _, r := range d.Rules {
		if !want[r.ID] || r.TokenType != herokupartner.TokenAPIKey {
			t.Errorf("rule %+v", r)
		}
		delete(want, r.ID)
	}
	if len(want) != 0 {
		t.Errorf("missing rules %v", want)
	}
	if len(d.Endpoints) != 1 || d.Endpoints[0].Env != "PARTNER_ENDPOINT_HEROKU" || d.Endpoints[0].Default != "https://api.heroku.com" {
		t.Errorf("endpoints %+v", d.Endpoints)
	}
	if 2*d.Rate.PerSecond > d.Rate.Limit || d.Rate.Limit > 75.0/60 || !strings.HasPrefix(d.Rate.Source, "https://devcenter.heroku.com/") {
		t.Errorf("rate %+v", d.Rate)
	}
}
