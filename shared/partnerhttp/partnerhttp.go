// Package partnerhttp builds the HTTP client every partner verifier uses:
// built once per function instance, with connect/TLS/overall timeouts, a
// User-Agent naming the project, bounded body reads, requests allowed only to
// the configured endpoints, and one metrics record per request.
package partnerhttp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/metrics"
)

// UserAgent identifies this project to partners.
const UserAgent = "gitlab-secret-detection-partner-token-verification/1.0"

// Defaults of Options.
const (
	DefaultTimeout = 4 * time.Second // one call stays under the 5 s latency alert
	DefaultMaxBody = 64 * 1024
)

// Options configures a partner client.
type Options struct {
	// Partner names the metric dimension of every request.
	Partner string
	// Endpoints are the only base URLs requests may go to.
	Endpoints []*url.URL
	// Timeout bounds one request from dial to the last body byte.
	Timeout time.Duration
	// Transport overrides the network transport (tests inject faults here).
	Transport http.RoundTripper
}

// ErrEndpointNotAllowed is returned for a request to any address but the
// configured endpoints; the request is not sent.
var ErrEndpointNotAllowed = errors.New("partnerhttp: request to an address that is not a configured partner endpoint")

// NewClient returns a client for one partner. Build it once per instance:
// its transport keeps connections alive across invocations.
func NewClient(o Options) *http.Client {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	base := o.Transport
	if base == nil {
		base = NewTransport(o.Timeout)
	}
	return &http.Client{
		Timeout:   o.Timeout,
		Transport: &transport{base: base, partner: o.Partner, allowed: o.Endpoints},
		// A partner redirecting elsewhere is not an answer; never follow it.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// NewTransport returns a transport with bounded dial, TLS and header waits.
func NewTransport(timeout time.Duration) *http.Transport {
	dial := &net.Dialer{Timeout: min(timeout, 2*time.Second), KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dial.DialContext,
		TLSHandshakeTimeout:   min(timeout, 2*time.Second),
		ResponseHeaderTimeout: timeout,
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
}

type transport struct {
	base    http.RoundTripper
	partner string
	allowed []*url.URL
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !t.isAllowed(req.URL) {
		if req.Body != nil { // a RoundTripper closes the body, even on errors
			_ = req.Body.Close()
		}
		return nil, ErrEndpointNotAllowed
	}
	ctx := req.Context()
	attempts := 1 + networkRetries(ctx)
	for i := 0; ; i++ {
		r := req.Clone(ctx)
		if i > 0 && req.Body != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			r.Body = body
		}
		r.Header.Set("User-Agent", UserAgent)
		start := time.Now()
		resp, err := t.base.RoundTrip(r)
		status := 0
		if err == nil {
			status = resp.StatusCode
		}
		metrics.FromContext(ctx).Request(t.partner, status, time.Since(start))
		if info, ok := ctx.Value(callInfoKey{}).(*CallInfo); ok {
			info.lastStatus.Store(int64(status))
		}
		if err == nil || i+1 >= attempts || ctx.Err() != nil || !IsNetworkError(err) ||
			(req.Body != nil && req.GetBody == nil) {
			return resp, err
		}
		// A request that never got an answer is sent again after a short
		// jittered pause, but only while the deadline leaves room for it.
		pause := time.Duration(rand.Int64N(int64(retryBase<<i))) + time.Millisecond
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < pause+minAttemptTime {
			return resp, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(pause):
		}
	}
}

// Network retry timing: the first pause is at most retryBase, doubling
// each time; an attempt is not started with less than minAttemptTime left.
const (
	retryBase      = 100 * time.Millisecond
	minAttemptTime = 500 * time.Millisecond
)

type retriesKey struct{}

// WithNetworkRetries lets partner requests made with ctx be sent again up to
// n times when no response arrived (reset, refused, timeout of one attempt).
// The partner functions set it per verification: the invocation owns the
// time budget, so the retry is theirs to allow; a verifier used on its own
// sends each request once.
func WithNetworkRetries(ctx context.Context, n int) context.Context {
	return context.WithValue(ctx, retriesKey{}, n)
}

func networkRetries(ctx context.Context) int {
	n, _ := ctx.Value(retriesKey{}).(int)
	return max(n, 0)
}

type callInfoKey struct{}

// CallInfo carries what the transport saw during one verification back to
// the caller (for the trace and the log line), since verifiers return only
// verdicts and faults.
type CallInfo struct{ lastStatus atomic.Int64 }

// WithCallInfo returns a context whose partner requests report into info.
func WithCallInfo(ctx context.Context) (context.Context, *CallInfo) {
	info := &CallInfo{}
	return context.WithValue(ctx, callInfoKey{}, info), info
}

// LastStatus is the HTTP status of the last partner response, 0 when none arrived.
func (c *CallInfo) LastStatus() int { return int(c.lastStatus.Load()) }

func (t *transport) isAllowed(u *url.URL) bool {
	for _, a := range t.allowed {
		if strings.EqualFold(a.Scheme, u.Scheme) && strings.EqualFold(a.Host, u.Host) {
			return true
		}
	}
	return false
}

// Endpoint reads a partner base URL from env var name, or def when unset,
// and checks that it is an absolute http(s) URL.
func Endpoint(name, def string) (*url.URL, error) {
	return ParseEndpoint(name, os.Getenv(name), def)
}

// ParseEndpoint checks a partner base URL given as value of the variable
// name (def when value is empty): an absolute http(s) URL, trailing slash
// dropped so that paths join onto it.
func ParseEndpoint(name, value, def string) (*url.URL, error) {
	if value == "" {
		value = def
	}
	u, err := url.Parse(strings.TrimRight(value, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("config: %s: not an absolute http(s) URL", name)
	}
	return u, nil
}

// ReadBody reads at most limit bytes of a response body and closes it; a
// longer body is an error, since no partner answer we classify is that long.
func ReadBody(resp *http.Response, limit int64) ([]byte, error) {
	defer resp.Body.Close()
	if limit <= 0 {
		limit = DefaultMaxBody
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("response body longer than %d bytes", limit)
	}
	return b, nil
}

// RetryAfter returns how long a partner asked us to wait, from Retry-After
// (delta seconds or an HTTP date) or X-RateLimit-Reset (delta seconds or a
// Unix time), 0 when neither header says.
func RetryAfter(h http.Header, now time.Time) time.Duration {
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if secs, err := strconv.ParseInt(v, 10, 64); err == nil && secs >= 0 {
			return time.Duration(secs) * time.Second
		}
		if t, err := http.ParseTime(v); err == nil {
			if d := t.Sub(now); d > 0 {
				return d
			}
			return 0
		}
	}
	if v := strings.TrimSpace(h.Get("X-RateLimit-Reset")); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
			if n > 1_000_000_000 { // a Unix time, not a delta
				if d := time.Unix(n, 0).Sub(now); d > 0 {
					return d
				}
				return 0
			}
			return time.Duration(n) * time.Second
		}
	}
	return 0
}

// IsNetworkError reports whether err means no HTTP response was received:
// timeouts, resets, refused connections, DNS failures, cancelled contexts.
func IsNetworkError(err error) bool {
	if err == nil {
		return false
	}
	var ne net.Error
	var ue *url.Error
	return errors.As(err, &ne) || errors.As(err, &ue) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, io.EOF) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}
