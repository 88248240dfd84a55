package sendgridpartner_test

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
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/sendgriddouble"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/verifiertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/metrics"
	sendgridpartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/sendgrid"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

const rule = "Sendgrid API token"

// harness is the shared verifier harness bound to sendgrid.
var harness = verifiertest.Harness{Def: sendgridpartner.Definition, Op: "GET /v3/scopes"}

// scopes are the details of a confirmed key: its scopes and nothing else.
func scopes(s []string) finding.Details { return finding.Details{sendgridpartner.DetailScopes: s} }

func sendgridFinding(tok string) finding.Finding {
	return finding.Finding{ID: "f-1", RuleID: rule, Token: finding.Secret(tok)}
}

// stripAccept sends requests without the Accept header, to show what
// SendGrid's 406 becomes.
type stripAccept struct{ base http.RoundTripper }

func (s stripAccept) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Del("Accept")
	return s.base.RoundTrip(r)
}

// TestVerifyAgainstDouble has one row per answer SendGrid (or something in
// its place) gives to GET /v3/scopes, and the verdict or fault each must give.
func TestVerifyAgainstDouble(t *testing.T) {
	srv := partnertest.StartDouble(t, sendgriddouble.Start)
	one := metrics.Summary{Requests: 1}
	errored := metrics.Summary{Requests: 1, Errors: 1}
	network := metrics.Summary{Requests: 1, Errors: 1, NetworkErrors: 1}
	limited := metrics.Summary{Requests: 1, RateLimitHits: 1}
	httpDate := func() string { return time.Now().Add(30 * time.Second).UTC().Format(http.TimeFormat) }

	tests := []struct {
		name       string
		tokenType  finding.TokenType
		setup      func(t *testing.T, key string) finding.Finding // registers keys, pushes faults
		retryAfter string                                         // the wait the fault layer gives a 429 (as X-RateLimit-Reset)
		timeout    time.Duration
		transport  http.RoundTripper
		want       verifiertest.Want
	}{
		// 200 {"scopes":[...]}: every live key, however restricted, reads its own scopes.
		{name: "full access key", setup: func(t *testing.T, key string) finding.Finding {
			srv.AddToken(key)
			return sendgridFinding(key)
		}, want: verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Details: scopes(sendgriddouble.FullAccessScopes), Metrics: one, Calls: 1}},
		{name: "restricted key (mail send only)", setup: func(t *testing.T, key string) finding.Finding {
			srv.AddToken(key, sendgriddouble.RestrictedScopes...)
			return sendgridFinding(key)
		}, want: verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Details: scopes(sendgriddouble.RestrictedScopes), Metrics: one, Calls: 1}},
		{name: "billing access key", setup: func(t *testing.T, key string) finding.Finding {
			srv.AddToken(key, sendgriddouble.BillingScopes...)
			return sendgridFinding(key)
		}, want: verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Details: scopes(sendgriddouble.BillingScopes), Metrics: one, Calls: 1}},
		{name: "key with an empty scope list", setup: func(t *testing.T, key string) finding.Finding {
			srv.AddToken(key, []string{}...)
			return sendgridFinding(key)
		}, want: verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Details: scopes([]string{}), Metrics: one, Calls: 1}},
		// 401 {"errors":[...]}: SendGrid's own rejection, both observed messages.
		{name: "unknown key: 401 wrong credentials", setup: func(t *testing.T, key string) finding.Finding {
			return sendgridFinding(key)
		}, want: verifiertest.Want{Reason: finding.ReasonPartnerRejected, Metrics: one, Calls: 1}},
		{name: "revoked key: 401 grant invalid, expired, or revoked", setup: func(t *testing.T, key string) finding.Finding {
			srv.AddToken(key)
			srv.RevokeToken(key)
			return sendgridFinding(key)
		}, want: verifiertest.Want{Reason: finding.ReasonPartnerRejected, Metrics: one, Calls: 1}},
		// The format gate: no call.
		{name: "malformed key: short secret", setup: func(t *testing.T, key string) finding.Finding {
			srv.AddToken(key[:60])
			return sendgridFinding(key[:60])
		}, want: verifiertest.Want{Reason: finding.ReasonMalformedToken, Msg: "not a SendGrid API key"}},
		{name: "malformed key: lower-case prefix", setup: func(t *testing.T, key string) finding.Finding {
			return sendgridFinding("sg." + key[3:])
		}, want: verifiertest.Want{Reason: finding.ReasonMalformedToken}},
		{name: "malformed key: no dot between id and secret", setup: func(t *testing.T, key string) finding.Finding {
			return sendgridFinding(key[:25] + "x" + key[26:])
		}, want: verifiertest.Want{Reason: finding.ReasonMalformedToken}},
		{name: "other partner's token type: no call", tokenType: finding.TokenPostmanAPIKey, setup: func(t *testing.T, key string) finding.Finding {
			srv.AddToken(key)
			return sendgridFinding(key)
		}, want: verifiertest.Want{Reason: finding.ReasonUnsupportedTokenType, Msg: "sendgrid_api_key"}},
		// 403: the temporary block after too many bad requests, never inactive.
		{name: "403 temporary block on a revoked key", setup: func(t *testing.T, key string) finding.Finding {
			srv.RevokeToken(key)
			srv.SetBlocked(true)
			return sendgridFinding(key)
		}, want: verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 403, Msg: "temporary block", Metrics: limited, Calls: 1}},
		{name: "403 temporary block on a live key", setup: func(t *testing.T, key string) finding.Finding {
			srv.AddToken(key)
			srv.SetBlocked(true)
			return sendgridFinding(key)
		}, want: verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 403, Msg: "temporary block", Metrics: limited, Calls: 1}},
		// 406: a request without Accept.
		{name: "406 without Accept", transport: stripAccept{&http.Transport{}}, setup: func(t *testing.T, key string) finding.Finding {
			srv.AddToken(key)
			return sendgridFinding(key)
		}, want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 406, Msg: "406", Metrics: errored, Calls: 1}},
		// 429 with X-RateLimit-Reset in epoch seconds (no Retry-After): the
		// wait is the reset time minus now, the double rounding it up to a second.
		{name: "429 reset in 7 s", retryAfter: "7", setup: fault(srv, partnertest.Fault429),
			want: verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 429, RetryMin: 6 * time.Second, RetryMax: 8 * time.Second, Msg: "rate limited", Metrics: limited, Calls: 1}},
		{name: "429 reset at a date 30 s away", retryAfter: httpDate(), setup: fault(srv, partnertest.Fault429),
			want: verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 429, RetryMin: 27 * time.Second, RetryMax: 30 * time.Second, Metrics: limited, Calls: 1}},
		{name: "429 reset at the end of the minute", retryAfter: "", setup: fault(srv, partnertest.Fault429),
			want: verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 429, RetryMin: 0, RetryMax: 60 * time.Second, Metrics: limited, Calls: 1}},
		{name: "429 on a revoked key", retryAfter: "2", setup: func(t *testing.T, key string) finding.Finding {
			srv.RevokeToken(key)
			srv.Controls.Push(partnertest.Fault429)
			return sendgridFinding(key)
		}, want: verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 429, RetryMin: time.Second, RetryMax: 3 * time.Second, Metrics: limited, Calls: 1}},
		// Faults of the exchange.
		{name: "500", setup: fault(srv, partnertest.Fault500), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 500, Msg: "http 500", Metrics: errored, Calls: 1}},
		{name: "502 HTML", setup: fault(srv, partnertest.Fault502), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 502, Metrics: errored, Calls: 1}},
		{name: "503", setup: fault(srv, partnertest.Fault503), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 503, Metrics: errored, Calls: 1}},
		{name: "504 HTML", setup: fault(srv, partnertest.Fault504), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 504, Metrics: errored, Calls: 1}},
		{name: "reset", setup: fault(srv, partnertest.FaultReset), want: verifiertest.Want{Kind: verify.PartnerError, Network: true, Msg: "network error", Metrics: network, Calls: 1}},
		{name: "hang with a short timeout", timeout: 300 * time.Millisecond, setup: fault(srv, partnertest.FaultHang),
			want: verifiertest.Want{Kind: verify.PartnerError, Network: true, Msg: "timeout", Metrics: network, Calls: 1}},
		{name: "slow live answer within the timeout", timeout: 2 * time.Second, setup: func(t *testing.T, key string) finding.Finding {
			srv.AddToken(key, "mail.send")
			srv.Controls.SetLatency(100*time.Millisecond, 0)
			return sendgridFinding(key)
		}, want: verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Details: scopes([]string{"mail.send"}), Metrics: one, Calls: 1}},
		{name: "garbled 200", setup: fault(srv, partnertest.FaultGarbled), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 200, Msg: "proves nothing", Metrics: errored, Calls: 1}},
		{name: "empty 200", setup: fault(srv, partnertest.FaultEmpty), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 200, Msg: "proves nothing", Metrics: errored, Calls: 1}},
		{name: "truncated 200", setup: fault(srv, partnertest.FaultTruncated), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 200, Msg: "read body", Metrics: errored, Calls: 1}},
		{name: "HTML 401 from a proxy", setup: fault(srv, partnertest.FaultHTML401), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 401, Msg: "HTML page", Metrics: errored, Calls: 1}},
		{name: "HTML 403 from a WAF", setup: fault(srv, partnertest.FaultHTML403), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 403, Msg: "HTML page", Metrics: errored, Calls: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv.Controls.Reset()
			srv.SetBlocked(false)
			srv.Controls.SetRetryAfter(tc.retryAfter)
			key := sendgriddouble.NewToken()
			f := tc.setup(t, key)
			tt := tc.tokenType
			if tt == "" {
				tt = sendgridpartner.TokenAPIKey
			}
			got := harness.Run(harness.NewVerifier(t, tc.timeout, tc.transport, srv.URL), tt, f)
			harness.Check(t, got, tc.want)
			if calls := srv.Controls.Requests(); calls != tc.want.Calls {
				t.Errorf("double saw %d requests, want %d", calls, tc.want.Calls)
			}
		})
	}
}

// fault returns a row setup that registers the key as live and scripts f, so
// that any verdict but a fault would be wrong.
func fault(srv *sendgriddouble.Server, f partnertest.Fault) func(*testing.T, string) finding.Finding {
	return func(_ *testing.T, key string) finding.Finding {
		srv.AddToken(key)
		srv.Controls.Push(f)
		return sendgridFinding(key)
	}
}

// TestVerifyOtherAnswers covers answers the double never gives but a proxy,
// a change at SendGrid or a misconfiguration can: none is inactive.
func TestVerifyOtherAnswers(t *testing.T) {
	canary := partnertest.RedirectCanary(t)
	key := sendgriddouble.NewToken()
	errored := metrics.Summary{Requests: 1, Errors: 1}
	limited := metrics.Summary{Requests: 1, RateLimitHits: 1}
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string
		header      map[string]string
		want        verifiertest.Want
	}{
		{"200 JSON without scopes", 200, "application/json", `{"ok":true}`, nil, verifiertest.Want{HTTPStatus: 200, Msg: "proves nothing"}},
		{"200 scopes null", 200, "application/json", `{"scopes":null}`, nil, verifiertest.Want{HTTPStatus: 200, Msg: "proves nothing"}},
		{"200 scopes a string", 200, "application/json", `{"scopes":"mail.send"}`, nil, verifiertest.Want{HTTPStatus: 200, Msg: "proves nothing"}},
		{"200 scopes of numbers", 200, "application/json", `{"scopes":[1,2]}`, nil, verifiertest.Want{HTTPStatus: 200, Msg: "proves nothing"}},
		{"200 scopes with null", 200, "application/json", `{"scopes":["mail.send",null]}`, nil, verifiertest.Want{HTTPStatus: 200, Msg: "proves nothing"}},
		{"200 scope not a scope name", 200, "application/json", `{"scopes":["Mail Send"]}`, nil, verifiertest.Want{HTTPStatus: 200, Msg: "proves nothing"}},
		{"200 scopes echo the key", 200, "application/json", `{"scopes":["` + key + `"]}`, nil, verifiertest.Want{HTTPStatus: 200, Msg: "proves nothing"}},
		{"200 scopes echo the key's id", 200, "application/json", `{"scopes":["x.` + strings.ToLower(key[3:25]) + `"]}`, nil, verifiertest.Want{HTTPStatus: 200, Msg: "proves nothing"}},
		{"200 upper-case key", 200, "application/json", `{"Scopes":["mail.send"]}`, nil, verifiertest.Want{HTTPStatus: 200, Msg: "proves nothing"}},
		{"200 two documents", 200, "application/json", `{"scopes":[]}{"scopes":[]}`, nil, verifiertest.Want{HTTPStatus: 200, Msg: "proves nothing"}},
		{"200 HTML captive portal", 200, "text/html", `<html><body>Sign in to Wi-Fi</body></html>`, nil, verifiertest.Want{HTTPStatus: 200, Msg: "HTML page"}},
		{"200 too long", 200, "application/json", `{"scopes":["mail.send"],"pad":"` + strings.Repeat("x", 70*1024) + `"}`, nil, verifiertest.Want{HTTPStatus: 200, Msg: "read body"}},
		{"401 HTML without a content type", 401, "", `<!DOCTYPE html><title>401</title>`, nil, verifiertest.Want{HTTPStatus: 401, Msg: "HTML page"}},
		{"401 empty", 401, "", ``, nil, verifiertest.Want{HTTPStatus: 401, Msg: "errors body"}},
		{"401 flat error", 401, "application/json", `{"error":"unauthorized"}`, nil, verifiertest.Want{HTTPStatus: 401, Msg: "errors body"}},
		{"401 empty errors", 401, "application/json", `{"errors":[]}`, nil, verifiertest.Want{HTTPStatus: 401, Msg: "errors body"}},
		{"401 error without message", 401, "application/json", `{"errors":[{"field":null}]}`, nil, verifiertest.Want{HTTPStatus: 401, Msg: "errors body"}},
		{"401 error with null message", 401, "application/json", `{"errors":[{"field":null,"message":null}]}`, nil, verifiertest.Want{HTTPStatus: 401, Msg: "errors body"}},
		{"401 upper-case Errors", 401, "application/json", `{"Errors":[{"field":null,"message":"x"}]}`, nil, verifiertest.Want{HTTPStatus: 401, Msg: "errors body"}},
		{"401 truncated errors", 401, "application/json", `{"errors":[{"field":null,"message":"x"}`, nil, verifiertest.Want{HTTPStatus: 401, Msg: "errors body"}},
		{"403 not SendGrid's body", 403, "application/json", `{"message":"Forbidden"}`, nil, verifiertest.Want{HTTPStatus: 403, Msg: "unexpected http status 403"}},
		{"403 with X-RateLimit-Remaining 0", 403, "application/json", `{"message":"Forbidden"}`, map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "5"},
			verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 403, RetryMin: 5 * time.Second, RetryMax: 5 * time.Second, Msg: "rate limited", Metrics: limited}},
		{"400 errors body", 400, "application/json", `{"errors":[{"field":"x","message":"bad request"}]}`, nil, verifiertest.Want{HTTPStatus: 400, Msg: "unexpected http status 400"}},
		{"404", 404, "application/json", `{"errors":[{"field":null,"message":"resource not found"}]}`, nil, verifiertest.Want{HTTPStatus: 404, Msg: "unexpected http status 404"}},
		{"451 data residency", 451, "application/json", `{"errors":[{"field":null,"message":"unavailable"}]}`, nil, verifiertest.Want{HTTPStatus: 451, Msg: "unexpected http status 451"}},
		{"302 to elsewhere", 302, "", "", map[string]string{"Location": canary.URL + "/v3/scopes"}, verifiertest.Want{HTTPStatus: 302, Msg: "unexpected http status 302"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := partnertest.ServeAnswer(t, tc.status, tc.contentType, tc.body, tc.header)
			w := tc.want
			if w.Kind == verify.PartnerError { // the zero kind: an unusable answer
				w.Metrics = errored
			}
			harness.Check(t, harness.Run(harness.NewVerifier(t, 0, nil, srv.URL), sendgridpartner.TokenAPIKey, sendgridFinding(key)), w)
		})
	}
}

// recordingTransport passes requests on and remembers their shape.
type recordingTransport struct {
	mu       sync.Mutex
	base     http.RoundTripper
	urls     []string
	uas      []string
	accepts  []string
	inHeader int
	bodies   int
}

func (rt *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rt.mu.Lock()
	rt.urls = append(rt.urls, req.URL.String())
	rt.uas = append(rt.uas, req.Header.Get("User-Agent"))
	rt.accepts = append(rt.accepts, req.Header.Get("Accept"))
	if key, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer "); ok && key != "" && !strings.Contains(req.URL.String(), key) {
		rt.inHeader++
	}
	if req.Body != nil && req.Body != http.NoBody {
		rt.bodies++
	}
	rt.mu.Unlock()
	return rt.base.RoundTrip(req)
}

// TestRequestShape: GET <base>/v3/scopes, the key only in the Authorization
// header (never in the URL or a body), Accept and our User-Agent set.
func TestRequestShape(t *testing.T) {
	srv := partnertest.StartDouble(t, sendgriddouble.Start)
	key := sendgriddouble.NewToken()
	srv.AddToken(key, "mail.send")
	rt := &recordingTransport{base: &http.Transport{}}
	v := harness.NewVerifier(t, 0, rt, srv.URL+"/")
	for range 3 {
		if got := harness.Run(v, sendgridpartner.TokenAPIKey, sendgridFinding(key)); got.Verdict.Reason != finding.ReasonPartnerConfirmed {
			t.Fatalf("Verify = %+v, %v", got.Verdict, got.Err)
		}
	}
	if len(rt.urls) != 3 {
		t.Fatalf("transport saw %d requests", len(rt.urls))
	}
	for i := range rt.urls {
		if rt.urls[i] != srv.URL+"/v3/scopes" {
			t.Errorf("request %d went to %s, want %s/v3/scopes", i, rt.urls[i], srv.URL)
		}
		if rt.uas[i] != partnerhttp.UserAgent {
			t.Errorf("User-Agent = %q", rt.uas[i])
		}
		if rt.accepts[i] != "application/json" {
			t.Errorf("Accept = %q", rt.accepts[i])
		}
	}
	if rt.inHeader != 3 || rt.bodies != 0 {
		t.Errorf("%d of 3 requests carried the key in Authorization only; %d had a body", rt.inHeader, rt.bodies)
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
		_, _ = w.Write([]byte(`{"scopes":["mail.send"]}`))
	}))
	defer srv.Close()
	got := harness.Run(harness.NewVerifier(t, 0, nil, srv.URL+"/sendgrid/"), sendgridpartner.TokenAPIKey, sendgridFinding(sendgriddouble.NewToken()))
	harness.Check(t, got, verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Details: scopes([]string{"mail.send"}), Metrics: metrics.Summary{Requests: 1}})
	if p, _ := path.Load().(string); p != "/sendgrid/v3/scopes" {
		t.Errorf("path = %q, want /sendgrid/v3/scopes", p)
	}
}

func TestConcurrentVerifications(t *testing.T) {
	srv := partnertest.StartDouble(t, sendgriddouble.Start)
	cases := make([]verifiertest.ConcurrentCase, 16)
	for i := range cases {
		key := sendgriddouble.NewToken()
		cases[i] = verifiertest.ConcurrentCase{TokenType: sendgridpartner.TokenAPIKey, Finding: sendgridFinding(key), Want: finding.ReasonPartnerRejected}
		if i%2 == 0 {
			srv.AddToken(key, fmt.Sprintf("scope.n%d", i))
			cases[i].Want, cases[i].Details = finding.ReasonPartnerConfirmed, scopes([]string{fmt.Sprintf("scope.n%d", i)})
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
	srv := partnertest.StartDouble(t, sendgriddouble.Start)
	key := sendgriddouble.NewToken()
	srv.AddToken(key)
	verifiertest.CancelledIsAFault(t, harness.NewVerifier(t, 0, nil, srv.URL), sendgridpartner.TokenAPIKey, sendgridFinding(key))
}

// TestNoSecretLeaks runs every class of answer and checks that no verdict,
// error or log line of the outcomes carries the key or a part of it.
func TestNoSecretLeaks(t *testing.T) {
	srv := partnertest.StartDouble(t, sendgriddouble.Start)
	sweep := harness.LeakSweep(t, harness.NewVerifier(t, 300*time.Millisecond, nil, srv.URL))
	for _, live := range []bool{true, false} {
		for _, fl := range partnertest.Faults() {
			key := sendgriddouble.NewToken()
			if live {
				srv.AddToken(key)
			}
			srv.Controls.Push(fl)
			sweep.Verify(fl.String(), sendgridpartner.TokenAPIKey, sendgridFinding(key))
		}
	}
	// The block, a revoked key, and a malformed key (which never leaves the
	// process, but whose message must not quote it either).
	blocked, revoked := sendgriddouble.NewToken(), sendgriddouble.NewToken()
	srv.RevokeToken(revoked)
	sweep.Verify("revoked", sendgridpartner.TokenAPIKey, sendgridFinding(revoked))
	srv.SetBlocked(true)
	sweep.Verify("blocked", sendgridpartner.TokenAPIKey, sendgridFinding(blocked))
	srv.SetBlocked(false)
	sweep.Verify("malformed", sendgridpartner.TokenAPIKey, sendgridFinding(sendgriddouble.NewToken()[:60]))
	sweep.Check([]string{`"reason":"partner_confirmed"`, `"reason":"partner_rejected"`, "http 500", "temporary block", "malformed_token"}, func(k string) []string {
		id, secret, _ := strings.Cut(strings.TrimPrefix(k, "SG."), ".")
		if len(secret) >= 20 {
			return []string{id, secret[:20]}
		}
		return []string{id}
	})
}

func TestNew(t *testing.T) {
	verifiertest.RefusesEndpoints(t, sendgridpartner.New, "sendgrid: new verifier:", sendgridpartner.DefaultEndpoint, "", "/v3", "ftp://api.sendgrid.com")
}

// TestEnforcedRateLimit drives the double's own limiter rather than a
// scripted 429: the second request inside the window is refused, with the
// wait in X-RateLimit-Reset.
func TestEnforcedRateLimit(t *testing.T) {
	srv := partnertest.StartDouble(t, sendgriddouble.Start)
	key := sendgriddouble.NewToken()
	srv.AddToken(key, "mail.send")
	srv.Controls.SetRetryAfter("2")
	v := harness.NewVerifier(t, 0, nil, srv.URL)
	harness.EnforcedRateLimit(t, v, srv.Controls, sendgridpartner.TokenAPIKey, sendgridFinding(key),
		verifiertest.Want{Details: scopes([]string{"mail.send"})}, verifiertest.Want{RetryMin: time.Second, RetryMax: 3 * time.Second})
}

// TestDefinition pins the contract §7 row: rule ids of both scanners, the
// endpoint variable and default, and a rate within its own limit.
func TestDefinition(t *testing.T) {
	d := sendgridpartner.Definition
	rules := map[string]bool{}
	for _, r := range d.Rules {
		rules[r.ID] = r.TokenType == sendgridpartner.TokenAPIKey
	}
	if !reflect.DeepEqual(rules, map[string]bool{"Sendgrid API token": true, "sendgrid-api-token": true}) {
		t.Errorf("rules = %v", d.Rules)
	}
	if len(d.Endpoints) != 1 || d.Endpoints[0].Env != "PARTNER_ENDPOINT_SENDGRID" || d.Endpoints[0].Default != "https://api.sendgrid.com" {
		t.Errorf("endpoints = %v", d.Endpoints)
	}
	if d.Rate.PerSecond*2 > d.Rate.Limit || !strings.HasPrefix(d.Rate.Source, "https://") {
		t.Errorf("rate = %+v: two instances at the default rate exceed Limit, or Source is no URL", d.Rate)
	}
}
