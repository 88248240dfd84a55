package openaipartner_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/openaidouble"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/verifiertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/metrics"
	openaipartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/openai"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

const (
	rule      = "open ai token"
	opModels  = "GET /v1/models"
	opAdmin   = "GET /v1/organization/admin_api_keys"
	testOrg   = "org-abcDEF123"
	userAgent = partnerhttp.UserAgent
)

// harness is the shared verifier harness bound to openai.
var harness = verifiertest.Harness{Def: openaipartner.Definition, Op: opModels}

func openaiFinding(tok string) finding.Finding {
	return finding.Finding{ID: "f-1", RuleID: rule, Token: finding.Secret(tok)}
}

// TestVerifyAgainstDouble has one row per answer OpenAI can give, through
// the double, with the verdict or fault each must give.
func TestVerifyAgainstDouble(t *testing.T) {
	srv := partnertest.StartDouble(t, openaidouble.Start)
	one := metrics.Summary{Requests: 1}
	errored := metrics.Summary{Requests: 1, Errors: 1}
	network := metrics.Summary{Requests: 1, Errors: 1, NetworkErrors: 1}
	limited := metrics.Summary{Requests: 1, RateLimitHits: 1}
	org := finding.Details{openaipartner.DetailOrganization: testOrg}
	httpDate := func() string { return time.Now().Add(30 * time.Second).UTC().Format(http.TimeFormat) }
	live := func(mode openaidouble.Mode) func(*testing.T, string) finding.Finding {
		return func(_ *testing.T, key string) finding.Finding {
			srv.AddTokenIn(key, mode, testOrg)
			return openaiFinding(key)
		}
	}

	tests := []struct {
		name       string
		newKey     func() string // openaidouble.NewToken when nil
		tokenType  finding.TokenType
		setup      func(t *testing.T, key string) finding.Finding // registers keys, pushes faults
		retryAfter string
		reset      string // x-ratelimit-reset-requests of 429s; "none" sends no x-ratelimit-* headers
		timeout    time.Duration
		want       verifiertest.Want
	}{
		// 200: GET /v1/models lists models (../shared/PARTNERS.md, OpenAI).
		{name: "live project key", setup: live(openaidouble.Live), want: verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Details: org, Metrics: one, Calls: 1}},
		{name: "live service-account key", newKey: openaidouble.NewServiceAccountKey, setup: live(openaidouble.Live),
			want: verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Details: org, Metrics: one, Calls: 1}},
		{name: "live legacy key", newKey: openaidouble.NewLegacyKey, setup: live(openaidouble.Live),
			want: verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Details: org, Metrics: one, Calls: 1}},
		{name: "live key, no openai-organization header", setup: func(_ *testing.T, key string) finding.Finding {
			srv.AddTokenIn(key, openaidouble.Live, "")
			return openaiFinding(key)
		}, want: verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Metrics: one, Calls: 1}},
		{name: "live admin key: admin key list", newKey: openaidouble.NewAdminKey, setup: live(openaidouble.Live),
			want: verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Details: org, Metrics: one, Calls: 1}},
		// 401 invalid_api_key: the only rejection.
		{name: "unknown key", setup: func(_ *testing.T, key string) finding.Finding { return openaiFinding(key) },
			want: verifiertest.Want{Reason: finding.ReasonPartnerRejected, Metrics: one, Calls: 1}},
		{name: "revoked key", setup: func(_ *testing.T, key string) finding.Finding {
			srv.AddToken(key, openaidouble.Live)
			srv.RevokeToken(key)
			return openaiFinding(key)
		}, want: verifiertest.Want{Reason: finding.ReasonPartnerRejected, Metrics: one, Calls: 1}},
		{name: "revoked admin key", newKey: openaidouble.NewAdminKey, setup: func(_ *testing.T, key string) finding.Finding {
			srv.AddToken(key, openaidouble.Live)
			srv.RevokeToken(key)
			return openaiFinding(key)
		}, want: verifiertest.Want{Reason: finding.ReasonPartnerRejected, Metrics: one, Calls: 1}},
		// 401 "insufficient permissions … Missing scopes", code null: a restricted key, live.
		{name: "restricted key (nested error, code null)", setup: live(openaidouble.Restricted),
			want: verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Details: org, Metrics: one, Calls: 1}},
		{name: "restricted key (bare error string)", setup: live(openaidouble.RestrictedFlat),
			want: verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Details: org, Metrics: one, Calls: 1}},
		{name: "restricted admin key", newKey: openaidouble.NewAdminKey, setup: live(openaidouble.Restricted),
			want: verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Details: org, Metrics: one, Calls: 1}},
		{name: "project key routed as admin: missing admin scope", tokenType: openaipartner.TokenAdminKey, setup: live(openaidouble.Live),
			want: verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Details: org, Metrics: one, Calls: 1}},
		// 403 unsupported_country_region_territory says nothing of the key.
		{name: "403 unsupported region", setup: live(openaidouble.Region),
			want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 403, Msg: "403", Metrics: errored, Calls: 1}},
		// 429 insufficient_quota: a 429 is a rate limit (contract §7), whatever its code.
		{name: "429 insufficient_quota", setup: live(openaidouble.Quota),
			want: verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 429, Msg: "rate limited", Metrics: limited, Calls: 1}},
		// The format gate: no call.
		{name: "sk- key without T3BlbkFJ: no call", setup: func(_ *testing.T, key string) finding.Finding {
			k := "sk-" + strings.ReplaceAll(key[len("sk-proj-"):], "T3BlbkFJ", "xxxxxxxx")
			srv.AddToken(k, openaidouble.Live)
			return openaiFinding(k)
		}, want: verifiertest.Want{Reason: finding.ReasonMalformedToken, Msg: "not an OpenAI key"}},
		{name: "short project key: no call", setup: func(_ *testing.T, key string) finding.Finding {
			srv.AddToken(key[:20], openaidouble.Live)
			return openaiFinding(key[:20])
		}, want: verifiertest.Want{Reason: finding.ReasonMalformedToken, Msg: "sk-proj-"}},
		{name: "admin key with a space: no call", newKey: openaidouble.NewAdminKey, setup: func(_ *testing.T, key string) finding.Finding {
			return openaiFinding(key[:30] + " " + key[30:])
		}, want: verifiertest.Want{Reason: finding.ReasonMalformedToken, Msg: "admin key"}},
		{name: "other partner's token type: no call", tokenType: finding.TokenPostmanAPIKey, setup: live(openaidouble.Live),
			want: verifiertest.Want{Reason: finding.ReasonUnsupportedTokenType, Msg: "openai_api_key"}},
		// Faults of the shared layer.
		{name: "500", setup: fault(srv, partnertest.Fault500), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 500, Msg: "http 500", Metrics: errored, Calls: 1}},
		{name: "502 HTML", setup: fault(srv, partnertest.Fault502), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 502, Metrics: errored, Calls: 1}},
		{name: "503 overloaded", setup: fault(srv, partnertest.Fault503), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 503, Metrics: errored, Calls: 1}},
		{name: "504 HTML", setup: fault(srv, partnertest.Fault504), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 504, Metrics: errored, Calls: 1}},
		{name: "429 Retry-After seconds wins over the reset", retryAfter: "7", reset: "6m0s", setup: fault(srv, partnertest.Fault429),
			want: verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 429, RetryMin: 7 * time.Second, RetryMax: 7 * time.Second, Msg: "rate limited", Metrics: limited, Calls: 1}},
		{name: "429 Retry-After HTTP date", retryAfter: httpDate(), setup: fault(srv, partnertest.Fault429),
			want: verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 429, RetryMin: 27 * time.Second, RetryMax: 30 * time.Second, Metrics: limited, Calls: 1}},
		{name: "429 x-ratelimit-reset-requests 6m0s only", reset: "6m0s", setup: fault(srv, partnertest.Fault429),
			want: verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 429, RetryMin: 6 * time.Minute, RetryMax: 6 * time.Minute, Metrics: limited, Calls: 1}},
		{name: "429 x-ratelimit-reset-requests 1s only", reset: "1s", setup: fault(srv, partnertest.Fault429),
			want: verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 429, RetryMin: time.Second, RetryMax: time.Second, Metrics: limited, Calls: 1}},
		{name: "429 x-ratelimit-reset-requests 12ms only", reset: "12ms", setup: fault(srv, partnertest.Fault429),
			want: verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 429, RetryMin: 12 * time.Millisecond, RetryMax: 12 * time.Millisecond, Metrics: limited, Calls: 1}},
		{name: "429 x-ratelimit-reset-requests 1m30.5s only", reset: "1m30.5s", setup: fault(srv, partnertest.Fault429),
			want: verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 429, RetryMin: 90500 * time.Millisecond, RetryMax: 90500 * time.Millisecond, Metrics: limited, Calls: 1}},
		{name: "429 without any wait header", reset: "none", setup: fault(srv, partnertest.Fault429),
			want: verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 429, Metrics: limited, Calls: 1}},
		{name: "429 on an admin key", newKey: openaidouble.NewAdminKey, retryAfter: "2", setup: fault(srv, partnertest.Fault429),
			want: verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 429, RetryMin: 2 * time.Second, RetryMax: 2 * time.Second, Op: opAdmin, Metrics: limited, Calls: 1}},
		{name: "reset", setup: fault(srv, partnertest.FaultReset), want: verifiertest.Want{Kind: verify.PartnerError, Network: true, Msg: "network error", Metrics: network, Calls: 1}},
		{name: "hang with a short timeout", timeout: 300 * time.Millisecond, setup: fault(srv, partnertest.FaultHang),
			want: verifiertest.Want{Kind: verify.PartnerError, Network: true, Msg: "timeout", Metrics: network, Calls: 1}},
		{name: "slow live answer within the timeout", timeout: 2 * time.Second, setup: func(_ *testing.T, key string) finding.Finding {
			srv.AddTokenIn(key, openaidouble.Live, testOrg)
			srv.Controls.SetLatency(100*time.Millisecond, 0)
			return openaiFinding(key)
		}, want: verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Details: org, Metrics: one, Calls: 1}},
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
			switch tc.reset {
			case "":
				srv.SetRateLimitReset(openaidouble.DefaultReset)
			case "none":
				srv.SetRateLimitReset("")
			default:
				srv.SetRateLimitReset(tc.reset)
			}
			newKey := tc.newKey
			if newKey == nil {
				newKey = openaidouble.NewToken
			}
			f := tc.setup(t, newKey())
			got := harness.RunAs(harness.NewVerifier(t, tc.timeout, nil, srv.URL), tc.tokenType, f)
			harness.Check(t, got, tc.want)
			if calls := srv.Controls.Requests(); calls != tc.want.Calls {
				t.Errorf("double saw %d requests, want %d", calls, tc.want.Calls)
			}
		})
	}
}

// fault returns a row setup that registers the key as live and scripts f, so
// that any verdict but a fault would be wrong.
func fault(srv *openaidouble.Server, f partnertest.Fault) func(*testing.T, string) finding.Finding {
	return func(_ *testing.T, key string) finding.Finding {
		srv.AddTokenIn(key, openaidouble.Live, testOrg)
		srv.Controls.Push(f)
		return openaiFinding(key)
	}
}

// TestVerifyOtherAnswers covers answers the double never gives but a proxy,
// a change at OpenAI or a misconfiguration can: only OpenAI's own shapes
// count, everything else proves nothing.
func TestVerifyOtherAnswers(t *testing.T) {
	canary := partnertest.RedirectCanary(t)
	const restricted = `You have insufficient permissions for this operation. Missing scopes: api.model.read.`
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string
		header      map[string]string
		want        verifiertest.Want
	}{
		{"200 JSON without list", 200, "application/json", `{"ok":true}`, nil, verifiertest.Want{HTTPStatus: 200, Msg: "proves nothing"}},
		{"200 list without data", 200, "application/json", `{"object":"list"}`, nil, verifiertest.Want{HTTPStatus: 200, Msg: "proves nothing"}},
		{"200 list with data null", 200, "application/json", `{"object":"list","data":null}`, nil, verifiertest.Want{HTTPStatus: 200, Msg: "proves nothing"}},
		{"200 list with data an object", 200, "application/json", `{"object":"list","data":{}}`, nil, verifiertest.Want{HTTPStatus: 200, Msg: "proves nothing"}},
		{"200 model object", 200, "application/json", `{"object":"model","id":"gpt-4o"}`, nil, verifiertest.Want{HTTPStatus: 200, Msg: "proves nothing"}},
		{"200 upper-case keys", 200, "application/json", `{"OBJECT":"list","DATA":[]}`, nil, verifiertest.Want{HTTPStatus: 200, Msg: "proves nothing"}},
		{"200 two documents", 200, "application/json", `{"object":"list","data":[]}{"object":"list","data":[]}`, nil, verifiertest.Want{HTTPStatus: 200, Msg: "proves nothing"}},
		{"200 HTML captive portal", 200, "text/html", `<html><body>Sign in to Wi-Fi</body></html>`, nil, verifiertest.Want{HTTPStatus: 200, Msg: "HTML page"}},
		{"200 too long", 200, "application/json", `{"object":"list","data":[],"pad":"` + strings.Repeat("x", 70*1024) + `"}`, nil, verifiertest.Want{HTTPStatus: 200, Msg: "read body"}},
		{"401 missing-key message, code null", 401, "application/json", `{"error":{"message":"You didn't provide an API key.","type":"invalid_request_error","param":null,"code":null}}`, nil, verifiertest.Want{HTTPStatus: 401, Msg: "invalid_api_key"}},
		{"401 another code", 401, "application/json", `{"error":{"message":"x","type":"invalid_request_error","param":null,"code":"invalid_organization"}}`, nil, verifiertest.Want{HTTPStatus: 401, Msg: "invalid_api_key"}},
		{"401 missing scopes with a code", 401, "application/json", `{"error":{"message":"` + restricted + `","code":"insufficient_permissions"}}`, nil, verifiertest.Want{HTTPStatus: 401, Msg: "invalid_api_key"}},
		{"401 code not a string", 401, "application/json", `{"error":{"message":"` + restricted + `","code":401}}`, nil, verifiertest.Want{HTTPStatus: 401, Msg: "invalid_api_key"}},
		{"401 code at top level", 401, "application/json", `{"code":"invalid_api_key"}`, nil, verifiertest.Want{HTTPStatus: 401, Msg: "invalid_api_key"}},
		{"401 upper-case keys", 401, "application/json", `{"ERROR":{"CODE":"invalid_api_key"}}`, nil, verifiertest.Want{HTTPStatus: 401, Msg: "invalid_api_key"}},
		{"401 bare error, other text", 401, "application/json", `{"error":"Unauthorized"}`, nil, verifiertest.Want{HTTPStatus: 401, Msg: "invalid_api_key"}},
		{"401 trailing garbage", 401, "application/json", `{"error":{"code":"invalid_api_key"}}x`, nil, verifiertest.Want{HTTPStatus: 401, Msg: "invalid_api_key"}},
		{"401 empty", 401, "", ``, nil, verifiertest.Want{HTTPStatus: 401, Msg: "invalid_api_key"}},
		{"401 HTML without a content type", 401, "", `<!DOCTYPE html><title>401</title>`, nil, verifiertest.Want{HTTPStatus: 401, Msg: "HTML page"}},
		{"403 OpenAI-shaped JSON", 403, "application/json", `{"error":{"code":"unsupported_country_region_territory","message":"Country, region, or territory not supported","param":null,"type":"request_forbidden"}}`, nil, verifiertest.Want{HTTPStatus: 403, Msg: "403"}},
		{"403 invalid_api_key body", 403, "application/json", `{"error":{"code":"invalid_api_key"}}`, nil, verifiertest.Want{HTTPStatus: 403, Msg: "403"}},
		{"404", 404, "application/json", `{"error":{"message":"Invalid URL (GET /v1/models)","type":"invalid_request_error","param":null,"code":null}}`, nil, verifiertest.Want{HTTPStatus: 404, Msg: "unexpected http status 404"}},
		{"302 to elsewhere", 302, "", "", map[string]string{"Location": canary.URL + "/v1/models"}, verifiertest.Want{HTTPStatus: 302, Msg: "unexpected http status 302"}},
		{"403 with Retry-After: a rate limit", 403, "application/json", `{}`, map[string]string{"Retry-After": "3"}, verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 403, RetryMin: 3 * time.Second, RetryMax: 3 * time.Second, Msg: "rate limited"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := partnertest.ServeAnswer(t, tc.status, tc.contentType, tc.body, tc.header)
			got := harness.RunAs(harness.NewVerifier(t, 0, nil, srv.URL), "", openaiFinding(openaidouble.NewToken()))
			w := tc.want
			if w.Kind == verify.RateLimited {
				w.Metrics = metrics.Summary{Requests: 1, RateLimitHits: 1}
			} else {
				w.Kind, w.Metrics = verify.PartnerError, metrics.Summary{Requests: 1, Errors: 1}
			}
			harness.Check(t, got, w)
		})
	}
}

// TestOrganizationDetail: the openai-organization header becomes
// details.openai_organization only when it looks like an organization id,
// never an e-mail address or anything carrying the key.
func TestOrganizationDetail(t *testing.T) {
	key := openaidouble.NewToken()
	tests := []struct {
		name, header string
		want         finding.Details
	}{
		{"org id", "org-abc123XYZ", finding.Details{openaipartner.DetailOrganization: "org-abc123XYZ"}},
		{"slug", "acme-corp-1", finding.Details{openaipartner.DetailOrganization: "acme-corp-1"}},
		{"user organization", "user-abcdefgh", finding.Details{openaipartner.DetailOrganization: "user-abcdefgh"}},
		{"absent", "", nil},
		{"an e-mail address", "jane.doe@example.com", nil},
		{"text", "Acme Corp", nil},
		{"the key itself", key, nil},
		{"part of the key", key[8:40], nil},
		{"another key", openaidouble.NewToken(), nil},
		{"too long", "org-" + strings.Repeat("a", 120), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.header != "" {
					w.Header().Set("Openai-Organization", tc.header)
				}
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`{"object":"list","data":[]}`))
			}))
			defer srv.Close()
			got := harness.RunAs(harness.NewVerifier(t, 0, nil, srv.URL), "", openaiFinding(key))
			harness.Check(t, got, verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Details: tc.want, Metrics: metrics.Summary{Requests: 1}})
		})
	}
}

// recordingTransport passes requests on and remembers what they carried.
type recordingTransport struct {
	mu   sync.Mutex
	base http.RoundTripper
	reqs []seen
}

type seen struct {
	method, url, auth, ua, body string
	contentLength               int64
}

func (rt *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	s := seen{method: req.Method, url: req.URL.String(), auth: req.Header.Get("Authorization"), ua: req.Header.Get("User-Agent"), contentLength: req.ContentLength}
	if req.Body != nil {
		b, _ := io.ReadAll(req.Body)
		s.body = string(b)
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	rt.mu.Lock()
	rt.reqs = append(rt.reqs, s)
	rt.mu.Unlock()
	return rt.base.RoundTrip(req)
}

// TestRequestShape: each key type goes to its path, only in the
// Authorization header (never the URL or a body), with our User-Agent.
func TestRequestShape(t *testing.T) {
	srv := partnertest.StartDouble(t, openaidouble.Start)
	keys := []struct {
		key, url string
	}{
		{openaidouble.NewToken(), "/v1/models"},
		{openaidouble.NewServiceAccountKey(), "/v1/models"},
		{openaidouble.NewLegacyKey(), "/v1/models"},
		{openaidouble.NewAdminKey(), "/v1/organization/admin_api_keys?limit=1"},
	}
	rt := &recordingTransport{base: &http.Transport{}}
	v := harness.NewVerifier(t, 0, rt, srv.URL+"/")
	for _, k := range keys {
		srv.AddToken(k.key, openaidouble.Live)
		if got := harness.RunAs(v, "", openaiFinding(k.key)); got.Verdict.Reason != finding.ReasonPartnerConfirmed {
			t.Fatalf("Verify = %+v, %v", got.Verdict, got.Err)
		}
	}
	if len(rt.reqs) != len(keys) {
		t.Fatalf("transport saw %d requests", len(rt.reqs))
	}
	for i, r := range rt.reqs {
		k := keys[i]
		if r.method != http.MethodGet || r.url != srv.URL+k.url {
			t.Errorf("request %d: %s %s, want GET %s%s", i, r.method, r.url, srv.URL, k.url)
		}
		if r.auth != "Bearer "+k.key {
			t.Errorf("request %d: the key is not the Bearer token", i)
		}
		if strings.Contains(r.url, k.key[10:40]) || r.body != "" || r.contentLength != 0 {
			t.Errorf("request %d carries the key or a body outside the header", i)
		}
		if r.ua != userAgent {
			t.Errorf("request %d: User-Agent = %q", i, r.ua)
		}
	}
	for _, k := range keys {
		if got := srv.Controls.CountFor(k.key); got != 1 {
			t.Errorf("double counted %d requests for a key", got)
		}
	}
}

func TestEndpointWithPathPrefix(t *testing.T) {
	var path string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path = r.URL.Path
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"object":"list","data":[]}`))
	}))
	defer srv.Close()
	got := harness.RunAs(harness.NewVerifier(t, 0, nil, srv.URL+"/openai/"), "", openaiFinding(openaidouble.NewToken()))
	harness.Check(t, got, verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Metrics: metrics.Summary{Requests: 1}})
	if path != "/openai/v1/models" {
		t.Errorf("path = %q, want /openai/v1/models", path)
	}
}

func TestConcurrentVerifications(t *testing.T) {
	srv := partnertest.StartDouble(t, openaidouble.Start)
	cases := make([]verifiertest.ConcurrentCase, 16)
	for i := range cases {
		key := openaidouble.NewToken()
		cases[i] = verifiertest.ConcurrentCase{Finding: openaiFinding(key), Want: finding.ReasonPartnerRejected}
		if i%2 == 0 {
			srv.AddTokenIn(key, openaidouble.Live, fmt.Sprintf("org-%d", i))
			cases[i].Want, cases[i].Details = finding.ReasonPartnerConfirmed, finding.Details{openaipartner.DetailOrganization: fmt.Sprintf("org-%d", i)}
		}
	}
	harness.Concurrent(t, harness.NewVerifier(t, 0, nil, srv.URL), cases)
}

func TestCancelledContextIsAFault(t *testing.T) {
	srv := partnertest.StartDouble(t, openaidouble.Start)
	key := openaidouble.NewToken()
	srv.AddToken(key, openaidouble.Live)
	verifiertest.CancelledIsAFault(t, harness.NewVerifier(t, 0, nil, srv.URL), openaipartner.TokenAPIKey, openaiFinding(key))
}

// TestNoSecretLeaks runs every class of answer for every key type and
// checks that no verdict, error or log line carries a key or part of one
// (the double's 401 quotes the key's last four characters, as OpenAI's does).
func TestNoSecretLeaks(t *testing.T) {
	srv := partnertest.StartDouble(t, openaidouble.Start)
	modes := []openaidouble.Mode{openaidouble.Live, openaidouble.Restricted, openaidouble.RestrictedFlat, openaidouble.Region, openaidouble.Quota}
	sweep := harness.LeakSweep(t, harness.NewVerifier(t, 300*time.Millisecond, nil, srv.URL))
	for _, newKey := range []func() string{openaidouble.NewToken, openaidouble.NewAdminKey, openaidouble.NewLegacyKey} {
		for _, live := range []bool{true, false} {
			for _, fl := range partnertest.Faults() {
				key := newKey()
				if live {
					srv.AddToken(key, openaidouble.Live)
				}
				srv.Controls.Push(fl)
				sweep.Verify(fl.String(), "", openaiFinding(key))
			}
		}
		for _, m := range modes {
			key := newKey()
			srv.AddToken(key, m)
			sweep.Verify(fmt.Sprint("mode ", m), "", openaiFinding(key))
		}
	}
	// A malformed key never leaves the process, and its message must not quote it.
	sweep.Verify("malformed", "", openaiFinding("sk-"+strings.Repeat("Q", 60)))
	sweep.Check([]string{`"reason":"partner_confirmed"`, `"reason":"partner_rejected"`, `"reason":"malformed_token"`, "http 500", "http 403"}, func(k string) []string {
		return []string{k[10:30], k[len(k)-20:]}
	})
}

func TestNew(t *testing.T) {
	verifiertest.RefusesEndpoints(t, openaipartner.New, "openai: new verifier:", openaipartner.DefaultEndpoint, "", "/v1", "ftp://api.openai.com", "https://api.openai.com?x=1")
}

// TestEnforcedRateLimit drives the double's own limiter rather than a
// scripted 429: the second request inside the window is refused, and its
// duration reset is the wait.
func TestEnforcedRateLimit(t *testing.T) {
	srv := partnertest.StartDouble(t, openaidouble.Start)
	key := openaidouble.NewToken()
	srv.AddTokenIn(key, openaidouble.Live, testOrg)
	srv.Controls.SetRetryAfter("")
	srv.SetRateLimitReset("20s")
	v := harness.NewVerifier(t, 0, nil, srv.URL)
	harness.EnforcedRateLimit(t, v, srv.Controls, "", openaiFinding(key),
		verifiertest.Want{Details: finding.Details{openaipartner.DetailOrganization: testOrg}}, verifiertest.Want{RetryMin: 20 * time.Second, RetryMax: 20 * time.Second})
}
