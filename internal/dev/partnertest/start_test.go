package partnertest

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

type closer struct{ closed *bool }

func (c closer) Close() { *c.closed = true }

func TestStartDouble(t *testing.T) {
	var closed bool
	addr := "unset"
	t.Run("started", func(t *testing.T) {
		StartDouble(t, func(a string) (closer, error) { addr = a; return closer{&closed}, nil })
		if closed {
			t.Error("closed before the test ended")
		}
	})
	if addr != "" || !closed {
		t.Errorf("started on %q, closed %v; want a free port and closed at the end", addr, closed)
	}
}

func TestFaults(t *testing.T) {
	fs := Faults()
	if len(fs) != len(faultNames) || fs[0] != FaultNone || fs[len(fs)-1] != FaultHang {
		t.Errorf("Faults() = %v, want all %d, none first, hang last", fs, len(faultNames))
	}
	for i, f := range fs {
		if f != Fault(i) {
			t.Errorf("Faults()[%d] = %v, not in declaration order", i, f)
		}
	}
}

func TestServeAnswer(t *testing.T) {
	var srv *httptest.Server
	t.Run("served", func(t *testing.T) {
		srv = ServeAnswer(t, 418, "application/json", `{"a":1}`, map[string]string{"Retry-After": "3"})
		for range 2 {
			resp, err := http.Get(srv.URL + "/any/path")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 418 || resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("Retry-After") != "3" || string(body) != `{"a":1}` {
				t.Errorf("answer %d %v %q", resp.StatusCode, resp.Header, body)
			}
		}
	})
	if _, err := http.Get(srv.URL); err == nil {
		t.Error("the server still answers after its test ended")
	}
}

// recordingTB records Error calls, so that a canary's complaint can be seen.
type recordingTB struct {
	testing.TB
	errors []string
}

func (r *recordingTB) Error(args ...any) { r.errors = append(r.errors, fmt.Sprint(args...)) }

func TestRedirectCanary(t *testing.T) {
	tb := &recordingTB{TB: t}
	srv := RedirectCanary(tb)
	if len(tb.errors) != 0 {
		t.Fatalf("the canary complained before any request: %q", tb.errors)
	}
	resp, err := http.Get(srv.URL + "/account")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(tb.errors) != 1 || !strings.Contains(tb.errors[0], "redirect target") {
		t.Errorf("a request to the canary: complaints %q, want one", tb.errors)
	}
}
