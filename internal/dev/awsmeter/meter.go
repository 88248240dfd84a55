// Package awsmeter counts what a local stack asks of AWS: a reverse proxy
// in front of the local AWS (moto_server) with one port per caller (the
// scanner, each function, the event source mappings' pollers, the results
// consumer), counting every request by caller, service and operation, as
// AWS would bill them. A tap sees each call whole (request and answer, with
// when it started and ended), which the latency bench uses to time the hops
// of a finding through the queues. It never logs a body: they carry tokens.
package awsmeter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Key is what a count is kept by.
type Key struct {
	// Caller is the label of the port the request came through.
	Caller string
	// Service is the AWS service (sqs, ssm, ...), from the request's
	// SigV4 credential scope.
	Service string
	// Operation is the API action (SendMessageBatch, GetParameter, ...).
	Operation string
}

// Count is what the meter saw of one Key.
type Count struct {
	// Requests is the number of requests.
	Requests int64
	// Empty is, for ReceiveMessage, how many answers held no message.
	Empty int64
	// Units is the requests as SQS bills them: every 64 KiB of a request's
	// payload (sends) or answer (receives) is one request.
	Units int64
}

// Call is one request and its answer, for a Tap.
type Call struct {
	Key
	Request, Response []byte
	Status            int
	Start, End        time.Time
}

// Tap sees every call once it is answered. It runs on the request's
// goroutine before the answer is passed back, so it must be quick.
type Tap func(Call)

// BillingChunk is the payload size SQS bills as one request.
const BillingChunk = 64 << 10

// Meter is the proxy. Start it with New, give each caller an Endpoint.
type Meter struct {
	target *url.URL
	client *http.Client
	tap    Tap

	mu      sync.Mutex
	counts  map[Key]*Count
	servers []*http.Server
}

// New returns a meter forwarding to target (the local AWS base URL); tap
// may be nil.
func New(target string, tap Tap) (*Meter, error) {
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("awsmeter: target %q: not a base URL", target)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	return &Meter{target: u, tap: tap, counts: map[Key]*Count{},
		client: &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}, nil
}

// Endpoint listens on a free loopback port for one caller and returns its
// base URL, to be used as that caller's AWS_ENDPOINT_URL.
func (m *Meter) Endpoint(caller string) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("awsmeter: listen: %w", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { m.handle(caller, w, r) }),
		ReadHeaderTimeout: 10 * time.Second}
	m.mu.Lock()
	m.servers = append(m.servers, srv)
	m.mu.Unlock()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = ln.Close()
		}
	}()
	return "http://" + ln.Addr().String(), nil
}

// Close stops every port.
func (m *Meter) Close() {
	m.mu.Lock()
	servers := m.servers
	m.servers = nil
	m.mu.Unlock()
	for _, s := range servers {
		_ = s.Close()
	}
}

// Counts returns a copy of the counts so far.
func (m *Meter) Counts() map[Key]Count {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[Key]Count, len(m.counts))
	for k, c := range m.counts {
		out[k] = *c
	}
	return out
}

// Reset forgets the counts (the stack's setup is not what a finding costs).
func (m *Meter) Reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.counts = map[Key]*Count{}
}

func (m *Meter) handle(caller string, w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	out := m.target.JoinPath(r.URL.Path)
	out.RawQuery = r.URL.RawQuery
	req, err := http.NewRequestWithContext(r.Context(), r.Method, out.String(), bytes.NewReader(body))
	if err != nil {
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	req.Header = r.Header.Clone()
	req.Host = r.Host
	resp, err := m.client.Do(req)
	if err != nil {
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	answer, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	key := Key{Caller: caller, Service: Service(r.Header.Get("Authorization")), Operation: Operation(r, body)}
	m.count(key, body, answer)
	if m.tap != nil {
		m.tap(Call{Key: key, Request: body, Response: answer, Status: resp.StatusCode, Start: start, End: time.Now()})
	}
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(answer)
}

func (m *Meter) count(k Key, req, resp []byte) {
	units := int64(1)
	switch k.Operation {
	case "SendMessage", "SendMessageBatch":
		units = chunks(len(req))
	case "ReceiveMessage":
		units = chunks(len(resp))
	}
	empty := k.Operation == "ReceiveMessage" && len(Messages(resp)) == 0
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.counts[k]
	if c == nil {
		c = &Count{}
		m.counts[k] = c
	}
	c.Requests++
	c.Units += units
	if empty {
		c.Empty++
	}
}

// chunks is the number of 64 KiB chunks of n bytes, at least 1.
func chunks(n int) int64 {
	return max(1, int64((n+BillingChunk-1)/BillingChunk))
}

// Service is the service of a SigV4 Authorization header's credential
// scope (".../<date>/<region>/<service>/aws4_request"), or "unknown".
func Service(authorization string) string {
	_, cred, ok := strings.Cut(authorization, "Credential=")
	if !ok {
		return "unknown"
	}
	cred, _, _ = strings.Cut(cred, ",")
	parts := strings.Split(cred, "/")
	if len(parts) < 5 {
		return "unknown"
	}
	return parts[len(parts)-2]
}

// Operation is a request's API action: the X-Amz-Target of the JSON
// protocols ("AmazonSQS.SendMessage"), else the query protocol's Action.
func Operation(r *http.Request, body []byte) string {
	if t := r.Header.Get("X-Amz-Target"); t != "" {
		if _, op, ok := strings.Cut(t, "."); ok {
			return op
		}
		return t
	}
	if a := r.URL.Query().Get("Action"); a != "" {
		return a
	}
	if v, err := url.ParseQuery(string(body)); err == nil && v.Get("Action") != "" {
		return v.Get("Action")
	}
	return r.Method + " " + r.URL.Path
}

// Message is one SQS message of a call: its body and system attributes.
type Message struct {
	Body       string
	Attributes map[string]string
}

// Messages are the messages a ReceiveMessage answer holds (JSON protocol).
func Messages(answer []byte) []Message {
	var out struct {
		Messages []Message
	}
	if json.Unmarshal(answer, &out) != nil {
		return nil
	}
	return out.Messages
}

// Sent is the queue and the message bodies of a SendMessage or
// SendMessageBatch request (JSON protocol).
func Sent(request []byte) (queueURL string, bodies []string) {
	var in struct {
		QueueUrl    string
		MessageBody *string
		Entries     []struct{ MessageBody string }
	}
	if json.Unmarshal(request, &in) != nil {
		return "", nil
	}
	if in.MessageBody != nil {
		bodies = append(bodies, *in.MessageBody)
	}
	for _, e := range in.Entries {
		bodies = append(bodies, e.MessageBody)
	}
	return in.QueueUrl, bodies
}

// QueueURL is the QueueUrl of a request (JSON protocol), or "".
func QueueURL(request []byte) string {
	var in struct{ QueueUrl string }
	_ = json.Unmarshal(request, &in)
	return in.QueueUrl
}
