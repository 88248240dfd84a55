package partnerhttp

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/metrics"
)

// flaky fails its first n round trips with a connection reset and records
// every body it was sent.
type flaky struct {
	mu     sync.Mutex
	n      int
	bodies []string
}

func (f *flaky) RoundTrip(r *http.Request) (*http.Response, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Body != nil {
		b, _ := io.ReadAll(r.Body)
		f.bodies = append(f.bodies, string(b))
	} else {
		f.bodies = append(f.bodies, "")
	}
	if f.n > 0 {
		f.n--
		return nil, &url.Error{Op: "Post", URL: r.URL.String(), Err: syscall.ECONNRESET}
	}
	return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader("ok")), Request: r}, nil
}

func TestNetworkRetries(t *testing.T) {
	ep, _ := url.Parse("http://partner.test")
	tests := []struct {
		name      string
		failures  int
		retries   int
		deadline  time.Duration // 0: none
		wantOK    bool
		wantCalls int
	}{
		{"no retries unless the options allow them", 1, 0, 0, false, 1},
		{"one reset, one retry allowed", 1, 1, 0, true, 2},
		{"two resets, one retry allowed", 2, 1, 0, false, 2},
		{"two resets, two retries allowed", 2, 2, 0, true, 3},
		{"deadline leaves no room for a retry", 1, 2, 300 * time.Millisecond, false, 1},
		{"deadline leaves room", 1, 2, 3 * time.Second, true, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &flaky{n: tt.failures}
			c := httpClient(t, Options{Partner: "postman", Endpoints: []*url.URL{ep}, Transport: f, NetworkRetries: tt.retries})
			rec := metrics.New()
			ctx := metrics.NewContext(context.Background(), rec)
			if tt.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.deadline)
				defer cancel()
			}
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://partner.test/token", strings.NewReader("grant_type=x"))
			resp, err := c.Do(req)
			if (err == nil) != tt.wantOK {
				t.Fatalf("err = %v, want ok %v", err, tt.wantOK)
			}
			if resp != nil {
				resp.Body.Close()
			}
			if len(f.bodies) != tt.wantCalls {
				t.Fatalf("%d attempts, want %d", len(f.bodies), tt.wantCalls)
			}
			for i, b := range f.bodies {
				if b != "grant_type=x" {
					t.Errorf("attempt %d sent body %q, want the original", i, b)
				}
			}
			s := rec.Snapshot()["postman"]
			if s.Requests != tt.wantCalls || s.NetworkErrors != min(tt.failures, tt.wantCalls) {
				t.Errorf("metrics %+v: every attempt is a request, every reset a network error", s)
			}
		})
	}
}

func TestNoRetryAfterAResponse(t *testing.T) {
	ep, _ := url.Parse("http://partner.test")
	calls := 0
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		calls++
		return &http.Response{StatusCode: 503, Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
	})
	c := httpClient(t, Options{Partner: "aws", Endpoints: []*url.URL{ep}, Transport: rt, NetworkRetries: 3})
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, "http://partner.test/", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if calls != 1 {
		t.Fatalf("%d calls: a 503 is an answer for the caller to classify, not a network error to retry", calls)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
