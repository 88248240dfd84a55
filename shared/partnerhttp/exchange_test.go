package partnerhttp

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/metrics"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

var testNow = time.Date(2026, 11, 25, 18, 35, 16, 0, time.UTC)

// TestRetryAfterForms covers every documented wait header besides the
// Retry-After / X-RateLimit-Reset pair of TestRetryAfter.
func TestRetryAfterForms(t *testing.T) {
	date := func(d time.Duration) string { return testNow.Add(d).Format(http.TimeFormat) }
	tests := []struct {
		name   string
		header http.Header
		want   time.Duration
	}{
		{"RateLimit-Reset delta", http.Header{"Ratelimit-Reset": {"42"}}, 42 * time.Second},
		{"RateLimit-Reset epoch", http.Header{"Ratelimit-Reset": {strconv.FormatInt(testNow.Add(90*time.Second).Unix(), 10)}}, 90 * time.Second},
		{"X-RateLimit-Reset fractional epoch", http.Header{"X-Ratelimit-Reset": {strconv.FormatInt(testNow.Unix()+5, 10) + ".5"}}, 5500 * time.Millisecond},
		{"RateLimit-ResetTime HTTP date", http.Header{"Ratelimit-Resettime": {date(2 * time.Minute)}}, 2 * time.Minute},
		{"RateLimit-ResetTime in the past", http.Header{"Ratelimit-Resettime": {date(-time.Minute)}}, 0},
		{"OpenAI seconds", http.Header{"X-Ratelimit-Reset-Requests": {"1s"}}, time.Second},
		{"OpenAI minutes", http.Header{"X-Ratelimit-Reset-Requests": {"6m0s"}}, 6 * time.Minute},
		{"OpenAI milliseconds", http.Header{"X-Ratelimit-Reset-Requests": {"12ms"}}, 12 * time.Millisecond},
		{"OpenAI fractional", http.Header{"X-Ratelimit-Reset-Requests": {"1m30.5s"}}, 90*time.Second + 500*time.Millisecond},
		{"OpenAI longer token reset wins", http.Header{"X-Ratelimit-Reset-Requests": {"1s"}, "X-Ratelimit-Reset-Tokens": {"20s"}}, 20 * time.Second},
		{"OpenAI garbage", http.Header{"X-Ratelimit-Reset-Requests": {"soon"}}, 0},
		{"Anthropic RFC 3339", http.Header{"Anthropic-Ratelimit-Requests-Reset": {testNow.Add(45 * time.Second).Format(time.RFC3339)}}, 45 * time.Second},
		{"Anthropic in the past", http.Header{"Anthropic-Ratelimit-Requests-Reset": {testNow.Add(-time.Hour).Format(time.RFC3339)}}, 0},
		{"X-RateLimit-Reset with requests remaining (GitHub secondary limit)", http.Header{"X-Ratelimit-Remaining": {"4990"}, "X-Ratelimit-Reset": {strconv.FormatInt(testNow.Unix()+3600, 10)}}, 0},
		{"X-RateLimit-Reset with none remaining", http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {strconv.FormatInt(testNow.Unix()+3600, 10)}}, time.Hour},
		{"RateLimit-Reset with requests remaining", http.Header{"Ratelimit-Remaining": {"3"}, "Ratelimit-Reset": {"42"}}, 0},
		{"Postman X-RateLimit-RetryAfter seconds", http.Header{"X-Ratelimit-Retryafter": {"12"}, "X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {strconv.FormatInt(testNow.Unix()+60, 10)}}, 12 * time.Second},
		{"Postman X-RateLimit-RetryAfter garbage falls through to the reset", http.Header{"X-Ratelimit-Retryafter": {"later"}, "X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {strconv.FormatInt(testNow.Unix()+60, 10)}}, time.Minute},
		{"Retry-After wins over the rest", http.Header{"Retry-After": {"3"}, "X-Ratelimit-Reset-Requests": {"6m0s"}}, 3 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := RetryAfter(tc.header, testNow); got != tc.want {
				t.Errorf("RetryAfter = %v, want %v", got, tc.want)
			}
		})
	}
}

// answer is one scripted partner response.
type answer struct {
	status int
	header http.Header
	body   string
	err    error // a transport error instead of a response
}

func scripted(a answer) roundTripFunc {
	return func(r *http.Request) (*http.Response, error) {
		if a.err != nil {
			return nil, a.err
		}
		h := a.header
		if h == nil {
			h = http.Header{}
		}
		return &http.Response{StatusCode: a.status, Header: h, Body: io.NopCloser(strings.NewReader(a.body)), Request: r}, nil
	}
}

// TestClassify lists every row of the generic classification: which
// answers are faults whatever the partner, and which reach the verifier.
func TestClassify(t *testing.T) {
	const secret = "ghp_0123456789abcdefghijklmnopqrstuvwxyz"
	json := http.Header{"Content-Type": {"application/json"}}
	tests := []struct {
		name    string
		a       answer
		kind    verify.FaultKind
		fault   bool
		network bool
		retry   time.Duration
		msg     string
		metrics metrics.Summary
	}{
		{name: "200 JSON is an answer", a: answer{status: 200, header: json, body: `{"ok":true}`}, metrics: metrics.Summary{Requests: 1}},
		{name: "401 JSON is an answer", a: answer{status: 401, header: json, body: `{"error":"x"}`}, metrics: metrics.Summary{Requests: 1}},
		{name: "403 without rate-limit headers is an answer", a: answer{status: 403, header: json, body: `{}`}, metrics: metrics.Summary{Requests: 1}},
		{name: "XML error document is an answer", a: answer{status: 403, header: http.Header{"Content-Type": {"text/xml"}}, body: `<ErrorResponse/>`}, metrics: metrics.Summary{Requests: 1}},
		{name: "empty 200 is an answer", a: answer{status: 200}, metrics: metrics.Summary{Requests: 1}},
		{name: "429 with Retry-After", a: answer{status: 429, header: http.Header{"Retry-After": {"7"}}}, fault: true, kind: verify.RateLimited, retry: 7 * time.Second, msg: "rate limited",
			metrics: metrics.Summary{Requests: 1, RateLimitHits: 1}},
		{name: "429 with an OpenAI reset", a: answer{status: 429, header: http.Header{"X-Ratelimit-Reset-Requests": {"6m0s"}}}, fault: true, kind: verify.RateLimited, retry: 6 * time.Minute,
			metrics: metrics.Summary{Requests: 1, RateLimitHits: 1}},
		{name: "403 with X-RateLimit-Remaining 0 (GitHub primary)", a: answer{status: 403, header: http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {strconv.FormatInt(testNow.Unix()+60, 10)}}, body: `{}`},
			fault: true, kind: verify.RateLimited, retry: time.Minute, metrics: metrics.Summary{Requests: 1, RateLimitHits: 1}},
		{name: "403 with Retry-After (GitHub secondary)", a: answer{status: 403, header: http.Header{"Retry-After": {"30"}}, body: `{}`},
			fault: true, kind: verify.RateLimited, retry: 30 * time.Second, metrics: metrics.Summary{Requests: 1, RateLimitHits: 1}},
		{name: "403 with requests remaining is an answer", a: answer{status: 403, header: http.Header{"X-Ratelimit-Remaining": {"12"}}, body: `{}`}, metrics: metrics.Summary{Requests: 1}},
		{name: "500", a: answer{status: 500}, fault: true, kind: verify.PartnerError, msg: "server error", metrics: metrics.Summary{Requests: 1, Errors: 1}},
		{name: "503 with Retry-After", a: answer{status: 503, header: http.Header{"Retry-After": {"4"}}}, fault: true, kind: verify.PartnerError, retry: 4 * time.Second,
			metrics: metrics.Summary{Requests: 1, Errors: 1}},
		{name: "529 overloaded (Anthropic)", a: answer{status: 529, header: json, body: `{"type":"error"}`}, fault: true, kind: verify.PartnerError, metrics: metrics.Summary{Requests: 1, Errors: 1}},
		{name: "HTML by content type", a: answer{status: 401, header: http.Header{"Content-Type": {"text/html; charset=utf-8"}}, body: `Unauthorized`}, fault: true, kind: verify.PartnerError, msg: "HTML page",
			metrics: metrics.Summary{Requests: 1, Errors: 1}},
		{name: "HTML by its first byte", a: answer{status: 200, header: json, body: "\n  <html><body>portal</body></html>"}, fault: true, kind: verify.PartnerError, msg: "HTML page",
			metrics: metrics.Summary{Requests: 1, Errors: 1}},
		{name: "HTML declared as XML", a: answer{status: 403, header: http.Header{"Content-Type": {"text/xml"}}, body: `<!DOCTYPE html><html></html>`}, fault: true, kind: verify.PartnerError, msg: "HTML page",
			metrics: metrics.Summary{Requests: 1, Errors: 1}},
		{name: "reset", a: answer{err: &url.Error{Op: "Get", URL: "http://partner.test/me", Err: syscall.ECONNRESET}}, fault: true, network: true, kind: verify.PartnerError, msg: "connection reset",
			metrics: metrics.Summary{Requests: 1, Errors: 1, NetworkErrors: 1}},
		{name: "transport error echoing the secret", a: answer{err: errors.New("proxy said: bad header " + secret)}, fault: true, network: true, kind: verify.PartnerError, msg: "network error: proxy said",
			metrics: metrics.Summary{Requests: 1, Errors: 1, NetworkErrors: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(Options{Partner: "github", Endpoints: []*url.URL{mustURL(t, "http://partner.test")}, Transport: scripted(tc.a), Now: func() time.Time { return testNow }})
			if err != nil {
				t.Fatal(err)
			}
			rec := metrics.New()
			a, err := c.Do(metrics.NewContext(context.Background(), rec), Request{Op: "GET /user", Path: "user", Secrets: []string{secret}})
			if !tc.fault {
				if err != nil || a.Status != tc.a.status || string(a.Body) != tc.a.body {
					t.Fatalf("Do = %+v, %v; want the answer itself", a, err)
				}
			} else {
				f, ok := verify.AsFault(err)
				if !ok || a != nil {
					t.Fatalf("Do = %+v, %v; want a *verify.Fault", a, err)
				}
				if f.Kind != tc.kind || f.Network != tc.network || f.RetryAfter != tc.retry || f.Partner != "github" || f.Op != "GET /user" || !strings.Contains(f.Msg, tc.msg) {
					t.Errorf("fault = %+v, want kind %v network %v retry %v msg ~%q", *f, tc.kind, tc.network, tc.retry, tc.msg)
				}
				if f.Network != (f.HTTPStatus == 0) {
					t.Errorf("fault %+v: Network must mean no status", *f)
				}
				if strings.Contains(f.Error(), secret) {
					t.Errorf("fault %q quotes the secret", f.Error())
				}
			}
			got := rec.Snapshot()["github"]
			got.LatencyMS = nil
			if got.Requests != tc.metrics.Requests || got.Errors != tc.metrics.Errors || got.NetworkErrors != tc.metrics.NetworkErrors || got.RateLimitHits != tc.metrics.RateLimitHits {
				t.Errorf("metrics = %+v, want %+v", got, tc.metrics)
			}
		})
	}
}

// TestRequestShape shows what Do sends: the base path kept, the query and
// form as given, the credential only in a header, the project's User-Agent.
func TestRequestShape(t *testing.T) {
	var got *http.Request
	var body string
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		got = r
		if r.Body != nil {
			b, _ := io.ReadAll(r.Body)
			body = string(b)
		}
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(`{}`)), Request: r}, nil
	})
	c, err := New(Options{Partner: "slack", Endpoints: []*url.URL{mustURL(t, "https://other.test"), mustURL(t, "https://slack.test/api")}, Transport: rt})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Do(context.Background(), Request{Op: "POST /auth.test", Method: http.MethodPost, Endpoint: 1, Path: "auth.test",
		Query: url.Values{"pretty": {"1"}}, Form: url.Values{"a": {"b"}}, Header: http.Header{"authorization": {"Bearer xoxb-1"}}})
	if err != nil {
		t.Fatal(err)
	}
	if got.URL.String() != "https://slack.test/api/auth.test?pretty=1" || got.Method != http.MethodPost {
		t.Errorf("request = %s %s", got.Method, got.URL)
	}
	if got.Header.Get("Authorization") != "Bearer xoxb-1" || got.Header.Get("User-Agent") != UserAgent ||
		got.Header.Get("Content-Type") != "application/x-www-form-urlencoded" || body != "a=b" {
		t.Errorf("headers %v body %q", got.Header, body)
	}
	if _, err := c.Do(context.Background(), Request{Op: "x", Endpoint: 2}); err == nil {
		t.Error("a request to an endpoint index that does not exist was sent")
	}
}

// TestExchangeClassify covers the library-driven path: what a library got
// (its error flattened into text) is classified from partnerhttp's record.
func TestExchangeClassify(t *testing.T) {
	ep := mustURL(t, "http://partner.test")
	r := Request{Op: "POST /token"}
	t.Run("nothing sent", func(t *testing.T) {
		c, _ := New(Options{Partner: "gcp", Endpoints: []*url.URL{ep}, Transport: scripted(answer{status: 200})})
		ctx, ex := c.Exchange(context.Background())
		if _, err := c.Classify(ctx, r, ex, errors.New("cannot sign")); !errors.Is(err, ErrNotSent) {
			t.Fatalf("Classify = %v, want ErrNotSent", err)
		}
	})
	t.Run("cancelled before sending", func(t *testing.T) {
		c, _ := New(Options{Partner: "gcp", Endpoints: []*url.URL{ep}, Transport: scripted(answer{status: 200})})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		ctx, ex := c.Exchange(ctx)
		if f, ok := verify.AsFault(func() error { _, err := c.Classify(ctx, r, ex, context.Canceled); return err }()); !ok || !f.Network {
			t.Fatalf("Classify = %v, want a network fault", f)
		}
	})
	t.Run("reset hidden in a library's text", func(t *testing.T) {
		c, _ := New(Options{Partner: "gcp", Endpoints: []*url.URL{ep}, Transport: scripted(answer{err: syscall.ECONNRESET})})
		ctx, ex := c.Exchange(context.Background())
		_, lerr := ex.HTTPClient().Post(ep.String()+"/token", "text/plain", nil)
		_, err := c.Classify(ctx, r, ex, errors.New("oauth2: cannot fetch token: "+lerr.Error()))
		if f, ok := verify.AsFault(err); !ok || !f.Network || f.Msg != "network error: connection reset" {
			t.Fatalf("Classify = %v", err)
		}
	})
	t.Run("library read a body too long", func(t *testing.T) {
		c, _ := New(Options{Partner: "gcp", Endpoints: []*url.URL{ep}, MaxBody: 8, Transport: scripted(answer{status: 400, body: `{"error":"invalid_grant"}`})})
		ctx, ex := c.Exchange(context.Background())
		resp, err := ex.HTTPClient().Post(ep.String()+"/token", "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		_, rerr := io.ReadAll(resp.Body)
		_, err = c.Classify(ctx, r, ex, rerr)
		if f, ok := verify.AsFault(err); !ok || f.HTTPStatus != 400 || !strings.Contains(f.Msg, "too long") {
			t.Fatalf("Classify = %v", err)
		}
	})
	t.Run("request without a context keeps the exchange's", func(t *testing.T) {
		c, _ := New(Options{Partner: "gcp", Endpoints: []*url.URL{ep}, Transport: scripted(answer{status: 400, header: http.Header{"Content-Type": {"application/json"}}, body: `{"error":"invalid_grant"}`})})
		rec := metrics.New()
		ctx, ex := c.Exchange(metrics.NewContext(context.Background(), rec))
		resp, err := ex.HTTPClient().PostForm(ep.String()+"/token", url.Values{"a": {"b"}}) // as x/oauth2/jwt sends
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.ReadAll(resp.Body)
		a, err := c.Classify(ctx, r, ex, errors.New("oauth2: 400"))
		if err != nil || a.Status != 400 || string(a.Body) != `{"error":"invalid_grant"}` {
			t.Fatalf("Classify = %+v, %v; want the 400 answer", a, err)
		}
		if rec.Snapshot()["gcp"].Requests != 1 {
			t.Error("the request was not recorded under the exchange's context")
		}
	})
}

func TestNewValidatesEndpoints(t *testing.T) {
	for name, eps := range map[string][]*url.URL{
		"none":      nil,
		"nil":       {nil},
		"relative":  {mustURL(t, "/api")},
		"ftp":       {mustURL(t, "ftp://partner.test")},
		"user info": {mustURL(t, "https://u:p@partner.test")},
		"query":     {mustURL(t, "https://partner.test/?key=x")},
		"fragment":  {mustURL(t, "https://partner.test/#x")},
	} {
		if _, err := New(Options{Partner: finding.PartnerPostman, Endpoints: eps}); err == nil {
			t.Errorf("New with %s endpoint: want an error", name)
		}
	}
}
