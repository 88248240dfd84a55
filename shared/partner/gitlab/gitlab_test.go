package gitlabpartner_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/gitlabdouble"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/metrics"
	gitlabpartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/gitlab"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

const rule = "gitlab_personal_access_token"

func startDouble(t *testing.T) *gitlabdouble.Server {
	t.Helper()
	s, err := gitlabdouble.Start("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func newVerifier(t *testing.T, endpoint string, timeout time.Duration, tr http.RoundTripper) *gitlabpartner.Verifier {
	t.Helper()
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	v, err := gitlabpartner.New(partnerhttp.Options{Endpoints: []*url.URL{u}, Timeout: timeout, Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func gitlabFinding(tok string) finding.Finding {
	return finding.Finding{ID: "f-1", RuleID: rule, Token: finding.Secret(tok)}
}

// outcome is what one verification produced, with the metrics it recorded.
type outcome struct {
	verdict verify.Verdict
	err     error
	m       metrics.Summary
}

// callerVerify verifies f as pipeline.Worker does: a finding reaches Verify
// only routed to its own token type and past the partner's gate
// (Definition.Examine), so the rows that test that gate get their verdict
// here, without a call.
func callerVerify(ctx context.Context, v verify.Verifier, tt finding.TokenType, f finding.Finding) (verify.Verdict, error) {
	rt, reason, msg := gitlabpartner.Definition.Examine(f)
	if reason != "" {
		return verify.Verdict{Reason: reason, Message: msg}, nil
	}
	if rt.TokenType != tt {
		return verify.Verdict{Reason: finding.ReasonUnsupportedTokenType, Message: "rule_id is routed to " + string(rt.TokenType) + ", not " + string(tt)}, nil
	}
	return v.Verify(ctx, tt, f)
}

func run(v *gitlabpartner.Verifier, tt finding.TokenType, f finding.Finding) outcome {
	rec := metrics.New()
	verdict, err := callerVerify(metrics.NewContext(context.Background(), rec), v, tt, f)
	m := rec.Snapshot()["gitlab"]
	m.LatencyMS = nil
	return outcome{verdict, err, m}
}

// want describes the expected outcome of a row: a verdict (reason set) or a fault.
type want struct {
	reason     finding.Reason  // verdict reason; "" when a fault is expected
	details    finding.Details // details of a confirmed token (nil: none)
	kind       verify.FaultKind
	httpStatus int
	network    bool
	retryMin   time.Duration
	retryMax   time.Duration
	msg        string // a substring of the fault or verdict message
	metrics    metrics.Summary
	calls      int64 // requests the double saw
}

func check(t *testing.T, got outcome, w want) {
	t.Helper()
	if got.verdict.Status() == finding.StatusInactive && got.err != nil {
		t.Fatal("a fault came with an inactive verdict")
	}
	if w.reason != "" {
		if got.err != nil {
			t.Fatalf("Verify error = %v, want verdict %s", got.err, w.reason)
		}
		if got.verdict.Reason != w.reason {
			t.Fatalf("reason = %q (%s), want %q", got.verdict.Reason, got.verdict.Message, w.reason)
		}
		if got.verdict.Status() != finding.StatusOf(w.reason) {
			t.Errorf("status = %q", got.verdict.Status())
		}
		if !strings.Contains(got.verdict.Message, w.msg) {
			t.Errorf("message = %q, want it to contain %q", got.verdict.Message, w.msg)
		}
		if !reflect.DeepEqual(got.verdict.Details, w.details) {
			t.Errorf("details = %#v, want %#v", got.verdict.Details, w.details)
		}
	} else {
		if got.err == nil {
			t.Fatalf("verdict %+v (status %s), want a fault; a fault must never be an answer", got.verdict, got.verdict.Status())
		}
		if got.verdict.Reason != "" || got.verdict.Details != nil {
			t.Errorf("a fault came with verdict %+v", got.verdict)
		}
		f, ok := verify.AsFault(got.err)
		if !ok {
			t.Fatalf("error %v is not a *verify.Fault", got.err)
		}
		if f.Kind != w.kind || f.HTTPStatus != w.httpStatus || f.Network != w.network {
			t.Errorf("fault = %+v, want kind %v, http %d, network %v", *f, w.kind, w.httpStatus, w.network)
		}
		if f.Kind.Reason() == finding.ReasonPartnerRejected || finding.StatusOf(f.Kind.Reason()) != finding.StatusUnknown {
			t.Errorf("fault ends in %q, want an unknown reason", f.Kind.Reason())
		}
		if f.Partner != gitlabpartner.Name || f.Op != gitlabpartner.Op {
			t.Errorf("fault names %q %q", f.Partner, f.Op)
		}
		if f.RetryAfter < w.retryMin || f.RetryAfter > w.retryMax {
			t.Errorf("RetryAfter = %v, want within [%v, %v]", f.RetryAfter, w.retryMin, w.retryMax)
		}
		if !strings.Contains(got.err.Error(), w.msg) {
			t.Errorf("error = %q, want it to contain %q", got.err, w.msg)
		}
	}
	if !reflect.DeepEqual(got.m, w.metrics) {
		t.Errorf("metrics = %+v, want %+v", got.m, w.metrics)
	}
}

func scopes(s ...string) finding.Details { return finding.Details{gitlabpartner.DetailScopes: s} }

// TestVerifyAgainstDouble has one row per answer GitLab (or something in
// its place) gives to GET /api/v4/personal_access_tokens/self, and the
// verdict or fault each must give.
func TestVerifyAgainstDouble(t *testing.T) {
	srv := startDouble(t)
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
		want       want
	}{
		// 200 with "active": true: live; details scopes and expires_at (a date, omitted when null).
		{name: "active token with expiry", setup: state(gitlabdouble.Active, []string{"api", "read_repository"}, "2026-12-31"),
			want: want{reason: finding.ReasonPartnerConfirmed, details: finding.Details{"scopes": []string{"api", "read_repository"}, "expires_at": "2026-12-31"}, metrics: one, calls: 1}},
		{name: "active token without expiry", setup: state(gitlabdouble.Active, []string{"read_user"}, ""),
			want: want{reason: finding.ReasonPartnerConfirmed, details: scopes("read_user"), metrics: one, calls: 1}},
		{name: "active routable token", token: gitlabdouble.NewRoutableToken, setup: state(gitlabdouble.Active, []string{"api"}, "2027-01-01"),
			want: want{reason: finding.ReasonPartnerConfirmed, details: finding.Details{"scopes": []string{"api"}, "expires_at": "2027-01-01"}, metrics: one, calls: 1}},
		{name: "found under a gitleaks rule", setup: func(_ *testing.T, tok string) finding.Finding {
			srv.AddToken(tok, "api")
			f := gitlabFinding(tok)
			f.RuleID = "gitlab-pat"
			return f
		}, want: want{reason: finding.ReasonPartnerConfirmed, details: scopes("api"), metrics: one, calls: 1}},
		// 403 insufficient_scope: GitLab authenticated the token; live, no details.
		{name: "restricted token: 403 insufficient_scope", setup: state(gitlabdouble.Restricted, gitlabdouble.RestrictedScopes, ""),
			want: want{reason: finding.ReasonPartnerConfirmed, metrics: one, calls: 1}},
		// GitLab's rejections.
		{name: "unknown token: 401 message", setup: func(_ *testing.T, tok string) finding.Finding { return gitlabFinding(tok) },
			want: want{reason: finding.ReasonPartnerRejected, metrics: one, calls: 1}},
		{name: "expired token: 401 invalid_token", setup: state(gitlabdouble.Expired, gitlabdouble.DefaultScopes, "2024-01-01"),
			want: want{reason: finding.ReasonPartnerRejected, metrics: one, calls: 1}},
		{name: "revoked token: 401 invalid_token", setup: func(_ *testing.T, tok string) finding.Finding {
			srv.AddToken(tok)
			srv.RevokeToken(tok)
			return gitlabFinding(tok)
		}, want: want{reason: finding.ReasonPartnerRejected, metrics: one, calls: 1}},
		{name: "inactive token: 200 active false", setup: state(gitlabdouble.Inactive200, gitlabdouble.DefaultScopes, "2024-01-01"),
			want: want{reason: finding.ReasonPartnerRejected, metrics: one, calls: 1}},
		{name: "revoked token: 200 revoked true", setup: state(gitlabdouble.Revoked200, gitlabdouble.DefaultScopes, ""),
			want: want{reason: finding.ReasonPartnerRejected, metrics: one, calls: 1}},
		// The format gate: no call.
		{name: "malformed: 19 characters after glpat-", setup: func(_ *testing.T, tok string) finding.Finding {
			srv.AddToken(tok[:25])
			return gitlabFinding(tok[:25])
		}, want: want{reason: finding.ReasonMalformedToken, msg: "not a GitLab personal access token"}},
		{name: "malformed: another prefix", setup: func(_ *testing.T, tok string) finding.Finding {
			return gitlabFinding("glptt-" + tok[6:])
		}, want: want{reason: finding.ReasonMalformedToken}},
		{name: "malformed: a character outside the alphabet", setup: func(_ *testing.T, tok string) finding.Finding {
			return gitlabFinding(tok + "+")
		}, want: want{reason: finding.ReasonMalformedToken}},
		{name: "other partner's token type: no call", tokenType: finding.TokenPostmanAPIKey, setup: func(_ *testing.T, tok string) finding.Finding {
			srv.AddToken(tok)
			return gitlabFinding(tok)
		}, want: want{reason: finding.ReasonUnsupportedTokenType, msg: "gitlab_personal_access_token"}},
		// 429 "Retry later" (plain text), each wait header alone, then all of them.
		{name: "429 Retry-After 7 s", retryAfter: "7", headers: gitlabdouble.RetryAfterOnly, setup: fault(srv, partnertest.Fault429),
			want: want{kind: verify.RateLimited, httpStatus: 429, retryMin: 7 * time.Second, retryMax: 8 * time.Second, msg: "rate limited", metrics: limited, calls: 1}},
		{name: "429 RateLimit-Reset (epoch) 7 s away", retryAfter: "7", headers: gitlabdouble.ResetOnly, setup: fault(srv, partnertest.Fault429),
			want: want{kind: verify.RateLimited, httpStatus: 429, retryMin: 6 * time.Second, retryMax: 8 * time.Second, metrics: limited, calls: 1}},
		{name: "429 RateLimit-ResetTime (HTTP date) 30 s away", retryAfter: httpDate(), headers: gitlabdouble.ResetTimeOnly, setup: fault(srv, partnertest.Fault429),
			want: want{kind: verify.RateLimited, httpStatus: 429, retryMin: 27 * time.Second, retryMax: 30 * time.Second, metrics: limited, calls: 1}},
		{name: "429 with all wait headers", retryAfter: "12", headers: gitlabdouble.AllHeaders, setup: fault(srv, partnertest.Fault429),
			want: want{kind: verify.RateLimited, httpStatus: 429, retryMin: 12 * time.Second, retryMax: 13 * time.Second, metrics: limited, calls: 1}},
		{name: "429 without a wait header", retryAfter: "", headers: gitlabdouble.NoWait, setup: fault(srv, partnertest.Fault429),
			want: want{kind: verify.RateLimited, httpStatus: 429, metrics: limited, calls: 1}},
		{name: "429 on an unknown token", retryAfter: "2", headers: gitlabdouble.AllHeaders, setup: func(_ *testing.T, tok string) finding.Finding {
			srv.Controls.Push(partnertest.Fault429)
			return gitlabFinding(tok)
		}, want: want{kind: verify.RateLimited, httpStatus: 429, retryMin: 2 * time.Second, retryMax: 3 * time.Second, metrics: limited, calls: 1}},
		// Faults of the exchange.
		{name: "500", setup: fault(srv, partnertest.Fault500), want: want{kind: verify.PartnerError, httpStatus: 500, msg: "http 500", metrics: errored, calls: 1}},
		{name: "502 HTML", setup: fault(srv, partnertest.Fault502), want: want{kind: verify.PartnerError, httpStatus: 502, metrics: errored, calls: 1}},
		{name: "503", setup: fault(srv, partnertest.Fault503), want: want{kind: verify.PartnerError, httpStatus: 503, metrics: errored, calls: 1}},
		{name: "504 HTML", setup: fault(srv, partnertest.Fault504), want: want{kind: verify.PartnerError, httpStatus: 504, metrics: errored, calls: 1}},
		{name: "reset", setup: fault(srv, partnertest.FaultReset), want: want{kind: verify.PartnerError, network: true, msg: "network error", metrics: network, calls: 1}},
		{name: "hang with a short timeout", timeout: 300 * time.Millisecond, setup: fault(srv, partnertest.FaultHang),
			want: want{kind: verify.PartnerError, network: true, msg: "timeout", metrics: network, calls: 1}},
		{name: "slow live answer within the timeout", timeout: 2 * time.Second, setup: func(_ *testing.T, tok string) finding.Finding {
			srv.AddToken(tok, "api")
			srv.Controls.SetLatency(100*time.Millisecond, 0)
			return gitlabFinding(tok)
		}, want: want{reason: finding.ReasonPartnerConfirmed, details: scopes("api"), metrics: one, calls: 1}},
		{name: "garbled 200", setup: fault(srv, partnertest.FaultGarbled), want: want{kind: verify.PartnerError, httpStatus: 200, msg: "proves nothing", metrics: errored, calls: 1}},
		{name: "empty 200", setup: fault(srv, partnertest.FaultEmpty), want: want{kind: verify.PartnerError, httpStatus: 200, msg: "proves nothing", metrics: errored, calls: 1}},
		{name: "truncated 200", setup: fault(srv, partnertest.FaultTruncated), want: want{kind: verify.PartnerError, httpStatus: 200, msg: "read body", metrics: errored, calls: 1}},
		{name: "HTML 401 from a proxy", setup: fault(srv, partnertest.FaultHTML401), want: want{kind: verify.PartnerError, httpStatus: 401, msg: "HTML page", metrics: errored, calls: 1}},
		{name: "HTML 403 from a WAF", setup: fault(srv, partnertest.FaultHTML403), want: want{kind: verify.PartnerError, httpStatus: 403, msg: "HTML page", metrics: errored, calls: 1}},
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
			got := run(newVerifier(t, srv.URL, tc.timeout, nil), tt, f)
			check(t, got, tc.want)
			if calls := srv.Controls.Requests(); calls != tc.want.calls {
				t.Errorf("double saw %d requests, want %d", calls, tc.want.calls)
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
	canary := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		t.Error("the redirect target was contacted")
	}))
	defer canary.Close()
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
		want        want
	}{
		{"200 date-time expiry", 200, "application/json", strings.Replace(doc, `"expires_at":null`, `"expires_at":"2026-12-31T10:00:00+02:00"`, 1), nil,
			want{reason: finding.ReasonPartnerConfirmed, details: finding.Details{"scopes": []string{"api"}, "expires_at": "2026-12-31T08:00:00Z"}}},
		{"200 empty scopes", 200, "application/json", strings.Replace(doc, `["api"]`, `[]`, 1), nil,
			want{reason: finding.ReasonPartnerConfirmed, details: finding.Details{"scopes": []string{}}}},
		{"200 active and revoked", 200, "application/json", strings.Replace(doc, `"revoked":false`, `"revoked":true`, 1), nil,
			want{reason: finding.ReasonPartnerRejected}},
		{"200 JSON without active", 200, "application/json", strings.Replace(doc, `"active":true,`, ``, 1), nil, want{httpStatus: 200, msg: "proves nothing"}},
		{"200 active a string", 200, "application/json", strings.Replace(doc, `"active":true`, `"active":"true"`, 1), nil, want{httpStatus: 200, msg: "proves nothing"}},
		{"200 without revoked", 200, "application/json", strings.Replace(doc, `"revoked":false,`, ``, 1), nil, want{httpStatus: 200, msg: "proves nothing"}},
		{"200 without id", 200, "application/json", strings.Replace(doc, `"id":7,`, ``, 1), nil, want{httpStatus: 200, msg: "proves nothing"}},
		{"200 scopes null", 200, "application/json", strings.Replace(doc, `["api"]`, `null`, 1), nil, want{httpStatus: 200, msg: "proves nothing"}},
		{"200 scope not a scope name", 200, "application/json", strings.Replace(doc, `["api"]`, `["Read API"]`, 1), nil, want{httpStatus: 200, msg: "proves nothing"}},
		{"200 scopes echo the token", 200, "application/json", strings.Replace(doc, `["api"]`, `["`+tok+`"]`, 1), nil, want{httpStatus: 200, msg: "proves nothing"}},
		{"200 scopes echo the token's body", 200, "application/json", strings.Replace(doc, `["api"]`, `["x`+tok[6:]+`"]`, 1), nil, want{httpStatus: 200, msg: "proves nothing"}},
		{"200 expiry not a date", 200, "application/json", strings.Replace(doc, `"expires_at":null`, `"expires_at":"soon"`, 1), nil, want{httpStatus: 200, msg: "proves nothing"}},
		{"200 upper-case Active", 200, "application/json", strings.Replace(doc, `"active"`, `"Active"`, 1), nil, want{httpStatus: 200, msg: "proves nothing"}},
		{"200 two documents", 200, "application/json", doc + doc, nil, want{httpStatus: 200, msg: "proves nothing"}},
		{"200 HTML sign-in page", 200, "text/html", `<html><body>Sign in</body></html>`, nil, want{httpStatus: 200, msg: "HTML page"}},
		{"200 too long", 200, "application/json", strings.Replace(doc, `"name":"x"`, `"name":"`+strings.Repeat("x", 70*1024)+`"`, 1), nil, want{httpStatus: 200, msg: "read body"}},
		{"401 Bad Access Token", 401, "application/json", `{"error":"invalid_token","error_description":"Bad Access Token."}`, nil, want{reason: finding.ReasonPartnerRejected}},
		{"401 invalid_token without description", 401, "application/json", `{"error":"invalid_token"}`, nil, want{reason: finding.ReasonPartnerRejected}},
		{"401 dpop_error", 401, "application/json", `{"error":"dpop_error","error_description":"DPoP validation error"}`, nil, want{httpStatus: 401, msg: "dpop_error"}},
		{"401 other OAuth error", 401, "application/json", `{"error":"weird_thing"}`, nil, want{httpStatus: 401, msg: "another OAuth error"}},
		{"401 HTML without a content type", 401, "", `<!DOCTYPE html><title>401</title>`, nil, want{httpStatus: 401, msg: "HTML page"}},
		{"401 empty", 401, "", ``, nil, want{httpStatus: 401, msg: "error body"}},
		{"401 other message", 401, "application/json", `{"message":"Unauthorized"}`, nil, want{httpStatus: 401, msg: "error body"}},
		{"401 error a number", 401, "application/json", `{"error":401}`, nil, want{httpStatus: 401, msg: "error body"}},
		{"401 upper-case Message", 401, "application/json", `{"Message":"401 Unauthorized"}`, nil, want{httpStatus: 401, msg: "error body"}},
		{"401 truncated", 401, "application/json", `{"message":"401 Unauthorized"`, nil, want{httpStatus: 401, msg: "error body"}},
		{"403 Forbidden message", 403, "application/json", `{"message":"403 Forbidden"}`, nil, want{httpStatus: 403, msg: "403"}},
		{"403 invalid_token", 403, "application/json", `{"error":"invalid_token"}`, nil, want{httpStatus: 403, msg: "403"}},
		{"403 insufficient_scope with Retry-After", 403, "application/json", `{"error":"insufficient_scope"}`, map[string]string{"Retry-After": "5"},
			want{kind: verify.RateLimited, httpStatus: 403, retryMin: 5 * time.Second, retryMax: 5 * time.Second, msg: "rate limited", metrics: limited}},
		{"404", 404, "application/json", `{"error":"404 Not Found"}`, nil, want{httpStatus: 404, msg: "unexpected http status 404"}},
		{"400", 400, "application/json", `{"message":"400 Bad request"}`, nil, want{httpStatus: 400, msg: "unexpected http status 400"}},
		{"302 to the sign-in page", 302, "", "", map[string]string{"Location": canary.URL + "/users/sign_in"}, want{httpStatus: 302, msg: "unexpected http status 302"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				if tc.contentType != "" {
					w.Header().Set("Content-Type", tc.contentType)
				}
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			w := tc.want
			if w.reason != "" {
				w.metrics = metrics.Summary{Requests: 1}
			} else if w.kind == verify.PartnerError { // the zero kind: an unusable answer
				w.metrics = metrics.Summary{Requests: 1, Errors: 1}
			}
			check(t, run(newVerifier(t, srv.URL, 0, nil), gitlabpartner.TokenPAT, gitlabFinding(tok)), w)
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
	srv := startDouble(t)
	tok := gitlabdouble.NewToken()
	srv.AddToken(tok)
	rt := &recordingTransport{base: &http.Transport{}}
	v := newVerifier(t, srv.URL+"/", 0, rt)
	for range 3 {
		if got := run(v, gitlabpartner.TokenPAT, gitlabFinding(tok)); got.verdict.Reason != finding.ReasonPartnerConfirmed {
			t.Fatalf("Verify = %+v, %v", got.verdict, got.err)
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
	got := run(newVerifier(t, srv.URL+"/gitlab/", 0, nil), gitlabpartner.TokenPAT, gitlabFinding(gitlabdouble.NewToken()))
	check(t, got, want{reason: finding.ReasonPartnerConfirmed, details: scopes("api"), metrics: metrics.Summary{Requests: 1}})
	if p, _ := path.Load().(string); p != "/gitlab/api/v4/personal_access_tokens/self" {
		t.Errorf("path = %q", p)
	}
}

func TestConcurrentVerifications(t *testing.T) {
	srv := startDouble(t)
	v := newVerifier(t, srv.URL, 0, nil)
	toks := make([]string, 16)
	for i := range toks {
		toks[i] = gitlabdouble.NewToken()
		if i%2 == 0 {
			srv.AddToken(toks[i], fmt.Sprintf("scope_n%d", i))
		}
	}
	var wg sync.WaitGroup
	results := make([]outcome, len(toks))
	for i, k := range toks {
		wg.Go(func() { results[i] = run(v, gitlabpartner.TokenPAT, gitlabFinding(k)) })
	}
	wg.Wait()
	for i, r := range results {
		want := finding.ReasonPartnerRejected
		if i%2 == 0 {
			want = finding.ReasonPartnerConfirmed
		}
		if r.err != nil || r.verdict.Reason != want {
			t.Errorf("token %d: %+v, %v; want %s", i, r.verdict, r.err, want)
		}
		if want == finding.ReasonPartnerConfirmed && !reflect.DeepEqual(r.verdict.Details[gitlabpartner.DetailScopes], []string{fmt.Sprintf("scope_n%d", i)}) {
			t.Errorf("token %d: details %v belong to another token", i, r.verdict.Details)
		}
	}
}

func TestCancelledContextIsAFault(t *testing.T) {
	srv := startDouble(t)
	tok := gitlabdouble.NewToken()
	srv.AddToken(tok)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	verdict, err := newVerifier(t, srv.URL, 0, nil).Verify(ctx, gitlabpartner.TokenPAT, gitlabFinding(tok))
	f, ok := verify.AsFault(err)
	if !ok || f.Kind != verify.PartnerError || !f.Network || verdict.Reason != "" {
		t.Errorf("Verify = %+v, %v; want a network partner error", verdict, err)
	}
}

// TestNoSecretLeaks runs every class of answer and checks that no verdict,
// error or log line of the outcomes carries the token or a part of it.
func TestNoSecretLeaks(t *testing.T) {
	srv := startDouble(t)
	var logBuf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	faults := []partnertest.Fault{partnertest.FaultNone, partnertest.Fault500, partnertest.Fault502,
		partnertest.Fault503, partnertest.Fault504, partnertest.Fault429, partnertest.FaultReset,
		partnertest.FaultGarbled, partnertest.FaultEmpty, partnertest.FaultTruncated,
		partnertest.FaultHTML401, partnertest.FaultHTML403, partnertest.FaultHang}
	v := newVerifier(t, srv.URL, 300*time.Millisecond, nil)
	var toks, texts []string
	record := func(f finding.Finding, label string, verdict verify.Verdict, err error) {
		errText := ""
		if err != nil {
			errText = err.Error()
		}
		texts = append(texts, fmt.Sprintf("%v|%+v|%#v|%s|%v", verdict, verdict, verdict, errText, err))
		log.Info("verification", "case", label, "finding", f, "token", f.Token,
			"reason", verdict.Reason, "details", verdict.Details, "message", verdict.Message, "error", err)
	}
	for _, live := range []bool{true, false} {
		for _, fl := range faults {
			tok := gitlabdouble.NewToken()
			toks = append(toks, tok)
			if live {
				srv.AddToken(tok)
			}
			srv.Controls.Push(fl)
			f := gitlabFinding(tok)
			verdict, err := v.Verify(context.Background(), gitlabpartner.TokenPAT, f)
			record(f, fl.String(), verdict, err)
		}
	}
	for _, st := range []gitlabdouble.State{gitlabdouble.Restricted, gitlabdouble.Expired, gitlabdouble.Revoked, gitlabdouble.Inactive200, gitlabdouble.Revoked200} {
		tok := gitlabdouble.NewRoutableToken()
		toks = append(toks, tok)
		srv.SetToken(tok, st, gitlabdouble.DefaultScopes, "2024-01-01")
		verdict, err := v.Verify(context.Background(), gitlabpartner.TokenPAT, gitlabFinding(tok))
		record(gitlabFinding(tok), fmt.Sprint("state ", st), verdict, err)
	}
	// A malformed token never leaves the process, but its message must not quote it either.
	bad := gitlabdouble.NewToken()[:24]
	toks = append(toks, bad)
	verdict, err := callerVerify(context.Background(), v, gitlabpartner.TokenPAT, gitlabFinding(bad))
	record(gitlabFinding(bad), "malformed", verdict, err)

	texts = append(texts, logBuf.String())
	for _, s := range []string{`"reason":"partner_confirmed"`, `"reason":"partner_rejected"`, "http 500", "rate limited", "malformed_token"} {
		if !strings.Contains(logBuf.String(), s) {
			t.Fatalf("the outcome log lacks %q; the leak check would prove nothing", s)
		}
	}
	for _, k := range toks {
		body := k[6:]
		for i, s := range texts {
			if strings.Contains(s, k) || strings.Contains(s, body[:min(len(body), 16)]) {
				t.Errorf("text %d of %d contains a token or part of one", i, len(texts))
			}
		}
	}
}

func TestNew(t *testing.T) {
	for _, ep := range []string{"", "/api", "ftp://gitlab.com"} {
		var u *url.URL
		if ep != "" {
			u, _ = url.Parse(ep)
		}
		if v, err := gitlabpartner.New(partnerhttp.Options{Endpoints: []*url.URL{u}}); err == nil || v != nil {
			t.Errorf("New(%q) = %v, %v; want an error", ep, v, err)
		} else if !strings.HasPrefix(err.Error(), "gitlab: new verifier:") {
			t.Errorf("error %q does not name the operation", err)
		}
	}
	u, _ := url.Parse(gitlabpartner.DefaultEndpoint)
	for _, eps := range [][]*url.URL{nil, {u, u}} {
		if v, err := gitlabpartner.New(partnerhttp.Options{Endpoints: eps}); err == nil || v != nil {
			t.Errorf("New with %d endpoints = %v, %v; want an error", len(eps), v, err)
		}
	}
}

// TestEnforcedRateLimit drives the double's own limiter rather than a
// scripted 429: the second request inside the window is refused, with
// GitLab's wait headers.
func TestEnforcedRateLimit(t *testing.T) {
	srv := startDouble(t)
	tok := gitlabdouble.NewToken()
	srv.AddToken(tok, "api")
	srv.Controls.SetRateLimit(0.001, 1)
	srv.Controls.SetRetryAfter("2")
	v := newVerifier(t, srv.URL, 0, nil)
	check(t, run(v, gitlabpartner.TokenPAT, gitlabFinding(tok)),
		want{reason: finding.ReasonPartnerConfirmed, details: scopes("api"), metrics: metrics.Summary{Requests: 1}})
	check(t, run(v, gitlabpartner.TokenPAT, gitlabFinding(tok)),
		want{kind: verify.RateLimited, httpStatus: 429, retryMin: 2 * time.Second, retryMax: 3 * time.Second,
			metrics: metrics.Summary{Requests: 1, RateLimitHits: 1}})
	if srv.Controls.RateLimited() != 1 {
		t.Errorf("double sent %d 429s, want 1", srv.Controls.RateLimited())
	}
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
