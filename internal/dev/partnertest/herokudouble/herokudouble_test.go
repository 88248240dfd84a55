package herokudouble

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
)

func start(t *testing.T) *Server {
	t.Helper()
	s, err := Start("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

type answer struct {
	status int
	header http.Header
	doc    map[string]any
}

func get(t *testing.T, s *Server, path, token string, accept bool) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if accept {
		req.Header.Set("Accept", Accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header}
	if err := json.Unmarshal(body, &a.doc); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", body, err)
	}
	return a
}

func wantError(t *testing.T, a answer, status int, id string) {
	t.Helper()
	if a.status != status || a.doc["id"] != id || a.doc["message"] == "" || a.doc["message"] == nil {
		t.Errorf("answer %d %v, want %d with id %q and a message", a.status, a.doc, status, id)
	}
	if ct := a.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q", ct)
	}
}

func TestAnswers(t *testing.T) {
	s := start(t)
	live, revoked := NewToken(), NewToken()
	acct := NewUUID()
	s.AddToken(live, acct)
	s.AddToken(revoked, acct)
	s.RevokeToken(revoked)
	modes := map[Mode]string{}
	for _, m := range []Mode{Forbidden, Suspended, Delinquent, Expired} {
		tok := NewToken()
		s.AddTokenMode(tok, acct, m)
		modes[m] = tok
	}

	a := get(t, s, "/account", live, true)
	if a.status != http.StatusOK || a.doc["id"] != acct || a.doc["email"] == nil {
		t.Errorf("live: %d %v", a.status, a.doc)
	}
	if a.header.Get("RateLimit-Remaining") != "4499" {
		t.Errorf("RateLimit-Remaining = %q, want 4499 after one request", a.header.Get("RateLimit-Remaining"))
	}
	if a.header.Get("Request-Id") == "" {
		t.Error("no Request-Id")
	}
	wantError(t, get(t, s, "/account", live, false), http.StatusNotAcceptable, "not_acceptable")
	wantError(t, get(t, s, "/account", "", true), http.StatusUnauthorized, "unauthorized")
	wantError(t, get(t, s, "/account", revoked, true), http.StatusUnauthorized, "unauthorized")
	wantError(t, get(t, s, "/account", NewLegacyKey(), true), http.StatusUnauthorized, "unauthorized")
	wantError(t, get(t, s, "/apps", live, true), http.StatusNotFound, "not_found")
	wantError(t, get(t, s, "/account", modes[Forbidden], true), http.StatusForbidden, "forbidden")
	wantError(t, get(t, s, "/account", modes[Suspended], true), http.StatusForbidden, "suspended")
	wantError(t, get(t, s, "/account", modes[Delinquent], true), http.StatusPaymentRequired, "delinquent")
	wantError(t, get(t, s, "/account", modes[Expired], true), http.StatusUnauthorized, "unauthorized")

	// A wrong Accept is refused like a missing one.
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/account", nil)
	req.Header.Set("Authorization", "Bearer "+live)
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotAcceptable {
		t.Errorf("Accept: application/json got %d", resp.StatusCode)
	}
	if s.Controls.CountFor(live) != 2 {
		t.Errorf("CountFor(live) = %d, want 2 (/account and /apps; the 406s come before authentication)", s.Controls.CountFor(live))
	}
}

func TestPoolDrainsAndRefills(t *testing.T) {
	s := start(t)
	now := time.Unix(1_800_000_000, 0)
	var mu sync.Mutex
	s.mu.Lock()
	s.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s.mu.Unlock()
	s.SetPoolSize(2)
	tok := NewToken()
	s.AddToken(tok, NewUUID())
	for i, want := range []string{"1", "0"} {
		a := get(t, s, "/account", tok, true)
		if a.status != http.StatusOK || a.header.Get("RateLimit-Remaining") != want {
			t.Fatalf("request %d: %d, RateLimit-Remaining %q; want 200, %s", i, a.status, a.header.Get("RateLimit-Remaining"), want)
		}
	}
	a := get(t, s, "/account", tok, true)
	wantError(t, a, http.StatusTooManyRequests, "rate_limit")
	if a.header.Get("RateLimit-Remaining") != "0" || a.header.Get("Retry-After") != "" {
		t.Errorf("429 headers %v: want RateLimit-Remaining 0 and no Retry-After (Heroku documents none)", a.header)
	}
	// 75 a minute: one token is back after 0.8 s.
	mu.Lock()
	now = now.Add(800 * time.Millisecond)
	mu.Unlock()
	if a := get(t, s, "/account", tok, true); a.status != http.StatusOK {
		t.Errorf("after the refill: %d", a.status)
	}
}

func TestFaultLayerSpeaksHeroku(t *testing.T) {
	s := start(t)
	tok := NewToken()
	s.AddToken(tok, NewUUID())

	s.Controls.SetRetryAfter("")
	s.Controls.Push(partnertest.Fault429)
	a := get(t, s, "/account", tok, true)
	wantError(t, a, http.StatusTooManyRequests, "rate_limit")
	if a.header.Get("RateLimit-Remaining") != "0" || a.header.Get("Retry-After") != "" {
		t.Errorf("documented 429: headers %v", a.header)
	}
	s.Controls.SetRetryAfter("5")
	s.Controls.Push(partnertest.Fault429)
	if a := get(t, s, "/account", tok, true); a.header.Get("Retry-After") != "5" || a.header.Get("RateLimit-Remaining") != "0" {
		t.Errorf("429 with the Retry-After knob: headers %v", a.header)
	}
	s.Controls.Push(partnertest.Fault500)
	wantError(t, get(t, s, "/account", tok, true), http.StatusInternalServerError, "internal_server_error")
	s.Controls.Push(partnertest.Fault503)
	wantError(t, get(t, s, "/account", tok, true), http.StatusServiceUnavailable, "unavailable")
	if s.Controls.RateLimited() != 2 {
		t.Errorf("RateLimited = %d", s.Controls.RateLimited())
	}
}

func TestGenerators(t *testing.T) {
	token := regexp.MustCompile(`^HRKU-AA[0-9A-Za-z_-]{58}$`)
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for range 200 {
		tok, key := NewToken(), NewLegacyKey()
		if !token.MatchString(tok) || !uuid.MatchString(key) {
			t.Fatalf("NewToken %q or NewLegacyKey %q malformed", tok, key)
		}
		if seen[tok] || seen[key] {
			t.Fatal("a generated credential repeated")
		}
		seen[tok], seen[key] = true, true
	}
}
