// Package partnerhttp is the partner exchange, written once: it builds a
// request from a configured base URL only, sends it with the project's
// User-Agent, timeouts and optional network retries, reads a bounded body,
// records metrics and the last status, and classifies every answer that
// proves nothing about a credential (no response, 429, documented
// rate-limit answers, 5xx, HTML pages, unreadable bodies) into a
// *verify.Fault. A verifier says which request to make and maps the
// partner's own answers to a verdict.
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
	"strings"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/metrics"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

// UserAgent identifies this project to partners (never the scanned project).
const UserAgent = "gitlab-secret-detection-partner-token-verification/1.0"

// Defaults of Options.
const (
	DefaultTimeout = 4 * time.Second // one call stays under the 5 s latency alert
	DefaultMaxBody = 64 * 1024       // no partner answer we classify is longer
)

// Options configures the client of one partner.
type Options struct {
	// Partner names the metric dimension and the faults of every request.
	Partner finding.Partner
	// Endpoints are the only base URLs requests go to, in the order the
	// partner's verifier documents (Request.Endpoint indexes them).
	Endpoints []*url.URL
	// Timeout bounds one request from dial to the last body byte; 0 means DefaultTimeout.
	Timeout time.Duration
	// Transport overrides the network transport (tests inject faults here).
	Transport http.RoundTripper
	// NetworkRetries is how often a request that got no response at all
	// (reset, refused, one attempt's timeout) is sent again while the
	// context's deadline leaves room; 0 sends each request once.
	NetworkRetries int
	// MaxBody bounds a response body; 0 means DefaultMaxBody.
	MaxBody int64
	// Now is the clock Retry-After dates are read against; nil means time.Now.
	Now func() time.Time
}

// Client sends one partner's requests. Build it once per function instance:
// its transport keeps connections alive across invocations.
type Client struct {
	o  Options
	hc *http.Client
}

// ErrEndpointNotAllowed is returned for a request to any address but the
// configured endpoints; the request is not sent.
var ErrEndpointNotAllowed = errors.New("partnerhttp: request to an address that is not a configured partner endpoint")

// ErrNotSent is what Classify returns when a library gave up before sending
// anything (it could not build or sign the request): not a partner answer.
var ErrNotSent = errors.New("partnerhttp: no request was sent")

// New checks the endpoints (absolute http(s) URLs with no user info, query
// or fragment, which would ride along on every request) and builds the client.
func New(o Options) (*Client, error) {
	if len(o.Endpoints) == 0 {
		return nil, errors.New("no endpoint configured")
	}
	for i, u := range o.Endpoints {
		if err := checkBase(u); err != nil {
			return nil, fmt.Errorf("endpoint %d: %w", i, err)
		}
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxBody <= 0 {
		o.MaxBody = DefaultMaxBody
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	o.NetworkRetries = max(o.NetworkRetries, 0)
	base := o.Transport
	if base == nil {
		base = NewTransport(o.Timeout)
	}
	c := &Client{o: o}
	c.hc = &http.Client{
		Timeout:   o.Timeout,
		Transport: &transport{base: base, c: c},
		// A partner redirecting elsewhere is not an answer; never follow it.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c, nil
}

// NewSingle is New for a partner reached at one base URL, as most are: it
// names partner in o and refuses any other number of endpoints. Its
// errors start with prefix ("gitlab: new verifier") and name the one
// endpoint expected ("api").
func NewSingle(o Options, partner finding.Partner, prefix, endpoint string) (*Client, error) {
	o.Partner = partner
	if len(o.Endpoints) != 1 {
		return nil, fmt.Errorf("%s: want 1 endpoint (%s), got %d", prefix, endpoint, len(o.Endpoints))
	}
	c, err := New(o)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", prefix, err)
	}
	return c, nil
}

func checkBase(u *url.URL) error {
	switch {
	case u == nil:
		return errors.New("not set")
	case (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return errors.New("not an absolute http(s) URL")
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return errors.New("must not carry user info, a query or a fragment")
	}
	return nil
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

// HTTPClient is the client for verifiers driven by a library (the AWS SDK,
// x/oauth2): the same transport, allow-list, User-Agent, bounded bodies,
// retries and recording as Do. Pair it with Exchange and Classify.
func (c *Client) HTTPClient() *http.Client { return c.hc }

// Request is one call a verifier asks for. Credentials go only in Header
// (or Form where the partner documents a form body), never in Path or Query.
type Request struct {
	// Op names the call in faults, e.g. "GET /me".
	Op string
	// Method is the HTTP method; GET when empty.
	Method string
	// Endpoint indexes Options.Endpoints.
	Endpoint int
	// Path is joined to the endpoint's path (base.JoinPath), keeping a base path such as /api.
	Path string
	// Query is the query string; never a credential.
	Query url.Values
	// Header holds the credential and any partner-specific header.
	Header http.Header
	// Form, when set, is sent as an application/x-www-form-urlencoded body.
	Form url.Values
	// Secrets are scrubbed from any text this package writes about the call.
	Secrets []string
}

// Answer is a partner response that no generic rule classified as a fault:
// the verifier maps it to a verdict, or to Unusable.
type Answer struct {
	Status int         // the HTTP status
	Header http.Header // the response headers
	Body   []byte      // the whole body, at most Options.MaxBody bytes
}

// Do sends r and returns the answer for the verifier to judge, or a
// *verify.Fault when the exchange proves nothing by itself.
func (c *Client) Do(ctx context.Context, r Request) (*Answer, error) {
	req, err := c.newRequest(ctx, r)
	if err != nil {
		return nil, c.fault(verify.PartnerError, r, 0, "cannot build request")
	}
	ctx, ex := c.Exchange(ctx)
	resp, err := c.hc.Do(req.WithContext(ctx))
	if err == nil {
		// The transport's bounded reader records the body and any read error.
		var buf [4096]byte
		for {
			if _, rerr := resp.Body.Read(buf[:]); rerr != nil {
				break
			}
		}
		_ = resp.Body.Close()
	}
	return c.Classify(ctx, r, ex, err)
}

func (c *Client) newRequest(ctx context.Context, r Request) (*http.Request, error) {
	if r.Endpoint < 0 || r.Endpoint >= len(c.o.Endpoints) {
		return nil, errors.New("no such endpoint")
	}
	u := c.o.Endpoints[r.Endpoint].JoinPath(r.Path)
	u.RawQuery = r.Query.Encode()
	method := r.Method
	if method == "" {
		method = http.MethodGet
	}
	var body io.Reader // a nil *strings.Reader would not be a nil io.Reader
	if r.Form != nil {
		body = strings.NewReader(r.Form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, err
	}
	for k, vs := range r.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if r.Form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	return req, nil
}

// Exchange returns a context under which requests sent through HTTPClient
// record what happened on the wire (the transport's own error, status,
// headers, the body as read), which libraries flatten into strings; pass
// the record to Classify. Its HTTPClient also puts ctx back on requests a
// library sends without one (x/oauth2/jwt), keeping deadline and metrics.
func (c *Client) Exchange(ctx context.Context) (context.Context, *Exchange) {
	ex := &Exchange{c: c}
	ctx = context.WithValue(ctx, exchangeKey{}, ex)
	ex.ctx = ctx
	return ctx, ex
}

// Exchange is the record of one library-driven call (see Client.Exchange).
type Exchange struct {
	c       *Client
	ctx     context.Context
	sent    bool
	err     error // the transport's error when no response arrived
	status  int
	header  http.Header
	body    []byte
	bodyErr error
}

// HTTPClient sends every request with the exchange's context.
func (e *Exchange) HTTPClient() *http.Client {
	return &http.Client{
		Transport:     bindContext{ex: e},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// bindContext sends through the partner client with the exchange's
// context, and keeps the client's own error (which, unlike the transport's,
// says when the client's timeout fired) before a library flattens it.
type bindContext struct{ ex *Exchange }

func (b bindContext) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := b.ex.c.hc.Do(r.WithContext(b.ex.ctx))
	if err != nil && b.ex.status == 0 {
		b.ex.err = err
	}
	return resp, err
}

type exchangeKey struct{}

// Classify turns what an exchange recorded, and the error the caller (or
// its library) got, into the answer to judge or a *verify.Fault: no
// response, 429, a documented rate-limit 403, 5xx, an unreadable or
// too-long body and HTML pages are faults, whatever the library made of
// them. It returns ErrNotSent when nothing was sent.
func (c *Client) Classify(ctx context.Context, r Request, ex *Exchange, err error) (*Answer, error) {
	if !ex.sent && ctx.Err() == nil {
		return nil, ErrNotSent
	}
	if ex.status == 0 {
		// The transport's own error names the cause precisely (a library
		// flattens it into text); the caller's may add that it was a timeout.
		f := c.fault(verify.PartnerError, r, 0, describeNetErr(r.Secrets, ex.err, err, ctx.Err()))
		f.Network = true
		return nil, f
	}
	a := &Answer{Status: ex.status, Header: ex.header, Body: ex.body}
	now := c.o.Now()
	switch {
	case a.Status == http.StatusTooManyRequests:
		// The transport counted the 429 as a rate-limit hit.
		f := c.fault(verify.RateLimited, r, a.Status, "rate limited")
		f.RetryAfter = RetryAfter(a.Header, now)
		return nil, f
	case a.Status == http.StatusForbidden && isRateLimit403(a.Header):
		return nil, c.RateLimited(ctx, r, a, "rate limited (403 with rate-limit headers)")
	case a.Status >= 500:
		// The transport counted the 5xx as an error.
		f := c.fault(verify.PartnerError, r, a.Status, "server error")
		f.RetryAfter = RetryAfter(a.Header, now)
		return nil, f
	case ex.bodyErr != nil:
		return nil, c.Unusable(ctx, r, a, "read body: "+describeNetErr(r.Secrets, ex.bodyErr))
	case IsHTML(a.Header, a.Body):
		return nil, c.Unusable(ctx, r, a, "an HTML page, not the partner's answer (a proxy's?)")
	}
	return a, nil
}

// isRateLimit403 spots the documented rate-limit forms of a 403 (GitHub's
// primary limit with X-RateLimit-Remaining: 0, its secondary limits with
// Retry-After).
func isRateLimit403(h http.Header) bool {
	return strings.TrimSpace(h.Get("X-RateLimit-Remaining")) == "0" || strings.TrimSpace(h.Get("Retry-After")) != ""
}

// Unusable is the fault for an answer the verifier cannot map to a verdict:
// it is counted as a partner error and is never inactive.
func (c *Client) Unusable(ctx context.Context, r Request, a *Answer, msg string) *verify.Fault {
	metrics.FromContext(ctx).Unusable(string(c.o.Partner))
	return c.fault(verify.PartnerError, r, status(a), msg)
}

// RateLimited is the fault for a rate limit the partner documents inside
// an answer the status alone does not show (Slack's "ratelimited", STS's
// 400 Throttling); it is counted as a rate-limit hit.
func (c *Client) RateLimited(ctx context.Context, r Request, a *Answer, msg string) *verify.Fault {
	metrics.FromContext(ctx).RateLimitHit(string(c.o.Partner))
	f := c.fault(verify.RateLimited, r, status(a), msg)
	if a != nil {
		f.RetryAfter = RetryAfter(a.Header, c.o.Now())
	}
	return f
}

func status(a *Answer) int {
	if a == nil {
		return 0
	}
	return a.Status
}

func (c *Client) fault(kind verify.FaultKind, r Request, status int, msg string) *verify.Fault {
	return &verify.Fault{Kind: kind, Partner: c.o.Partner, Op: r.Op, HTTPStatus: status, Msg: finding.Scrub(msg, r.Secrets...)}
}

// transport enforces the allow-list, sets the User-Agent, retries requests
// that got no response, bounds and records the body, and reports metrics.
type transport struct {
	base http.RoundTripper
	c    *Client
}

// Network retry timing: the first pause is at most retryBase, doubling
// each time; an attempt is not started with less than minAttemptTime left.
const (
	retryBase      = 100 * time.Millisecond
	minAttemptTime = 500 * time.Millisecond
)

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	ex, _ := ctx.Value(exchangeKey{}).(*Exchange)
	if ex != nil {
		ex.sent = true
	}
	if !t.isAllowed(req.URL) {
		if req.Body != nil { // a RoundTripper closes the body, even on errors
			_ = req.Body.Close()
		}
		if ex != nil {
			ex.err = ErrEndpointNotAllowed
		}
		return nil, ErrEndpointNotAllowed
	}
	partner := string(t.c.o.Partner)
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
		metrics.FromContext(ctx).Request(partner, status, time.Since(start))
		if info, ok := ctx.Value(callInfoKey{}).(*CallInfo); ok {
			info.lastStatus.Store(int64(status))
		}
		if err == nil {
			if ex != nil {
				ex.status, ex.header, ex.body, ex.bodyErr, ex.err = resp.StatusCode, resp.Header, nil, nil, nil
			}
			resp.Body = &boundedBody{rc: resp.Body, left: t.c.o.MaxBody, ex: ex}
			return resp, nil
		}
		if ex != nil {
			ex.err = err
		}
		if i >= t.c.o.NetworkRetries || ctx.Err() != nil || (req.Body != nil && req.GetBody == nil) {
			return nil, err
		}
		// A request that never got an answer is sent again after a short
		// jittered pause, but only while the deadline leaves room for it.
		pause := time.Duration(rand.Int64N(int64(retryBase<<i))) + time.Millisecond
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < pause+minAttemptTime {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(pause):
		}
	}
}

func (t *transport) isAllowed(u *url.URL) bool {
	for _, a := range t.c.o.Endpoints {
		if strings.EqualFold(a.Scheme, u.Scheme) && strings.EqualFold(a.Host, u.Host) {
			return true
		}
	}
	return false
}

// ParseEndpoint checks a partner base URL given as value of the variable
// name (def when value is empty): an absolute http(s) URL, trailing slash
// dropped so that paths join onto it.
func ParseEndpoint(name, value, def string) (*url.URL, error) {
	if value == "" {
		value = def
	}
	u, err := url.Parse(strings.TrimRight(value, "/"))
	if err != nil {
		return nil, fmt.Errorf("config: %s: not an absolute http(s) URL", name)
	}
	if err := checkBase(u); err != nil {
		return nil, fmt.Errorf("config: %s: %v", name, err)
	}
	return u, nil
}

// errBodyTooLong is what reading past Options.MaxBody returns.
var errBodyTooLong = errors.New("response body too long")

// boundedBody is the one body reader: it stops a partner (or something in
// its place) from making the function buffer an unbounded body, and keeps
// the bytes and the read error for the exchange's record.
type boundedBody struct {
	rc   io.ReadCloser
	left int64
	ex   *Exchange
}

func (b *boundedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// Reading one byte more tells a body of exactly the limit from a longer one.
		var one [1]byte
		n, err := b.rc.Read(one[:])
		if n > 0 {
			return 0, b.record(errBodyTooLong)
		}
		return 0, b.record(err)
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	if b.ex != nil {
		b.ex.body = append(b.ex.body, p[:n]...)
	}
	return n, b.record(err)
}

func (b *boundedBody) record(err error) error {
	if err != nil && !errors.Is(err, io.EOF) && b.ex != nil && b.ex.bodyErr == nil {
		b.ex.bodyErr = err
	}
	return err
}

func (b *boundedBody) Close() error { return b.rc.Close() }

// URL is the address of path under endpoint i, for libraries that take a
// URL rather than a Request (x/oauth2's TokenURL); "" for no such endpoint.
func (c *Client) URL(i int, path string) string {
	if i < 0 || i >= len(c.o.Endpoints) {
		return ""
	}
	return c.o.Endpoints[i].JoinPath(path).String()
}
