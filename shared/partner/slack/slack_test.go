package slackpartner_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/slackdouble"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/verifiertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/metrics"
	slackpartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/slack"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

const rule = "Slack token"

// harness is the shared verifier harness bound to slack.
var harness = verifiertest.Harness{Def: slackpartner.Definition, Op: "POST /auth.test"}

func slackFinding(tok string) finding.Finding {
	return finding.Finding{ID: "f-1", RuleID: rule, Token: finding.Secret(tok)}
}

// setContentType sends requests with another Content-Type, to show what
// Slack's invalid_post_type becomes.
type setContentType struct {
	base http.RoundTripper
	ct   string
}

func (s setContentType) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Content-Type", s.ct)
	return s.base.RoundTrip(r)
}

// TestVerifyAgainstDouble has one row per answer Slack (or something in
// its place) gives to POST /auth.test, and the verdict or fault each must give.
func TestVerifyAgainstDouble(t *testing.T) {
	srv := partnertest.StartDouble(t, slackdouble.Start)
	one := metrics.Summary{Requests: 1}
	unusable := metrics.Summary{Requests: 1, Errors: 1}
	network := metrics.Summary{Requests: 1, Errors: 1, NetworkErrors: 1}
	limited := metrics.Summary{Requests: 1, RateLimitHits: 1}
	httpDate := func() string { return time.Now().Add(30 * time.Second).UTC().Format(http.TimeFormat) }
	live := func(tok string) func(*testing.T) (finding.Finding, finding.Details) {
		return func(*testing.T) (finding.Finding, finding.Details) {
			id := srv.AddToken(tok)
			return slackFinding(tok), finding.Details{slackpartner.DetailTeamID: id.TeamID, slackpartner.DetailUserID: id.UserID}
		}
	}
	inState := func(st slackdouble.State) func(*testing.T) (finding.Finding, finding.Details) {
		return func(*testing.T) (finding.Finding, finding.Details) {
			tok := slackdouble.NewToken()
			srv.SetState(tok, st)
			return slackFinding(tok), nil
		}
	}
	// liveWith registers a live bot token and turns a knob, so that any
	// verdict but the row's would be wrong.
	liveWith := func(knob func()) func(*testing.T) (finding.Finding, finding.Details) {
		return func(*testing.T) (finding.Finding, finding.Details) {
			tok := slackdouble.NewToken()
			srv.AddToken(tok)
			knob()
			return slackFinding(tok), nil
		}
	}
	forced := func(code string) func(*testing.T) (finding.Finding, finding.Details) {
		return liveWith(func() { srv.SetError(code) })
	}
	fault := func(f partnertest.Fault) func(*testing.T) (finding.Finding, finding.Details) {
		return liveWith(func() { srv.Controls.Push(f) })
	}
	noCall := func(tok string) func(*testing.T) (finding.Finding, finding.Details) {
		return func(*testing.T) (finding.Finding, finding.Details) {
			srv.AddToken(tok) // live in the double: only the gate may refuse it
			return slackFinding(tok), nil
		}
	}

	tests := []struct {
		name       string
		setup      func(t *testing.T) (finding.Finding, finding.Details)
		retryAfter string // the Retry-After the fault layer gives a 429
		timeout    time.Duration
		transport  http.RoundTripper
		want       verifiertest.Want
	}{
		// 200 {"ok":true,…}: auth.test's success, every live token kind.
		{name: "bot token", setup: live(slackdouble.NewToken()), want: verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Metrics: one, Calls: 1}},
		{name: "user token", setup: live(slackdouble.NewUserToken()), want: verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Metrics: one, Calls: 1}},
		{name: "rotating bot token", setup: live(slackdouble.NewRotatingToken(false)), want: verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Metrics: one, Calls: 1}},
		{name: "rotating user token", setup: live(slackdouble.NewRotatingToken(true)), want: verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Metrics: one, Calls: 1}},
		{name: "enterprise install without a team id", setup: func(*testing.T) (finding.Finding, finding.Details) {
			tok := slackdouble.NewToken()
			srv.AddTokenAs(tok, slackdouble.Identity{UserID: "W0123456789", BotID: "B0123456789"})
			return slackFinding(tok), finding.Details{slackpartner.DetailUserID: "W0123456789"}
		}, want: verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Metrics: one, Calls: 1}},
		// 200 {"ok":false,"error":…}: Slack's own rejections.
		{name: "unknown token: invalid_auth", setup: func(*testing.T) (finding.Finding, finding.Details) {
			return slackFinding(slackdouble.NewToken()), nil
		}, want: verifiertest.Want{Reason: finding.ReasonPartnerRejected, Metrics: one, Calls: 1}},
		{name: "revoked: token_revoked", setup: inState(slackdouble.Revoked), want: verifiertest.Want{Reason: finding.ReasonPartnerRejected, Metrics: one, Calls: 1}},
		{name: "expired: token_expired", setup: inState(slackdouble.Expired), want: verifiertest.Want{Reason: finding.ReasonPartnerRejected, Metrics: one, Calls: 1}},
		{name: "deactivated: account_inactive", setup: inState(slackdouble.AccountInactive), want: verifiertest.Want{Reason: finding.ReasonPartnerRejected, Metrics: one, Calls: 1}},
		{name: "not_authed", setup: forced("not_authed"), want: verifiertest.Want{Reason: finding.ReasonPartnerRejected, Metrics: one, Calls: 1}},
		{name: "invalid_auth with HTTP 401", setup: func(*testing.T) (finding.Finding, finding.Details) {
			srv.SetRejectStatus(http.StatusUnauthorized)
			return slackFinding(slackdouble.NewToken()), nil
		}, want: verifiertest.Want{Reason: finding.ReasonPartnerRejected, Metrics: one, Calls: 1}},
		{name: "token_revoked with HTTP 401", setup: func(t *testing.T) (finding.Finding, finding.Details) {
			srv.SetRejectStatus(http.StatusUnauthorized)
			return inState(slackdouble.Revoked)(t)
		}, want: verifiertest.Want{Reason: finding.ReasonPartnerRejected, Metrics: one, Calls: 1}},
		// Valid but restricted, or in transition: says nothing of the token.
		{name: "team_added_to_org", setup: inState(slackdouble.AddedToOrg), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 200, Msg: "team_added_to_org", Metrics: unusable, Calls: 1}},
		// Request-format and server errors in Slack's envelope.
		{name: "invalid_arg_name", setup: forced("invalid_arg_name"), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 200, Msg: "invalid_arg_name", Metrics: unusable, Calls: 1}},
		{name: "invalid_form_data", setup: forced("invalid_form_data"), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 200, Msg: "invalid_form_data", Metrics: unusable, Calls: 1}},
		{name: "request_timeout", setup: forced("request_timeout"), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 200, Msg: "request_timeout", Metrics: unusable, Calls: 1}},
		{name: "fatal_error", setup: forced("fatal_error"), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 200, Msg: "fatal_error", Metrics: unusable, Calls: 1}},
		{name: "internal_error", setup: forced("internal_error"), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 200, Msg: "internal_error", Metrics: unusable, Calls: 1}},
		{name: "service_unavailable", setup: forced("service_unavailable"), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 200, Msg: "service_unavailable", Metrics: unusable, Calls: 1}},
		{name: "an error code Slack adds later", setup: forced("ekm_access_denied"), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 200, Msg: "ekm_access_denied", Metrics: unusable, Calls: 1}},
		{name: "invalid_post_type for another content type", transport: setContentType{&http.Transport{}, "application/xml"}, setup: liveWith(func() {}),
			want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 200, Msg: "invalid_post_type", Metrics: unusable, Calls: 1}},
		// The format gate: no call.
		{name: "refresh token: unsupported", setup: noCall("xoxe-1-" + strings.Repeat("A", 146)), want: verifiertest.Want{Reason: finding.ReasonUnsupportedTokenType, Msg: "refresh"}},
		{name: "session token xoxc: unsupported", setup: noCall("xoxc-" + strings.Repeat("1", 12) + "-" + strings.Repeat("a", 40)), want: verifiertest.Want{Reason: finding.ReasonUnsupportedTokenType, Msg: "d cookie"}},
		{name: "session cookie xoxd: unsupported", setup: noCall("xoxd-" + strings.Repeat("a", 60)), want: verifiertest.Want{Reason: finding.ReasonUnsupportedTokenType, Msg: "d cookie"}},
		{name: "fragment cut by an older rule: malformed", setup: noCall("xoxb-176536724810"), want: verifiertest.Want{Reason: finding.ReasonMalformedToken, Msg: "not a Slack bot token"}},
		{name: "app-level token: malformed", setup: noCall("xapp-1-A0123456789-0123456789012-" + strings.Repeat("a", 64)), want: verifiertest.Want{Reason: finding.ReasonMalformedToken, Msg: "not a Slack bot or user token"}},
		{name: "legacy xoxa: malformed", setup: noCall("xoxa-2-" + strings.Repeat("a", 40)), want: verifiertest.Want{Reason: finding.ReasonMalformedToken}},
		{name: "user token with a space: malformed", setup: noCall("xoxp-1234567890-abc def-ghijklmnop"), want: verifiertest.Want{Reason: finding.ReasonMalformedToken, Msg: "not a Slack user token"}},
		// Rate limits: 429 + ratelimited + Retry-After (seconds), and ratelimited inside a 200.
		{name: "429 ratelimited, Retry-After 7 s", retryAfter: "7", setup: fault(partnertest.Fault429),
			want: verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 429, RetryMin: 7 * time.Second, RetryMax: 7 * time.Second, Msg: "rate limited", Metrics: limited, Calls: 1}},
		{name: "429 ratelimited, Retry-After an HTTP date", retryAfter: httpDate(), setup: fault(partnertest.Fault429),
			want: verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 429, RetryMin: 28 * time.Second, RetryMax: 30 * time.Second, Metrics: limited, Calls: 1}},
		{name: "429 ratelimited without Retry-After", retryAfter: "", setup: fault(partnertest.Fault429),
			want: verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 429, Metrics: limited, Calls: 1}},
		{name: "429 on a revoked token", retryAfter: "2", setup: func(t *testing.T) (finding.Finding, finding.Details) {
			f, _ := inState(slackdouble.Revoked)(t)
			srv.Controls.Push(partnertest.Fault429)
			return f, nil
		}, want: verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 429, RetryMin: 2 * time.Second, RetryMax: 2 * time.Second, Metrics: limited, Calls: 1}},
		{name: "200 ratelimited with Retry-After 3 s", retryAfter: "3", setup: liveWith(func() {
			srv.SetRateLimitStatus(http.StatusOK)
			srv.Controls.Push(partnertest.Fault429)
		}), want: verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 200, RetryMin: 3 * time.Second, RetryMax: 3 * time.Second, Msg: "ratelimited", Metrics: limited, Calls: 1}},
		{name: "200 ratelimited without Retry-After", retryAfter: "", setup: liveWith(func() {
			srv.SetRateLimitStatus(http.StatusOK)
			srv.Controls.Push(partnertest.Fault429)
		}), want: verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 200, Msg: "ratelimited", Metrics: limited, Calls: 1}},
		// Faults of the exchange.
		{name: "500", setup: fault(partnertest.Fault500), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 500, Msg: "http 500", Metrics: unusable, Calls: 1}},
		{name: "502 HTML", setup: fault(partnertest.Fault502), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 502, Metrics: unusable, Calls: 1}},
		{name: "503", setup: fault(partnertest.Fault503), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 503, Metrics: unusable, Calls: 1}},
		{name: "504 HTML", setup: fault(partnertest.Fault504), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 504, Metrics: unusable, Calls: 1}},
		{name: "reset", setup: fault(partnertest.FaultReset), want: verifiertest.Want{Kind: verify.PartnerError, Network: true, Msg: "network error", Metrics: network, Calls: 1}},
		{name: "hang with a short timeout", timeout: 300 * time.Millisecond, setup: fault(partnertest.FaultHang),
			want: verifiertest.Want{Kind: verify.PartnerError, Network: true, Msg: "timeout", Metrics: network, Calls: 1}},
		{name: "slow live answer within the timeout", timeout: 2 * time.Second, setup: func(t *testing.T) (finding.Finding, finding.Details) {
			srv.Controls.SetLatency(100*time.Millisecond, 0)
			return live(slackdouble.NewToken())(t)
		}, want: verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Metrics: one, Calls: 1}},
		{name: "garbled 200", setup: fault(partnertest.FaultGarbled), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 200, Msg: "proves nothing", Metrics: unusable, Calls: 1}},
		{name: "empty 200", setup: fault(partnertest.FaultEmpty), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 200, Msg: "proves nothing", Metrics: unusable, Calls: 1}},
		{name: "truncated 200", setup: fault(partnertest.FaultTruncated), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 200, Msg: "read body", Metrics: unusable, Calls: 1}},
		{name: "HTML 401 from a proxy", setup: fault(partnertest.FaultHTML401), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 401, Msg: "HTML page", Metrics: unusable, Calls: 1}},
		{name: "HTML 403 from a WAF", setup: fault(partnertest.FaultHTML403), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 403, Msg: "HTML page", Metrics: unusable, Calls: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv.Reset()
			srv.Controls.SetRetryAfter(tc.retryAfter)
			f, details := tc.setup(t)
			w := tc.want
			if w.Reason == finding.ReasonPartnerConfirmed {
				w.Details = details
			}
			got := harness.Run(harness.NewVerifier(t, tc.timeout, tc.transport, srv.URL), "", f)
			harness.Check(t, got, w)
			if calls := srv.Controls.Requests(); calls != w.Calls {
				t.Errorf("double saw %d requests, want %d", calls, w.Calls)
			}
		})
	}
}

// TestVerifyOtherAnswers covers answers the double never gives but a proxy,
// a change at Slack or a misconfiguration can: none is inactive.
func TestVerifyOtherAnswers(t *testing.T) {
	canary := partnertest.RedirectCanary(t)
	tok := slackdouble.NewToken()
	limited := metrics.Summary{Requests: 1, RateLimitHits: 1}
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string
		header      map[string]string
		want        verifiertest.Want
	}{
		{"200 ok true without user_id", 200, "application/json", `{"ok":true,"team_id":"T0123456789"}`, nil, verifiertest.Want{HTTPStatus: 200, Msg: "without Slack's user id"}},
		{"200 ok true with a user_id that is no id", 200, "application/json", `{"ok":true,"user_id":"` + tok + `"}`, nil, verifiertest.Want{HTTPStatus: 200, Msg: "without Slack's user id"}},
		{"200 ok as a string", 200, "application/json", `{"ok":"true","user_id":"U0123456789"}`, nil, verifiertest.Want{HTTPStatus: 200, Msg: "proves nothing"}},
		{"200 upper-case OK", 200, "application/json", `{"OK":true,"user_id":"U0123456789"}`, nil, verifiertest.Want{HTTPStatus: 200, Msg: "proves nothing"}},
		{"200 no ok at all", 200, "application/json", `{"error":"invalid_auth"}`, nil, verifiertest.Want{HTTPStatus: 200, Msg: "proves nothing"}},
		{"200 ok false without error", 200, "application/json", `{"ok":false}`, nil, verifiertest.Want{HTTPStatus: 200, Msg: "without Slack's error code"}},
		{"200 ok false with an error object", 200, "application/json", `{"ok":false,"error":{"code":"invalid_auth"}}`, nil, verifiertest.Want{HTTPStatus: 200, Msg: "unrecognised"}},
		{"200 ok false error echoing the token", 200, "application/json", `{"ok":false,"error":"` + tok + `"}`, nil, verifiertest.Want{HTTPStatus: 200, Msg: "unrecognised"}},
		{"200 two documents", 200, "application/json", `{"ok":false,"error":"invalid_auth"}{"ok":true}`, nil, verifiertest.Want{HTTPStatus: 200, Msg: "proves nothing"}},
		{"200 a JSON array", 200, "application/json", `[{"ok":false,"error":"invalid_auth"}]`, nil, verifiertest.Want{HTTPStatus: 200, Msg: "proves nothing"}},
		{"200 JSON null", 200, "application/json", `null`, nil, verifiertest.Want{HTTPStatus: 200, Msg: "proves nothing"}},
		{"200 HTML captive portal", 200, "text/html", `<html><body>Sign in to Wi-Fi</body></html>`, nil, verifiertest.Want{HTTPStatus: 200, Msg: "HTML page"}},
		{"200 too long", 200, "application/json", `{"ok":false,"error":"invalid_auth","pad":"` + strings.Repeat("x", 70*1024) + `"}`, nil, verifiertest.Want{HTTPStatus: 200, Msg: "read body"}},
		{"201 ok true", 201, "application/json", `{"ok":true,"user_id":"U0123456789"}`, nil, verifiertest.Want{HTTPStatus: 201, Msg: "without Slack's user id"}},
		{"401 empty", 401, "", ``, nil, verifiertest.Want{HTTPStatus: 401, Msg: "proves nothing"}},
		{"401 not Slack's envelope", 401, "application/json", `{"message":"Unauthorized"}`, nil, verifiertest.Want{HTTPStatus: 401, Msg: "proves nothing"}},
		{"403 invalid_auth", 403, "application/json", `{"ok":false,"error":"invalid_auth"}`, nil, verifiertest.Want{HTTPStatus: 403, Msg: "a status Slack does not answer with"}},
		{"404 unknown_method", 404, "application/json", `{"ok":false,"error":"unknown_method"}`, nil, verifiertest.Want{HTTPStatus: 404, Msg: "unknown_method"}},
		{"403 with Retry-After", 403, "application/json", `{"ok":false,"error":"invalid_auth"}`, map[string]string{"Retry-After": "5"},
			verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 403, RetryMin: 5 * time.Second, RetryMax: 5 * time.Second, Msg: "rate limited", Metrics: limited}},
		{"302 to elsewhere", 302, "", "", map[string]string{"Location": canary.URL + "/api/auth.test"}, verifiertest.Want{HTTPStatus: 302, Msg: "proves nothing"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := partnertest.ServeAnswer(t, tc.status, tc.contentType, tc.body, tc.header)
			w := tc.want
			if w.Kind == verify.PartnerError { // the zero kind: an unusable answer
				w.Metrics = metrics.Summary{Requests: 1, Errors: 1}
			}
			harness.Check(t, harness.Run(harness.NewVerifier(t, 0, nil, srv.URL), "", slackFinding(tok)), w)
		})
	}
}

// recordingTransport passes requests on and remembers their shape.
type recordingTransport struct {
	mu       sync.Mutex
	base     http.RoundTripper
	urls     []string
	methods  []string
	uas      []string
	types    []string
	bodies   []string
	inHeader int
}

func (rt *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.urls = append(rt.urls, req.URL.String())
	rt.methods = append(rt.methods, req.Method)
	rt.uas = append(rt.uas, req.Header.Get("User-Agent"))
	rt.types = append(rt.types, req.Header.Get("Content-Type"))
	body := ""
	if req.Body != nil {
		b, _ := io.ReadAll(req.Body)
		body = string(b)
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	rt.bodies = append(rt.bodies, body)
	if tok, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer "); ok && tok != "" && !strings.Contains(req.URL.String(), tok) && !strings.Contains(body, tok) {
		rt.inHeader++
	}
	return rt.base.RoundTrip(req)
}

// TestRequestShape: POST <base>/auth.test keeping the base's /api path, the
// token only in the Authorization header (never in the URL or the body, which
// is an empty form), our User-Agent set.
func TestRequestShape(t *testing.T) {
	srv := partnertest.StartDouble(t, slackdouble.Start)
	tok := slackdouble.NewUserToken()
	srv.AddToken(tok)
	rt := &recordingTransport{base: &http.Transport{}}
	v := harness.NewVerifier(t, 0, rt, srv.URL+"/api/")
	for range 3 {
		if got := harness.Run(v, "", slackFinding(tok)); got.Verdict.Reason != finding.ReasonPartnerConfirmed {
			t.Fatalf("Verify = %+v, %v", got.Verdict, got.Err)
		}
	}
	if len(rt.urls) != 3 {
		t.Fatalf("transport saw %d requests", len(rt.urls))
	}
	for i := range rt.urls {
		if rt.urls[i] != srv.URL+"/api/auth.test" || rt.methods[i] != http.MethodPost {
			t.Errorf("request %d: %s %s, want POST %s/api/auth.test", i, rt.methods[i], rt.urls[i], srv.URL)
		}
		if rt.uas[i] != partnerhttp.UserAgent {
			t.Errorf("User-Agent = %q", rt.uas[i])
		}
		if rt.types[i] != "application/x-www-form-urlencoded" || rt.bodies[i] != "" {
			t.Errorf("request %d: Content-Type %q, body of %d bytes; want an empty form", i, rt.types[i], len(rt.bodies[i]))
		}
	}
	if rt.inHeader != 3 {
		t.Errorf("%d of 3 requests carried the token in Authorization only", rt.inHeader)
	}
	if got := srv.Controls.CountFor(tok); got != 3 {
		t.Errorf("double counted %d requests for the token", got)
	}
}

// TestDefaultEndpointPath: the default base keeps Slack's /api path.
func TestDefaultEndpointPath(t *testing.T) {
	var path atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path.Store(r.URL.Path)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true,"team_id":"T1234567890","user_id":"U1234567890"}`))
	}))
	defer srv.Close()
	got := harness.Run(harness.NewVerifier(t, 0, nil, srv.URL+"/api"), "", slackFinding(slackdouble.NewToken()))
	harness.Check(t, got, verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Details: finding.Details{slackpartner.DetailTeamID: "T1234567890", slackpartner.DetailUserID: "U1234567890"},
		Metrics: metrics.Summary{Requests: 1}})
	if p, _ := path.Load().(string); p != "/api/auth.test" {
		t.Errorf("path = %q, want /api/auth.test", p)
	}
	if slackpartner.DefaultEndpoint != "https://slack.com/api" {
		t.Errorf("DefaultEndpoint = %q", slackpartner.DefaultEndpoint)
	}
}

// TestSessionTokenInTheDouble shows why the gate refuses xoxc- tokens: the
// double, like Slack, answers invalid_auth to a live session token sent
// without its d cookie, which the verifier would have to read as inactive.
func TestSessionTokenInTheDouble(t *testing.T) {
	srv := partnertest.StartDouble(t, slackdouble.Start)
	tok := "xoxc-" + strings.Repeat("1", 12) + "-" + strings.Repeat("a", 40)
	srv.AddSession(tok, "xoxd-cookie")
	got := harness.Run(harness.NewVerifier(t, 0, nil, srv.URL), "", slackFinding(tok))
	if got.Verdict.Reason != finding.ReasonUnsupportedTokenType || srv.Controls.Requests() != 0 {
		t.Fatalf("session token: %+v, %v after %d calls; want unsupported without a call", got.Verdict, got.Err, srv.Controls.Requests())
	}
	v := harness.NewVerifier(t, 0, nil, srv.URL)
	verdict, err := v.Verify(context.Background(), slackpartner.TokenBot, slackFinding(tok))
	if err != nil || verdict.Reason != finding.ReasonPartnerRejected {
		t.Fatalf("a live session token without its cookie: %+v, %v; the double should answer invalid_auth", verdict, err)
	}
}

func TestConcurrentVerifications(t *testing.T) {
	srv := partnertest.StartDouble(t, slackdouble.Start)
	cases := make([]verifiertest.ConcurrentCase, 16)
	for i := range cases {
		tok := slackdouble.NewToken()
		cases[i] = verifiertest.ConcurrentCase{Finding: slackFinding(tok), Want: finding.ReasonPartnerRejected}
		if i%2 == 0 {
			id := srv.AddToken(tok)
			cases[i].Want, cases[i].Details = finding.ReasonPartnerConfirmed, finding.Details{slackpartner.DetailUserID: id.UserID}
		}
	}
	harness.Concurrent(t, harness.NewVerifier(t, 0, nil, srv.URL), cases)
}

func TestCancelledContextIsAFault(t *testing.T) {
	srv := partnertest.StartDouble(t, slackdouble.Start)
	tok := slackdouble.NewToken()
	srv.AddToken(tok)
	verifiertest.CancelledIsAFault(t, harness.NewVerifier(t, 0, nil, srv.URL), slackpartner.TokenBot, slackFinding(tok))
}

func TestOtherTokenTypeIsNotCalled(t *testing.T) {
	srv := partnertest.StartDouble(t, slackdouble.Start)
	tok := slackdouble.NewToken()
	srv.AddToken(tok)
	for _, tt := range []finding.TokenType{slackpartner.TokenRefresh, slackpartner.TokenSession, finding.TokenPostmanAPIKey} {
		verdict, err := harness.NewVerifier(t, 0, nil, srv.URL).Verify(context.Background(), tt, slackFinding(tok))
		if err != nil || verdict.Reason != finding.ReasonUnsupportedTokenType {
			t.Errorf("Verify(%s) = %+v, %v", tt, verdict, err)
		}
	}
	if srv.Controls.Requests() != 0 {
		t.Errorf("double saw %d requests", srv.Controls.Requests())
	}
}

// TestNoSecretLeaks runs every class of answer and checks that no verdict,
// error or log line of the outcomes carries the token or a part of it.
func TestNoSecretLeaks(t *testing.T) {
	srv := partnertest.StartDouble(t, slackdouble.Start)
	sweep := harness.LeakSweep(t, harness.NewVerifier(t, 300*time.Millisecond, nil, srv.URL))
	verifyOne := func(tok, label string) { sweep.Verify(label, "", slackFinding(tok)) }
	for _, live := range []bool{true, false} {
		for _, fl := range partnertest.Faults() {
			tok := slackdouble.NewToken()
			if live {
				srv.AddToken(tok)
			}
			srv.Controls.Push(fl)
			verifyOne(tok, fl.String())
		}
	}
	for _, st := range []slackdouble.State{slackdouble.Revoked, slackdouble.AddedToOrg} {
		tok := slackdouble.NewUserToken()
		srv.SetState(tok, st)
		verifyOne(tok, "state")
	}
	for _, code := range []string{"ratelimited", "fatal_error"} {
		srv.SetError(code)
		verifyOne(slackdouble.NewRotatingToken(false), code)
	}
	srv.SetError("")
	verifyOne("xoxe-1-"+strings.Repeat("R", 146), "refresh")
	verifyOne("xoxc-123456789012-"+strings.Repeat("s", 40), "session")
	verifyOne("xoxb-176536724810", "fragment")
	verifyOne("xoxb-"+strings.Repeat("9", 12)+"-bad token with spaces", "malformed")
	sweep.Check([]string{`"reason":"partner_confirmed"`, `"reason":"partner_rejected"`, "http 500", "team_added_to_org", "ratelimited", "malformed_token", "unsupported_token_type"}, func(k string) []string {
		// The secret part: what follows the last numeric segment.
		if tail := k[strings.LastIndex(k, "-")+1:]; len(tail) >= 12 {
			return []string{tail}
		}
		return nil
	})
}

func TestNew(t *testing.T) {
	verifiertest.RefusesEndpoints(t, slackpartner.New, "slack: new verifier:", slackpartner.DefaultEndpoint, "", "/api", "ftp://slack.com/api")
}

// TestEnforcedRateLimit drives the double's own limiter rather than a
// scripted 429: the second request inside the window is refused with
// Slack's ratelimited answer and the wait in Retry-After seconds.
func TestEnforcedRateLimit(t *testing.T) {
	srv := partnertest.StartDouble(t, slackdouble.Start)
	tok := slackdouble.NewToken()
	id := srv.AddToken(tok)
	srv.Controls.SetRetryAfter("2")
	v := harness.NewVerifier(t, 0, nil, srv.URL)
	harness.EnforcedRateLimit(t, v, srv.Controls, "", slackFinding(tok),
		verifiertest.Want{Details: finding.Details{slackpartner.DetailTeamID: id.TeamID, slackpartner.DetailUserID: id.UserID}}, verifiertest.Want{RetryMin: 2 * time.Second, RetryMax: 2 * time.Second})
}

// TestDefinition pins the contract §7 row: rule ids of both scanners, the
// endpoint variable and default, and a rate within its own limit.
func TestDefinition(t *testing.T) {
	d := slackpartner.Definition
	rules := map[string]finding.TokenType{}
	for _, r := range d.Rules {
		rules[r.ID] = r.TokenType
	}
	if !reflect.DeepEqual(rules, map[string]finding.TokenType{"Slack token": slackpartner.TokenBot, "slack-bot-token": slackpartner.TokenBot, "slack-user-token": slackpartner.TokenUser}) {
		t.Errorf("rules = %v", d.Rules)
	}
	if len(d.Endpoints) != 1 || d.Endpoints[0].Env != "PARTNER_ENDPOINT_SLACK" || d.Endpoints[0].Default != "https://slack.com/api" {
		t.Errorf("endpoints = %v", d.Endpoints)
	}
	if d.Rate.PerSecond*2 > d.Rate.Limit || !strings.HasPrefix(d.Rate.Source, "https://") {
		t.Errorf("rate = %+v: two instances at the default rate exceed Limit, or Source is no URL", d.Rate)
	}
}

// TestCheckTypesByPrefix: every prefix under every Slack rule gets its type.
func TestCheckTypesByPrefix(t *testing.T) {
	tests := []struct {
		tok    string
		typ    finding.TokenType
		reason finding.Reason
	}{
		{slackdouble.NewToken(), slackpartner.TokenBot, ""},
		{slackdouble.NewUserToken(), slackpartner.TokenUser, ""},
		{slackdouble.NewRotatingToken(false), slackpartner.TokenBot, ""},
		{slackdouble.NewRotatingToken(true), slackpartner.TokenUser, ""},
		{"xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy", slackpartner.TokenBot, ""},
		{"xoxb-153445930147-Tjy11gGxUW6Cf99YOYwtzG0K", slackpartner.TokenBot, ""},
		{"xoxe-1-" + strings.Repeat("A", 146), slackpartner.TokenRefresh, finding.ReasonUnsupportedTokenType},
		{"xoxc-1-" + strings.Repeat("c", 40), slackpartner.TokenSession, finding.ReasonUnsupportedTokenType},
		{"xoxd-" + strings.Repeat("d", 40), slackpartner.TokenSession, finding.ReasonUnsupportedTokenType},
		{"xoxb-1234567890", slackpartner.TokenBot, finding.ReasonMalformedToken},
		{"xoxe.xoxp-1-short", slackpartner.TokenUser, finding.ReasonMalformedToken},
		{"XOXB-1234567890-abcdefghijkl", "", finding.ReasonMalformedToken},
		{"xoxs-1234567890-abcdefghijkl", "", finding.ReasonMalformedToken},
		{" xoxb-1234567890-abcdefghijkl", "", finding.ReasonMalformedToken},
	}
	for _, rule := range []string{"Slack token", "slack-bot-token", "slack-user-token"} {
		for _, tc := range tests {
			f := finding.Finding{ID: "f", RuleID: rule, Token: finding.Secret(tc.tok)}
			rt, reason, msg := slackpartner.Definition.Examine(f)
			if reason != tc.reason || (tc.typ != "" && rt.TokenType != tc.typ) {
				t.Errorf("%s under %q: %s %q (%s), want %s %q", finding.Scrub(tc.tok[:8], tc.tok), rule, rt.TokenType, reason, msg, tc.typ, tc.reason)
			}
			if strings.Contains(msg, tc.tok) {
				t.Errorf("message quotes the token")
			}
		}
	}
}
