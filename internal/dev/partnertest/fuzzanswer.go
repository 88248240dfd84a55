package partnertest

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
)

// FuzzAnswer is one answer a FuzzServer gives, built from a fuzzer's
// arguments by NewFuzzAnswer; the partner fuzz targets judge a verifier's
// outcome against it.
type FuzzAnswer struct {
	// Status is the HTTP status sent; 0 closes the connection without an answer.
	Status int
	// Header holds the header lines the fuzzer chose that HTTP can carry.
	Header http.Header
	// Body is the body sent, placeholders expanded.
	Body []byte
	// Truncate declares a longer Content-Length than the body sent, then
	// closes the connection.
	Truncate bool
}

// The fuzz modes NewFuzzAnswer reads from the low two bits of mode; 3 is a
// normal answer too, so every byte value means something.
const (
	fuzzModeMask     = 3
	fuzzModeDrop     = 1
	fuzzModeTruncate = 2
)

var fuzzHeaderName = regexp.MustCompile(`^[A-Za-z0-9-]{1,64}$`)

// NewFuzzAnswer turns a fuzzer's arguments into an answer: the low two bits
// of mode choose a normal answer (0, 3), a dropped connection (1) or a
// truncated body (2), and the higher bits are left to the caller; a status
// outside 200..999 is a dropped connection too; header lines "Name: value"
// are kept when HTTP can carry them, except those that frame the body;
// placeholders are old, new pairs (as for strings.NewReplacer), replaced in
// the body and header values one pair after the other, in order.
func NewFuzzAnswer(mode byte, status int, header string, body []byte, placeholders ...string) FuzzAnswer {
	if len(placeholders)%2 != 0 {
		panic("partnertest.NewFuzzAnswer: odd number of placeholder arguments")
	}
	expand := func(s string) string {
		for i := 0; i < len(placeholders); i += 2 {
			s = strings.ReplaceAll(s, placeholders[i], placeholders[i+1])
		}
		return s
	}
	a := FuzzAnswer{Status: status, Header: http.Header{}, Body: []byte(expand(string(body)))}
	if a.Status < 200 || a.Status > 999 || mode&fuzzModeMask == fuzzModeDrop {
		a.Status = 0
	}
	a.Truncate = mode&fuzzModeMask == fuzzModeTruncate
	for _, line := range strings.Split(header, "\n") {
		name, value, ok := strings.Cut(line, ":")
		name, value = strings.TrimSpace(name), strings.TrimSpace(expand(value))
		// The server frames the body itself; a fuzzed framing header would
		// make the answer malformed in ways the mode bits do not record.
		switch strings.ToLower(name) {
		case "content-length", "transfer-encoding", "connection", "trailer", "content-encoding":
			continue
		}
		if ok && fuzzHeaderName.MatchString(name) && !strings.ContainsAny(value, "\r\n\x00") {
			a.Header.Add(name, value)
		}
	}
	return a
}

// FuzzServer is a loopback HTTP server that answers every request with the
// FuzzAnswer last given to Set, for fuzz targets that feed a partner
// verifier arbitrary answers.
type FuzzServer struct {
	*httptest.Server
	endpoint url.URL
	current  atomic.Pointer[FuzzAnswer]
}

// NewFuzzServer starts a FuzzServer that tb's cleanup closes. Until the
// first Set it drops every connection without an answer.
func NewFuzzServer(tb testing.TB) *FuzzServer {
	s := &FuzzServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	tb.Cleanup(s.Close)
	u, err := url.Parse(s.URL)
	if err != nil {
		tb.Fatalf("parse fuzz server URL: %v", err)
	}
	s.endpoint = *u
	return s
}

// Endpoint is the server's base URL in the form the verifiers' Config takes.
func (s *FuzzServer) Endpoint() *url.URL {
	u := s.endpoint
	return &u
}

// Set makes a the answer to every following request.
func (s *FuzzServer) Set(a FuzzAnswer) {
	s.current.Store(&a)
}

func (s *FuzzServer) serve(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	a := s.current.Load()
	if a == nil {
		a = &FuzzAnswer{}
	}
	if a.Status == 0 || a.Truncate {
		// net/http would fix the Content-Length or answer on its own, so
		// both faults are written on the raw connection.
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		if a.Status != 0 {
			fmt.Fprintf(buf, "HTTP/1.1 %d %s\r\n", a.Status, http.StatusText(a.Status))
			_ = a.Header.Write(buf)
			fmt.Fprintf(buf, "Content-Length: %d\r\n\r\n", len(a.Body)+16)
			_, _ = buf.Write(a.Body)
			_ = buf.Flush()
		}
		return
	}
	for k, vs := range a.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(a.Status)
	_, _ = w.Write(a.Body)
}
