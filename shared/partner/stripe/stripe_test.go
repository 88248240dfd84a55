package stripepartner_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/stripedouble"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/verifiertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/metrics"
	stripepartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/stripe"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

const (
	ruleSecret     = "StripeLiveSecretKey"
	ruleRestricted = "StripeLiveRestrictedKey"
	ruleGitleaks   = "stripe-access-token"
)

// harness is the shared verifier harness bound to stripe.
var harness = verifiertest.Harness{Def: stripepartner.Definition, Op: "GET /v1/balance"}

func stripeFinding(rule, tok string) finding.Finding {
	return finding.Finding{ID: "f-1", RuleID: rule, Token: finding.Secret(tok)}
}

var liveDetails = finding.Details{stripepartner.DetailLivemode: true}

func TestVerifyAgainstDouble(t *testing.T) {
	srv := partnertest.StartDouble(t, stripedouble.Start)
	one := metrics.Summary{Requests: 1}
	errored := metrics.Summary{Requests: 1, Errors: 1}
	network := metrics.Summary{Requests: 1, Errors: 1, NetworkErrors: 1}
	limited := metrics.Summary{Requests: 1, RateLimitHits: 1}
	httpDate := func() string { return time.Now().Add(30 * time.Second).UTC().Format(http.TimeFormat) }
	// register returns a row setup that registers a fresh key in mode m
	// (or leaves it unknown) under rule, and scripts faults.
	register := func(rule string, newKey func() string, m *stripedouble.Mode, faults ...partnertest.Fault) func() finding.Finding {
		return func() finding.Finding {
			k := newKey()
			if m != nil {
				srv.AddKey(k, *m)
			}
			srv.Controls.Push(faults...)
			return stripeFinding(rule, k)
		}
	}
	mode := func(m stripedouble.Mode) *stripedouble.Mode { return &m }
	live := mode(stripedouble.Live)
	secret := stripedouble.NewSecretKey
	restricted := stripedouble.NewRestrictedKey
	fixed := func(k string) func() string { return func() string { return k } }

	tests := []struct {
		name       string
		setup      func() finding.Finding
		retryAfter string
		timeout    time.Duration
		want       verifiertest.Want
	}{
		// Stripe's own answers (../shared/PARTNERS.md, Stripe).
		{name: "live secret key: 200 balance", setup: register(ruleSecret, secret, live),
			want: verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Details: liveDetails, Metrics: one, Calls: 1}},
		{name: "live restricted key with balance read: 200 balance", setup: register(ruleRestricted, restricted, live),
			want: verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Details: liveDetails, Metrics: one, Calls: 1}},
		{name: "restricted key without balance read: 403 is active", setup: register(ruleRestricted, restricted, mode(stripedouble.NoBalancePermission)),
			want: verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Metrics: one, Calls: 1}},
		{name: "gitleaks rule, rk_live_ typed by prefix: 403 is active", setup: register(ruleGitleaks, restricted, mode(stripedouble.NoBalancePermission)),
			want: verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Metrics: one, Calls: 1}},
		{name: "gitleaks rule, sk_live_ key", setup: register(ruleGitleaks, secret, live),
			want: verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Details: liveDetails, Metrics: one, Calls: 1}},
		{name: "short (24) secret key", setup: register("StripeLiveShortSecretKey", fixed("sk_live_"+strings.Repeat("Ab1", 8)), live),
			want: verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Details: liveDetails, Metrics: one, Calls: 1}},
		{name: "unknown key: 401 Invalid API Key provided", setup: register(ruleSecret, secret, nil),
			want: verifiertest.Want{Reason: finding.ReasonPartnerRejected, Metrics: one, Calls: 1}},
		{name: "revoked key: 401 Invalid API Key provided", setup: func() finding.Finding {
			k := stripedouble.NewSecretKey()
			srv.AddKey(k, stripedouble.Live)
			srv.RevokeKey(k)
			return stripeFinding(ruleSecret, k)
		}, want: verifiertest.Want{Reason: finding.ReasonPartnerRejected, Metrics: one, Calls: 1}},
		{name: "expired (rolled) key: 401 api_key_expired", setup: register(ruleRestricted, restricted, mode(stripedouble.Expired)),
			want: verifiertest.Want{Reason: finding.ReasonPartnerRejected, Metrics: one, Calls: 1}},

		// The format gate: no call.
		{name: "test-mode secret key: unsupported, no call", setup: register(ruleSecret, func() string { return stripedouble.NewKey("sk_test_") }, live),
			want: verifiertest.Want{Reason: finding.ReasonUnsupportedTokenType, Msg: "test-mode"}},
		{name: "test-mode restricted key: unsupported, no call", setup: register(ruleGitleaks, func() string { return stripedouble.NewKey("rk_test_") }, live),
			want: verifiertest.Want{Reason: finding.ReasonUnsupportedTokenType, Msg: "test-mode"}},
		{name: "too short: malformed, no call", setup: register(ruleSecret, fixed("sk_live_"+strings.Repeat("a", 23)), live),
			want: verifiertest.Want{Reason: finding.ReasonMalformedToken, Msg: "not a Stripe live-mode key"}},
		{name: "too long: malformed, no call", setup: register(ruleSecret, fixed("sk_live_"+strings.Repeat("a", 248)), live),
			want: verifiertest.Want{Reason: finding.ReasonMalformedToken}},
		{name: "punctuation: malformed, no call", setup: register(ruleSecret, fixed("sk_live_"+strings.Repeat("a", 30)+"-x"), live),
			want: verifiertest.Want{Reason: finding.ReasonMalformedToken}},
		{name: "publishable key: malformed, no call", setup: register(ruleSecret, fixed("pk_live_"+strings.Repeat("a", 30)), live),
			want: verifiertest.Want{Reason: finding.ReasonMalformedToken}},
		{name: "sk_prod_: malformed, no call", setup: register(ruleGitleaks, fixed("sk_prod_"+strings.Repeat("a", 30)), live),
			want: verifiertest.Want{Reason: finding.ReasonMalformedToken}},
		{name: "upper-case prefix: malformed, no call", setup: register(ruleSecret, fixed("SK_LIVE_"+strings.Repeat("a", 30)), live),
			want: verifiertest.Want{Reason: finding.ReasonMalformedToken}},

		// Faults: the key is live, so any verdict but a fault would be wrong.
		{name: "500", setup: register(ruleSecret, secret, live, partnertest.Fault500), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 500, Msg: "http 500", Metrics: errored, Calls: 1}},
		{name: "502 HTML", setup: register(ruleSecret, secret, live, partnertest.Fault502), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 502, Metrics: errored, Calls: 1}},
		{name: "503", setup: register(ruleSecret, secret, live, partnertest.Fault503), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 503, Metrics: errored, Calls: 1}},
		{name: "504 HTML", setup: register(ruleSecret, secret, live, partnertest.Fault504), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 504, Metrics: errored, Calls: 1}},
		// Stripe documents no wait header on 429 (docs.stripe.com/rate-limits
		// asks for exponential backoff): no wait, the queue's backoff applies.
		{name: "429 rate_limit without Retry-After", retryAfter: "", setup: register(ruleSecret, secret, live, partnertest.Fault429),
			want: verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 429, Msg: "rate limited", Metrics: limited, Calls: 1}},
		{name: "429 rate_limit with Retry-After seconds", retryAfter: "7", setup: register(ruleSecret, secret, live, partnertest.Fault429),
			want: verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 429, RetryMin: 7 * time.Second, RetryMax: 7 * time.Second, Metrics: limited, Calls: 1}},
		{name: "429 rate_limit with Retry-After HTTP date", retryAfter: httpDate(), setup: register(ruleSecret, secret, live, partnertest.Fault429),
			want: verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 429, RetryMin: 27 * time.Second, RetryMax: 30 * time.Second, Metrics: limited, Calls: 1}},
		{name: "429 on an unknown key is not inactive", retryAfter: "1", setup: register(ruleSecret, secret, nil, partnertest.Fault429),
			want: verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 429, RetryMin: time.Second, RetryMax: time.Second, Metrics: limited, Calls: 1}},
		{name: "reset", setup: register(ruleSecret, secret, live, partnertest.FaultReset), want: verifiertest.Want{Kind: verify.PartnerError, Network: true, Msg: "network error", Metrics: network, Calls: 1}},
		{name: "reset on an unknown key is not inactive", setup: register(ruleSecret, secret, nil, partnertest.FaultReset), want: verifiertest.Want{Kind: verify.PartnerError, Network: true, Msg: "network error", Metrics: network, Calls: 1}},
		{name: "hang with a short timeout", timeout: 300 * time.Millisecond, setup: register(ruleSecret, secret, live, partnertest.FaultHang),
			want: verifiertest.Want{Kind: verify.PartnerError, Network: true, Msg: "timeout", Metrics: network, Calls: 1}},
		{name: "slow live answer within the timeout", timeout: 2 * time.Second, setup: func() finding.Finding {
			srv.Controls.SetLatency(100*time.Millisecond, 0)
			return register(ruleSecret, secret, live)()
		}, want: verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Details: liveDetails, Metrics: one, Calls: 1}},
		{name: "garbled 200", setup: register(ruleSecret, secret, live, partnertest.FaultGarbled), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 200, Msg: "proves nothing", Metrics: errored, Calls: 1}},
		{name: "empty 200", setup: register(ruleSecret, secret, live, partnertest.FaultEmpty), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 200, Msg: "proves nothing", Metrics: errored, Calls: 1}},
		{name: "truncated 200", setup: register(ruleSecret, secret, live, partnertest.FaultTruncated), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 200, Msg: "read body", Metrics: errored, Calls: 1}},
		{name: "HTML 401 from a proxy", setup: register(ruleSecret, secret, nil, partnertest.FaultHTML401), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 401, Msg: "HTML page", Metrics: errored, Calls: 1}},
		{name: "HTML 403 from a WAF", setup: register(ruleRestricted, restricted, live, partnertest.FaultHTML403), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 403, Msg: "HTML page", Metrics: errored, Calls: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv.Controls.Reset()
			srv.Controls.SetRetryAfter(tc.retryAfter)
			f := tc.setup()
			got := harness.Run(harness.NewVerifier(t, tc.timeout, nil, srv.URL), "", f)
			harness.Check(t, got, tc.want)
			if calls := srv.Controls.Requests(); calls != tc.want.Calls {
				t.Errorf("double saw %d requests, want %d", calls, tc.want.Calls)
			}
		})
	}
}

// TestVerifyUnusableAnswers covers answers the double never gives but a
// proxy, a partner change or a misconfiguration can: each proves nothing.
func TestVerifyUnusableAnswers(t *testing.T) {
	canary := partnertest.RedirectCanary(t)
	const jsonCT = "application/json"
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string
		header      map[string]string
		kind        verify.FaultKind
		wantMsg     string
	}{
		{"200 JSON of another object", 200, jsonCT, `{"object":"account","id":"acct_1"}`, nil, verify.PartnerError, "proves nothing"},
		{"200 JSON without object", 200, jsonCT, `{"available":[],"livemode":true}`, nil, verify.PartnerError, "proves nothing"},
		{"200 object upper-case key", 200, jsonCT, `{"Object":"balance"}`, nil, verify.PartnerError, "proves nothing"},
		{"200 object not a string", 200, jsonCT, `{"object":["balance"]}`, nil, verify.PartnerError, "proves nothing"},
		{"200 two documents", 200, jsonCT, `{"object":"balance"}{"object":"balance"}`, nil, verify.PartnerError, "proves nothing"},
		{"200 null", 200, jsonCT, `null`, nil, verify.PartnerError, "proves nothing"},
		{"200 HTML captive portal", 200, "text/html", `<html><body>Sign in to Wi-Fi</body></html>`, nil, verify.PartnerError, "HTML page"},
		{"200 too long", 200, jsonCT, `{"object":"balance","pad":"` + strings.Repeat("x", 70*1024) + `"}`, nil, verify.PartnerError, "read body"},
		{"401 no API key (header dropped on the way)", 401, jsonCT, `{"error":{"message":"You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth.","type":"invalid_request_error"}}`, nil, verify.PartnerError, "401 without Stripe's"},
		{"401 another error type", 401, jsonCT, `{"error":{"message":"Invalid API Key provided: sk_live_****abcd","type":"api_error"}}`, nil, verify.PartnerError, "401 without Stripe's"},
		{"401 type without message", 401, jsonCT, `{"error":{"type":"invalid_request_error","code":"api_key_expired"}}`, nil, verify.PartnerError, "401 without Stripe's"},
		{"401 flat error", 401, jsonCT, `{"error":"Invalid API Key provided"}`, nil, verify.PartnerError, "401 without Stripe's"},
		{"401 empty", 401, "", ``, nil, verify.PartnerError, "401 without Stripe's"},
		{"401 HTML without a content type", 401, "", `<!DOCTYPE html><title>401</title>`, nil, verify.PartnerError, "HTML page"},
		{"403 Stripe-shaped, another reason", 403, jsonCT, `{"error":{"message":"Your account cannot currently make live charges.","type":"invalid_request_error"}}`, nil, verify.PartnerError, "403 without Stripe's missing-permission"},
		{"403 permission wording, another type", 403, jsonCT, `{"error":{"message":"The provided key does not have the required permissions","type":"api_error"}}`, nil, verify.PartnerError, "403 without Stripe's missing-permission"},
		{"403 not JSON", 403, "text/plain", `Forbidden`, nil, verify.PartnerError, "403 without Stripe's missing-permission"},
		{"403 with Retry-After is a rate limit, not a restricted key", 403, jsonCT, `{"error":{"message":"The provided key 'rk_live_***' does not have the required permissions for this endpoint","type":"invalid_request_error"}}`, map[string]string{"Retry-After": "5"}, verify.RateLimited, "rate limited"},
		{"400", 400, jsonCT, `{"error":{"message":"Invalid request","type":"invalid_request_error"}}`, nil, verify.PartnerError, "unexpected http status 400"},
		{"402", 402, jsonCT, `{"error":{"message":"Request failed","type":"card_error"}}`, nil, verify.PartnerError, "unexpected http status 402"},
		{"404", 404, jsonCT, `{"error":{"message":"Unrecognized request URL (GET: /v1/balance).","type":"invalid_request_error"}}`, nil, verify.PartnerError, "unexpected http status 404"},
		{"302 to elsewhere", 302, "", "", map[string]string{"Location": canary.URL + "/v1/balance"}, verify.PartnerError, "unexpected http status 302"},
		{"429 with Stripe-Should-Retry false is still a rate limit", 429, jsonCT, `{"error":{"code":"rate_limit","message":"Request rate limit exceeded.","type":"invalid_request_error"}}`, map[string]string{"Stripe-Should-Retry": "false"}, verify.RateLimited, "rate limited"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := partnertest.ServeAnswer(t, tc.status, tc.contentType, tc.body, tc.header)
			got := harness.Run(harness.NewVerifier(t, 0, nil, srv.URL), "", stripeFinding(ruleSecret, stripedouble.NewSecretKey()))
			w := verifiertest.Want{Kind: tc.kind, HTTPStatus: tc.status, Msg: tc.wantMsg, Metrics: metrics.Summary{Requests: 1, Errors: 1}}
			if tc.kind == verify.RateLimited {
				w.Metrics = metrics.Summary{Requests: 1, RateLimitHits: 1}
				if tc.header["Retry-After"] != "" {
					w.RetryMin, w.RetryMax = 5*time.Second, 5*time.Second
				}
			}
			harness.Check(t, got, w)
		})
	}
}

// TestVerifyMapsStripeBodies covers Stripe-shaped answers the double does
// not serve byte for byte: the verdict rests on the documented fields only.
func TestVerifyMapsStripeBodies(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    string
		reason  finding.Reason
		details finding.Details
	}{
		{"balance without livemode", 200, `{"object":"balance","available":[]}`, finding.ReasonPartnerConfirmed, nil},
		{"balance with livemode null", 200, `{"object":"balance","livemode":null}`, finding.ReasonPartnerConfirmed, nil},
		{"balance in test mode", 200, `{"object":"balance","livemode":false}`, finding.ReasonPartnerConfirmed, finding.Details{stripepartner.DetailLivemode: false}},
		{"invalid key as observed (PARTNERS.md)", 401, `{"error":{"type":"invalid_request_error","message":"Invalid API Key provided: sk_live_********************1234"}}`, finding.ReasonPartnerRejected, nil},
		{"expired key by code alone", 401, `{"error":{"code":"api_key_expired","doc_url":"https://stripe.com/docs/error-codes/api-key-expired","message":"This key has expired.","type":"invalid_request_error"}}`, finding.ReasonPartnerRejected, nil},
		{"missing permission as observed (PARTNERS.md)", 403, `{"error":{"message":"The provided key 'rk_live_*****abcd' does not have the required permissions for this endpoint on account 'acct_1EXAMPLE'. Having the 'rak_balance_read' permission would allow this request to continue.","type":"invalid_request_error"}}`, finding.ReasonPartnerConfirmed, nil},
		{"restricted-key-only endpoint wording", 403, `{"error":{"message":"The provided key 'rk_live_***' does not have the required permissions for this endpoint on account 'acct_1'. This is a restricted API key, but the required permissions are not available for use by restricted keys.","type":"invalid_request_error"}}`, finding.ReasonPartnerConfirmed, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			got := harness.Run(harness.NewVerifier(t, 0, nil, srv.URL), "", stripeFinding(ruleRestricted, stripedouble.NewRestrictedKey()))
			harness.Check(t, got, verifiertest.Want{Reason: tc.reason, Details: tc.details, Metrics: metrics.Summary{Requests: 1}})
		})
	}
}

// recordingTransport passes requests on and remembers what they carried.
type recordingTransport struct {
	mu    sync.Mutex
	base  http.RoundTripper
	reqs  []string
	uas   []string
	auths []string
	clean int // requests whose URL and body carry no key
}

func (rt *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.reqs = append(rt.reqs, req.Method+" "+req.URL.Scheme+"://"+req.URL.Host+req.URL.Path+"?"+req.URL.RawQuery)
	rt.uas = append(rt.uas, req.Header.Get("User-Agent"))
	auth := req.Header.Get("Authorization")
	rt.auths = append(rt.auths, auth)
	key := strings.TrimPrefix(auth, "Bearer ")
	if key != "" && !strings.Contains(req.URL.String(), key[8:]) && req.Body == nil && req.ContentLength == 0 {
		rt.clean++
	}
	return rt.base.RoundTrip(req)
}

func TestRequestShape(t *testing.T) {
	srv := partnertest.StartDouble(t, stripedouble.Start)
	keys := []string{stripedouble.NewSecretKey(), stripedouble.NewRestrictedKey()}
	srv.AddKey(keys[0], stripedouble.Live)
	srv.AddKey(keys[1], stripedouble.NoBalancePermission)
	rt := &recordingTransport{base: &http.Transport{}}
	v := harness.NewVerifier(t, 0, rt, srv.URL+"/")
	for i, k := range keys {
		if got := harness.Run(v, "", stripeFinding(ruleGitleaks, k)); got.Verdict.Reason != finding.ReasonPartnerConfirmed {
			t.Fatalf("key %d: Verify = %+v, %v", i, got.Verdict, got.Err)
		}
	}
	if len(rt.reqs) != 2 {
		t.Fatalf("transport saw %d requests", len(rt.reqs))
	}
	for i := range rt.reqs {
		if rt.reqs[i] != "GET "+srv.URL+"/v1/balance?" {
			t.Errorf("request %d was %s, want GET %s/v1/balance without a query", i, rt.reqs[i], srv.URL)
		}
		if rt.uas[i] != partnerhttp.UserAgent {
			t.Errorf("User-Agent = %q", rt.uas[i])
		}
		if rt.auths[i] != "Bearer "+keys[i] {
			t.Errorf("request %d: Authorization is not Bearer with its key", i)
		}
	}
	if rt.clean != 2 {
		t.Errorf("%d of 2 requests carried the key in the Authorization header only", rt.clean)
	}
	for i, k := range keys {
		if got := srv.Controls.CountFor(k); got != 1 {
			t.Errorf("key %d: double counted %d requests", i, got)
		}
	}
}

func TestEndpointWithPathPrefix(t *testing.T) {
	var path atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path.Store(r.URL.Path)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"object":"balance","livemode":true}`))
	}))
	defer srv.Close()
	got := harness.Run(harness.NewVerifier(t, 0, nil, srv.URL+"/stripe/"), "", stripeFinding(ruleSecret, stripedouble.NewSecretKey()))
	harness.Check(t, got, verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Details: liveDetails, Metrics: metrics.Summary{Requests: 1}})
	if p, _ := path.Load().(string); p != "/stripe/v1/balance" {
		t.Errorf("path = %q, want /stripe/v1/balance", p)
	}
}

func TestOtherTokenTypeIsUnsupported(t *testing.T) {
	srv := partnertest.StartDouble(t, stripedouble.Start)
	verdict, err := harness.NewVerifier(t, 0, nil, srv.URL).Verify(context.Background(), finding.TokenPostmanAPIKey, stripeFinding(ruleSecret, stripedouble.NewSecretKey()))
	if err != nil || verdict.Reason != finding.ReasonUnsupportedTokenType || srv.Controls.Requests() != 0 {
		t.Errorf("Verify = %+v, %v after %d requests; want unsupported_token_type, no call", verdict, err, srv.Controls.Requests())
	}
}

func TestConcurrentVerifications(t *testing.T) {
	srv := partnertest.StartDouble(t, stripedouble.Start)
	cases := make([]verifiertest.ConcurrentCase, 16)
	for i := range cases {
		key := stripedouble.NewSecretKey()
		cases[i] = verifiertest.ConcurrentCase{Finding: stripeFinding(ruleSecret, key), Want: finding.ReasonPartnerRejected}
		if i%2 == 0 {
			srv.AddKey(key, stripedouble.Live)
			cases[i].Want = finding.ReasonPartnerConfirmed
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
	srv := partnertest.StartDouble(t, stripedouble.Start)
	key := stripedouble.NewSecretKey()
	srv.AddKey(key, stripedouble.Live)
	verifiertest.CancelledIsAFault(t, harness.NewVerifier(t, 0, nil, srv.URL), stripepartner.TokenSecretKey, stripeFinding(ruleSecret, key))
}

// TestNoSecretLeaks runs every class of answer and checks that no verdict,
// error or log line of the outcomes carries the key or a part of it, even
// though Stripe's own error bodies quote the key's last characters.
func TestNoSecretLeaks(t *testing.T) {
	srv := partnertest.StartDouble(t, stripedouble.Start)
	sweep := harness.LeakSweep(t, harness.NewVerifier(t, 300*time.Millisecond, nil, srv.URL))
	modes := []*stripedouble.Mode{nil, new(stripedouble.Live), new(stripedouble.NoBalancePermission), new(stripedouble.Expired)}
	*modes[1], *modes[2], *modes[3] = stripedouble.Live, stripedouble.NoBalancePermission, stripedouble.Expired
	for _, m := range modes {
		for _, fl := range partnertest.Faults() {
			key := stripedouble.NewRestrictedKey()
			if m != nil {
				srv.AddKey(key, *m)
			}
			srv.Controls.Push(fl)
			sweep.Verify(fl.String(), stripepartner.TokenRestrictedKey, stripeFinding(ruleRestricted, key))
		}
	}
	// Keys stopped at the gate never leave the process; their messages must not quote them either.
	for _, bad := range []string{"sk_live_" + strings.Repeat("Z", 20), "sk_test_" + strings.Repeat("Q", 40), "rk_live_" + strings.Repeat("W", 30) + "!"} {
		sweep.Verify("stopped at the gate", "", stripeFinding(ruleSecret, bad))
	}
	sweep.Check([]string{`"reason":"partner_confirmed"`, `"reason":"partner_rejected"`, "http 500"}, func(k string) []string {
		body := k[8:]
		return []string{body[:16], body[len(body)-16:]}
	})
}

func TestNew(t *testing.T) {
	verifiertest.RefusesEndpoints(t, stripepartner.New, "stripe: new verifier:", stripepartner.DefaultEndpoint, "", "/v1/balance", "ftp://api.stripe.com", "https://user:pass@api.stripe.com")
}

func TestDefinition(t *testing.T) {
	d := stripepartner.Definition
	if d.Name != "stripe" || d.Endpoints[0].Env != "PARTNER_ENDPOINT_STRIPE" || d.Endpoints[0].Default != "https://api.stripe.com" {
		t.Errorf("definition %s, %+v", d.Name, d.Endpoints)
	}
	// Stripe's per-endpoint default is 25 requests/s per account; the
	// global ceiling stays below it, and the default deployment (2
	// instances) within the ceiling.
	if d.Rate.Limit <= 0 || d.Rate.Limit >= 25 || 2*d.Rate.PerSecond > d.Rate.Limit || d.Rate.Source == "" {
		t.Errorf("rate %+v", d.Rate)
	}
}

// TestEnforcedRateLimit drives the double's own limiter rather than a
// scripted 429: the second request inside the window is refused.
func TestEnforcedRateLimit(t *testing.T) {
	srv := partnertest.StartDouble(t, stripedouble.Start)
	key := stripedouble.NewSecretKey()
	srv.AddKey(key, stripedouble.Live)
	srv.Controls.SetRetryAfter("")
	v := harness.NewVerifier(t, 0, nil, srv.URL)
	harness.EnforcedRateLimit(t, v, srv.Controls, "", stripeFinding(ruleSecret, key),
		verifiertest.Want{Details: liveDetails}, verifiertest.Want{})
}

// TestSamconfigWithinLimit: in every deployed environment the global rate,
// StripeMaxConcurrency x StripeRatePerSecond, stays within the
// Definition's Limit, and MaximumConcurrency is at least SQS's minimum of 2.
func TestSamconfigWithinLimit(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", "samconfig.toml"))
	if err != nil {
		t.Fatal(err)
	}
	param := func(line, name string) (float64, bool) {
		m := regexp.MustCompile(`\b` + name + `=([0-9.]+)\b`).FindStringSubmatch(line)
		if m == nil {
			return 0, false
		}
		f, err := strconv.ParseFloat(m[1], 64)
		return f, err == nil
	}
	n := 0
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.HasPrefix(line, "parameter_overrides") {
			continue
		}
		n++
		rate, ok1 := param(line, "StripeRatePerSecond")
		conc, ok2 := param(line, "StripeMaxConcurrency")
		switch {
		case !ok1 || !ok2:
			t.Errorf("overrides %d lack StripeRatePerSecond or StripeMaxConcurrency", n)
		case conc < 2:
			t.Errorf("overrides %d: StripeMaxConcurrency %v is below 2", n, conc)
		case rate*conc > stripepartner.Definition.Rate.Limit:
			t.Errorf("overrides %d: %v x %v exceeds the %v req/s limit", n, conc, rate, stripepartner.Definition.Rate.Limit)
		}
	}
	if n < 6 {
		t.Errorf("found %d environments in samconfig.toml, want 6", n)
	}
}
