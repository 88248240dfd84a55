package gitlabpartner_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/gitlabdouble"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/verifiertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/metrics"
	gitlabpartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/gitlab"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

const rule = "gitlab_personal_access_token"

// harness is the shared verifier harness bound to gitlab.
var harness = verifiertest.Harness{Def: gitlabpartner.Definition, Op: gitlabpartner.Op}

func gitlabFinding(tok string) finding.Finding {
	return finding.Finding{ID: "f-1", RuleID: rule, Token: finding.Secret(tok)}
}

func scopes(s ...string) finding.Details { return finding.Details{gitlabpartner.DetailScopes: s} }

// TestVerifyAgainstDouble has one row per answer GitLab (or something in
// its place) gives to GET /api/v4/personal_access_tokens/self, and the
// verdict or fault each must give.
func TestVerifyAgainstDouble(t *testing.T) {
	srv := partnertest.StartDouble(t, gitlabdouble.Start)
	one := metrics.Summary{Requests: 1}
	errored := metrics.Summary{Requests: 1, Errors: 1}
	network := metrics.Summary{Requests: 1, Errors: 1, NetworkErrors: 1}
	limited := metrics.Summary{Requests: 1, RateLimitHits: 1}
	httpDate := func() string { return time.Now().Add(30 * time.Second).UTC().Format(http.TimeFormat) }
	state := func(st gitlabdouble.State, sc []string, expires string) func(*testing.T, string) finding.Finding {
		return func(_ *testing.T, tok string) finding.Finding {
			srv.SetToken(tok, st, sc, expires)
			return gitlabFinding(tok)
		}
	}

	tests := []struct {
		name       string
		tokenType  finding.TokenType
		token      func() string // gitlabdouble.NewToken when nil
		setup      func(t *testing.T, tok string) finding.Finding
		retryAfter string                        // the wait the fault layer gives a 429
		headers    gitlabdouble.RateLimitHeaders // which wait headers the 429 carries
		timeout    time.Duration
		want       verifiertest.Want
	}{
		// 200 with "active": true: live; details scopes and expires_at (a date, omitted when null).
		{name: "active token with expiry", setup: state(gitlabdouble.Active, []string{"api", "read_repository"}, "2026-12-31"),
			want: verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Details: finding.Details{"scopes": []string{"api", "read_repository"}, "expires_at": "2026-12-31"}, Metrics: one, Calls: 1}},
		{name: "active token without expiry", setup: state(gitlabdouble.Active, []string{"read_user"}, ""),
			want: verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Details: scopes("read_user"), Metrics: one, Calls: 1}},
		{name: "active routable token", token: gitlabdouble.NewRoutableToken, setup: state(gitlabdouble.Active, []string{"api"}, "2027-01-01"),
			want: verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Details: finding.Details{"scopes": []string{"api"}, "expires_at": "2027-01-01"}, Metrics: one, Calls: 1}},
		{name: "found under a gitleaks rule", setup: func(_ *testing.T, tok string) finding.Finding {
			srv.AddToken(tok, "api")
			f := gitlabFinding(tok)
			f.RuleID = "gitlab-pat"
			return f
		}, want: verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Details: scopes("api"), Metrics: one, Calls: 1}},
		// 403 insufficient_scope: GitLab authenticated the token; live, no details.
		{name: "restricted token: 403 insufficient_scope", setup: state(gitlabdouble.Restricted, gitlabdouble.RestrictedScopes, ""),
			want: verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Metrics: one, Calls: 1}},
		// GitLab's rejections.
		{name: "unknown token: 401 message", setup: func(_ *testing.T, tok string) finding.Finding { return gitlabFinding(tok) },
			want: verifiertest.Want{Reason: finding.ReasonPartnerRejected, Metrics: one, Calls: 1}},
		{name: "expired token: 401 invalid_token", setup: state(gitlabdouble.Expired, gitlabdouble.DefaultScopes, "2024-01-01"),
			want: verifiertest.Want{Reason: finding.ReasonPartnerRejected, Metrics: one, Calls: 1}},
		{name: "revoked token: 401 invalid_token", setup: func(_ *testing.T, tok string) finding.Finding {
			srv.AddToken(tok)
			srv.RevokeToken(tok)
			return gitlabFinding(tok)
		}, want: verifiertest.Want{Reason: finding.ReasonPartnerRejected, Metrics: one, Calls: 1}},
		{name: "inactive token: 200 active false", setup: state(gitlabdouble.Inactive200, gitlabdouble.DefaultScopes, "2024-01-01"),
			want: verifiertest.Want{Reason: finding.ReasonPartnerRejected, Metrics: one, Calls: 1}},
		{name: "revoked token: 200 revoked true", setup: state(gitlabdouble.Revoked200, gitlabdouble.DefaultScopes, ""),
			want: verifiertest.Want{Reason: finding.ReasonPartnerRejected, Metrics: one, Calls: 1}},
		// The format gate: no call.
		{name: "malformed: 19 characters after glpat-", setup: func(_ *testing.T, tok string) finding.Finding {
			srv.AddToken(tok[:25])
			return gitlabFinding(tok[:25])
		}, want: verifiertest.Want{Reason: finding.ReasonMalformedToken, Msg: "not a GitLab personal access token"}},
		{name: "malformed: another prefix", setup: func(_ *testing.T, tok string) finding.Finding {
			return gitlabFinding("glptt-" + tok[6:])
		}, want: verifiertest.Want{Reason: finding.ReasonMalformedToken}},
		{name: "malformed: a character outside the alphabet", setup: func(_ *testing.T, tok string) finding.Finding {
			return gitlabFinding(tok + "+")
		}, want: verifiertest.Want{Reason: finding.ReasonMalformedToken}},
		{name: "other partner's token type: no call", tokenType: finding.TokenPostmanAPIKey, setup: func(_ *testing.T, tok string) finding.Finding {
			srv.AddToken(tok)
			return gitlabFinding(tok)
		}, want: verifiertest.Want{Reason: finding.ReasonUnsupportedTokenType, Msg: "gitlab_personal_access_token"}},
		// 429 "Retry later" (plain text), each wait header alone, then all of them.
		{name: "429 Retry-After 7 s", retryAfter: "7", headers: gitlabdouble.RetryAfterOnly, setup: fault(srv, partnertest.Fault429),
			want: verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 429, RetryMin: 7 * time.Second, RetryMax: 8 * time.Second, Msg: "rate limited", Metrics: limited, Calls: 1}},
		{name: "429 RateLimit-Reset (epoch) 7 s away", retryAfter: "7", headers: gitlabdouble.ResetOnly, setup: fault(srv, partnertest.Fault429),
			want: verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 429, RetryMin: 6 * time.Second, RetryMax: 8 * time.Second, Metrics: limited, Calls: 1}},
		{name: "429 RateLimit-ResetTime (HTTP date) 30 s away", retryAfter: httpDate(), headers: gitlabdouble.ResetTimeOnly, setup: fault(srv, partnertest.Fault429),
			want: verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 429, RetryMin: 27 * time.Second, RetryMax: 30 * time.Second, Metrics: limited, Calls: 1}},
		{name: "429 with all wait headers", retryAfter: "12", headers: gitlabdouble.AllHeaders, setup: fault(srv, partnertest.Fault429),
			want: verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 429, RetryMin: 12 * time.Second, RetryMax: 13 * time.Second, Metrics: limited, Calls: 1}},
		{name: "429 without a wait header", retryAfter: "", headers: gitlabdouble.NoWait, setup: fault(srv, partnertest.Fault429),
			want: verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 429, Metrics: limited, Calls: 1}},
		{name: "429 on an unknown token", retryAfter: "2", headers: gitlabdouble.AllHeaders, setup: func(_ *testing.T, tok string) finding.Finding {
			srv.Controls.Push(partnertest.Fault429)
			return gitlabFinding(tok)
		}, want: verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 429, RetryMin: 2 * time.Second, RetryMax: 3 * time.Second, Metrics: limited, Calls: 1}},
		// Faults of the exchange.
		{name: "500", setup: fault(srv, partnertest.Fault500), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 500, Msg: "http 500", Metrics: errored, Calls: 1}},
		{name: "502 HTML", setup: fault(srv, partnertest.Fault502), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 502, Metrics: errored, Calls: 1}},
		{name: "503", setup: fault(srv, partnertest.Fault503), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 503, Metrics: errored, Calls: 1}},
		{name: "504 HTML", setup: fault(srv, partnertest.Fault504), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 504, Metrics: errored, Calls: 1}},
		{name: "reset", setup: fault(srv, partnertest.FaultReset), want: verifiertest.Want{Kind: verify.PartnerError, Network: true, Msg: "network error", Metrics: network, Calls: 1}},
		{name: "hang with a short timeout", timeout: 300 * time.Millisecond, setup: fault(srv, partnertest.FaultHang),
			want: verifiertest.Want{Kind: verify.PartnerError, Network: true, Msg: "timeout", Metrics: network, Calls: 1}},
		{name: "slow live answer within the timeout", timeout: 2 * time.Second, setup: func(_ *testing.T, tok string) finding.Finding {
			srv.AddToken(tok, "api")
			srv.Controls.SetLatency(100*time.Millisecond, 0)
			return gitlabFinding(tok)
		}, want: verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Details: scopes("api"), Metrics: one, Calls: 1}},
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
			srv.SetRateLimitHeaders(tc.headers)
			newTok := tc.token
			if newTok == nil {
				newTok = gitlabdouble.NewToken
			}
			f := tc.setup(t, newTok())
			tt := tc.tokenType
			if tt == "" {
				tt = gitlabpartner.TokenPAT
			}
			got := harness.Run(harness.NewVerifier(t, tc.timeout, nil, srv.URL), tt, f)
			harness.Check(t, got, tc.want)
			if calls := srv.Controls.Requests(); calls != tc.want.Calls {
				t.Errorf("double saw %d requests, want %d", calls, tc.want.Calls)
			}
		})
	}
}

// fault returns a row setup that registers the token as live and scripts
// f, so that any verdict but a fault would be wrong.
func fault(srv *gitlabdouble.Server, f partnertest.Fault) func(*testing.T, string) finding.Finding {
	return func(_ *testing.T, tok string) finding.Finding {
		srv.AddToken(tok)
		srv.Controls.Push(f)
		return gitlabFinding(tok)
	}
}

// TestVerifyOtherAnswers covers answers the double never gives but a proxy,
// a change at GitLab, a self-managed instance or a misconfiguration can:
// none is inactive unless it is GitLab's own rejection.
func TestVerifyOtherAnswers(t *testing.T) {
	canary := partnertest.RedirectCanary(t)
	// A fixed token whose body is a valid scope name, to show an echo of it is caught.
	const tok = "glpat-abcdefghij0123456789"
	limited := metrics.Summary{Requests: 1, RateLimitHits: 1}
	const doc = `{"id":7,"name":"x","revoked":false,"created_at":"2025-01-01T00:00:00.000Z","scopes":["api"],"user_id":1,"last_used_at":null,"active":true,"expires_at":null}`
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string
		header      map[string]string
		want        verifiertest.Want
	}{
		{"200 date-time expiry", 200, "application/json", strings.Replace(doc, `"expires_at":null`, `"expires_at":"2026-12-31T10:00:00+02:00"`, 1), nil,
			verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Details: finding.Details{"scopes": []string{"api"}, "expires_at": "2026-12-31T08:00:00Z"}}},
		{"200 empty scopes", 200, "application/json", strings.Replace(doc, `["api"]`, `[]`, 1), nil,
			verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Details: finding.Details{"scopes": []string{}}}},
		{"200 active and revoked", 200, "application/json", strings.Replace(doc, `"revoked":false`, `"revoked":true`, 1), nil,
			verifiertest.Want{Reason: finding.ReasonPartnerRejected}},
		{"200 JSON without active", 200, "application/json", strings.Replace(doc, `"active":true,`, ``, 1), nil, verifiertest.Want{HTTPStatus: 200, Msg: "proves nothing"}},
		{"200 active a string", 200, "application/json", strings.Replace(doc, `"active":true`, `"active":"true"`, 1), nil, verifiertest.Want{HTTPStatus: 200, Msg: "proves nothing"}},
		{"200 without revoked", 200, "application/json", strings.Replace(doc, `"revoked":false,`, ``, 1), nil, verifiertest.Want{HTTPStatus: 200, Msg: "proves nothing"}},
		{"200 without id", 200, "application/json", strings.Replace(doc, `"id":7,`, ``, 1), nil, verifiertest.Want{HTTPStatus: 200, Msg: "proves nothing"}},
		{"200 scopes null", 200, "application/json", strings.Replace(doc, `["api"]`, `null`, 1), nil, verifiertest.Want{HTTPStatus: 200, Msg: "proves nothing"}},
		{"200 scope not a scope name", 200, "application/json", strings.Replace(doc, `["api"]`, `["Read API"]`, 1), nil, verifiertest.Want{HTTPStatus: 200, Msg: "proves nothing"}},
		{"200 scopes echo the token", 200, "application/json", strings.Replace(doc, `["api"]`, `["`+tok+`"]`, 1), nil, verifiertest.Want{HTTPStatus: 200, Msg: "proves nothing"}},
		{"200 scopes echo the token's body", 200, "application/json", strings.Replace(doc, `["api"]`, `["x`+tok[6:]+`"]`, 1), nil, verifiertest.Want{HTTPStatus: 200, Msg: "proves nothing"}},
		{"200 expiry not a date", 200, "application/json", strings.Replace(doc, `"expires_at":null`, `"expires_at":"soon"`, 1), nil, verifiertest.Want{HTTPStatus: 200, Msg: "proves nothing"}},
		{"200 upper-case Active", 200, "application/json", strings.Replace(doc, `"active"`, `"Active"`, 1), nil, verifiertest.Want{HTTPStatus: 200, Msg: "proves nothing"}},
		{"200 two documents", 200, "application/json", doc + doc, nil, verifiertest.Want{HTTPStatus: 200, Msg: "proves nothing"}},
		{"200 HTML sign-in page", 200, "text/html", `<html><body>Sign in</body></html>`, nil, verifiertest.Want{HTTPStatus: 200, Msg: "HTML page"}},
		{"200 too long", 200, "application/json", strings.Replace(doc, `"name":"x"`, `"name":"`+strings.Repeat("x", 70*1024)+`"`, 1), nil, verifiertest.Want{HTTPStatus: 200, Msg: "read body"}},
		{"401 Bad Access Token", 401, "application/json", `{"error":"invalid_token","error_description":"Bad Access Token."}`, nil, verifiertest.Want{Reason: finding.ReasonPartnerRejected}},
		{"401 invalid_token without description", 401, "application/json", `{"error":"invalid_token"}`, nil, verifiertest.Want{Reason: finding.ReasonPartnerRejected}},
		{"401 dpop_error", 401, "application/json", `{"error":"dpop_error","error_description":"DPoP validation error"}`, nil, verifiertest.Want{HTTPStatus: 401, Msg: "dpop_error"}},
		{"401 other OAuth error", 401, "application/json", `{"error":"weird_thing"}`, nil, verifiertest.Want{HTTPStatus: 401, Msg: "another OAuth error"}},
		{"401 HTML without a content type", 401, "", `<!DOCTYPE html><title>401</title>`, nil, verifiertest.Want{HTTPStatus: 401, Msg: "HTML page"}},
		{"401 empty", 401, "", ``, nil, verifiertest.Want{HTTPStatus: 401, Msg: "error body"}},
		{"401 other message", 401, "application/json", `{"message":"Unauthorized"}`, nil, verifiertest.Want{HTTPStatus: 401, Msg: "error body"}},
		{"401 error a number", 401, "application/json", `{"error":401}`, nil, verifiertest.Want{HTTPStatus: 401, Msg: "error body"}},
		{"401 upper-case Message", 401, "application/json", `{"Message":"401 Unauthorized"}`, nil, verifiertest.Want{HTTPStatus: 401, Msg: "error body"}},
		{"401 truncated", 401, "application/json", `{"message":"401 Unauthorized"`, nil, verifiertest.Want{HTTPStatus: 401, Msg: "error body"}},
		{"403 Forbidden message", 403, "application/json", `{"message":"403 Forbidden"}`, nil, verifiertest.Want{HTTPStatus: 403, Msg: "403"}},
		{"403 invalid_token", 403, "application/json", `{"error":"invalid_token"}`, nil, verifiertest.Want{HTTPStatus: 403, Msg: "403"}},
		{"403 insufficient_scope with Retry-After", 403, "application/json", `{"error":"insufficient_scope"}`, map[string]string{"Retry-After": "5"},
			verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 403, RetryMin: 5 * time.Second, RetryMax: 5 * time.Second, Msg: "rate limited", Metrics: limited}},
		{"404", 404, "application/json", `{"error":"404 Not Found"}`, nil, verifiertest.Want{HTTPStatus: 404, Msg: "unexpected http status 404"}},
		{"400", 400, "application/json", `{"message":"400 Bad request"}`, nil, verifiertest.Want{HTTPStatus: 400, Msg: "unexpected http status 400"}},
		{"302 to the sign-in page", 302, "", "", map[string]string{"Location": canary.URL + "/users/sign_in"}, verifiertest.Want{HTTPStatus: 302, Msg: "unexpected http status 302"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := partnertest.ServeAnswer(t, tc.status, tc.contentType, tc.body, tc.header)
			w := tc.want
			if w.Reason != "" {
				w.Metrics = metrics.Summary{Requests: 1}
			} else if w.Kind == verify.PartnerError { // the zero kind: an unusable answer
				w.Metrics = metrics.Summary{Requests: 1, Errors: 1}
			}
			harness.Check(t, harness.Run(harness.NewVerifier(t, 0, nil, srv.URL), gitlabpartner.TokenPAT, gitlabFinding(tok)), w)
		})
	}
}

// recordingTransport passes requests on and remembers their shape.
type recordingTransport struct {
	mu       sync.Mutex
	base     http.RoundTripper
	urls     []string
	uas      []string
	inHeader int
	inAuth   int
	bodies   int
}

func (rt *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rt.mu.Lock()
	rt.urls = append(rt.urls, req.URL.String())
	rt.uas = append(rt.uas, req.Header.Get("User-Agent"))
	if tok := req.Header.Get("PRIVATE-TOKEN"); tok != "" && !strings.Contains(req.URL.String(), tok[6:]) {
		rt.inHeader++
	}
	if req.Header.Get("Authorization") != "" {
		rt.inAuth++
	}
	if req.Body != nil && req.Body != http.NoBody {
		rt.bodies++
	}
	rt.mu.Unlock()
	return rt.base.RoundTrip(req)
}

// TestRequestShape: GET <base>/api/v4/personal_access_tokens/self, the
// token only in the PRIVATE-TOKEN header (never in the URL, a body or
// another header), our User-Agent set.
func TestRequestShape(t *testing.T) {
	srv := partnertest.StartDouble(t, gitlabdouble.Start)
	tok := gitlabdouble.NewToken()
	srv.AddToken(tok)
	rt := &recordingTransport{base: &http.Transport{}}
	v := harness.NewVerifier(t, 0, rt, srv.URL+"/")
	for range 3 {
		if got := harness.Run(v, gitlabpartner.TokenPAT, gitlabFinding(tok)); got.Verdict.Reason != finding.ReasonPartnerConfirmed {
			t.Fatalf("Verify = %+v, %v", got.Verdict, got.Err)
		}
	}
	if len(rt.urls) != 3 {
		t.Fatalf("transport saw %d requests", len(rt.urls))
	}
	for i := range rt.urls {
		if rt.urls[i] != srv.URL+"/api/v4/personal_access_tokens/self" {
			t.Errorf("request %d went to %s", i, rt.urls[i])
		}
		if rt.uas[i] != partnerhttp.UserAgent {
			t.Errorf("User-Agent = %q", rt.uas[i])
		}
	}
	if rt.inHeader != 3 || rt.inAuth != 0 || rt.bodies != 0 {
		t.Errorf("%d of 3 requests carried the token in PRIVATE-TOKEN only; %d an Authorization header; %d a body", rt.inHeader, rt.inAuth, rt.bodies)
	}
	if got := srv.Controls.CountFor(tok); got != 3 {
		t.Errorf("double counted %d requests for the token", got)
	}
}

// TestEndpointWithPathPrefix: a self-managed instance under a relative URL
// root keeps its path.
func TestEndpointWithPathPrefix(t *testing.T) {
	var path atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path.Store(r.URL.Path)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":1,"revoked":false,"scopes":["api"],"active":true,"expires_at":null}`))
	}))
	defer srv.Close()
	got := harness.Run(harness.NewVerifier(t, 0, nil, srv.URL+"/gitlab/"), gitlabpartner.TokenPAT, gitlabFinding(gitlabdouble.NewToken()))
	harness.Check(t, got, verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Details: scopes("api"), Metrics: metrics.Summary{Requests: 1}})
	if p, _ := path.Load().(string); p != "/gitlab/api/v4/personal_access_tokens/self" {
		t.Errorf("path = %q", p)
	}
}

func TestConcurrentVerifications(t *testing.T) {
	srv := partnertest.StartDouble(t, gitlabdouble.Start)
	cases := make([]verifiertest.ConcurrentCase, 16)
	for i := range cases {
		tok := gitlabdouble.NewToken()
		cases[i] = verifiertest.ConcurrentCase{TokenType: gitlabpartner.TokenPAT, Finding: gitlabFinding(tok), Want: finding.ReasonPartnerRejected}
		if i%2 == 0 {
			srv.AddToken(tok, fmt.Sprintf("scope_n%d", i))
			cases[i].Want, cases[i].Details = finding.ReasonPartnerConfirmed, scopes(fmt.Sprintf("scope_n%d", i))
		}
	}
	harness.Concurrent(t, harness.NewVerifier(t, 0, nil, srv.URL), cases)
}

func TestCancelledContextIsAFault(t *testing.T) {
	srv := partnertest.StartDouble(t, gitlabdouble.Start)
	tok := gitlabdouble.NewToken()
	srv.AddToken(tok)
	verifiertest.CancelledIsAFault(t, harness.NewVerifier(t, 0, nil, srv.URL), gitlabpartner.TokenPAT, gitlabFinding(tok))
}

// TestNoSecretLeaks runs every class of answer and checks that no verdict,
// error or log line of the outcomes carries the token or a part of it.
func TestNoSecretLeaks(t *testing.T) {
	srv := partnertest.StartDouble(t, gitlabdouble.Start)
	sweep := harness.LeakSweep(t, harness.NewVerifier(t, 300*time.Millisecond, nil, srv.URL))
	for _, live := range []bool{true, false} {
		for _, fl := range partnertest.Faults() {
			tok := gitlabdouble.NewToken()
			if live {
				srv.AddToken(tok)
			}
			srv.Controls.Push(fl)
			sweep.Verify(fl.String(), gitlabpartner.TokenPAT, gitlabFinding(tok))
		}
	}
	for _, st := range []gitlabdouble.State{gitlabdouble.Restricted, gitlabdouble.Expired, gitlabdouble.Revoked, gitlabdouble.Inactive200, gitlabdouble.Revoked200} {
		tok := gitlabdouble.NewRoutableToken()
		srv.SetToken(tok, st, gitlabdouble.DefaultScopes, "2024-01-01")
		sweep.Verify(fmt.Sprint("state ", st), gitlabpartner.TokenPAT, gitlabFinding(tok))
	}
	// A malformed token never leaves the process, but its message must not quote it either.
	sweep.Verify("malformed", gitlabpartner.TokenPAT, gitlabFinding(gitlabdouble.NewToken()[:24]))
	sweep.Check([]string{`"reason":"partner_confirmed"`, `"reason":"partner_rejected"`, "http 500", "rate limited", "malformed_token"}, func(k string) []string {
		body := k[6:]
		return []string{body[:min(len(body), 16)]}
	})
}

func TestNew(t *testing.T) {
	verifiertest.RefusesEndpoints(t, gitlabpartner.New, "gitlab: new verifier:", gitlabpartner.DefaultEndpoint, "", "/api", "ftp://gitlab.com")
}

// TestEnforcedRateLimit drives the double's own limiter rather than a
// scripted 429: the second request inside the window is refused, with
// GitLab's wait headers.
func TestEnforcedRateLimit(t *testing.T) {
	srv := partnertest.StartDouble(t, gitlabdouble.Start)
	tok := gitlabdouble.NewToken()
	srv.AddToken(tok, "api")
	srv.Controls.SetRetryAfter("2")
	v := harness.NewVerifier(t, 0, nil, srv.URL)
	harness.EnforcedRateLimit(t, v, srv.Controls, gitlabpartner.TokenPAT, gitlabFinding(tok),
		verifiertest.Want{Details: scopes("api")}, verifiertest.Want{RetryMin: 2 * time.Second, RetryMax: 3 * time.Second})
}

// TestDefinition pins the contract §7 row: rule ids of both scanners, the
// endpoint variable and default, the format, and a rate within its limit.
func TestDefinition(t *testing.T) {
	d := gitlabpartner.Definition
	rules := map[string]bool{}
	for _, r := range d.Rules {
		rules[r.ID] = r.TokenType == gitlabpartner.TokenPAT
	}
	if !reflect.DeepEqual(rules, map[string]bool{"gitlab_personal_access_token": true, "gitlab_personal_access_token_routable": true, "gitlab-pat": true, "gitlab-pat-routable": true}) {
		t.Errorf("rules = %v", d.Rules)
	}
	if len(d.Endpoints) != 1 || d.Endpoints[0].Env != "PARTNER_ENDPOINT_GITLAB" || d.Endpoints[0].Default != "https://gitlab.com" {
		t.Errorf("endpoints = %v", d.Endpoints)
	}
	if d.Rate.PerSecond*2 > d.Rate.Limit || !strings.HasPrefix(d.Rate.Source, "https://") {
		t.Errorf("rate = %+v: two instances at the default rate exceed Limit, or Source is no URL", d.Rate)
	}
	for tok, ok := range map[string]bool{
		"glpat-" + strings.Repeat("a", 20):            true,
		"glpat-" + strings.Repeat("a", 19):            false,
		"glpat-abc.def_ghi-jkl0123456789":             true,
		gitlabdouble.NewRoutableToken():               true,
		"glpat-" + strings.Repeat("a", 300):           true,
		"GLPAT-" + strings.Repeat("a", 20):            false,
		"glpat-" + strings.Repeat("a", 20) + " ":      false,
		"glpat-" + strings.Repeat("a", 19) + "\u00e9": false,
	} {
		_, reason, msg := d.Check(gitlabpartner.TokenPAT, gitlabFinding(tok))
		if (reason == "") != ok {
			t.Errorf("Check(len %d) = %q, want pass %v", len(tok), reason, ok)
		}
		if strings.Contains(msg, tok) {
			t.Error("Check's message quotes the token")
		}
	}
}
