package partnertest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// StartDouble starts a double with start("") (on a free loopback port) and
// closes it when tb ends: start is a double package's Start, as in
// partnertest.StartDouble(t, herokudouble.Start).
func StartDouble[S interface{ Close() }](tb testing.TB, start func(addr string) (S, error)) S {
	tb.Helper()
	s, err := start("")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	return s
}

// Faults is every fault a double can show, FaultNone (the normal answer)
// first, in declaration order: the list a leak sweep runs through.
func Faults() []Fault {
	var fs []Fault
	for f := FaultNone; f.String() != ""; f++ {
		fs = append(fs, f)
	}
	return fs
}

// ServeAnswer starts a loopback server that gives every request the one
// answer (header values, a Content-Type unless "", status and body), for
// the answers a double never gives; tb's cleanup closes it.
func ServeAnswer(tb testing.TB, status int, contentType, body string, header map[string]string) *httptest.Server {
	tb.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		for k, v := range header {
			w.Header().Set(k, v)
		}
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	tb.Cleanup(srv.Close)
	return srv
}

// RedirectCanary starts a loopback server that fails tb if anything
// reaches it: the Location of a redirect the verifier must not follow
// (it would carry the token elsewhere); tb's cleanup closes it.
func RedirectCanary(tb testing.TB) *httptest.Server {
	tb.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		tb.Error("the redirect target was contacted")
	}))
	tb.Cleanup(srv.Close)
	return srv
}

// Do sends one request with the given headers (each set, empty values
// too) to url and returns the answer's status, headers and whole body,
// failing tb if the request cannot be made or read: the doubles' tests ask
// their double this way.
func Do(tb testing.TB, method, url string, header map[string]string) (int, http.Header, []byte) {
	tb.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		tb.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}
