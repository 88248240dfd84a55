package postmandouble

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
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
	body   []byte
}

func get(t *testing.T, s *Server, method, path, key string) answer {
	t.Helper()
	header := map[string]string{}
	if key != "" {
		header[HeaderAPIKey] = key
	}
	status, hd, b := partnertest.Do(t, method, s.URL+path, header)
	return answer{status, hd, b}
}

func TestNewAPIKey(t *testing.T) {
	format := regexp.MustCompile(`^PMAK-[0-9a-f]{24}-[0-9a-f]{34}$`)
	seen := map[string]bool{}
	for range 50 {
		k := NewAPIKey()
		if !format.MatchString(k) {
			t.Fatalf("NewAPIKey returned a key of the wrong format (len %d)", len(k))
		}
		if seen[k] {
			t.Fatal("NewAPIKey repeated a key")
		}
		seen[k] = true
	}
}

func TestMe(t *testing.T) {
	s := start(t)
	live, revoked, unknown := NewAPIKey(), NewAPIKey(), NewAPIKey()
	s.AddKey(live, 12345678)
	s.AddKey(revoked, 42)
	s.RevokeKey(revoked)

	authError := `{"error":{"name":"AuthenticationError","message":"Invalid API Key. Every request requires a valid API Key to be sent."}}`
	tests := []struct {
		name       string
		method     string
		path, key  string
		wantStatus int
		wantBody   string // exact JSON, "" to check the user document instead
	}{
		{"registered key", http.MethodGet, "/me", live, 200, ""},
		{"unknown key", http.MethodGet, "/me", unknown, 401, authError},
		{"revoked key", http.MethodGet, "/me", revoked, 401, authError},
		{"missing key", http.MethodGet, "/me", "", 401, authError},
		{"auth before routing", http.MethodGet, "/collections", unknown, 401, authError},
		{"unknown path", http.MethodGet, "/collections", live, 404, `{"error":{"name":"notFound","message":"Requested resource not found"}}`},
		{"wrong method", http.MethodPost, "/me", live, 404, `{"error":{"name":"notFound","message":"Requested resource not found"}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := get(t, s, tc.method, tc.path, tc.key)
			if a.status != tc.wantStatus {
				t.Fatalf("status = %d, want %d", a.status, tc.wantStatus)
			}
			if ct := a.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type = %q", ct)
			}
			if tc.wantBody != "" {
				if string(a.body) != tc.wantBody {
					t.Errorf("body = %s\nwant   %s", a.body, tc.wantBody)
				}
				return
			}
			var doc map[string]any
			if err := json.Unmarshal(a.body, &doc); err != nil {
				t.Fatal(err)
			}
			user, _ := doc["user"].(map[string]any)
			want := map[string]any{"id": 12345678.0, "username": "user-12345678", "email": "user-12345678@example.com",
				"fullName": "Test User 12345678", "avatar": nil, "isPublic": false}
			if len(user) != len(want) {
				t.Errorf("user = %v, want fields %v", user, want)
			}
			for k, v := range want {
				if got, ok := user[k]; !ok || got != v {
					t.Errorf("user.%s = %#v (present %v), want %#v", k, got, ok, v)
				}
			}
			ops, _ := doc["operations"].([]any)
			if len(ops) == 0 {
				t.Fatal("no operations")
			}
			for _, o := range ops {
				op, _ := o.(map[string]any)
				for _, f := range []string{"name", "limit", "usage", "overage"} {
					if _, ok := op[f]; !ok {
						t.Errorf("operation %v lacks %s", op, f)
					}
				}
			}
		})
	}
	if got := s.Controls.CountFor(live); got != 3 {
		t.Errorf("CountFor(live) = %d, want 3", got)
	}
	if got := s.Controls.CountFor(unknown); got != 2 {
		t.Errorf("CountFor(unknown) = %d, want 2", got)
	}
	if got := s.Controls.Requests(); got != int64(len(tests)) {
		t.Errorf("Requests = %d, want %d", got, len(tests))
	}
}

func TestAddKeyAfterRevoke(t *testing.T) {
	s := start(t)
	k := NewAPIKey()
	s.AddKey(k, 7)
	s.RevokeKey(k)
	s.AddKey(k, 8)
	a := get(t, s, http.MethodGet, "/me", k)
	if a.status != 200 || !strings.Contains(string(a.body), `"id":8`) {
		t.Errorf("status %d body %s", a.status, a.body)
	}
}

func TestRateLimitAnswer(t *testing.T) {
	s := start(t)
	k := NewAPIKey()
	s.AddKey(k, 1)
	tests := []struct {
		name       string
		retryAfter string
		wantReset  func(now time.Time) (lo, hi int64)
	}{
		{"Retry-After seconds", "7", func(now time.Time) (int64, int64) { return now.Unix() + 7, now.Unix() + 9 }},
		{"Retry-After date", time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat), func(now time.Time) (int64, int64) {
			return now.Unix() + 88, now.Unix() + 91
		}},
		{"no Retry-After: end of the minute window", "", func(now time.Time) (int64, int64) { return now.Unix() + 59, now.Unix() + 62 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s.Controls.SetRetryAfter(tc.retryAfter)
			s.Controls.Push(partnertest.Fault429)
			now := time.Now()
			a := get(t, s, http.MethodGet, "/me", k)
			if a.status != 429 {
				t.Fatalf("status = %d", a.status)
			}
			if got := a.header.Get("Retry-After"); got != tc.retryAfter {
				t.Errorf("Retry-After = %q, want %q", got, tc.retryAfter)
			}
			if a.header.Get("X-RateLimit-Limit") != "300" || a.header.Get("X-RateLimit-Remaining") != "0" {
				t.Errorf("X-RateLimit-Limit/Remaining = %q/%q", a.header.Get("X-RateLimit-Limit"), a.header.Get("X-RateLimit-Remaining"))
			}
			reset, err := strconv.ParseInt(a.header.Get("X-RateLimit-Reset"), 10, 64)
			lo, hi := tc.wantReset(now)
			if err != nil || reset < lo || reset > hi {
				t.Errorf("X-RateLimit-Reset = %q, want a Unix time in [%d, %d]", a.header.Get("X-RateLimit-Reset"), lo, hi)
			}
			wait, err := strconv.ParseInt(a.header.Get("X-RateLimit-RetryAfter"), 10, 64)
			if err != nil || now.Unix()+wait < reset-1 || now.Unix()+wait > reset+1 {
				t.Errorf("X-RateLimit-RetryAfter = %q, want the seconds to the reset %d", a.header.Get("X-RateLimit-RetryAfter"), reset)
			}
			if a.header.Get("RateLimit-Policy") != "300;w=60" || !strings.HasPrefix(a.header.Get("RateLimit"), "limit=300, remaining=0, reset=") {
				t.Errorf("RateLimit/-Policy = %q/%q", a.header.Get("RateLimit"), a.header.Get("RateLimit-Policy"))
			}
			var body struct{ Error, Message string }
			if err := json.Unmarshal(a.body, &body); err != nil {
				t.Fatal(err)
			}
			if body.Error != "rateLimited" || body.Message != "Rate limit exceeded. Please retry after "+strconv.FormatInt(reset, 10) {
				t.Errorf("body = %s", a.body)
			}
		})
	}
	if s.Controls.RateLimited() != int64(len(tests)) {
		t.Errorf("RateLimited = %d", s.Controls.RateLimited())
	}

	// The older support article's nested body, on request.
	s.SetLegacyRateLimitBody(true)
	s.Controls.SetRetryAfter("")
	s.Controls.Push(partnertest.Fault429)
	a := get(t, s, http.MethodGet, "/me", k)
	var legacy errorBody
	if err := json.Unmarshal(a.body, &legacy); err != nil || a.status != 429 || legacy.Error.Name != "rateLimitError" || !strings.Contains(legacy.Error.Message, "retry at ") {
		t.Errorf("legacy 429 = %d %s (%v)", a.status, a.body, err)
	}
}

func TestServerErrorBodies(t *testing.T) {
	s := start(t)
	k := NewAPIKey()
	s.AddKey(k, 1)
	tests := []struct {
		fault      partnertest.Fault
		wantStatus int
		wantName   string
	}{
		{partnertest.Fault500, 500, "serverError"},
		{partnertest.Fault503, 503, "serviceUnavailable"},
	}
	for _, tc := range tests {
		t.Run(tc.fault.String(), func(t *testing.T) {
			s.Controls.Push(tc.fault)
			a := get(t, s, http.MethodGet, "/me", k)
			var body struct {
				Error struct{ Name, Message string } `json:"error"`
			}
			if err := json.Unmarshal(a.body, &body); err != nil {
				t.Fatalf("body is not JSON: %v", err)
			}
			if a.status != tc.wantStatus || body.Error.Name != tc.wantName || body.Error.Message == "" {
				t.Errorf("status %d body %s", a.status, a.body)
			}
		})
	}
}

func TestStartOnFixedAddress(t *testing.T) {
	s := start(t)
	addr := s.Listener.Addr().String()
	if _, err := Start(addr); err == nil {
		t.Fatal("Start on a busy address succeeded")
	} else if !strings.HasPrefix(err.Error(), "postmandouble: start:") {
		t.Errorf("error %q does not name the operation", err)
	}
}
