// Package partnertest is the common core of the partner doubles (one
// subpackage per partner: stsdouble, googledouble, postmandouble; all three
// together in sandbox): real HTTP servers that speak each partner's
// protocol (SigV4-signed STS, Google OAuth2/JWT and API-key endpoints, the
// Postman API) closely enough that the real clients cannot tell, plus knobs to inject the faults a partner can produce. Tests, the
// local run (make run), cmd/partner-sandbox and the benchmarks use them.
package partnertest

import (
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Fault is one misbehaviour a double can show instead of its normal answer.
type Fault int

// The faults every double can inject.
const (
	FaultNone      Fault = iota
	Fault500             // 500 with a partner-shaped error body
	Fault502             // 502 with an HTML body, as a load balancer sends
	Fault503             // 503 Service Unavailable
	Fault504             // 504 Gateway Timeout
	Fault429             // 429 with Retry-After (Controls.RetryAfter)
	FaultReset           // the connection is closed without an answer
	FaultGarbled         // 200 with a body that is not the partner's format
	FaultEmpty           // 200 with an empty body
	FaultTruncated       // 200 whose body stops half-way (Content-Length lies)
	FaultHTML401         // 401 HTML page, as an auth proxy sends
	FaultHTML403         // 403 HTML page, as a WAF or proxy sends
	FaultHang            // no answer until the client gives up
)

var faultNames = map[Fault]string{
	FaultNone: "none", Fault500: "500", Fault502: "502", Fault503: "503", Fault504: "504",
	Fault429: "429", FaultReset: "reset", FaultGarbled: "garbled", FaultEmpty: "empty",
	FaultTruncated: "truncated", FaultHTML401: "html401", FaultHTML403: "html403", FaultHang: "hang",
}

// String is the fault's name.
func (f Fault) String() string { return faultNames[f] }

// ParseFault reads a fault name as printed by String (for sandbox flags).
func ParseFault(s string) (Fault, bool) {
	for f, n := range faultNames {
		if n == s {
			return f, true
		}
	}
	return FaultNone, false
}

// Controls are the knobs of one double. All methods are safe for concurrent use.
type Controls struct {
	mu        sync.Mutex
	script    []Fault
	latency   time.Duration
	jitter    time.Duration
	errRate   float64
	errFault  Fault
	retryHdr  string
	limiter   *rate.Limiter
	requests  atomic.Int64
	limited   atomic.Int64
	perKey    sync.Map // string -> *atomic.Int64
	hangUntil chan struct{}
	onRequest func(*http.Request)
}

func newControls() *Controls {
	return &Controls{retryHdr: "1", hangUntil: make(chan struct{})}
}

// Push queues faults for the next requests, one each, in order.
func (c *Controls) Push(faults ...Fault) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.script = append(c.script, faults...)
}

// SetLatency delays every answer by d ± jitter (uniform).
func (c *Controls) SetLatency(d, jitter time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.latency, c.jitter = d, jitter
}

// SetErrorRate makes a fraction p of requests (0..1) fail with fault f.
func (c *Controls) SetErrorRate(p float64, f Fault) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.errRate, c.errFault = p, f
}

// SetRetryAfter sets the Retry-After header value sent with 429s ("" for none).
func (c *Controls) SetRetryAfter(v string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.retryHdr = v
}

// SetRateLimit makes the double enforce perSecond requests per second (with
// burst), answering 429 above it as the partner would; 0 removes the limit.
func (c *Controls) SetRateLimit(perSecond float64, burst int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if perSecond <= 0 {
		c.limiter = nil
		return
	}
	c.limiter = rate.NewLimiter(rate.Limit(perSecond), max(burst, 1))
}

// OnRequest calls f with every request as it arrives, before the double
// answers (nil removes it). The chaos suite kills the calling function
// from it: a partner call that never completes.
func (c *Controls) OnRequest(f func(*http.Request)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.onRequest = f
}

// Requests is how many requests reached the double.
func (c *Controls) Requests() int64 { return c.requests.Load() }

// RateLimited is how many 429s the double sent (scripted or enforced).
func (c *Controls) RateLimited() int64 { return c.limited.Load() }

// CountFor is how many requests the double saw for one credential key (the
// double decides what the key is: an access key id, an API key, ...).
func (c *Controls) CountFor(key string) int64 {
	if v, ok := c.perKey.Load(key); ok {
		return v.(*atomic.Int64).Load()
	}
	return 0
}

// CountKey records a request for a credential key; doubles call it.
func (c *Controls) CountKey(key string) {
	v, _ := c.perKey.LoadOrStore(key, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

// ResetCounters zeroes the counters and keeps the knobs, between benchmark runs.
func (c *Controls) ResetCounters() {
	c.requests.Store(0)
	c.limited.Store(0)
	c.perKey.Clear()
}

// Reset clears scripted faults, error rate, latency, limit and counters.
func (c *Controls) Reset() {
	c.mu.Lock()
	c.script, c.latency, c.jitter, c.errRate, c.errFault, c.retryHdr, c.limiter, c.onRequest = nil, 0, 0, 0, FaultNone, "1", nil, nil
	c.mu.Unlock()
	c.requests.Store(0)
	c.limited.Store(0)
	c.perKey.Clear()
}

// next decides the fault and the delay of one request.
func (c *Controls) next() (Fault, time.Duration, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := FaultNone
	switch {
	case len(c.script) > 0:
		f, c.script = c.script[0], c.script[1:]
	case c.limiter != nil && !c.limiter.Allow():
		f = Fault429
	case c.errRate > 0 && rand.Float64() < c.errRate:
		f = c.errFault
	}
	d := c.latency
	if c.jitter > 0 {
		d += time.Duration(rand.Int64N(int64(2*c.jitter+1))) - c.jitter
	}
	return f, max(d, 0), c.retryHdr
}

// ErrorWriter writes a fault in the partner's own error format, for the
// faults whose body is partner-shaped (500, 503, 429).
type ErrorWriter func(w http.ResponseWriter, status int, code, msg string)

// wrap applies latency and faults in front of a double's real handler.
func (c *Controls) wrap(h http.Handler, partnerError ErrorWriter) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.requests.Add(1)
		c.mu.Lock()
		hook := c.onRequest
		c.mu.Unlock()
		if hook != nil {
			hook(r)
		}
		f, d, retryAfter := c.next()
		if d > 0 {
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		}
		switch f {
		case FaultNone:
			h.ServeHTTP(w, r)
		case Fault500:
			partnerError(w, http.StatusInternalServerError, "InternalError", "internal error")
		case Fault503:
			partnerError(w, http.StatusServiceUnavailable, "ServiceUnavailable", "service unavailable")
		case Fault429:
			c.limited.Add(1)
			if retryAfter != "" {
				w.Header().Set("Retry-After", retryAfter)
			}
			partnerError(w, http.StatusTooManyRequests, "TooManyRequests", "rate limit exceeded")
		case Fault502, Fault504:
			status := map[Fault]int{Fault502: 502, Fault504: 504}[f]
			writeHTML(w, status, "Bad Gateway")
		case FaultHTML401:
			writeHTML(w, http.StatusUnauthorized, "Sign in to continue")
		case FaultHTML403:
			writeHTML(w, http.StatusForbidden, "Request blocked")
		case FaultGarbled:
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"unexpected":`))
		case FaultEmpty:
			w.WriteHeader(http.StatusOK)
		case FaultTruncated:
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", "4096")
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte(`{"user":{"id":`))
			if fl, ok := w.(http.Flusher); ok {
				fl.Flush() // the status line and half a body reach the client first
			}
			hijackClose(w)
		case FaultReset:
			hijackClose(w)
		case FaultHang:
			select {
			case <-r.Context().Done():
			case <-c.hangUntil:
			}
		}
	})
}

func writeHTML(w http.ResponseWriter, status int, title string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte("<!DOCTYPE html><html><head><title>" + strconv.Itoa(status) + " " + title +
		"</title></head><body><h1>" + title + "</h1></body></html>"))
}

// hijackClose drops the connection with a TCP reset, as a crashed peer or a
// middlebox does. It sends nothing itself: flushing here would put a 200
// status line on the wire before the reset of FaultReset.
func hijackClose(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // RST instead of FIN
	}
	_ = conn.Close()
}

// Server is one double listening on loopback.
type Server struct {
	*httptest.Server
	// Controls are the double's fault and latency knobs and counters.
	Controls *Controls
}

// Serve starts h behind the fault layer on a loopback port (addr "" picks a
// free one; cmd/partner-sandbox passes fixed ones).
func Serve(addr string, h http.Handler, partnerError ErrorWriter) (*Server, error) {
	c := newControls()
	ts := httptest.NewUnstartedServer(c.wrap(h, partnerError))
	if addr != "" {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, err
		}
		ts.Listener.Close()
		ts.Listener = l
	}
	ts.Config.ErrorLog = discardLog
	ts.Start()
	return &Server{Server: ts, Controls: c}, nil
}

// Close stops the server and releases requests held by FaultHang.
func (s *Server) Close() {
	s.Controls.mu.Lock()
	select {
	case <-s.Controls.hangUntil:
	default:
		close(s.Controls.hangUntil)
	}
	s.Controls.mu.Unlock()
	s.Server.CloseClientConnections()
	s.Server.Close()
}
