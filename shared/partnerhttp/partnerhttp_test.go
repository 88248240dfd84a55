package partnerhttp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/metrics"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 25, 18, 35, 16, 0, time.UTC)
	date := func(d time.Duration) string { return now.Add(d).Format(http.TimeFormat) }
	epoch := func(d time.Duration) string { return strconv.FormatInt(now.Add(d).Unix(), 10) }
	tests := []struct {
		name  string
		retry string // Retry-After, "" for absent
		reset string // X-RateLimit-Reset, "" for absent
		want  time.Duration
	}{
		{"no headers", "", "", 0},
		{"seconds", "7", "", 7 * time.Second},
		{"zero seconds", "0", "", 0},
		{"seconds with spaces", " 12 ", "", 12 * time.Second},
		{"HTTP date", date(30 * time.Second), "", 30 * time.Second},
		{"HTTP date in the past", date(-time.Minute), "", 0},
		{"negative seconds fall through", "-3", "", 0},
		{"garbage falls through to reset", "soon", "5", 5 * time.Second},
		{"reset as Unix time", "", epoch(45 * time.Second), 45 * time.Second},
		{"reset as Unix time in the past", "", epoch(-45 * time.Second), 0},
		{"reset as delta", "", "60", time.Minute},
		{"reset garbage", "", "later", 0},
		{"Retry-After wins over reset", "3", epoch(time.Hour), 3 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.retry != "" {
				h.Set("Retry-After", tc.retry)
			}
			if tc.reset != "" {
				h.Set("X-RateLimit-Reset", tc.reset)
			}
			if got := RetryAfter(h, now); got != tc.want {
				t.Errorf("RetryAfter = %v, want %v", got, tc.want)
			}
		})
	}
}

type trackedBody struct {
	io.Reader
	closed bool
}

func (b *trackedBody) Close() error { b.closed = true; return nil }

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

func TestBoundedBody(t *testing.T) {
	tests := []struct {
		name    string
		body    io.Reader
		limit   int64
		wantLen int
		wantMsg string // "" for an answer, else a substring of the fault
	}{
		{"under the limit", strings.NewReader(strings.Repeat("a", 10)), 16, 10, ""},
		{"at the limit", strings.NewReader(strings.Repeat("a", 16)), 16, 16, ""},
		{"over the limit", strings.NewReader(strings.Repeat("a", 17)), 16, 0, "read body: response body too long"},
		{"empty", strings.NewReader(""), 16, 0, ""},
		{"default limit fits", strings.NewReader(strings.Repeat("a", DefaultMaxBody)), 0, DefaultMaxBody, ""},
		{"default limit exceeded", strings.NewReader(strings.Repeat("a", DefaultMaxBody+1)), 0, 0, "too long"},
		{"read error", failingReader{}, 16, 0, "read body: network error: connection closed before the whole response"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := &trackedBody{Reader: tc.body}
			rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
				return &http.Response{StatusCode: 200, Header: http.Header{}, Body: body, Request: r}, nil
			})
			c, err := New(Options{Partner: "postman", Endpoints: []*url.URL{mustURL(t, "http://partner.test")}, Transport: rt, MaxBody: tc.limit})
			if err != nil {
				t.Fatal(err)
			}
			rec := metrics.New()
			a, err := c.Do(metrics.NewContext(context.Background(), rec), Request{Op: "GET /me", Path: "me"})
			switch {
			case tc.wantMsg == "" && err != nil:
				t.Fatalf("Do: %v", err)
			case tc.wantMsg == "" && len(a.Body) != tc.wantLen:
				t.Errorf("read %d bytes, want %d", len(a.Body), tc.wantLen)
			case tc.wantMsg != "":
				f, ok := verify.AsFault(err)
				if !ok || f.Kind != verify.PartnerError || f.HTTPStatus != 200 || !strings.Contains(f.Msg, tc.wantMsg) {
					t.Fatalf("Do = %v, %v; want a partner error containing %q", a, err, tc.wantMsg)
				}
				if got := rec.Snapshot()["postman"].Errors; got != 1 {
					t.Errorf("errors = %d, want 1: an unreadable body is an unusable answer", got)
				}
			}
			if !body.closed {
				t.Error("body not closed")
			}
		})
	}
}

// httpClient is the library-facing client of a partner client built from o.
func httpClient(t *testing.T, o Options) *http.Client {
	t.Helper()
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c.HTTPClient()
}

// hitServer counts requests and records the last User-Agent it saw.
type hitServer struct {
	*httptest.Server
	hits atomic.Int64
	mu   sync.Mutex
	ua   string
}

func newHitServer(t *testing.T, h http.HandlerFunc) *hitServer {
	t.Helper()
	s := &hitServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		s.ua = r.Header.Get("User-Agent")
		s.mu.Unlock()
		if h != nil {
			h(w, r)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *hitServer) userAgent() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ua
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestEndpointAllowList(t *testing.T) {
	allowed := newHitServer(t, nil)
	other := newHitServer(t, nil)
	au := mustURL(t, allowed.URL)
	_, otherPort, _ := net.SplitHostPort(mustURL(t, other.URL).Host)
	c := httpClient(t, Options{Partner: "postman", Endpoints: []*url.URL{au}})

	tests := []struct {
		name    string
		url     string
		allowed bool
	}{
		{"configured endpoint", allowed.URL + "/me", true},
		{"configured endpoint, other path", allowed.URL + "/anything?x=1", true},
		{"configured endpoint, upper-case scheme and host", strings.ToUpper(au.Scheme) + "://" + strings.ToUpper(au.Host) + "/me", true},
		{"another server", other.URL + "/me", false},
		{"same host, other port", "http://" + au.Hostname() + ":" + otherPort + "/me", false},
		{"same host and port, other scheme", "https://" + au.Host + "/me", false},
		{"localhost alias", "http://localhost:" + au.Port() + "/me", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := metrics.New()
			ctx := metrics.NewContext(context.Background(), rec)
			before := other.hits.Load()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, tc.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := c.Do(req)
			if tc.allowed {
				if err != nil {
					t.Fatalf("Do: %v", err)
				}
				resp.Body.Close()
				return
			}
			if !errors.Is(err, ErrEndpointNotAllowed) {
				t.Fatalf("Do error = %v, want ErrEndpointNotAllowed", err)
			}
			if got := other.hits.Load() - before; got != 0 {
				t.Errorf("the other server saw %d requests", got)
			}
			if s := rec.Snapshot(); len(s) != 0 {
				t.Errorf("a request that was not sent was recorded: %v", s)
			}
		})
	}
}

func TestDisallowedRequestClosesBody(t *testing.T) {
	c := httpClient(t, Options{Partner: "gcp", Endpoints: []*url.URL{mustURL(t, "http://127.0.0.1:1")}})
	body := &trackedBody{Reader: strings.NewReader("grant_type=x")}
	req, err := http.NewRequest(http.MethodPost, "http://127.0.0.2:1/token", body)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(req); !errors.Is(err, ErrEndpointNotAllowed) {
		t.Fatalf("Do error = %v", err)
	}
	if !body.closed {
		t.Error("request body left open")
	}
}

func TestRedirectNotFollowed(t *testing.T) {
	canary := newHitServer(t, nil)
	for _, allowCanary := range []bool{false, true} {
		t.Run(fmt.Sprintf("canary allowed=%v", allowCanary), func(t *testing.T) {
			srv := newHitServer(t, func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, canary.URL+"/me", http.StatusFound)
			})
			eps := []*url.URL{mustURL(t, srv.URL)}
			if allowCanary {
				eps = append(eps, mustURL(t, canary.URL))
			}
			before := canary.hits.Load()
			resp, err := httpClient(t, Options{Partner: "postman", Endpoints: eps}).Get(srv.URL + "/me")
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusFound {
				t.Errorf("status = %d, want the 302 itself", resp.StatusCode)
			}
			if got := canary.hits.Load() - before; got != 0 {
				t.Errorf("redirect target saw %d requests", got)
			}
		})
	}
}

func TestUserAgent(t *testing.T) {
	srv := newHitServer(t, nil)
	c := httpClient(t, Options{Partner: "aws", Endpoints: []*url.URL{mustURL(t, srv.URL)}})
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	req.Header.Set("User-Agent", "curl/8")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := srv.userAgent(); got != UserAgent {
		t.Errorf("User-Agent = %q, want %q", got, UserAgent)
	}
	if req.Header.Get("User-Agent") != "curl/8" {
		t.Error("the caller's request was modified; RoundTrip must work on a clone")
	}
	if !strings.Contains(UserAgent, "partner-token-verification") {
		t.Errorf("UserAgent %q does not name the project", UserAgent)
	}
}

// recordingTransport stands in for Options.Transport.
type recordingTransport struct {
	mu   sync.Mutex
	seen []*http.Request
}

func (rt *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rt.mu.Lock()
	rt.seen = append(rt.seen, req)
	rt.mu.Unlock()
	return &http.Response{StatusCode: 204, Body: io.NopCloser(strings.NewReader("")), Header: http.Header{}, Request: req}, nil
}

func TestCustomTransportIsWrapped(t *testing.T) {
	rt := &recordingTransport{}
	c := httpClient(t, Options{Partner: "gcp", Endpoints: []*url.URL{mustURL(t, "https://oauth2.example.test")}, Transport: rt})
	resp, err := c.Get("https://oauth2.example.test/token")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if _, err := c.Get("https://evil.example.test/token"); !errors.Is(err, ErrEndpointNotAllowed) {
		t.Errorf("Get to another host = %v", err)
	}
	if len(rt.seen) != 1 {
		t.Fatalf("transport saw %d requests, want 1", len(rt.seen))
	}
	if ua := rt.seen[0].Header.Get("User-Agent"); ua != UserAgent {
		t.Errorf("transport saw User-Agent %q, want %q", ua, UserAgent)
	}
	if c.Timeout != DefaultTimeout {
		t.Errorf("Timeout = %v, want default %v", c.Timeout, DefaultTimeout)
	}
}

func TestMetricsPerRequest(t *testing.T) {
	srv := newHitServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/hang":
			<-r.Context().Done()
			return
		case "/reset":
			hj, _ := w.(http.Hijacker)
			conn, _, _ := hj.Hijack()
			if tc, ok := conn.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
			conn.Close()
			return
		}
		code, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/"))
		w.WriteHeader(code)
	})
	refused := httptest.NewServer(http.NotFoundHandler())
	refusedURL := refused.URL
	refused.Close()

	tests := []struct {
		name       string
		url        string
		wantErr    bool
		wantStatus int             // CallInfo.LastStatus, 0 when no response arrived
		want       metrics.Summary // LatencyMS compared by length only
	}{
		{"200", srv.URL + "/200", false, 200, metrics.Summary{Requests: 1}},
		{"401 is an answer", srv.URL + "/401", false, 401, metrics.Summary{Requests: 1}},
		{"429", srv.URL + "/429", false, 429, metrics.Summary{Requests: 1, RateLimitHits: 1}},
		{"500", srv.URL + "/500", false, 500, metrics.Summary{Requests: 1, Errors: 1}},
		{"503", srv.URL + "/503", false, 503, metrics.Summary{Requests: 1, Errors: 1}},
		{"reset", srv.URL + "/reset", true, 0, metrics.Summary{Requests: 1, Errors: 1, NetworkErrors: 1}},
		{"timeout", srv.URL + "/hang", true, 0, metrics.Summary{Requests: 1, Errors: 1, NetworkErrors: 1}},
		{"connection refused", refusedURL + "/200", true, 0, metrics.Summary{Requests: 1, Errors: 1, NetworkErrors: 1}},
	}
	c := httpClient(t, Options{Partner: "postman", Timeout: 300 * time.Millisecond,
		Endpoints: []*url.URL{mustURL(t, srv.URL), mustURL(t, refusedURL)}})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := metrics.New()
			ctx, info := WithCallInfo(metrics.NewContext(context.Background(), rec))
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, tc.url, nil)
			resp, err := c.Do(req)
			if err == nil {
				resp.Body.Close()
			}
			if (err != nil) != tc.wantErr {
				t.Fatalf("Do error = %v, want error %v", err, tc.wantErr)
			}
			if got := info.LastStatus(); got != tc.wantStatus {
				t.Errorf("CallInfo.LastStatus = %d, want %d", got, tc.wantStatus)
			}
			s := rec.Snapshot()
			if len(s) != 1 {
				t.Fatalf("Snapshot = %v, want the postman partner only", s)
			}
			got := s["postman"]
			if len(got.LatencyMS) != 1 {
				t.Errorf("latencies = %v, want one", got.LatencyMS)
			}
			got.LatencyMS = nil
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("Summary = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestEndpoint(t *testing.T) {
	const name = "PARTNER_ENDPOINT_TEST_X"
	const def = "https://api.getpostman.com"
	tests := []struct {
		name    string
		env     string
		want    string
		wantErr bool
	}{
		{"unset uses default", "", def, false},
		{"set", "http://127.0.0.1:8080", "http://127.0.0.1:8080", false},
		{"trailing slash trimmed", "http://127.0.0.1:8080/", "http://127.0.0.1:8080", false},
		{"path kept", "https://proxy.example.test/postman/", "https://proxy.example.test/postman", false},
		{"no scheme", "api.getpostman.com", "", true},
		{"other scheme", "ftp://api.getpostman.com", "", true},
		{"no host", "http://", "", true},
		{"unparsable", "http://[::1", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := ParseEndpoint(name, tc.env, def)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("Endpoint = %v, want an error", u)
				}
				if !strings.Contains(err.Error(), name) {
					t.Errorf("error %q does not name the variable", err)
				}
				if strings.Contains(err.Error(), tc.env) {
					t.Errorf("error %q quotes the value", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Endpoint: %v", err)
			}
			if u.String() != tc.want {
				t.Errorf("Endpoint = %s, want %s", u, tc.want)
			}
		})
	}
}

func TestDescribeNetErr(t *testing.T) {
	const secret = "PMAK-0123456789abcdef01234567-0123456789abcdef0123456789abcdef01"
	tests := []struct {
		errs []error
		want string
	}{
		{nil, "network error: no response"},
		{[]error{ErrEndpointNotAllowed}, "request refused: not a configured partner endpoint"},
		{[]error{context.DeadlineExceeded}, "timeout"},
		{[]error{errors.New("net/http: request canceled"), &url.Error{Op: "Get", URL: "http://x", Err: context.DeadlineExceeded}}, "timeout"},
		{[]error{context.Canceled}, "network error: request cancelled"},
		{[]error{&url.Error{Op: "Post", URL: "http://x", Err: syscall.ECONNRESET}}, "network error: connection reset"},
		{[]error{&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}}, "network error: connection refused"},
		{[]error{fmt.Errorf("read: %w", io.ErrUnexpectedEOF)}, "network error: connection closed before the whole response"},
		{[]error{&net.DNSError{Err: "no such host", Name: "x"}}, "network error: DNS lookup failed"},
		{[]error{fmt.Errorf("wrap: %w", errors.New("header echo "+secret))}, "network error: header echo " + finding.Redact(secret)},
	}
	for _, tc := range tests {
		if got := describeNetErr([]string{secret}, tc.errs...); got != tc.want {
			t.Errorf("describeNetErr(%v) = %q, want %q", tc.errs, got, tc.want)
		}
	}
}

func TestNewTransportBounds(t *testing.T) {
	tr := NewTransport(10 * time.Second)
	if tr.TLSHandshakeTimeout != 2*time.Second || tr.ResponseHeaderTimeout != 10*time.Second {
		t.Errorf("TLS %v, header %v", tr.TLSHandshakeTimeout, tr.ResponseHeaderTimeout)
	}
	if tr := NewTransport(time.Second); tr.TLSHandshakeTimeout != time.Second {
		t.Errorf("TLS timeout %v exceeds the request timeout", tr.TLSHandshakeTimeout)
	}
}

func TestNewSingle(t *testing.T) {
	u, _ := url.Parse("https://api.example.test")
	for _, tc := range []struct {
		name      string
		endpoints []*url.URL
		want      string
	}{
		{"none", nil, "example: new verifier: want 1 endpoint (api), got 0"},
		{"two", []*url.URL{u, u}, "example: new verifier: want 1 endpoint (api), got 2"},
		{"bad", []*url.URL{{Scheme: "ftp", Host: "x"}}, "example: new verifier: endpoint 0: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewSingle(Options{Endpoints: tc.endpoints}, "example", "example: new verifier", "api")
			if c != nil || err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("NewSingle = %v, %v; want no client and an error starting %q", c, err, tc.want)
			}
		})
	}
	c, err := NewSingle(Options{Endpoints: []*url.URL{u}}, "example", "example: new verifier", "api")
	if err != nil || c.o.Partner != "example" {
		t.Fatalf("NewSingle = %+v, %v; want a client for partner example", c, err)
	}
}
