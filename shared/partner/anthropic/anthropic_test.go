package anthropicpartner_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/anthropicdouble"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/verifiertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/metrics"
	anthropicpartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/anthropic"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

const (
	rule      = "anthropic_key"
	adminRule = "anthropic-admin-api-key"
	org       = "0b4e8d2a-5c1f-4a7e-9d3b-6f2a1c8e7b90"
	opModels  = "GET /v1/models"
	opAdmin   = "GET /v1/organizations/api_keys"
)

// harness is the shared verifier harness bound to anthropic.
var harness = verifiertest.Harness{Def: anthropicpartner.Definition, Op: opModels}

func keyFinding(tok string) finding.Finding {
	r := rule
	if strings.HasPrefix(tok, anthropicpartner.PrefixAdminKey) {
		r = adminRule
	}
	return finding.Finding{ID: "f-1", RuleID: r, Token: finding.Secret(tok)}
}

func TestVerifyAgainstDouble(t *testing.T) {
	srv := partnertest.StartDouble(t, anthropicdouble.Start)
	one := metrics.Summary{Requests: 1}
	errored := metrics.Summary{Requests: 1, Errors: 1}
	network := metrics.Summary{Requests: 1, Errors: 1, NetworkErrors: 1}
	limited := metrics.Summary{Requests: 1, RateLimitHits: 1}
	orgOnly := finding.Details{anthropicpartner.DetailOrganizationID: org}
	restricted := finding.Details{anthropicpartner.DetailOrganizationID: org, anthropicpartner.DetailRestricted: true}
	api := anthropicdouble.NewAPIKey
	admin := anthropicdouble.NewAdminKey

	tests := []struct {
		name       string
		newKey     func() string
		tokenType  finding.TokenType // "" verifies as the gate types the key
		setup      func(t *testing.T, key string) finding.Finding
		retryAfter string
		timeout    time.Duration
		want       verifiertest.Want
	}{
		// Anthropic's own answers.
		{name: "live API key: 200 models list", newKey: api, setup: live(srv),
			want: verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Details: orgOnly, Metrics: one, Calls: 1}},
		{name: "live API key without an organization header", newKey: api, setup: func(t *testing.T, key string) finding.Finding {
			srv.SetOrganizationHeader(false)
			return live(srv)(t, key)
		}, want: verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Metrics: one, Calls: 1}},
		{name: "live Admin key: 200 api_keys list", newKey: admin, setup: live(srv),
			want: verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Details: orgOnly, Metrics: one, Calls: 1}},
		{name: "unknown API key: 401 authentication_error", newKey: api, setup: func(t *testing.T, key string) finding.Finding {
			return keyFinding(key)
		}, want: verifiertest.Want{Reason: finding.ReasonPartnerRejected, Metrics: one, Calls: 1}},
		{name: "revoked API key: 401 authentication_error", newKey: api, setup: func(t *testing.T, key string) finding.Finding {
			srv.AddKey(key, org)
			srv.RevokeKey(key)
			return keyFinding(key)
		}, want: verifiertest.Want{Reason: finding.ReasonPartnerRejected, Metrics: one, Calls: 1}},
		{name: "revoked Admin key: 401 authentication_error", newKey: admin, setup: func(t *testing.T, key string) finding.Finding {
			srv.AddKey(key, org)
			srv.RevokeKey(key)
			return keyFinding(key)
		}, want: verifiertest.Want{Reason: finding.ReasonPartnerRejected, Metrics: one, Calls: 1}},
		{name: "restricted API key: 403 permission_error", newKey: api, setup: func(t *testing.T, key string) finding.Finding {
			srv.AddKey(key, org)
			srv.RestrictKey(key)
			return keyFinding(key)
		}, want: verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Details: restricted, Metrics: one, Calls: 1}},
		{name: "restricted Admin key: 403 permission_error", newKey: admin, setup: func(t *testing.T, key string) finding.Finding {
			srv.AddKey(key, org)
			srv.RestrictKey(key)
			return keyFinding(key)
		}, want: verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Details: restricted, Metrics: one, Calls: 1}},
		{name: "529 overloaded_error", newKey: api, setup: func(t *testing.T, key string) finding.Finding {
			srv.Overload(1)
			return live(srv)(t, key)
		}, want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 529, Msg: "server error", Metrics: errored, Calls: 1}},
		{name: "429 rate_limit_error: retry-after seconds and a reset time", newKey: api, retryAfter: "7", setup: fault(srv, partnertest.Fault429),
			want: verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 429, RetryMin: 7 * time.Second, RetryMax: 7 * time.Second, Msg: "rate limited", Metrics: limited, Calls: 1}},
		{name: "429 rate_limit_error: only anthropic-ratelimit-requests-reset (RFC 3339)", newKey: api, retryAfter: "", setup: fault(srv, partnertest.Fault429),
			want: verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 429, RetryMin: 59 * time.Second, RetryMax: 61 * time.Second, Metrics: limited, Calls: 1}},
		{name: "429 on an Admin key", newKey: admin, retryAfter: "3", setup: fault(srv, partnertest.Fault429),
			want: verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 429, Op: opAdmin, RetryMin: 3 * time.Second, RetryMax: 3 * time.Second, Metrics: limited, Calls: 1}},

		// The gate: no call.
		{name: "malformed key: no call", newKey: api, setup: func(t *testing.T, key string) finding.Finding {
			srv.AddKey(key[:60], org)
			return keyFinding(key[:60])
		}, want: verifiertest.Want{Reason: finding.ReasonMalformedToken, Msg: "not an Anthropic API key"}},
		{name: "API key without the AA ending: no call", newKey: api, setup: func(t *testing.T, key string) finding.Finding {
			return keyFinding(key[:len(key)-2] + "AB")
		}, want: verifiertest.Want{Reason: finding.ReasonMalformedToken, Msg: "sk-ant-api03-"}},
		{name: "malformed Admin key: no call", newKey: admin, setup: func(t *testing.T, key string) finding.Finding {
			return keyFinding(key + "x")
		}, want: verifiertest.Want{Reason: finding.ReasonMalformedToken, Msg: "Admin API key"}},
		{name: "OAuth refresh token: unsupported, no call", newKey: api, setup: func(t *testing.T, key string) finding.Finding {
			return keyFinding("sk-ant-ort01-" + key[13:])
		}, want: verifiertest.Want{Reason: finding.ReasonUnsupportedTokenType, Msg: "refresh"}},
		{name: "OAuth access token: unsupported, no call", newKey: api, setup: func(t *testing.T, key string) finding.Finding {
			return keyFinding("sk-ant-oat01-" + key[13:])
		}, want: verifiertest.Want{Reason: finding.ReasonUnsupportedTokenType, Msg: "OAuth access"}},
		{name: "other partner's token type: no call", newKey: api, tokenType: finding.TokenPostmanAPIKey, setup: live(srv),
			want: verifiertest.Want{Reason: finding.ReasonUnsupportedTokenType, Msg: "anthropic_api_key"}},

		// Faults.
		{name: "500 api_error", newKey: api, setup: fault(srv, partnertest.Fault500), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 500, Msg: "http 500", Metrics: errored, Calls: 1}},
		{name: "502 HTML", newKey: api, setup: fault(srv, partnertest.Fault502), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 502, Metrics: errored, Calls: 1}},
		{name: "503", newKey: api, setup: fault(srv, partnertest.Fault503), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 503, Metrics: errored, Calls: 1}},
		{name: "504 HTML", newKey: admin, setup: fault(srv, partnertest.Fault504), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 504, Op: opAdmin, Metrics: errored, Calls: 1}},
		{name: "reset", newKey: api, setup: fault(srv, partnertest.FaultReset), want: verifiertest.Want{Kind: verify.PartnerError, Network: true, Msg: "network error", Metrics: network, Calls: 1}},
		{name: "hang with a short timeout", newKey: api, timeout: 300 * time.Millisecond, setup: fault(srv, partnertest.FaultHang),
			want: verifiertest.Want{Kind: verify.PartnerError, Network: true, Msg: "timeout", Metrics: network, Calls: 1}},
		{name: "slow live answer within the timeout", newKey: api, timeout: 2 * time.Second, setup: func(t *testing.T, key string) finding.Finding {
			srv.Controls.SetLatency(100*time.Millisecond, 0)
			return live(srv)(t, key)
		}, want: verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Details: orgOnly, Metrics: one, Calls: 1}},
		{name: "garbled 200", newKey: api, setup: fault(srv, partnertest.FaultGarbled), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 200, Msg: "proves nothing", Metrics: errored, Calls: 1}},
		{name: "empty 200", newKey: api, setup: fault(srv, partnertest.FaultEmpty), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 200, Msg: "proves nothing", Metrics: errored, Calls: 1}},
		{name: "truncated 200", newKey: api, setup: fault(srv, partnertest.FaultTruncated), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 200, Msg: "read body", Metrics: errored, Calls: 1}},
		{name: "HTML 401 from a proxy", newKey: api, setup: fault(srv, partnertest.FaultHTML401), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 401, Msg: "HTML page", Metrics: errored, Calls: 1}},
		{name: "HTML 403 from a WAF", newKey: api, setup: fault(srv, partnertest.FaultHTML403), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 403, Msg: "HTML page", Metrics: errored, Calls: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv.Controls.Reset()
			srv.SetOrganizationHeader(true)
			srv.Overload(0)
			srv.Controls.SetRetryAfter(tc.retryAfter)
			f := tc.setup(t, tc.newKey())
			got := harness.RunAs(harness.NewVerifier(t, tc.timeout, nil, srv.URL), tc.tokenType, f)
			harness.Check(t, got, tc.want)
			if calls := srv.Controls.Requests(); calls != tc.want.Calls {
				t.Errorf("double saw %d requests, want %d", calls, tc.want.Calls)
			}
		})
	}
}

// live returns a row setup that registers the key as live.
func live(srv *anthropicdouble.Server) func(*testing.T, string) finding.Finding {
	return func(_ *testing.T, key string) finding.Finding {
		srv.AddKey(key, org)
		return keyFinding(key)
	}
}

// fault returns a row setup that registers the key as live and scripts f, so
// that any verdict but a fault would be wrong.
func fault(srv *anthropicdouble.Server, f partnertest.Fault) func(*testing.T, string) finding.Finding {
	return func(t *testing.T, key string) finding.Finding {
		srv.Controls.Push(f)
		return live(srv)(t, key)
	}
}

// TestVerifyUnusableAnswers covers answers the double never gives but a
// proxy, an API change or a misconfiguration can: each proves nothing.
func TestVerifyUnusableAnswers(t *testing.T) {
	canary := partnertest.RedirectCanary(t)
	authErr := `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}`
	tests := []struct {
		name       string
		status     int
		ct         string
		body       string
		header     map[string]string
		wantStatus int
		wantMsg    string
	}{
		{"200 JSON without data", 200, "application/json", `{"has_more":false}`, nil, 200, "proves nothing"},
		{"200 data not a list", 200, "application/json", `{"data":{},"has_more":false}`, nil, 200, "proves nothing"},
		{"200 data null", 200, "application/json", `{"data":null,"has_more":false}`, nil, 200, "proves nothing"},
		{"200 without has_more", 200, "application/json", `{"data":[]}`, nil, 200, "proves nothing"},
		{"200 two documents", 200, "application/json", `{"data":[],"has_more":false}{"data":[],"has_more":false}`, nil, 200, "proves nothing"},
		{"200 an error document", 200, "application/json", authErr, nil, 200, "proves nothing"},
		{"200 HTML captive portal", 200, "text/html", `<html><body>Sign in to Wi-Fi</body></html>`, nil, 200, "HTML page"},
		{"200 too long", 200, "application/json", `{"data":[],"has_more":false,"pad":"` + strings.Repeat("x", 70*1024) + `"}`, nil, 200, "read body"},
		{"401 HTML without a content type", 401, "", `<!DOCTYPE html><title>401</title>`, nil, 401, "HTML page"},
		{"401 of another shape", 401, "application/json", `{"error":{"message":"invalid x-api-key"}}`, nil, 401, "without Anthropic's error body"},
		{"401 without the top-level type", 401, "application/json", `{"error":{"type":"authentication_error"}}`, nil, 401, "without Anthropic's error body"},
		{"401 of another error type", 401, "application/json", `{"type":"error","error":{"type":"permission_error"}}`, nil, 401, "without Anthropic's error body"},
		{"401 upper-case keys", 401, "application/json", `{"TYPE":"error","ERROR":{"TYPE":"authentication_error"}}`, nil, 401, "without Anthropic's error body"},
		{"401 truncated JSON", 401, "application/json", authErr[:40], nil, 401, "without Anthropic's error body"},
		{"401 empty", 401, "", ``, nil, 401, "without Anthropic's error body"},
		{"403 of another error type", 403, "application/json", `{"type":"error","error":{"type":"authentication_error"}}`, nil, 403, "without Anthropic's error body"},
		{"403 plain text", 403, "text/plain", `Forbidden`, nil, 403, "without Anthropic's error body"},
		{"400 no anthropic-version", 400, "application/json", `{"type":"error","error":{"type":"invalid_request_error","message":"anthropic-version: header is required"}}`, nil, 400, "unexpected http status 400"},
		{"404 not_found_error", 404, "application/json", `{"type":"error","error":{"type":"not_found_error","message":"Not found"}}`, nil, 404, "unexpected http status 404"},
		{"413 request_too_large", 413, "application/json", `{"type":"error","error":{"type":"request_too_large","message":"Request exceeds the maximum size"}}`, nil, 413, "unexpected http status 413"},
		{"302 to elsewhere", 302, "", "", map[string]string{"Location": canary.URL + "/v1/models"}, 302, "unexpected http status 302"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := partnertest.ServeAnswer(t, tc.status, tc.ct, tc.body, tc.header)
			got := harness.RunAs(harness.NewVerifier(t, 0, nil, srv.URL), "", keyFinding(anthropicdouble.NewAPIKey()))
			harness.Check(t, got, verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: tc.wantStatus, Msg: tc.wantMsg, Metrics: metrics.Summary{Requests: 1, Errors: 1}})
		})
	}
}

// TestRateLimitWaits pins the wait each documented rate-limit answer asks
// for: Retry-After (seconds) when sent, else the later of the
// anthropic-ratelimit-*-reset RFC 3339 times; 529 overloaded is a server
// error whose Retry-After is kept too.
func TestRateLimitWaits(t *testing.T) {
	now := time.Now().UTC()
	rfc := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339) }
	tests := []struct {
		name     string
		status   int
		header   map[string]string
		kind     verify.FaultKind
		min, max time.Duration
		m        metrics.Summary
	}{
		{"429 retry-after wins over the reset", 429, map[string]string{"Retry-After": "12", "Anthropic-Ratelimit-Requests-Reset": rfc(40 * time.Second)},
			verify.RateLimited, 12 * time.Second, 12 * time.Second, metrics.Summary{Requests: 1, RateLimitHits: 1}},
		{"429 requests reset only", 429, map[string]string{"Anthropic-Ratelimit-Requests-Reset": rfc(30 * time.Second)},
			verify.RateLimited, 28 * time.Second, 30 * time.Second, metrics.Summary{Requests: 1, RateLimitHits: 1}},
		{"429 the later of requests and tokens reset", 429, map[string]string{"Anthropic-Ratelimit-Requests-Reset": rfc(10 * time.Second), "Anthropic-Ratelimit-Tokens-Reset": rfc(45 * time.Second)},
			verify.RateLimited, 43 * time.Second, 45 * time.Second, metrics.Summary{Requests: 1, RateLimitHits: 1}},
		{"429 reset in the past", 429, map[string]string{"Anthropic-Ratelimit-Requests-Reset": rfc(-5 * time.Second)},
			verify.RateLimited, 0, 0, metrics.Summary{Requests: 1, RateLimitHits: 1}},
		{"429 no header", 429, nil, verify.RateLimited, 0, 0, metrics.Summary{Requests: 1, RateLimitHits: 1}},
		{"403 permission_error with retry-after is a rate limit", 403, map[string]string{"Retry-After": "5"},
			verify.RateLimited, 5 * time.Second, 5 * time.Second, metrics.Summary{Requests: 1, RateLimitHits: 1}},
		{"529 overloaded with retry-after", 529, map[string]string{"Retry-After": "4"},
			verify.PartnerError, 4 * time.Second, 4 * time.Second, metrics.Summary{Requests: 1, Errors: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := map[int]string{429: "rate_limit_error", 403: "permission_error", 529: "overloaded_error"}[tc.status]
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				_, _ = fmt.Fprintf(w, `{"type":"error","error":{"type":%q,"message":"x"}}`, body)
			}))
			defer srv.Close()
			got := harness.RunAs(harness.NewVerifier(t, 0, nil, srv.URL), "", keyFinding(anthropicdouble.NewAPIKey()))
			harness.Check(t, got, verifiertest.Want{Kind: tc.kind, HTTPStatus: tc.status, RetryMin: tc.min, RetryMax: tc.max, Metrics: tc.m})
		})
	}
}

// TestDetailsAreOnlyTheOrganizationID: an organization header that is not a
// UUID is not Anthropic's and is dropped; nothing else of the answer
// (the admin list's key hints, names, creators) reaches details.
func TestDetailsAreOnlyTheOrganizationID(t *testing.T) {
	for _, hdr := range []string{"", "not-a-uuid", "sk-ant-api03-x", strings.ToUpper(org), org + "0"} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Anthropic-Organization-Id", hdr)
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"data":[{"type":"api_key","id":"apikey_01","partial_key_hint":"sk-ant-api03-R2D...igAA","created_by":{"id":"user_01","type":"user"}}],"has_more":true,"first_id":"apikey_01","last_id":"apikey_01"}`))
		}))
		got := harness.RunAs(harness.NewVerifier(t, 0, nil, srv.URL), "", keyFinding(anthropicdouble.NewAdminKey()))
		srv.Close()
		harness.Check(t, got, verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Metrics: metrics.Summary{Requests: 1}})
	}
}

// recordingTransport passes requests on and remembers what they carried.
type recordingTransport struct {
	mu   sync.Mutex
	base http.RoundTripper
	reqs []*http.Request
	body []int64
}

func (rt *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rt.mu.Lock()
	rt.reqs = append(rt.reqs, req.Clone(context.Background()))
	rt.body = append(rt.body, req.ContentLength)
	rt.mu.Unlock()
	return rt.base.RoundTrip(req)
}

// TestRequestShape: the key travels only in x-api-key, never in the URL or
// a body; anthropic-version and the project's User-Agent are set; each key
// type goes to its own call.
func TestRequestShape(t *testing.T) {
	srv := partnertest.StartDouble(t, anthropicdouble.Start)
	apiKey, adminKey := anthropicdouble.NewAPIKey(), anthropicdouble.NewAdminKey()
	srv.AddKey(apiKey, org)
	srv.AddKey(adminKey, org)
	rt := &recordingTransport{base: &http.Transport{}}
	v := harness.NewVerifier(t, 0, rt, srv.URL+"/")
	for _, k := range []string{apiKey, adminKey} {
		if got := harness.RunAs(v, "", keyFinding(k)); got.Verdict.Reason != finding.ReasonPartnerConfirmed {
			t.Fatalf("Verify = %+v, %v", got.Verdict, got.Err)
		}
	}
	if len(rt.reqs) != 2 {
		t.Fatalf("transport saw %d requests", len(rt.reqs))
	}
	wantURL := []string{srv.URL + "/v1/models", srv.URL + "/v1/organizations/api_keys?limit=1"}
	for i, r := range rt.reqs {
		k := []string{apiKey, adminKey}[i]
		if r.URL.String() != wantURL[i] || r.Method != http.MethodGet {
			t.Errorf("request %d: %s %s, want GET %s", i, r.Method, r.URL, wantURL[i])
		}
		if strings.Contains(r.URL.String(), k[15:]) || rt.body[i] > 0 || r.Body != nil && r.Body != http.NoBody {
			t.Errorf("request %d carries the key in its URL or has a body", i)
		}
		if r.Header.Get("X-Api-Key") != k {
			t.Errorf("request %d: x-api-key is not the key", i)
		}
		for name, vs := range r.Header {
			if !strings.EqualFold(name, "X-Api-Key") && strings.Contains(strings.Join(vs, " "), k[15:]) {
				t.Errorf("request %d: header %s carries the key", i, name)
			}
		}
		if r.Header.Get("Anthropic-Version") != "2023-06-01" {
			t.Errorf("anthropic-version = %q", r.Header.Get("Anthropic-Version"))
		}
		if r.Header.Get("User-Agent") != partnerhttp.UserAgent {
			t.Errorf("User-Agent = %q", r.Header.Get("User-Agent"))
		}
	}
	if srv.Controls.CountFor(apiKey) != 1 || srv.Controls.CountFor(adminKey) != 1 {
		t.Error("the double did not see each key once")
	}
}

func TestEndpointWithPathPrefix(t *testing.T) {
	var path atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path.Store(r.URL.Path)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"data":[],"has_more":false,"first_id":null,"last_id":null}`))
	}))
	defer srv.Close()
	got := harness.RunAs(harness.NewVerifier(t, 0, nil, srv.URL+"/anthropic/"), "", keyFinding(anthropicdouble.NewAPIKey()))
	harness.Check(t, got, verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Metrics: metrics.Summary{Requests: 1}})
	if p, _ := path.Load().(string); p != "/anthropic/v1/models" {
		t.Errorf("path = %q, want /anthropic/v1/models", p)
	}
}

func TestCancelledContextIsAFault(t *testing.T) {
	srv := partnertest.StartDouble(t, anthropicdouble.Start)
	key := anthropicdouble.NewAPIKey()
	srv.AddKey(key, org)
	verifiertest.CancelledIsAFault(t, harness.NewVerifier(t, 0, nil, srv.URL), anthropicpartner.TokenAPIKey, keyFinding(key))
}

// TestNoSecretLeaks runs every class of answer and checks that no verdict,
// error or log line of the outcomes carries a key or part of one.
func TestNoSecretLeaks(t *testing.T) {
	srv := partnertest.StartDouble(t, anthropicdouble.Start)
	sweep := harness.LeakSweep(t, harness.NewVerifier(t, 300*time.Millisecond, nil, srv.URL))
	for _, state := range []string{"live", "restricted", "unknown"} {
		for _, gen := range []func() string{anthropicdouble.NewAPIKey, anthropicdouble.NewAdminKey} {
			for _, fl := range partnertest.Faults() {
				key := gen()
				if state != "unknown" {
					srv.AddKey(key, org)
				}
				if state == "restricted" {
					srv.RestrictKey(key)
				}
				srv.Controls.Push(fl)
				sweep.Verify(state+" "+fl.String(), "", keyFinding(key))
			}
		}
	}
	srv.Overload(1)
	sweep.Verify("overloaded", "", keyFinding(anthropicdouble.NewAPIKey()))
	// Keys that never leave the process must not be quoted either.
	for _, bad := range []string{anthropicdouble.NewAPIKey() + "x", "sk-ant-ort01-" + anthropicdouble.NewAPIKey()[13:], "sk-ant-oat01-" + anthropicdouble.NewAPIKey()[13:]} {
		sweep.Verify("no call", "", keyFinding(bad))
	}
	sweep.Check([]string{`"reason":"partner_confirmed"`, `"reason":"partner_rejected"`, "http 500", "http 529", "unsupported_token_type", "malformed_token"}, func(k string) []string {
		body := k[strings.LastIndex(k[:16], "-")+1:]
		return []string{body[:40], body[40:80]}
	})
}

func TestNew(t *testing.T) {
	verifiertest.RefusesEndpoints(t, anthropicpartner.New, "anthropic: new verifier:", anthropicpartner.DefaultEndpoint, "", "/v1", "ftp://api.anthropic.com", "https://user:pw@api.anthropic.com")
}

// TestEnforcedRateLimit drives the double's own limiter rather than a
// scripted 429: the second request inside the window is refused, with the
// wait Anthropic announces.
func TestEnforcedRateLimit(t *testing.T) {
	srv := partnertest.StartDouble(t, anthropicdouble.Start)
	key := anthropicdouble.NewAPIKey()
	srv.AddKey(key, org)
	srv.Controls.SetRetryAfter("2")
	v := harness.NewVerifier(t, 0, nil, srv.URL)
	harness.EnforcedRateLimit(t, v, srv.Controls, "", keyFinding(key),
		verifiertest.Want{Details: finding.Details{anthropicpartner.DetailOrganizationID: org}}, verifiertest.Want{RetryMin: 2 * time.Second, RetryMax: 2 * time.Second})
}

// TestRateFitsLimit: the default rate of the two instances the template
// starts at least stays within the published limit.
func TestRateFitsLimit(t *testing.T) {
	r := anthropicpartner.Definition.Rate
	if 2*r.PerSecond > r.Limit || r.Limit*60 > 50 || !strings.HasPrefix(r.Source, "https://") {
		t.Errorf("rate %+v: 2 instances exceed the limit, or the limit exceeds 50/min, or no source", r)
	}
}
