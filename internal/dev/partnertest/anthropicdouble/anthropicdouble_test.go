package anthropicdouble

import (
	"encoding/json"
	"net/http"
	"regexp"
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

// get sends a request as Anthropic's clients do; version "" leaves out anthropic-version.
func get(t *testing.T, s *Server, method, path, key, version string) answer {
	t.Helper()
	header := map[string]string{}
	if key != "" {
		header[HeaderAPIKey] = key
	}
	if version != "" {
		header[HeaderVersion] = version
	}
	status, hd, b := partnertest.Do(t, method, s.URL+path, header)
	return answer{status, hd, b}
}

func errType(t *testing.T, body []byte) (string, string) {
	t.Helper()
	var doc struct {
		Type  string `json:"type"`
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
		RequestID string `json:"request_id"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("error body %s: %v", body, err)
	}
	if doc.Type != "error" || !strings.HasPrefix(doc.RequestID, "req_") {
		t.Errorf("error document = %s", body)
	}
	return doc.Error.Type, doc.Error.Message
}

func TestKeyGenerators(t *testing.T) {
	api := regexp.MustCompile(`^sk-ant-api03-[A-Za-z0-9_-]{93}AA$`)
	admin := regexp.MustCompile(`^sk-ant-admin01-[A-Za-z0-9_-]{93}AA$`)
	org := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for range 50 {
		a, d := NewAPIKey(), NewAdminKey()
		if !api.MatchString(a) || !admin.MatchString(d) || !org.MatchString(NewOrganizationID()) {
			t.Fatalf("a generator returned the wrong format (lengths %d, %d)", len(a), len(d))
		}
		if seen[a] || seen[d] {
			t.Fatal("a generator repeated a key")
		}
		seen[a], seen[d] = true, true
	}
}

func TestAnswers(t *testing.T) {
	s := start(t)
	const org = "11111111-2222-4333-8444-555555555555"
	live, restricted, revoked, unknown := NewAPIKey(), NewAPIKey(), NewAPIKey(), NewAPIKey()
	admin, adminUnknown := NewAdminKey(), NewAdminKey()
	s.AddKey(live, org)
	s.AddKey(restricted, org)
	s.RestrictKey(restricted)
	s.AddKey(revoked, org)
	s.RevokeKey(revoked)
	s.AddKey(admin, org)

	const v = "2023-06-01"
	tests := []struct {
		name, method, path, key, version string
		wantStatus                       int
		wantType                         string // error.type; "" for a list document
		wantMsg                          string
	}{
		{"models, live key", "GET", "/v1/models", live, v, 200, "", ""},
		{"models, unknown key", "GET", "/v1/models", unknown, v, 401, "authentication_error", "invalid x-api-key"},
		{"models, revoked key", "GET", "/v1/models", revoked, v, 401, "authentication_error", "invalid x-api-key"},
		{"models, restricted key", "GET", "/v1/models", restricted, v, 403, "permission_error", "permission"},
		{"models, no key", "GET", "/v1/models", "", v, 401, "authentication_error", "x-api-key header is required"},
		{"models, no version", "GET", "/v1/models", live, "", 400, "invalid_request_error", "anthropic-version: header is required"},
		{"models, admin key", "GET", "/v1/models", admin, v, 401, "authentication_error", "invalid x-api-key"},
		{"admin list, admin key", "GET", "/v1/organizations/api_keys?limit=1", admin, v, 200, "", ""},
		{"admin list, unknown admin key", "GET", "/v1/organizations/api_keys?limit=1", adminUnknown, v, 401, "authentication_error", "invalid x-api-key"},
		{"admin list, standard key", "GET", "/v1/organizations/api_keys?limit=1", live, v, 403, "permission_error", "permission"},
		{"admin list, bad limit", "GET", "/v1/organizations/api_keys?limit=0", admin, v, 400, "invalid_request_error", "limit"},
		{"unknown path", "GET", "/v1/complete", live, v, 404, "not_found_error", ""},
		{"wrong method", "POST", "/v1/models", live, v, 404, "not_found_error", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := get(t, s, tc.method, tc.path, tc.key, tc.version)
			if a.status != tc.wantStatus {
				t.Fatalf("status = %d, want %d: %s", a.status, tc.wantStatus, a.body)
			}
			if ct := a.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if !strings.HasPrefix(a.header.Get("Request-Id"), "req_") {
				t.Errorf("request-id = %q", a.header.Get("Request-Id"))
			}
			if tc.wantType != "" {
				typ, msg := errType(t, a.body)
				if typ != tc.wantType || !strings.Contains(msg, tc.wantMsg) {
					t.Errorf("error = %s %q, want %s containing %q", typ, msg, tc.wantType, tc.wantMsg)
				}
				return
			}
			var doc struct {
				Data    []map[string]any `json:"data"`
				HasMore *bool            `json:"has_more"`
				FirstID *string          `json:"first_id"`
				LastID  *string          `json:"last_id"`
			}
			if err := json.Unmarshal(a.body, &doc); err != nil || doc.HasMore == nil || len(doc.Data) == 0 || doc.FirstID == nil || doc.LastID == nil {
				t.Fatalf("list document = %s (%v)", a.body, err)
			}
			if a.header.Get("Anthropic-Organization-Id") != org {
				t.Errorf("anthropic-organization-id = %q", a.header.Get("Anthropic-Organization-Id"))
			}
			if strings.Contains(tc.path, "api_keys") {
				if len(doc.Data) != 1 || doc.Data[0]["type"] != "api_key" || !*doc.HasMore {
					t.Errorf("admin list with limit=1 = %s", a.body)
				}
				if strings.Contains(string(a.body), admin) {
					t.Error("the admin list shows a key")
				}
			} else if doc.Data[0]["type"] != "model" {
				t.Errorf("models list = %s", a.body)
			}
		})
	}
	if got := s.Controls.CountFor(live); got != 5 {
		t.Errorf("CountFor(live) = %d, want 5", got)
	}
	if got := s.Controls.Requests(); got != int64(len(tests)) {
		t.Errorf("Requests = %d, want %d", got, len(tests))
	}
}

func TestOrganizationHeaderKnob(t *testing.T) {
	s := start(t)
	k := NewAPIKey()
	s.AddKey(k, "")
	s.SetOrganizationHeader(false)
	if a := get(t, s, "GET", "/v1/models", k, "2023-06-01"); a.status != 200 || a.header.Get("Anthropic-Organization-Id") != "" {
		t.Errorf("status %d, organization header %q", a.status, a.header.Get("Anthropic-Organization-Id"))
	}
	s.SetOrganizationHeader(true)
	if a := get(t, s, "GET", "/v1/models", k, "2023-06-01"); a.header.Get("Anthropic-Organization-Id") == "" {
		t.Error("no organization header")
	}
}

func TestOverload(t *testing.T) {
	s := start(t)
	k := NewAPIKey()
	s.AddKey(k, "")
	s.Overload(2)
	for i := range 2 {
		a := get(t, s, "GET", "/v1/models", k, "2023-06-01")
		if typ, _ := errType(t, a.body); a.status != 529 || typ != "overloaded_error" {
			t.Fatalf("request %d: status %d type %s", i, a.status, typ)
		}
	}
	if a := get(t, s, "GET", "/v1/models", k, "2023-06-01"); a.status != 200 {
		t.Errorf("after the overload: status %d", a.status)
	}
}

func TestFaultBodies(t *testing.T) {
	s := start(t)
	k := NewAPIKey()
	s.AddKey(k, "")
	for _, tc := range []struct {
		f      partnertest.Fault
		status int
		typ    string
	}{{partnertest.Fault500, 500, "api_error"}, {partnertest.Fault503, 503, "overloaded_error"}} {
		s.Controls.Push(tc.f)
		a := get(t, s, "GET", "/v1/models", k, "2023-06-01")
		if typ, _ := errType(t, a.body); a.status != tc.status || typ != tc.typ {
			t.Errorf("%s: status %d type %s", tc.f, a.status, typ)
		}
	}
}

func TestRateLimitAnswer(t *testing.T) {
	s := start(t)
	k := NewAPIKey()
	s.AddKey(k, "")
	for _, tc := range []struct {
		name       string
		retryAfter string
		lo, hi     time.Duration
	}{
		{"retry-after seconds", "7", 7 * time.Second, 9 * time.Second},
		{"reset only: end of the minute window", "", 59 * time.Second, 62 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.Controls.SetRetryAfter(tc.retryAfter)
			s.Controls.Push(partnertest.Fault429)
			now := time.Now()
			a := get(t, s, "GET", "/v1/models", k, "2023-06-01")
			if a.status != 429 {
				t.Fatalf("status = %d", a.status)
			}
			if typ, _ := errType(t, a.body); typ != "rate_limit_error" {
				t.Errorf("error type %s", typ)
			}
			if got := a.header.Get("Retry-After"); got != tc.retryAfter {
				t.Errorf("retry-after = %q, want %q", got, tc.retryAfter)
			}
			if a.header.Get("Anthropic-Ratelimit-Requests-Limit") != "50" || a.header.Get("Anthropic-Ratelimit-Requests-Remaining") != "0" {
				t.Errorf("limit/remaining = %q/%q", a.header.Get("Anthropic-Ratelimit-Requests-Limit"), a.header.Get("Anthropic-Ratelimit-Requests-Remaining"))
			}
			reset, err := time.Parse(time.RFC3339, a.header.Get("Anthropic-Ratelimit-Requests-Reset"))
			if err != nil || reset.Before(now.Add(tc.lo)) || reset.After(now.Add(tc.hi)) {
				t.Errorf("reset = %q (%v), want within [%v, %v] from now", a.header.Get("Anthropic-Ratelimit-Requests-Reset"), err, tc.lo, tc.hi)
			}
		})
	}
}
