package npmpartner_test

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
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/npmdouble"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/verifiertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/metrics"
	npmpartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/npm"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

const (
	ruleGitLab   = "npm access token"
	ruleGitleaks = "npm-access-token"
)

// harness is the shared verifier harness bound to npm.
var harness = verifiertest.Harness{Def: npmpartner.Definition, Op: "GET /-/whoami", AnyDetails: true}

func npmFinding(tok string) finding.Finding {
	return finding.Finding{ID: "f-1", RuleID: ruleGitleaks, Token: finding.Secret(tok)}
}

// TestVerifyAgainstDouble has one row per answer the npm registry can give,
// served by the double, and the verdict or fault each must give.
func TestVerifyAgainstDouble(t *testing.T) {
	srv := partnertest.StartDouble(t, npmdouble.Start)
	one := metrics.Summary{Requests: 1}
	errored := metrics.Summary{Requests: 1, Errors: 1}
	network := metrics.Summary{Requests: 1, Errors: 1, NetworkErrors: 1}
	limited := metrics.Summary{Requests: 1, RateLimitHits: 1}
	httpDate := func() string { return time.Now().Add(30 * time.Second).UTC().Format(http.TimeFormat) }
	const name = "some-maintainer"

	tests := []struct {
		name       string
		rejection  npmdouble.RejectionBody
		tokenType  finding.TokenType
		setup      func(t *testing.T, tok string) finding.Finding // registers tokens, pushes faults
		retryAfter string
		timeout    time.Duration
		want       verifiertest.Want
	}{
		{name: "live token: 200 username", setup: func(t *testing.T, tok string) finding.Finding {
			srv.AddToken(tok, name)
			return npmFinding(tok)
		}, want: verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Metrics: one, Calls: 1}},
		{name: "live token under GitLab's rule", setup: func(t *testing.T, tok string) finding.Finding {
			srv.AddToken(tok, name)
			return finding.Finding{ID: "f-1", RuleID: ruleGitLab, Token: finding.Secret(tok)}
		}, want: verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Metrics: one, Calls: 1}},
		{name: "unknown token: 401 empty body", setup: func(t *testing.T, tok string) finding.Finding {
			return npmFinding(tok)
		}, want: verifiertest.Want{Reason: finding.ReasonPartnerRejected, Metrics: one, Calls: 1}},
		{name: "unknown token: 401 JSON error", rejection: npmdouble.RejectJSON, setup: func(t *testing.T, tok string) finding.Finding {
			return npmFinding(tok)
		}, want: verifiertest.Want{Reason: finding.ReasonPartnerRejected, Metrics: one, Calls: 1}},
		{name: "revoked token: 401 empty body", setup: func(t *testing.T, tok string) finding.Finding {
			srv.AddToken(tok, name)
			srv.RevokeToken(tok)
			return npmFinding(tok)
		}, want: verifiertest.Want{Reason: finding.ReasonPartnerRejected, Metrics: one, Calls: 1}},
		{name: "revoked token: 401 JSON error", rejection: npmdouble.RejectJSON, setup: func(t *testing.T, tok string) finding.Finding {
			srv.AddToken(tok, name)
			srv.RevokeToken(tok)
			return npmFinding(tok)
		}, want: verifiertest.Want{Reason: finding.ReasonPartnerRejected, Metrics: one, Calls: 1}},
		{name: "token bound to other IP addresses: 401 ipaddress challenge", setup: func(t *testing.T, tok string) finding.Finding {
			srv.AddTokenMode(tok, name, npmdouble.IPRestricted)
			return npmFinding(tok)
		}, want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 401, Msg: "ipaddress", Metrics: errored, Calls: 1}},
		{name: "one-time password asked: 401 otp challenge", setup: func(t *testing.T, tok string) finding.Finding {
			srv.AddTokenMode(tok, name, npmdouble.OTPRequired)
			return npmFinding(tok)
		}, want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 401, Msg: "otp", Metrics: errored, Calls: 1}},
		{name: "403 forbidden", setup: func(t *testing.T, tok string) finding.Finding {
			srv.AddTokenMode(tok, name, npmdouble.Forbidden)
			return npmFinding(tok)
		}, want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 403, Msg: "403", Metrics: errored, Calls: 1}},
		{name: "200 without a username", setup: func(t *testing.T, tok string) finding.Finding {
			srv.AddTokenMode(tok, name, npmdouble.NoUsername)
			return npmFinding(tok)
		}, want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 200, Msg: "proves nothing", Metrics: errored, Calls: 1}},
		{name: "malformed token: too short, no call", setup: func(t *testing.T, tok string) finding.Finding {
			srv.AddToken(tok[:30], name)
			return npmFinding(tok[:30])
		}, want: verifiertest.Want{Reason: finding.ReasonMalformedToken, Msg: "not an npm access token"}},
		{name: "malformed token: one character too long, no call", setup: func(t *testing.T, tok string) finding.Finding {
			return npmFinding(tok + "x")
		}, want: verifiertest.Want{Reason: finding.ReasonMalformedToken}},
		{name: "malformed token: not alphanumeric, no call", setup: func(t *testing.T, tok string) finding.Finding {
			return npmFinding(tok[:20] + "_" + tok[21:])
		}, want: verifiertest.Want{Reason: finding.ReasonMalformedToken}},
		{name: "legacy UUID token: malformed, no call", setup: func(t *testing.T, tok string) finding.Finding {
			return npmFinding("a73c9572-f1b9-8983-983d-ba3ac3cc913d")
		}, want: verifiertest.Want{Reason: finding.ReasonMalformedToken, Msg: "npm_ + 36"}},
		{name: "other partner's token type: no call", tokenType: finding.TokenPostmanAPIKey, setup: func(t *testing.T, tok string) finding.Finding {
			srv.AddToken(tok, name)
			return npmFinding(tok)
		}, want: verifiertest.Want{Reason: finding.ReasonUnsupportedTokenType, Msg: "npm_access_token"}},
		{name: "500", setup: fault(srv, partnertest.Fault500), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 500, Msg: "server error", Metrics: errored, Calls: 1}},
		{name: "502 HTML", setup: fault(srv, partnertest.Fault502), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 502, Metrics: errored, Calls: 1}},
		{name: "503", setup: fault(srv, partnertest.Fault503), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 503, Metrics: errored, Calls: 1}},
		{name: "504 HTML", setup: fault(srv, partnertest.Fault504), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 504, Metrics: errored, Calls: 1}},
		{name: "429 without a wait header", retryAfter: "", setup: fault(srv, partnertest.Fault429),
			want: verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 429, RetryMin: 0, RetryMax: 0, Msg: "rate limited", Metrics: limited, Calls: 1}},
		{name: "429 with Retry-After seconds", retryAfter: "7", setup: fault(srv, partnertest.Fault429),
			want: verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 429, RetryMin: 7 * time.Second, RetryMax: 7 * time.Second, Msg: "rate limited", Metrics: limited, Calls: 1}},
		{name: "429 with Retry-After HTTP date", retryAfter: httpDate(), setup: fault(srv, partnertest.Fault429),
			want: verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 429, RetryMin: 27 * time.Second, RetryMax: 30 * time.Second, Metrics: limited, Calls: 1}},
		{name: "429 on a live token", retryAfter: "1", setup: func(t *testing.T, tok string) finding.Finding {
			srv.AddToken(tok, name)
			srv.Controls.Push(partnertest.Fault429)
			return npmFinding(tok)
		}, want: verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 429, RetryMin: time.Second, RetryMax: time.Second, Metrics: limited, Calls: 1}},
		{name: "reset", setup: fault(srv, partnertest.FaultReset), want: verifiertest.Want{Kind: verify.PartnerError, Network: true, Msg: "network error", Metrics: network, Calls: 1}},
		{name: "hang with a short timeout", timeout: 300 * time.Millisecond, setup: fault(srv, partnertest.FaultHang),
			want: verifiertest.Want{Kind: verify.PartnerError, Network: true, Msg: "timeout", Metrics: network, Calls: 1}},
		{name: "slow live answer within the timeout", timeout: 2 * time.Second, setup: func(t *testing.T, tok string) finding.Finding {
			srv.AddToken(tok, name)
			srv.Controls.SetLatency(100*time.Millisecond, 0)
			return npmFinding(tok)
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
			srv.SetRejectionBody(tc.rejection)
			tok := npmdouble.NewToken()
			f := tc.setup(t, tok)
			tt := tc.tokenType
			if tt == "" {
				tt = npmpartner.TokenAccessToken
			}
			got := harness.Run(harness.NewVerifier(t, tc.timeout, nil, srv.URL), tt, f)
			harness.Check(t, got, tc.want)
			if got.Verdict.Reason == finding.ReasonPartnerConfirmed {
				if !reflect.DeepEqual(got.Verdict.Details, finding.Details{npmpartner.DetailUsername: name}) {
					t.Errorf("details = %v, want only %s = the registered user", got.Verdict.Details, npmpartner.DetailUsername)
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

// fault returns a row setup that registers the token as live and scripts
// f, so that any verdict but a fault would be wrong.
func fault(srv *npmdouble.Server, f partnertest.Fault) func(*testing.T, string) finding.Finding {
	return func(_ *testing.T, tok string) finding.Finding {
		srv.AddToken(tok, "some-maintainer")
		srv.Controls.Push(f)
		return npmFinding(tok)
	}
}

// TestEnforcedRateLimit drives the shared limiter knob: the second request
// inside the window is refused with the Retry-After the knob sets.
func TestEnforcedRateLimit(t *testing.T) {
	srv := partnertest.StartDouble(t, npmdouble.Start)
	tok := npmdouble.NewToken()
	srv.AddToken(tok, npmdouble.NewUsername())
	srv.Controls.SetRetryAfter("2")
	v := harness.NewVerifier(t, 0, nil, srv.URL)
	harness.EnforcedRateLimit(t, v, srv.Controls, npmpartner.TokenAccessToken, npmFinding(tok),
		verifiertest.Want{}, verifiertest.Want{RetryMin: 2 * time.Second, RetryMax: 2 * time.Second, Msg: "rate limited"})
}

// TestVerifyRejections: contract §7 makes any non-HTML 401 npm's rejection,
// whatever its body (unconfirmed), unless it challenges for an IP address
// or a one-time password.
func TestVerifyRejections(t *testing.T) {
	tests := []struct {
		name        string
		contentType string
		body        string
		header      map[string]string
	}{
		{"empty", "", "", nil},
		{"JSON error", "application/json", `{"error":"Unauthorized"}`, nil},
		{"JSON without error", "application/json", `{}`, nil},
		{"plain text", "text/plain", "Unauthorized", nil},
		{"another challenge", "application/json", `{"error":"x"}`, map[string]string{"WWW-Authenticate": `Bearer realm="npm"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := partnertest.ServeAnswer(t, 401, tc.contentType, tc.body, tc.header)
			got := harness.Run(harness.NewVerifier(t, 0, nil, srv.URL), npmpartner.TokenAccessToken, npmFinding(npmdouble.NewToken()))
			harness.Check(t, got, verifiertest.Want{Reason: finding.ReasonPartnerRejected, Metrics: metrics.Summary{Requests: 1}})
		})
	}
}

// TestVerifyUnusableAnswers covers answers the double never gives but a
// proxy, a registry change or a misconfiguration can: each proves nothing.
func TestVerifyUnusableAnswers(t *testing.T) {
	canary := partnertest.RedirectCanary(t)
	tok := npmdouble.NewToken()
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string
		header      map[string]string
		wantMsg     string
	}{
		{"200 empty username", 200, "application/json", `{"username":""}`, nil, "proves nothing"},
		{"200 null username", 200, "application/json", `{"username":null}`, nil, "proves nothing"},
		{"200 username a number", 200, "application/json", `{"username":7}`, nil, "proves nothing"},
		{"200 Username of another case", 200, "application/json", `{"Username":"someone"}`, nil, "proves nothing"},
		{"200 an e-mail address", 200, "application/json", `{"username":"someone@example.com"}`, nil, "proves nothing"},
		{"200 username with a space", 200, "application/json", `{"username":"some one"}`, nil, "proves nothing"},
		{"200 username too long", 200, "application/json", `{"username":"` + strings.Repeat("a", 215) + `"}`, nil, "proves nothing"},
		{"200 username echoes the token", 200, "application/json", `{"username":"` + tok + `"}`, nil, "proves nothing"},
		{"200 an array", 200, "application/json", `[{"username":"someone"}]`, nil, "proves nothing"},
		{"200 two documents", 200, "application/json", `{"username":"a"}{"username":"b"}`, nil, "proves nothing"},
		{"200 trailing garbage", 200, "application/json", `{"username":"a"}x`, nil, "proves nothing"},
		{"200 HTML captive portal", 200, "text/html", `<html><body>Sign in to Wi-Fi</body></html>`, nil, "HTML page"},
		{"200 too long", 200, "application/json", `{"username":"a","pad":"` + strings.Repeat("x", 70*1024) + `"}`, nil, "read body"},
		{"401 HTML without a content type", 401, "", `<!DOCTYPE html><title>401</title>`, nil, "HTML page"},
		{"401 ipaddress challenge among others", 401, "application/json", `{"error":"x"}`, map[string]string{"WWW-Authenticate": "Bearer, IPAddress"}, "ipaddress"},
		{"401 OTP challenge in upper case", 401, "application/json", `{"error":"x"}`, map[string]string{"WWW-Authenticate": "OTP"}, "otp"},
		{"401 one-time pass body without a challenge", 401, "application/json", `{"error":"You must provide a one-time pass."}`, nil, "otp"},
		{"403 JSON", 403, "application/json", `{"error":"Forbidden"}`, nil, "403"},
		{"403 empty", 403, "", ``, nil, "403"},
		{"404", 404, "application/json", `{"error":"Not found"}`, nil, "unexpected http status 404"},
		{"302 to elsewhere", 302, "", "", map[string]string{"Location": canary.URL + "/-/whoami"}, "unexpected http status 302"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := partnertest.ServeAnswer(t, tc.status, tc.contentType, tc.body, tc.header)
			got := harness.Run(harness.NewVerifier(t, 0, nil, srv.URL), npmpartner.TokenAccessToken, npmFinding(tok))
			harness.Check(t, got, verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: tc.status, Msg: tc.wantMsg, Metrics: metrics.Summary{Requests: 1, Errors: 1}})
		})
	}
}

// TestForbiddenWithRetryAfterIsARateLimit: a 403 that carries Retry-After
// is the edge throttling us (partnerhttp), never a verdict on the token.
func TestForbiddenWithRetryAfterIsARateLimit(t *testing.T) {
	srv := partnertest.ServeAnswer(t, 403, "application/json", `{"error":"Forbidden"}`, map[string]string{"Retry-After": "3"})
	got := harness.Run(harness.NewVerifier(t, 0, nil, srv.URL), npmpartner.TokenAccessToken, npmFinding(npmdouble.NewToken()))
	harness.Check(t, got, verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 403, Msg: "rate limited", RetryMin: 3 * time.Second, RetryMax: 3 * time.Second,
		Metrics: metrics.Summary{Requests: 1, RateLimitHits: 1}})
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

// TestRequestShape: GET /-/whoami with the token only in the Authorization
// header (never in the URL or a body), Accept: application/json and this
// project's User-Agent.
func TestRequestShape(t *testing.T) {
	srv := partnertest.StartDouble(t, npmdouble.Start)
	rt := &recordingTransport{base: &http.Transport{}}
	v := harness.NewVerifier(t, 0, rt, srv.URL+"/")
	toks := []string{npmdouble.NewToken(), npmdouble.NewToken()}
	for _, tok := range toks {
		srv.AddToken(tok, npmdouble.NewUsername())
		if got := harness.Run(v, npmpartner.TokenAccessToken, npmFinding(tok)); got.Verdict.Reason != finding.ReasonPartnerConfirmed {
			t.Fatalf("Verify = %+v, %v", got.Verdict, got.Err)
		}
	}
	if len(rt.reqs) != len(toks) {
		t.Fatalf("transport saw %d requests", len(rt.reqs))
	}
	for i, r := range rt.reqs {
		tok := toks[i]
		if r.Method != http.MethodGet || r.URL.String() != srv.URL+"/-/whoami" {
			t.Errorf("request %d: %s %s, want GET %s/-/whoami", i, r.Method, r.URL, srv.URL)
		}
		if strings.Contains(r.URL.String(), tok) || strings.Contains(r.URL.String(), tok[4:]) {
			t.Errorf("request %d carries the token in its URL", i)
		}
		if r.Body != nil && r.Body != http.NoBody {
			t.Errorf("request %d has a body", i)
		}
		if got := r.Header.Get("Authorization"); got != "Bearer "+tok {
			t.Errorf("request %d: Authorization is not the Bearer token", i)
		}
		if got := r.Header.Get("Accept"); got != "application/json" {
			t.Errorf("request %d: Accept = %q", i, got)
		}
		if got := r.Header.Get("User-Agent"); got != partnerhttp.UserAgent || got == "" {
			t.Errorf("request %d: User-Agent = %q", i, got)
		}
		for name, vs := range r.Header {
			if name == "Authorization" {
				continue
			}
			for _, val := range vs {
				if strings.Contains(val, tok[4:]) {
					t.Errorf("request %d: header %s carries the token", i, name)
				}
			}
		}
		if got := srv.Controls.CountFor(tok); got != 1 {
			t.Errorf("double counted %d requests for token %d", got, i)
		}
	}
}

// TestMissingAuthorization: the double, like the registry, answers 401 to
// a whoami without a token.
func TestMissingAuthorization(t *testing.T) {
	srv := partnertest.StartDouble(t, npmdouble.Start)
	resp, err := http.Get(srv.URL + "/-/whoami")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("status = %d, want 401", resp.StatusCode)
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
		_, _ = w.Write([]byte(`{"username":"someone"}`))
	}))
	defer srv.Close()
	got := harness.Run(harness.NewVerifier(t, 0, nil, srv.URL+"/npm/"), npmpartner.TokenAccessToken, npmFinding(npmdouble.NewToken()))
	harness.Check(t, got, verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Metrics: metrics.Summary{Requests: 1}})
	mu.Lock()
	defer mu.Unlock()
	if path != "/npm/-/whoami" {
		t.Errorf("path = %q, want /npm/-/whoami", path)
	}
}

func TestConcurrentVerifications(t *testing.T) {
	srv := partnertest.StartDouble(t, npmdouble.Start)
	cases := make([]verifiertest.ConcurrentCase, 16)
	for i := range cases {
		tok, name := npmdouble.NewToken(), npmdouble.NewUsername()
		cases[i] = verifiertest.ConcurrentCase{TokenType: npmpartner.TokenAccessToken, Finding: npmFinding(tok), Want: finding.ReasonPartnerRejected}
		if i%2 == 0 {
			srv.AddToken(tok, name)
			cases[i].Want, cases[i].Details = finding.ReasonPartnerConfirmed, finding.Details{npmpartner.DetailUsername: name}
		}
	}
	harness.Concurrent(t, harness.NewVerifier(t, 0, nil, srv.URL), cases)
}

func TestCancelledContextIsAFault(t *testing.T) {
	srv := partnertest.StartDouble(t, npmdouble.Start)
	tok := npmdouble.NewToken()
	srv.AddToken(tok, npmdouble.NewUsername())
	verifiertest.CancelledIsAFault(t, harness.NewVerifier(t, 0, nil, srv.URL), npmpartner.TokenAccessToken, npmFinding(tok))
}

// TestNoSecretLeaks runs every class of answer and checks that no verdict,
// error or log line of the outcomes carries the token or a part of it.
func TestNoSecretLeaks(t *testing.T) {
	srv := partnertest.StartDouble(t, npmdouble.Start)
	modes := []npmdouble.Mode{npmdouble.Live, npmdouble.IPRestricted, npmdouble.OTPRequired, npmdouble.Forbidden, npmdouble.NoUsername}
	sweep := harness.LeakSweep(t, harness.NewVerifier(t, 300*time.Millisecond, nil, srv.URL))
	for _, rejection := range []npmdouble.RejectionBody{npmdouble.RejectEmpty, npmdouble.RejectJSON} {
		srv.SetRejectionBody(rejection)
		for _, live := range []bool{true, false} {
			for _, fl := range partnertest.Faults() {
				tok := npmdouble.NewToken()
				if live {
					srv.AddToken(tok, npmdouble.NewUsername())
				}
				srv.Controls.Push(fl)
				sweep.Verify(fl.String(), npmpartner.TokenAccessToken, npmFinding(tok))
			}
		}
	}
	for _, m := range modes {
		tok := npmdouble.NewToken()
		srv.AddTokenMode(tok, npmdouble.NewUsername(), m)
		sweep.Verify(fmt.Sprint("mode ", m), npmpartner.TokenAccessToken, npmFinding(tok))
	}
	// A malformed token never leaves the process, but its message must not quote it either.
	sweep.Verify("malformed", "", npmFinding(npmdouble.NewToken()[:30]))
	sweep.Check([]string{`"reason":"partner_confirmed"`, `"reason":"partner_rejected"`, "http 500", "ipaddress", `"reason":"malformed_token"`}, func(k string) []string {
		if len(k) >= 30 {
			return []string{k[4:], k[4:20], k[20:]}
		}
		return []string{k[4:]}
	})
}

func TestNew(t *testing.T) {
	verifiertest.RefusesEndpoints(t, npmpartner.New, "npm: new verifier:", npmpartner.DefaultEndpoint, "", "/-/whoami", "ftp://registry.npmjs.org")
}

// TestDefinition: the rule ids of contract §7 in both families, the one
// endpoint, and a rate whose least deployment (two instances) stays within
// the Limit, itself within npm's acceptable-use average (5 million
// requests a month).
func TestDefinition(t *testing.T) {
	d := npmpartner.Definition
	if d.Name != "npm" || d.Title != "npm" {
		t.Errorf("name %q, title %q", d.Name, d.Title)
	}
	want := map[string]bool{"npm access token": true, "npm-access-token": true}
	for _, r := range d.Rules {
		if !want[r.ID] || r.TokenType != npmpartner.TokenAccessToken {
			t.Errorf("rule %+v", r)
		}
		delete(want, r.ID)
	}
	if len(want) != 0 {
		t.Errorf("missing rules %v", want)
	}
	if len(d.TokenTypes) != 1 || d.TokenTypes[0] != npmpartner.TokenAccessToken {
		t.Errorf("token types %v", d.TokenTypes)
	}
	if len(d.Endpoints) != 1 || d.Endpoints[0].Env != "PARTNER_ENDPOINT_NPM" || d.Endpoints[0].Default != "https://registry.npmjs.org" {
		t.Errorf("endpoints %+v", d.Endpoints)
	}
	if 2*d.Rate.PerSecond > d.Rate.Limit || d.Rate.Limit > 5e6/(31*86400) || !strings.HasPrefix(d.Rate.Source, "https://") {
		t.Errorf("rate %+v", d.Rate)
	}
}
