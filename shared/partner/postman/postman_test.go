package postmanpartner_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/postmandouble"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/metrics"
	postmanpartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/postman"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

const rule = "Postman API token"

func startDouble(t *testing.T) *postmandouble.Server {
	t.Helper()
	s, err := postmandouble.Start("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func newVerifier(t *testing.T, endpoint string, timeout time.Duration, tr http.RoundTripper) *postmanpartner.Verifier {
	t.Helper()
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	v, err := postmanpartner.New(partnerhttp.Options{Endpoints: []*url.URL{u}, Timeout: timeout, Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func postmanFinding(tok string) finding.Finding {
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
	rt, reason, msg := postmanpartner.Definition.Examine(f)
	if reason != "" {
		return verify.Verdict{Reason: reason, Message: msg}, nil
	}
	if rt.TokenType != tt {
		return verify.Verdict{Reason: finding.ReasonUnsupportedTokenType, Message: "rule_id is routed to " + string(rt.TokenType) + ", not " + string(tt)}, nil
	}
	return v.Verify(ctx, tt, f)
}

func run(v *postmanpartner.Verifier, tt finding.TokenType, f finding.Finding) outcome {
	rec := metrics.New()
	verdict, err := callerVerify(metrics.NewContext(context.Background(), rec), v, tt, f)
	m := rec.Snapshot()["postman"]
	m.LatencyMS = nil
	return outcome{verdict, err, m}
}

// want describes the expected outcome of a row: a verdict (reason set) or a fault.
type want struct {
	reason     finding.Reason // verdict reason; "" when a fault is expected
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
	} else {
		if got.err == nil {
			t.Fatalf("verdict %+v (status %s), want a fault; a fault must never be an answer", got.verdict, got.verdict.Status())
		}
		if got.verdict.Reason != "" {
			t.Errorf("a fault came with verdict reason %q", got.verdict.Reason)
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
		if f.Partner != finding.PartnerPostman || f.Op != "GET /me" {
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

func TestVerifyAgainstDouble(t *testing.T) {
	srv := startDouble(t)
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
		want       want
	}{
		{name: "live key", setup: func(t *testing.T, key string) finding.Finding {
			srv.AddKey(key, 12345678)
			return postmanFinding(key)
		}, want: want{reason: finding.ReasonPartnerConfirmed, metrics: one, calls: 1}},
		{name: "unknown key", setup: func(t *testing.T, key string) finding.Finding {
			return postmanFinding(key)
		}, want: want{reason: finding.ReasonPartnerRejected, metrics: one, calls: 1}},
		{name: "revoked key", setup: func(t *testing.T, key string) finding.Finding {
			srv.AddKey(key, 99)
			srv.RevokeKey(key)
			return postmanFinding(key)
		}, want: want{reason: finding.ReasonPartnerRejected, metrics: one, calls: 1}},
		{name: "malformed key: no call", setup: func(t *testing.T, key string) finding.Finding {
			srv.AddKey(key[:40], 1)
			return postmanFinding(key[:40])
		}, want: want{reason: finding.ReasonMalformedToken, msg: "not a Postman API key"}},
		{name: "upper-case key: no call", setup: func(t *testing.T, key string) finding.Finding {
			return postmanFinding(strings.ToUpper(key))
		}, want: want{reason: finding.ReasonMalformedToken}},
		{name: "other partner's token type: no call", tokenType: finding.TokenGCPAPIKey, setup: func(t *testing.T, key string) finding.Finding {
			srv.AddKey(key, 1)
			return postmanFinding(key)
		}, want: want{reason: finding.ReasonUnsupportedTokenType, msg: "postman_api_key"}},
		{name: "500", setup: fault(srv, partnertest.Fault500), want: want{kind: verify.PartnerError, httpStatus: 500, msg: "http 500", metrics: errored, calls: 1}},
		{name: "502 HTML", setup: fault(srv, partnertest.Fault502), want: want{kind: verify.PartnerError, httpStatus: 502, metrics: errored, calls: 1}},
		{name: "503", setup: fault(srv, partnertest.Fault503), want: want{kind: verify.PartnerError, httpStatus: 503, metrics: errored, calls: 1}},
		{name: "504 HTML", setup: fault(srv, partnertest.Fault504), want: want{kind: verify.PartnerError, httpStatus: 504, metrics: errored, calls: 1}},
		{name: "429 Retry-After seconds", retryAfter: "7", setup: fault(srv, partnertest.Fault429),
			want: want{kind: verify.RateLimited, httpStatus: 429, retryMin: 7 * time.Second, retryMax: 7 * time.Second, msg: "rate limited", metrics: metrics.Summary{Requests: 1, RateLimitHits: 1}, calls: 1}},
		{name: "429 Retry-After HTTP date", retryAfter: httpDate(), setup: fault(srv, partnertest.Fault429),
			want: want{kind: verify.RateLimited, httpStatus: 429, retryMin: 27 * time.Second, retryMax: 30 * time.Second, metrics: metrics.Summary{Requests: 1, RateLimitHits: 1}, calls: 1}},
		// Postman's own 429 headers without Retry-After: X-RateLimit-RetryAfter
		// seconds, then X-RateLimit-Reset epoch seconds (both about a minute).
		{name: "429 X-RateLimit-RetryAfter and -Reset only", retryAfter: "", setup: fault(srv, partnertest.Fault429),
			want: want{kind: verify.RateLimited, httpStatus: 429, retryMin: 59 * time.Second, retryMax: 61 * time.Second, metrics: metrics.Summary{Requests: 1, RateLimitHits: 1}, calls: 1}},
		{name: "429 with the support article's nested body", retryAfter: "", setup: func(t *testing.T, key string) finding.Finding {
			srv.AddKey(key, 5)
			srv.SetLegacyRateLimitBody(true)
			srv.Controls.Push(partnertest.Fault429)
			return postmanFinding(key)
		}, want: want{kind: verify.RateLimited, httpStatus: 429, retryMin: 59 * time.Second, retryMax: 61 * time.Second, metrics: metrics.Summary{Requests: 1, RateLimitHits: 1}, calls: 1}},
		{name: "429 on a live key", retryAfter: "1", setup: func(t *testing.T, key string) finding.Finding {
			srv.AddKey(key, 5)
			srv.Controls.Push(partnertest.Fault429)
			return postmanFinding(key)
		}, want: want{kind: verify.RateLimited, httpStatus: 429, retryMin: time.Second, retryMax: time.Second, metrics: metrics.Summary{Requests: 1, RateLimitHits: 1}, calls: 1}},
		{name: "reset", setup: fault(srv, partnertest.FaultReset), want: want{kind: verify.PartnerError, network: true, msg: "network error", metrics: network, calls: 1}},
		{name: "hang with a short timeout", timeout: 300 * time.Millisecond, setup: fault(srv, partnertest.FaultHang),
			want: want{kind: verify.PartnerError, network: true, msg: "timeout", metrics: network, calls: 1}},
		{name: "slow live answer within the timeout", timeout: 2 * time.Second, setup: func(t *testing.T, key string) finding.Finding {
			srv.AddKey(key, 5)
			srv.Controls.SetLatency(100*time.Millisecond, 0)
			return postmanFinding(key)
		}, want: want{reason: finding.ReasonPartnerConfirmed, metrics: one, calls: 1}},
		{name: "garbled 200", setup: fault(srv, partnertest.FaultGarbled), want: want{kind: verify.PartnerError, httpStatus: 200, msg: "proves nothing", metrics: errored, calls: 1}},
		{name: "empty 200", setup: fault(srv, partnertest.FaultEmpty), want: want{kind: verify.PartnerError, httpStatus: 200, msg: "proves nothing", metrics: errored, calls: 1}},
		{name: "truncated 200", setup: fault(srv, partnertest.FaultTruncated), want: want{kind: verify.PartnerError, httpStatus: 200, msg: "read body", metrics: errored, calls: 1}},
		{name: "HTML 401 from a proxy", setup: fault(srv, partnertest.FaultHTML401), want: want{kind: verify.PartnerError, httpStatus: 401, msg: "HTML page", metrics: errored, calls: 1}},
		{name: "HTML 403 from a WAF", setup: fault(srv, partnertest.FaultHTML403), want: want{kind: verify.PartnerError, httpStatus: 403, msg: "HTML page", metrics: errored, calls: 1}},
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
			got := run(newVerifier(t, srv.URL, tc.timeout, nil), tt, f)
			check(t, got, tc.want)
			if got.verdict.Reason == finding.ReasonPartnerConfirmed {
				id := got.verdict.Details[postmanpartner.DetailUserID]
				if id == "" || len(got.verdict.Details) != 1 {
					t.Errorf("details = %v, want only %s", got.verdict.Details, postmanpartner.DetailUserID)
				}
				if id != "12345678" && id != "5" {
					t.Errorf("postman_user_id = %q, not the registered user", id)
				}
			} else if got.verdict.Details != nil {
				t.Errorf("details on a %q verdict: %v", got.verdict.Reason, got.verdict.Details)
			}
			if calls := srv.Controls.Requests(); calls != tc.want.calls {
				t.Errorf("double saw %d requests, want %d", calls, tc.want.calls)
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
	canary := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		t.Error("the redirect target was contacted")
	}))
	defer canary.Close()
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
			got := run(newVerifier(t, srv.URL, 0, nil), finding.TokenPostmanAPIKey, postmanFinding(postmandouble.NewAPIKey()))
			check(t, got, want{kind: verify.PartnerError, httpStatus: tc.wantStatus, msg: tc.wantMsg,
				metrics: metrics.Summary{Requests: 1, Errors: 1}})
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
	srv := startDouble(t)
	key := postmandouble.NewAPIKey()
	srv.AddKey(key, 3)
	rt := &recordingTransport{base: &http.Transport{}}
	v := newVerifier(t, srv.URL+"/", 0, rt)
	for range 3 {
		if got := run(v, finding.TokenPostmanAPIKey, postmanFinding(key)); got.verdict.Reason != finding.ReasonPartnerConfirmed {
			t.Fatalf("Verify = %+v, %v", got.verdict, got.err)
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
	got := run(newVerifier(t, srv.URL+"/postman/", 0, nil), finding.TokenPostmanAPIKey, postmanFinding(postmandouble.NewAPIKey()))
	check(t, got, want{reason: finding.ReasonPartnerConfirmed, metrics: metrics.Summary{Requests: 1}})
	if p, _ := path.Load().(string); p != "/postman/me" {
		t.Errorf("path = %q, want /postman/me", p)
	}
	if got.verdict.Details[postmanpartner.DetailUserID] != "31" {
		t.Errorf("details = %v", got.verdict.Details)
	}
}

func TestConcurrentVerifications(t *testing.T) {
	srv := startDouble(t)
	v := newVerifier(t, srv.URL, 0, nil)
	keys := make([]string, 16)
	for i := range keys {
		keys[i] = postmandouble.NewAPIKey()
		if i%2 == 0 {
			srv.AddKey(keys[i], 1000+i)
		}
	}
	var wg sync.WaitGroup
	results := make([]outcome, len(keys))
	for i, k := range keys {
		wg.Go(func() { results[i] = run(v, finding.TokenPostmanAPIKey, postmanFinding(k)) })
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
		if want == finding.ReasonPartnerConfirmed && r.verdict.Details[postmanpartner.DetailUserID] != strconv.Itoa(1000+i) {
			t.Errorf("key %d: details %v belong to another key", i, r.verdict.Details)
		}
		if srv.Controls.CountFor(keys[i]) != 1 {
			t.Errorf("key %d: double saw %d requests", i, srv.Controls.CountFor(keys[i]))
		}
	}
}

func TestCancelledContextIsAFault(t *testing.T) {
	srv := startDouble(t)
	key := postmandouble.NewAPIKey()
	srv.AddKey(key, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	verdict, err := newVerifier(t, srv.URL, 0, nil).Verify(ctx, finding.TokenPostmanAPIKey, postmanFinding(key))
	f, ok := verify.AsFault(err)
	if !ok || f.Kind != verify.PartnerError || !f.Network || verdict.Reason != "" {
		t.Errorf("Verify = %+v, %v; want a network partner error", verdict, err)
	}
}

// TestNoSecretLeaks runs every class of answer and checks that no verdict,
// error or log line of the outcomes carries the key.
func TestNoSecretLeaks(t *testing.T) {
	srv := startDouble(t)
	var logBuf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	faults := []partnertest.Fault{partnertest.FaultNone, partnertest.Fault500, partnertest.Fault502,
		partnertest.Fault503, partnertest.Fault504, partnertest.Fault429, partnertest.FaultReset,
		partnertest.FaultGarbled, partnertest.FaultEmpty, partnertest.FaultTruncated,
		partnertest.FaultHTML401, partnertest.FaultHTML403, partnertest.FaultHang}
	v := newVerifier(t, srv.URL, 300*time.Millisecond, nil)
	var keys []string
	var texts []string
	for _, live := range []bool{true, false} {
		for _, fl := range faults {
			key := postmandouble.NewAPIKey()
			keys = append(keys, key)
			if live {
				srv.AddKey(key, 77)
			}
			srv.Controls.Push(fl)
			f := postmanFinding(key)
			verdict, err := v.Verify(context.Background(), finding.TokenPostmanAPIKey, f)
			errText := ""
			if err != nil {
				errText = err.Error()
			}
			texts = append(texts, fmt.Sprintf("%v|%+v|%#v|%s|%v", verdict, verdict, verdict, errText, err))
			log.Info("verification", "fault", fl.String(), "finding", f, "token", f.Token,
				"reason", verdict.Reason, "details", verdict.Details, "message", verdict.Message, "error", err)
		}
	}
	// A malformed key never leaves the process, but its message must not quote it either.
	bad := "PMAK-" + strings.Repeat("z", 24) + "-" + postmandouble.NewAPIKey()[30:]
	keys = append(keys, bad)
	verdict, err := v.Verify(context.Background(), finding.TokenPostmanAPIKey, postmanFinding(bad))
	texts = append(texts, fmt.Sprintf("%+v %v", verdict, err))
	log.Info("verification", "finding", postmanFinding(bad), "verdict", verdict)

	texts = append(texts, logBuf.String())
	if !strings.Contains(logBuf.String(), `"reason":"partner_confirmed"`) || !strings.Contains(logBuf.String(), "http 500") {
		t.Fatal("the outcome log is missing outcomes; the leak check would prove nothing")
	}
	for _, k := range keys {
		for i, s := range texts {
			if strings.Contains(s, k) || strings.Contains(s, k[5:29]) || strings.Contains(s, k[30:]) {
				t.Errorf("text %d of %d contains a key or part of one", i, len(texts))
			}
		}
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name string
		ep   string
	}{
		{"no endpoint", ""},
		{"relative", "/me"},
		{"other scheme", "ftp://api.getpostman.com"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var u *url.URL
			if tc.ep != "" {
				u, _ = url.Parse(tc.ep)
			}
			if v, err := postmanpartner.New(partnerhttp.Options{Endpoints: []*url.URL{u}}); err == nil || v != nil {
				t.Errorf("New = %v, %v; want an error", v, err)
			} else if !strings.HasPrefix(err.Error(), "postman: new verifier:") {
				t.Errorf("error %q does not name the operation", err)
			}
		})
	}
}

func TestNewWantsOneEndpoint(t *testing.T) {
	u, _ := url.Parse(postmanpartner.DefaultEndpoint)
	for _, eps := range [][]*url.URL{nil, {u, u}} {
		if v, err := postmanpartner.New(partnerhttp.Options{Endpoints: eps}); err == nil || v != nil {
			t.Errorf("New with %d endpoints = %v, %v; want an error", len(eps), v, err)
		}
	}
}

// TestEnforcedRateLimit drives the double's own limiter rather than a
// scripted 429: the second request inside the window is refused.
func TestEnforcedRateLimit(t *testing.T) {
	srv := startDouble(t)
	key := postmandouble.NewAPIKey()
	srv.AddKey(key, 8)
	srv.Controls.SetRateLimit(0.001, 1)
	srv.Controls.SetRetryAfter("2")
	v := newVerifier(t, srv.URL, 0, nil)
	check(t, run(v, finding.TokenPostmanAPIKey, postmanFinding(key)),
		want{reason: finding.ReasonPartnerConfirmed, metrics: metrics.Summary{Requests: 1}})
	check(t, run(v, finding.TokenPostmanAPIKey, postmanFinding(key)),
		want{kind: verify.RateLimited, httpStatus: 429, retryMin: 2 * time.Second, retryMax: 2 * time.Second,
			metrics: metrics.Summary{Requests: 1, RateLimitHits: 1}})
	if srv.Controls.RateLimited() != 1 {
		t.Errorf("double sent %d 429s, want 1", srv.Controls.RateLimited())
	}
}
