package postmanpartner_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/postmandouble"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/verifiertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/metrics"
	postmanpartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/postman"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

const rule = "Postman API token"

// harness is the shared verifier harness bound to postman.
var harness = verifiertest.Harness{Def: postmanpartner.Definition, Op: "GET /me", AnyDetails: true}

func postmanFinding(tok string) finding.Finding {
	return finding.Finding{ID: "f-1", RuleID: rule, Token: finding.Secret(tok)}
}

func TestVerifyAgainstDouble(t *testing.T) {
	srv := partnertest.StartDouble(t, postmandouble.Start)
	one := metrics.Summary{Requests: 1}
	errored := metrics.Summary{Requests: 1, Errors: 1}
	network := metrics.Summary{Requests: 1, Errors: 1, NetworkErrors: 1}
	httpDate := func() string { return time.Now().Add(30 * time.Second).UTC().Format(http.TimeFormat) }

	tests := []struct {
		name       string
		tokenType  finding.TokenType
		setup      func(t *testing.T, key string) finding.Finding // registers keys, pushes faults
		retryAfter string
		timeout    time.Duration
		want       verifiertest.Want
	}{
		{name: "live key", setup: func(t *testing.T, key string) finding.Finding {
			srv.AddKey(key, 12345678)
			return postmanFinding(key)
		}, want: verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Metrics: one, Calls: 1}},
		{name: "unknown key", setup: func(t *testing.T, key string) finding.Finding {
			return postmanFinding(key)
		}, want: verifiertest.Want{Reason: finding.ReasonPartnerRejected, Metrics: one, Calls: 1}},
		{name: "revoked key", setup: func(t *testing.T, key string) finding.Finding {
			srv.AddKey(key, 99)
			srv.RevokeKey(key)
			return postmanFinding(key)
		}, want: verifiertest.Want{Reason: finding.ReasonPartnerRejected, Metrics: one, Calls: 1}},
		{name: "malformed key: no call", setup: func(t *testing.T, key string) finding.Finding {
			srv.AddKey(key[:40], 1)
			return postmanFinding(key[:40])
		}, want: verifiertest.Want{Reason: finding.ReasonMalformedToken, Msg: "not a Postman API key"}},
		{name: "upper-case key: no call", setup: func(t *testing.T, key string) finding.Finding {
			return postmanFinding(strings.ToUpper(key))
		}, want: verifiertest.Want{Reason: finding.ReasonMalformedToken}},
		{name: "other partner's token type: no call", tokenType: finding.TokenGCPAPIKey, setup: func(t *testing.T, key string) finding.Finding {
			srv.AddKey(key, 1)
			return postmanFinding(key)
		}, want: verifiertest.Want{Reason: finding.ReasonUnsupportedTokenType, Msg: "postman_api_key"}},
		{name: "500", setup: fault(srv, partnertest.Fault500), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 500, Msg: "http 500", Metrics: errored, Calls: 1}},
		{name: "502 HTML", setup: fault(srv, partnertest.Fault502), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 502, Metrics: errored, Calls: 1}},
		{name: "503", setup: fault(srv, partnertest.Fault503), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 503, Metrics: errored, Calls: 1}},
		{name: "504 HTML", setup: fault(srv, partnertest.Fault504), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 504, Metrics: errored, Calls: 1}},
		{name: "429 Retry-After seconds", retryAfter: "7", setup: fault(srv, partnertest.Fault429),
			want: verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 429, RetryMin: 7 * time.Second, RetryMax: 7 * time.Second, Msg: "rate limited", Metrics: metrics.Summary{Requests: 1, RateLimitHits: 1}, Calls: 1}},
		{name: "429 Retry-After HTTP date", retryAfter: httpDate(), setup: fault(srv, partnertest.Fault429),
			want: verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 429, RetryMin: 27 * time.Second, RetryMax: 30 * time.Second, Metrics: metrics.Summary{Requests: 1, RateLimitHits: 1}, Calls: 1}},
		// Postman's own 429 headers without Retry-After: X-RateLimit-RetryAfter
		// seconds, then X-RateLimit-Reset epoch seconds (both about a minute).
		{name: "429 X-RateLimit-RetryAfter and -Reset only", retryAfter: "", setup: fault(srv, partnertest.Fault429),
			want: verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 429, RetryMin: 59 * time.Second, RetryMax: 61 * time.Second, Metrics: metrics.Summary{Requests: 1, RateLimitHits: 1}, Calls: 1}},
		{name: "429 with the support article's nested body", retryAfter: "", setup: func(t *testing.T, key string) finding.Finding {
			srv.AddKey(key, 5)
			srv.SetLegacyRateLimitBody(true)
			srv.Controls.Push(partnertest.Fault429)
			return postmanFinding(key)
		}, want: verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 429, RetryMin: 59 * time.Second, RetryMax: 61 * time.Second, Metrics: metrics.Summary{Requests: 1, RateLimitHits: 1}, Calls: 1}},
		{name: "429 on a live key", retryAfter: "1", setup: func(t *testing.T, key string) finding.Finding {
			srv.AddKey(key, 5)
			srv.Controls.Push(partnertest.Fault429)
			return postmanFinding(key)
		}, want: verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 429, RetryMin: time.Second, RetryMax: time.Second, Metrics: metrics.Summary{Requests: 1, RateLimitHits: 1}, Calls: 1}},
		{name: "reset", setup: fault(srv, partnertest.FaultReset), want: verifiertest.Want{Kind: verify.PartnerError, Network: true, Msg: "network error", Metrics: network, Calls: 1}},
		{name: "hang with a short timeout", timeout: 300 * time.Millisecond, setup: fault(srv, partnertest.FaultHang),
			want: verifiertest.Want{Kind: verify.PartnerError, Network: true, Msg: "timeout", Metrics: network, Calls: 1}},
		{name: "slow live answer within the timeout", timeout: 2 * time.Second, setup: func(t *testing.T, key string) finding.Finding {
			srv.AddKey(key, 5)
			srv.Controls.SetLatency(100*time.Millisecond, 0)
			return postmanFinding(key)
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
			srv.SetLegacyRateLimitBody(false)
			srv.Controls.SetRetryAfter(tc.retryAfter)
			key := postmandouble.NewAPIKey()
			f := tc.setup(t, key)
			tt := tc.tokenType
			if tt == "" {
				tt = finding.TokenPostmanAPIKey
			}
			got := harness.Run(harness.NewVerifier(t, tc.timeout, nil, srv.URL), tt, f)
			harness.Check(t, got, tc.want)
			if got.Verdict.Reason == finding.ReasonPartnerConfirmed {
				id := got.Verdict.Details[postmanpartner.DetailUserID]
				if id == "" || len(got.Verdict.Details) != 1 {
					t.Errorf("details = %v, want only %s", got.Verdict.Details, postmanpartner.DetailUserID)
				}
				if id != "12345678" && id != "5" {
					t.Errorf("postman_user_id = %q, not the registered user", id)
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
func fault(srv *postmandouble.Server, f partnertest.Fault) func(*testing.T, string) finding.Finding {
	return func(_ *testing.T, key string) finding.Finding {
		srv.AddKey(key, 5)
		srv.Controls.Push(f)
		return postmanFinding(key)
	}
}

// TestVerifyUnusableAnswers covers answers the double never gives but a
// proxy, a partner change or a misconfiguration can: each proves nothing.
func TestVerifyUnusableAnswers(t *testing.T) {
	canary := partnertest.RedirectCanary(t)
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string
		header      map[string]string
		wantStatus  int
		wantMsg     string
	}{
		{"200 JSON without user", 200, "application/json", `{"ok":true}`, nil, 200, "proves nothing"},
		{"200 user not an object", 200, "application/json", `{"user":"someone"}`, nil, 200, "proves nothing"},
		{"200 user without id", 200, "application/json", `{"user":{"username":"x"}}`, nil, 200, "proves nothing"},
		{"200 user id zero", 200, "application/json", `{"user":{"id":0}}`, nil, 200, "proves nothing"},
		{"200 user id fractional", 200, "application/json", `{"user":{"id":1.5}}`, nil, 200, "proves nothing"},
		{"200 user id a string", 200, "application/json", `{"user":{"id":"7"}}`, nil, 200, "proves nothing"},
		{"200 two documents", 200, "application/json", `{"user":{"id":7}}{"user":{"id":8}}`, nil, 200, "proves nothing"},
		{"200 HTML captive portal", 200, "text/html", `<html><body>Sign in to Wi-Fi</body></html>`, nil, 200, "HTML page"},
		{"401 HTML without a content type", 401, "", `<!DOCTYPE html><title>401</title>`, nil, 401, "HTML page"},
		{"200 too long", 200, "application/json", `{"user":{"id":7},"pad":"` + strings.Repeat("x", 70*1024) + `"}`, nil, 200, "read body"},
		{"401 JSON of another shape", 401, "application/json", `{"error":{"name":"Unauthorized","message":"token expired"}}`, nil, 401, "AuthenticationError"},
		{"401 flat error", 401, "application/json", `{"error":"AuthenticationError"}`, nil, 401, "AuthenticationError"},
		{"401 empty", 401, "", ``, nil, 401, "AuthenticationError"},
		{"403 Postman-shaped JSON", 403, "application/json", `{"error":{"name":"forbiddenError","message":"Forbidden"}}`, nil, 403, "unexpected http status 403"},
		{"404", 404, "application/json", `{"error":{"name":"notFound"}}`, nil, 404, "unexpected http status 404"},
		{"302 to elsewhere", 302, "", "", map[string]string{"Location": canary.URL + "/me"}, 302, "unexpected http status 302"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := partnertest.ServeAnswer(t, tc.status, tc.contentType, tc.body, tc.header)
			got := harness.Run(harness.NewVerifier(t, 0, nil, srv.URL), finding.TokenPostmanAPIKey, postmanFinding(postmandouble.NewAPIKey()))
			harness.Check(t, got, verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: tc.wantStatus, Msg: tc.wantMsg,
				Metrics: metrics.Summary{Requests: 1, Errors: 1}})
		})
	}
}

// recordingTransport passes requests on and remembers where they went.
type recordingTransport struct {
	mu    sync.Mutex
	base  http.RoundTripper
	hosts []string
	uas   []string
	keys  int
}

func (rt *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rt.mu.Lock()
	rt.hosts = append(rt.hosts, req.URL.Scheme+"://"+req.URL.Host+req.URL.Path)
	rt.uas = append(rt.uas, req.Header.Get("User-Agent"))
	if req.Header.Get("X-API-Key") != "" && !strings.Contains(req.URL.String(), req.Header.Get("X-API-Key")) {
		rt.keys++
	}
	rt.mu.Unlock()
	return rt.base.RoundTrip(req)
}

func TestRequestShape(t *testing.T) {
	srv := partnertest.StartDouble(t, postmandouble.Start)
	key := postmandouble.NewAPIKey()
	srv.AddKey(key, 3)
	rt := &recordingTransport{base: &http.Transport{}}
	v := harness.NewVerifier(t, 0, rt, srv.URL+"/")
	for range 3 {
		if got := harness.Run(v, finding.TokenPostmanAPIKey, postmanFinding(key)); got.Verdict.Reason != finding.ReasonPartnerConfirmed {
			t.Fatalf("Verify = %+v, %v", got.Verdict, got.Err)
		}
	}
	if len(rt.hosts) != 3 {
		t.Fatalf("transport saw %d requests", len(rt.hosts))
	}
	for i := range rt.hosts {
		if rt.hosts[i] != srv.URL+"/me" {
			t.Errorf("request %d went to %s, want %s/me", i, rt.hosts[i], srv.URL)
		}
		if rt.uas[i] != partnerhttp.UserAgent {
			t.Errorf("User-Agent = %q", rt.uas[i])
		}
	}
	if rt.keys != 3 {
		t.Errorf("%d of 3 requests carried the key in X-API-Key only", rt.keys)
	}
	if got := srv.Controls.CountFor(key); got != 3 {
		t.Errorf("double counted %d requests for the key", got)
	}
}

func TestEndpointWithPathPrefix(t *testing.T) {
	var path atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path.Store(r.URL.Path)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"user":{"id":31}}`))
	}))
	defer srv.Close()
	got := harness.Run(harness.NewVerifier(t, 0, nil, srv.URL+"/postman/"), finding.TokenPostmanAPIKey, postmanFinding(postmandouble.NewAPIKey()))
	harness.Check(t, got, verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Metrics: metrics.Summary{Requests: 1}})
	if p, _ := path.Load().(string); p != "/postman/me" {
		t.Errorf("path = %q, want /postman/me", p)
	}
	if got.Verdict.Details[postmanpartner.DetailUserID] != "31" {
		t.Errorf("details = %v", got.Verdict.Details)
	}
}

func TestConcurrentVerifications(t *testing.T) {
	srv := partnertest.StartDouble(t, postmandouble.Start)
	cases := make([]verifiertest.ConcurrentCase, 16)
	for i := range cases {
		key := postmandouble.NewAPIKey()
		cases[i] = verifiertest.ConcurrentCase{TokenType: finding.TokenPostmanAPIKey, Finding: postmanFinding(key), Want: finding.ReasonPartnerRejected}
		if i%2 == 0 {
			srv.AddKey(key, 1000+i)
			cases[i].Want, cases[i].Details = finding.ReasonPartnerConfirmed, finding.Details{postmanpartner.DetailUserID: strconv.Itoa(1000 + i)}
		}
	}
	harness.Concurrent(t, harness.NewVerifier(t, 0, nil, srv.URL), cases)
	for i, c := range cases {
		if n := srv.Controls.CountFor(c.Finding.Token.Reveal()); n != 1 {
			t.Errorf("key %d: double saw %d requests", i, n)
		}
	}
}

func TestCancelledContextIsAFault(t *testing.T) {
	srv := partnertest.StartDouble(t, postmandouble.Start)
	key := postmandouble.NewAPIKey()
	srv.AddKey(key, 1)
	verifiertest.CancelledIsAFault(t, harness.NewVerifier(t, 0, nil, srv.URL), finding.TokenPostmanAPIKey, postmanFinding(key))
}

// TestNoSecretLeaks runs every class of answer and checks that no verdict,
// error or log line of the outcomes carries the key.
func TestNoSecretLeaks(t *testing.T) {
	srv := partnertest.StartDouble(t, postmandouble.Start)
	sweep := harness.LeakSweep(t, harness.NewVerifier(t, 300*time.Millisecond, nil, srv.URL))
	for _, live := range []bool{true, false} {
		for _, fl := range partnertest.Faults() {
			key := postmandouble.NewAPIKey()
			if live {
				srv.AddKey(key, 77)
			}
			srv.Controls.Push(fl)
			sweep.Verify(fl.String(), finding.TokenPostmanAPIKey, postmanFinding(key))
		}
	}
	// A malformed key never leaves the process, but its message must not quote it either.
	sweep.Verify("malformed", finding.TokenPostmanAPIKey, postmanFinding("PMAK-"+strings.Repeat("z", 24)+"-"+postmandouble.NewAPIKey()[30:]))
	sweep.Check([]string{`"reason":"partner_confirmed"`, "http 500", `"reason":"malformed_token"`}, func(k string) []string { return []string{k[5:29], k[30:]} })
}

func TestNew(t *testing.T) {
	verifiertest.RefusesEndpoints(t, postmanpartner.New, "postman: new verifier:", postmanpartner.DefaultEndpoint, "", "/me", "ftp://api.getpostman.com")
}

// TestEnforcedRateLimit drives the double's own limiter rather than a
// scripted 429: the second request inside the window is refused.
func TestEnforcedRateLimit(t *testing.T) {
	srv := partnertest.StartDouble(t, postmandouble.Start)
	key := postmandouble.NewAPIKey()
	srv.AddKey(key, 8)
	srv.Controls.SetRetryAfter("2")
	v := harness.NewVerifier(t, 0, nil, srv.URL)
	harness.EnforcedRateLimit(t, v, srv.Controls, finding.TokenPostmanAPIKey, postmanFinding(key),
		verifiertest.Want{}, verifiertest.Want{RetryMin: 2 * time.Second, RetryMax: 2 * time.Second})
}
