package chaos

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/awsmeter"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/awstest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
)

// Rule picks the requests a Proxy refuses, from the AWS JSON-protocol
// operation (the X-Amz-Target header, e.g. "AmazonSQS.SendMessageBatch")
// and the request body.
type Rule func(target string, body []byte) bool

// RefuseAll refuses every request.
func RefuseAll(string, []byte) bool { return true }

// RefuseSends refuses SendMessage and SendMessageBatch calls to one queue.
func RefuseSends(queueURL string) Rule {
	return func(target string, body []byte) bool {
		if target != "AmazonSQS.SendMessageBatch" && target != "AmazonSQS.SendMessage" {
			return false
		}
		return awsmeter.QueueURL(body) == queueURL
	}
}

// SentPartners returns the partners of the results a SendMessage or
// SendMessageBatch request body carries that only a partner function
// writes (a partner's answer or fault): whose function sent it. The
// dispatcher's results (malformed, unsupported, canary, flag off) name a
// partner too, but a send of them says nothing about that partner's function.
func SentPartners(body []byte) []finding.Partner {
	_, bodies := awsmeter.Sent(body)
	var out []finding.Partner
	for _, b := range bodies {
		var r finding.Result
		if json.Unmarshal([]byte(b), &r) == nil && r.Partner != "" && fromPartnerFunction(r.Reason) && !slices.Contains(out, r.Partner) {
			out = append(out, r.Partner)
		}
	}
	return out
}

// fromPartnerFunction reports a reason only a partner function gives.
func fromPartnerFunction(r finding.Reason) bool {
	switch r {
	case finding.ReasonPartnerConfirmed, finding.ReasonPartnerRejected, finding.ReasonPartnerError, finding.ReasonRateLimited:
		return true
	}
	return false
}

// Hook intervenes in the requests Pick selects (after the Rule of Refuse,
// which answers first): Before runs before such a request is forwarded —
// when it returns true the request is dropped, never reaching the local
// AWS, and its connection closed unanswered; After runs once the local AWS
// has answered, before the answer is passed back. The crash scenarios kill
// a function from them: before or after its results were sent.
type Hook struct {
	Pick   Rule
	Before func(body []byte) (drop bool)
	After  func(body []byte)
}

// Proxy stands between the functions and the local AWS for one service
// (AWS_ENDPOINT_URL_SSM, AWS_ENDPOINT_URL_SQS): it passes requests through,
// answers the ones a Rule picks with a 500 InternalError, or is down (its
// port refuses connections, like a dead endpoint) until brought up again.
type Proxy struct {
	target  *url.URL
	addr    string
	rp      *httputil.ReverseProxy
	refused atomic.Int64

	mu   sync.Mutex
	rule Rule
	hook *Hook
	srv  *http.Server
}

// ProxyIdleConns is how many idle connections to the local AWS a Proxy
// keeps for reuse: more than the functions of a stack can have in flight.
const ProxyIdleConns = 64

// StartProxy listens on a free loopback port and forwards to target.
func StartProxy(target string) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("chaos: proxy target: %w", err)
	}
	p := &Proxy{target: u, rp: httputil.NewSingleHostReverseProxy(u)}
	// http.DefaultTransport keeps 2 idle connections per host: with every
	// function's calls going through one proxy, each burst opened new
	// connections to moto_server, which starts a thread per connection
	// and holds the ones it cannot accept yet in its listen queue.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = ProxyIdleConns
	tr.ResponseHeaderTimeout = awstest.RequestTimeout
	p.rp.Transport = tr
	p.rp.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, _ error) { w.WriteHeader(http.StatusBadGateway) }
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("chaos: proxy listen: %w", err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	return p, nil
}

// URL is the proxy's base URL, the same whether it is up or down.
func (p *Proxy) URL() string { return "http://" + p.addr }

// Refused is how many requests the proxy answered with an error.
func (p *Proxy) Refused() int64 { return p.refused.Load() }

// Refuse makes the proxy answer 500 to the requests r picks; nil passes all.
func (p *Proxy) Refuse(r Rule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rule = r
}

// SetHook installs h (nil removes it).
func (p *Proxy) SetHook(h *Hook) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hook = h
}

// Down closes the port and every open connection: callers get connection refused.
func (p *Proxy) Down() {
	p.mu.Lock()
	srv := p.srv
	p.srv = nil
	p.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// Up listens on the proxy's port again after Down.
func (p *Proxy) Up() error {
	p.mu.Lock()
	up := p.srv != nil
	p.mu.Unlock()
	if up {
		return nil
	}
	var ln net.Listener
	var err error
	// The port was just released; the kernel may take a moment.
	for range 50 {
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			p.serve(ln)
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("chaos: proxy up again on %s: %w", p.addr, err)
}

// Close stops the proxy for good.
func (p *Proxy) Close() { p.Down() }

func (p *Proxy) serve(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(p.handle), ReadHeaderTimeout: 10 * time.Second}
	p.mu.Lock()
	p.srv = srv
	p.mu.Unlock()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = ln.Close()
		}
	}()
}

func (p *Proxy) handle(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	p.mu.Lock()
	rule, hook := p.rule, p.hook
	p.mu.Unlock()
	if rule != nil && rule(r.Header.Get("X-Amz-Target"), body) {
		p.refused.Add(1)
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(`{"__type":"InternalError","message":"injected by the chaos suite"}`))
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	if hook == nil || hook.Pick == nil || !hook.Pick(r.Header.Get("X-Amz-Target"), body) {
		p.rp.ServeHTTP(w, r)
		return
	}
	if hook.Before != nil && hook.Before(body) {
		panic(http.ErrAbortHandler) // closes the connection, unanswered
	}
	if hook.After == nil {
		p.rp.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	p.rp.ServeHTTP(rec, r)
	hook.After(body)
	for k, vs := range rec.Header() {
		w.Header()[k] = vs
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}
