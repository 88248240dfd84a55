package sendgridpartner_test

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
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/sendgriddouble"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/metrics"
	sendgridpartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/sendgrid"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

const rule = "Sendgrid API token"

func startDouble(t *testing.T) *sendgriddouble.Server {
	t.Helper()
	s, err := sendgriddouble.Start("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func newVerifier(t *testing.T, endpoint string, timeout time.Duration, tr http.RoundTripper) *sendgridpartner.Verifier {
	t.Helper()
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	v, err := sendgridpartner.New(partnerhttp.Options{Endpoints: []*url.URL{u}, Timeout: timeout, Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func sendgridFinding(tok string) finding.Finding {
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
	rt, reason, msg := sendgridpartner.Definition.Examine(f)
	if reason != "" {
		return verify.Verdict{Reason: reason, Message: msg}, nil
	}
	if rt.TokenType != tt {
		return verify.Verdict{Reason: finding.ReasonUnsupportedTokenType, Message: "rule_id is routed to " + string(rt.TokenType) + ", not " + string(tt)}, nil
	}
	return v.Verify(ctx, tt, f)
}

func run(v *sendgridpartner.Verifier, tt finding.TokenType, f finding.Finding) outcome {
	rec := metrics.New()
	verdict, err := callerVerify(metrics.NewContext(context.Background(), rec), v, tt, f)
	m := rec.Snapshot()["sendgrid"]
	m.LatencyMS = nil
	return outcome{verdict, err, m}
}

// want describes the expected outcome of a row: a verdict (reason set) or a fault.
type want struct {
	reason     finding.Reason // verdict reason; "" when a fault is expected
	scopes     []string       // details.scopes of a confirmed key
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
		if w.reason == finding.ReasonPartnerConfirmed {
			want := finding.Details{sendgridpartner.DetailScopes: w.scopes}
			if !reflect.DeepEqual(got.verdict.Details, want) {
				t.Errorf("details = %#v, want %#v", got.verdict.Details, want)
			}
		} else if got.verdict.Details != nil {
			t.Errorf("details on a %q verdict: %v", got.verdict.Reason, got.verdict.Details)
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
		if f.Partner != sendgridpartner.Name || f.Op != "GET /v3/scopes" {
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
	srv := startDouble(t)
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
		want       want
	}{
		// 200 {"scopes":[...]}: every live key, however restricted, reads its own scopes.
		{name: "full access key", setup: func(t *testing.T, key string) finding.Finding {
			srv.AddToken(key)
			return sendgridFinding(key)
		}, want: want{reason: finding.ReasonPartnerConfirmed, scopes: sendgriddouble.FullAccessScopes, metrics: one, calls: 1}},
		{name: "restricted key (mail send only)", setup: func(t *testing.T, key string) finding.Finding {
			srv.AddToken(key, sendgriddouble.RestrictedScopes...)
			return sendgridFinding(key)
		}, want: want{reason: finding.ReasonPartnerConfirmed, scopes: sendgriddouble.RestrictedScopes, metrics: one, calls: 1}},
		{name: "billing access key", setup: func(t *testing.T, key string) finding.Finding {
			srv.AddToken(key, sendgriddouble.BillingScopes...)
			return sendgridFinding(key)
		}, want: want{reason: finding.ReasonPartnerConfirmed, scopes: sendgriddouble.BillingScopes, metrics: one, calls: 1}},
		{name: "key with an empty scope list", setup: func(t *testing.T, key string) finding.Finding {
			srv.AddToken(key, []string{}...)
			return sendgridFinding(key)
		}, want: want{reason: finding.ReasonPartnerConfirmed, scopes: []string{}, metrics: one, calls: 1}},
		// 401 {"errors":[...]}: SendGrid's own rejection, both observed messages.
		{name: "unknown key: 401 wrong credentials", setup: func(t *testing.T, key string) finding.Finding {
			return sendgridFinding(key)
		}, want: want{reason: finding.ReasonPartnerRejected, metrics: one, calls: 1}},
		{name: "revoked key: 401 grant invalid, expired, or revoked", setup: func(t *testing.T, key string) finding.Finding {
			srv.AddToken(key)
			srv.RevokeToken(key)
			return sendgridFinding(key)
		}, want: want{reason: finding.ReasonPartnerRejected, metrics: one, calls: 1}},
		// The format gate: no call.
		{name: "malformed key: short secret", setup: func(t *testing.T, key string) finding.Finding {
			srv.AddToken(key[:60])
			return sendgridFinding(key[:60])
		}, want: want{reason: finding.ReasonMalformedToken, msg: "not a SendGrid API key"}},
		{name: "malformed key: lower-case prefix", setup: func(t *testing.T, key string) finding.Finding {
			return sendgridFinding("sg." + key[3:])
		}, want: want{reason: finding.ReasonMalformedToken}},
		{name: "malformed key: no dot between id and secret", setup: func(t *testing.T, key string) finding.Finding {
			return sendgridFinding(key[:25] + "x" + key[26:])
		}, want: want{reason: finding.ReasonMalformedToken}},
		{name: "other partner's token type: no call", tokenType: finding.TokenPostmanAPIKey, setup: func(t *testing.T, key string) finding.Finding {
			srv.AddToken(key)
			return sendgridFinding(key)
		}, want: want{reason: finding.ReasonUnsupportedTokenType, msg: "sendgrid_api_key"}},
		// 403: the temporary block after too many bad requests, never inactive.
		{name: "403 temporary block on a revoked key", setup: func(t *testing.T, key string) finding.Finding {
			srv.RevokeToken(key)
			srv.SetBlocked(true)
			return sendgridFinding(key)
		}, want: want{kind: verify.RateLimited, httpStatus: 403, msg: "temporary block", metrics: limited, calls: 1}},
		{name: "403 temporary block on a live key", setup: func(t *testing.T, key string) finding.Finding {
			srv.AddToken(key)
			srv.SetBlocked(true)
			return sendgridFinding(key)
		}, want: want{kind: verify.RateLimited, httpStatus: 403, msg: "temporary block", metrics: limited, calls: 1}},
		// 406: a request without Accept.
		{name: "406 without Accept", transport: stripAccept{&http.Transport{}}, setup: func(t *testing.T, key string) finding.Finding {
			srv.AddToken(key)
			return sendgridFinding(key)
		}, want: want{kind: verify.PartnerError, httpStatus: 406, msg: "406", metrics: errored, calls: 1}},
		// 429 with X-RateLimit-Reset in epoch seconds (no Retry-After): the
		// wait is the reset time minus now, the double rounding it up to a second.
		{name: "429 reset in 7 s", retryAfter: "7", setup: fault(srv, partnertest.Fault429),
			want: want{kind: verify.RateLimited, httpStatus: 429, retryMin: 6 * time.Second, retryMax: 8 * time.Second, msg: "rate limited", metrics: limited, calls: 1}},
		{name: "429 reset at a date 30 s away", retryAfter: httpDate(), setup: fault(srv, partnertest.Fault429),
			want: want{kind: verify.RateLimited, httpStatus: 429, retryMin: 27 * time.Second, retryMax: 30 * time.Second, metrics: limited, calls: 1}},
		{name: "429 reset at the end of the minute", retryAfter: "", setup: fault(srv, partnertest.Fault429),
			want: want{kind: verify.RateLimited, httpStatus: 429, retryMin: 0, retryMax: 60 * time.Second, metrics: limited, calls: 1}},
		{name: "429 on a revoked key", retryAfter: "2", setup: func(t *testing.T, key string) finding.Finding {
			srv.RevokeToken(key)
			srv.Controls.Push(partnertest.Fault429)
			return sendgridFinding(key)
		}, want: want{kind: verify.RateLimited, httpStatus: 429, retryMin: time.Second, retryMax: 3 * time.Second, metrics: limited, calls: 1}},
		// Faults of the exchange.
		{name: "500", setup: fault(srv, partnertest.Fault500), want: want{kind: verify.PartnerError, httpStatus: 500, msg: "http 500", metrics: errored, calls: 1}},
		{name: "502 HTML", setup: fault(srv, partnertest.Fault502), want: want{kind: verify.PartnerError, httpStatus: 502, metrics: errored, calls: 1}},
		{name: "503", setup: fault(srv, partnertest.Fault503), want: want{kind: verify.PartnerError, httpStatus: 503, metrics: errored, calls: 1}},
		{name: "504 HTML", setup: fault(srv, partnertest.Fault504), want: want{kind: verify.PartnerError, httpStatus: 504, metrics: errored, calls: 1}},
		{name: "reset", setup: fault(srv, partnertest.FaultReset), want: want{kind: verify.PartnerError, network: true, msg: "network error", metrics: network, calls: 1}},
		{name: "hang with a short timeout", timeout: 300 * time.Millisecond, setup: fault(srv, partnertest.FaultHang),
			want: want{kind: verify.PartnerError, network: true, msg: "timeout", metrics: network, calls: 1}},
		{name: "slow live answer within the timeout", timeout: 2 * time.Second, setup: func(t *testing.T, key string) finding.Finding {
			srv.AddToken(key, "mail.send")
			srv.Controls.SetLatency(100*time.Millisecond, 0)
			return sendgridFinding(key)
		}, want: want{reason: finding.ReasonPartnerConfirmed, scopes: []string{"mail.send"}, metrics: one, calls: 1}},
		{name: "garbled 200", setup: fault(srv, partnertest.FaultGarbled), want: want{kind: verify.PartnerError, httpStatus: 200, msg: "proves nothing", metrics: errored, calls: 1}},
		{name: "empty 200", setup: fault(srv, partnertest.FaultEmpty), want: want{kind: verify.PartnerError, httpStatus: 200, msg: "proves nothing", metrics: errored, calls: 1}},
		{name: "truncated 200", setup: fault(srv, partnertest.FaultTruncated), want: want{kind: verify.PartnerError, httpStatus: 200, msg: "read body", metrics: errored, calls: 1}},
		{name: "HTML 401 from a proxy", setup: fault(srv, partnertest.FaultHTML401), want: want{kind: verify.PartnerError, httpStatus: 401, msg: "HTML page", metrics: errored, calls: 1}},
		{name: "HTML 403 from a WAF", setup: fault(srv, partnertest.FaultHTML403), want: want{kind: verify.PartnerError, httpStatus: 403, msg: "HTML page", metrics: errored, calls: 1}},
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
			got := run(newVerifier(t, srv.URL, tc.timeout, tc.transport), tt, f)
			check(t, got, tc.want)
			if calls := srv.Controls.Requests(); calls != tc.want.calls {
				t.Errorf("double saw %d requests, want %d", calls, tc.want.calls)
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
	canary := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		t.Error("the redirect target was contacted")
	}))
	defer canary.Close()
	key := sendgriddouble.NewToken()
	errored := metrics.Summary{Requests: 1, Errors: 1}
	limited := metrics.Summary{Requests: 1, RateLimitHits: 1}
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string
		header      map[string]string
		want        want
	}{
		{"200 JSON without scopes", 200, "application/json", `{"ok":true}`, nil, want{httpStatus: 200, msg: "proves nothing"}},
		{"200 scopes null", 200, "application/json", `{"scopes":null}`, nil, want{httpStatus: 200, msg: "proves nothing"}},
		{"200 scopes a string", 200, "application/json", `{"scopes":"mail.send"}`, nil, want{httpStatus: 200, msg: "proves nothing"}},
		{"200 scopes of numbers", 200, "application/json", `{"scopes":[1,2]}`, nil, want{httpStatus: 200, msg: "proves nothing"}},
		{"200 scopes with null", 200, "application/json", `{"scopes":["mail.send",null]}`, nil, want{httpStatus: 200, msg: "proves nothing"}},
		{"200 scope not a scope name", 200, "application/json", `{"scopes":["Mail Send"]}`, nil, want{httpStatus: 200, msg: "proves nothing"}},
		{"200 scopes echo the key", 200, "application/json", `{"scopes":["` + key + `"]}`, nil, want{httpStatus: 200, msg: "proves nothing"}},
		{"200 scopes echo the key's id", 200, "application/json", `{"scopes":["x.` + strings.ToLower(key[3:25]) + `"]}`, nil, want{httpStatus: 200, msg: "proves nothing"}},
		{"200 upper-case key", 200, "application/json", `{"Scopes":["mail.send"]}`, nil, want{httpStatus: 200, msg: "proves nothing"}},
		{"200 two documents", 200, "application/json", `{"scopes":[]}{"scopes":[]}`, nil, want{httpStatus: 200, msg: "proves nothing"}},
		{"200 HTML captive portal", 200, "text/html", `<html><body>Sign in to Wi-Fi</body></html>`, nil, want{httpStatus: 200, msg: "HTML page"}},
		{"200 too long", 200, "application/json", `{"scopes":["mail.send"],"pad":"` + strings.Repeat("x", 70*1024) + `"}`, nil, want{httpStatus: 200, msg: "read body"}},
		{"401 HTML without a content type", 401, "", `<!DOCTYPE html><title>401</title>`, nil, want{httpStatus: 401, msg: "HTML page"}},
		{"401 empty", 401, "", ``, nil, want{httpStatus: 401, msg: "errors body"}},
		{"401 flat error", 401, "application/json", `{"error":"unauthorized"}`, nil, want{httpStatus: 401, msg: "errors body"}},
		{"401 empty errors", 401, "application/json", `{"errors":[]}`, nil, want{httpStatus: 401, msg: "errors body"}},
		{"401 error without message", 401, "application/json", `{"errors":[{"field":null}]}`, nil, want{httpStatus: 401, msg: "errors body"}},
		{"401 error with null message", 401, "application/json", `{"errors":[{"field":null,"message":null}]}`, nil, want{httpStatus: 401, msg: "errors body"}},
		{"401 upper-case Errors", 401, "application/json", `{"Errors":[{"field":null,"message":"x"}]}`, nil, want{httpStatus: 401, msg: "errors body"}},
		{"401 truncated errors", 401, "application/json", `{"errors":[{"field":null,"message":"x"}`, nil, want{httpStatus: 401, msg: "errors body"}},
		{"403 not SendGrid's body", 403, "application/json", `{"message":"Forbidden"}`, nil, want{httpStatus: 403, msg: "unexpected http status 403"}},
		{"403 with X-RateLimit-Remaining 0", 403, "application/json", `{"message":"Forbidden"}`, map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "5"},
			want{kind: verify.RateLimited, httpStatus: 403, retryMin: 5 * time.Second, retryMax: 5 * time.Second, msg: "rate limited", metrics: limited}},
		{"400 errors body", 400, "application/json", `{"errors":[{"field":"x","message":"bad request"}]}`, nil, want{httpStatus: 400, msg: "unexpected http status 400"}},
		{"404", 404, "application/json", `{"errors":[{"field":null,"message":"resource not found"}]}`, nil, want{httpStatus: 404, msg: "unexpected http status 404"}},
		{"451 data residency", 451, "application/json", `{"errors":[{"field":null,"message":"unavailable"}]}`, nil, want{httpStatus: 451, msg: "unexpected http status 451"}},
		{"302 to elsewhere", 302, "", "", map[string]string{"Location": canary.URL + "/v3/scopes"}, want{httpStatus: 302, msg: "unexpected http status 302"}},
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
			if w.kind == verify.PartnerError { // the zero kind: an unusable answer
				w.metrics = errored
			}
			check(t, run(newVerifier(t, srv.URL, 0, nil), sendgridpartner.TokenAPIKey, sendgridFinding(key)), w)
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
	srv := startDouble(t)
	key := sendgriddouble.NewToken()
	srv.AddToken(key, "mail.send")
	rt := &recordingTransport{base: &http.Transport{}}
	v := newVerifier(t, srv.URL+"/", 0, rt)
	for range 3 {
		if got := run(v, sendgridpartner.TokenAPIKey, sendgridFinding(key)); got.verdict.Reason != finding.ReasonPartnerConfirmed {
			t.Fatalf("Verify = %+v, %v", got.verdict, got.err)
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
	got := run(newVerifier(t, srv.URL+"/sendgrid/", 0, nil), sendgridpartner.TokenAPIKey, sendgridFinding(sendgriddouble.NewToken()))
	check(t, got, want{reason: finding.ReasonPartnerConfirmed, scopes: []string{"mail.send"}, metrics: metrics.Summary{Requests: 1}})
	if p, _ := path.Load().(string); p != "/sendgrid/v3/scopes" {
		t.Errorf("path = %q, want /sendgrid/v3/scopes", p)
	}
}

func TestConcurrentVerifications(t *testing.T) {
	srv := startDouble(t)
	v := newVerifier(t, srv.URL, 0, nil)
	keys := make([]string, 16)
	for i := range keys {
		keys[i] = sendgriddouble.NewToken()
		if i%2 == 0 {
			srv.AddToken(keys[i], fmt.Sprintf("scope.n%d", i))
		}
	}
	var wg sync.WaitGroup
	results := make([]outcome, len(keys))
	for i, k := range keys {
		wg.Go(func() { results[i] = run(v, sendgridpartner.TokenAPIKey, sendgridFinding(k)) })
	}
	wg.Wait()
	for i, r := range results {
		want := finding.ReasonPartnerRejected
		if i%2 == 0 {
			want = finding.ReasonPartnerConfirmed
		}
		if r.err != nil || r.verdict.Reason != want {
			t.Errorf("key %d: %+v, %v; want %s", i, r.verdict, r.err, want)
		}
		if want == finding.ReasonPartnerConfirmed && !reflect.DeepEqual(r.verdict.Details[sendgridpartner.DetailScopes], []string{fmt.Sprintf("scope.n%d", i)}) {
			t.Errorf("key %d: details %v belong to another key", i, r.verdict.Details)
		}
		if srv.Controls.CountFor(keys[i]) != 1 {
			t.Errorf("key %d: double saw %d requests", i, srv.Controls.CountFor(keys[i]))
		}
	}
}

func TestCancelledContextIsAFault(t *testing.T) {
	srv := startDouble(t)
	key := sendgriddouble.NewToken()
	srv.AddToken(key)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	verdict, err := newVerifier(t, srv.URL, 0, nil).Verify(ctx, sendgridpartner.TokenAPIKey, sendgridFinding(key))
	f, ok := verify.AsFault(err)
	if !ok || f.Kind != verify.PartnerError || !f.Network || verdict.Reason != "" {
		t.Errorf("Verify = %+v, %v; want a network partner error", verdict, err)
	}
}

// TestNoSecretLeaks runs every class of answer and checks that no verdict,
// error or log line of the outcomes carries the key or a part of it.
func TestNoSecretLeaks(t *testing.T) {
	srv := startDouble(t)
	var logBuf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	faults := []partnertest.Fault{partnertest.FaultNone, partnertest.Fault500, partnertest.Fault502,
		partnertest.Fault503, partnertest.Fault504, partnertest.Fault429, partnertest.FaultReset,
		partnertest.FaultGarbled, partnertest.FaultEmpty, partnertest.FaultTruncated,
		partnertest.FaultHTML401, partnertest.FaultHTML403, partnertest.FaultHang}
	v := newVerifier(t, srv.URL, 300*time.Millisecond, nil)
	var keys, texts []string
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
			key := sendgriddouble.NewToken()
			keys = append(keys, key)
			if live {
				srv.AddToken(key)
			}
			srv.Controls.Push(fl)
			f := sendgridFinding(key)
			verdict, err := v.Verify(context.Background(), sendgridpartner.TokenAPIKey, f)
			record(f, fl.String(), verdict, err)
		}
	}
	// The block, a revoked key, and a malformed key (which never leaves the
	// process, but whose message must not quote it either).
	blocked, revoked := sendgriddouble.NewToken(), sendgriddouble.NewToken()
	srv.RevokeToken(revoked)
	keys = append(keys, blocked, revoked)
	verdict, err := v.Verify(context.Background(), sendgridpartner.TokenAPIKey, sendgridFinding(revoked))
	record(sendgridFinding(revoked), "revoked", verdict, err)
	srv.SetBlocked(true)
	verdict, err = v.Verify(context.Background(), sendgridpartner.TokenAPIKey, sendgridFinding(blocked))
	record(sendgridFinding(blocked), "blocked", verdict, err)
	srv.SetBlocked(false)
	bad := sendgriddouble.NewToken()[:60]
	keys = append(keys, bad)
	verdict, err = callerVerify(context.Background(), v, sendgridpartner.TokenAPIKey, sendgridFinding(bad))
	record(sendgridFinding(bad), "malformed", verdict, err)

	texts = append(texts, logBuf.String())
	for _, s := range []string{`"reason":"partner_confirmed"`, `"reason":"partner_rejected"`, "http 500", "temporary block", "malformed_token"} {
		if !strings.Contains(logBuf.String(), s) {
			t.Fatalf("the outcome log lacks %q; the leak check would prove nothing", s)
		}
	}
	for _, k := range keys {
		id, secret, _ := strings.Cut(strings.TrimPrefix(k, "SG."), ".")
		for i, s := range texts {
			if strings.Contains(s, k) || strings.Contains(s, id) || (len(secret) >= 20 && strings.Contains(s, secret[:20])) {
				t.Errorf("text %d of %d contains a key or part of one", i, len(texts))
			}
		}
	}
}

func TestNew(t *testing.T) {
	for _, ep := range []string{"", "/v3", "ftp://api.sendgrid.com"} {
		var u *url.URL
		if ep != "" {
			u, _ = url.Parse(ep)
		}
		if v, err := sendgridpartner.New(partnerhttp.Options{Endpoints: []*url.URL{u}}); err == nil || v != nil {
			t.Errorf("New(%q) = %v, %v; want an error", ep, v, err)
		} else if !strings.HasPrefix(err.Error(), "sendgrid: new verifier:") {
			t.Errorf("error %q does not name the operation", err)
		}
	}
	u, _ := url.Parse(sendgridpartner.DefaultEndpoint)
	for _, eps := range [][]*url.URL{nil, {u, u}} {
		if v, err := sendgridpartner.New(partnerhttp.Options{Endpoints: eps}); err == nil || v != nil {
			t.Errorf("New with %d endpoints = %v, %v; want an error", len(eps), v, err)
		}
	}
}

// TestEnforcedRateLimit drives the double's own limiter rather than a
// scripted 429: the second request inside the window is refused, with the
// wait in X-RateLimit-Reset.
func TestEnforcedRateLimit(t *testing.T) {
	srv := startDouble(t)
	key := sendgriddouble.NewToken()
	srv.AddToken(key, "mail.send")
	srv.Controls.SetRateLimit(0.001, 1)
	srv.Controls.SetRetryAfter("2")
	v := newVerifier(t, srv.URL, 0, nil)
	check(t, run(v, sendgridpartner.TokenAPIKey, sendgridFinding(key)),
		want{reason: finding.ReasonPartnerConfirmed, scopes: []string{"mail.send"}, metrics: metrics.Summary{Requests: 1}})
	check(t, run(v, sendgridpartner.TokenAPIKey, sendgridFinding(key)),
		want{kind: verify.RateLimited, httpStatus: 429, retryMin: time.Second, retryMax: 3 * time.Second,
			metrics: metrics.Summary{Requests: 1, RateLimitHits: 1}})
	if srv.Controls.RateLimited() != 1 {
		t.Errorf("double sent %d 429s, want 1", srv.Controls.RateLimited())
	}
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
