package openaidouble

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"

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

func get(t *testing.T, s *Server, method, path, auth string) answer {
	t.Helper()
	header := map[string]string{}
	if auth != "" {
		header["Authorization"] = auth
	}
	status, hd, b := partnertest.Do(t, method, s.URL+path, header)
	return answer{status, hd, b}
}

func TestNewKeys(t *testing.T) {
	tests := []struct {
		name   string
		gen    func() string
		format *regexp.Regexp
	}{
		{"project", NewToken, regexp.MustCompile(`^sk-proj-[A-Za-z0-9_-]{74}T3BlbkFJ[A-Za-z0-9_-]{73}[A-Za-z0-9]$`)},
		{"service account", NewServiceAccountKey, regexp.MustCompile(`^sk-svcacct-[A-Za-z0-9_-]{74}T3BlbkFJ[A-Za-z0-9_-]{73}[A-Za-z0-9]$`)},
		{"admin", NewAdminKey, regexp.MustCompile(`^sk-admin-[A-Za-z0-9_-]{74}T3BlbkFJ[A-Za-z0-9_-]{73}[A-Za-z0-9]$`)},
		{"legacy", NewLegacyKey, regexp.MustCompile(`^sk-[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}$`)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			seen := map[string]bool{}
			for range 500 {
				k := tc.gen()
				if !tc.format.MatchString(k) {
					t.Fatalf("key of the wrong format (len %d)", len(k))
				}
				if seen[k] {
					t.Fatal("a key repeated")
				}
				seen[k] = true
			}
		})
	}
}

// errorOf decodes OpenAI's {"error":{message,type,param,code}}, insisting
// on all four keys.
func errorOf(t *testing.T, body []byte) (msg, typ string, code *string) {
	t.Helper()
	var doc struct {
		Error map[string]json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("body %s: %v", body, err)
	}
	for _, k := range []string{"message", "type", "param", "code"} {
		if _, ok := doc.Error[k]; !ok {
			t.Errorf("error lacks %q: %s", k, body)
		}
	}
	_ = json.Unmarshal(doc.Error["message"], &msg)
	_ = json.Unmarshal(doc.Error["type"], &typ)
	_ = json.Unmarshal(doc.Error["code"], &code)
	return msg, typ, code
}

func TestAnswers(t *testing.T) {
	s := start(t)
	live, admin, unknown, revoked := NewToken(), NewAdminKey(), NewToken(), NewToken()
	restricted, flat, region, quota, noOrg := NewToken(), NewToken(), NewToken(), NewToken(), NewToken()
	s.AddToken(live, Live)
	s.AddToken(admin, Live)
	s.AddToken(revoked, Live)
	s.RevokeToken(revoked)
	s.AddToken(restricted, Restricted)
	s.AddToken(flat, RestrictedFlat)
	s.AddToken(region, Region)
	s.AddToken(quota, Quota)
	s.AddTokenIn(noOrg, Live, "")

	str := func(s string) *string { return &s }
	tests := []struct {
		name, method, path, auth string
		status                   int
		code                     *string // the error's code; nil for null
		msgPrefix                string  // of the error message; "" for a success
		flat                     bool    // the bare-string error
		org                      string  // the openai-organization header wanted
	}{
		{"models", "GET", "/v1/models", "Bearer " + live, 200, nil, "", false, DefaultOrganization},
		{"models without organization", "GET", "/v1/models", "Bearer " + noOrg, 200, nil, "", false, ""},
		{"admin keys", "GET", "/v1/organization/admin_api_keys?limit=1", "Bearer " + admin, 200, nil, "", false, DefaultOrganization},
		{"unknown key", "GET", "/v1/models", "Bearer " + unknown, 401, str("invalid_api_key"), "Incorrect API key provided: sk-****************", false, ""},
		{"revoked key", "GET", "/v1/models", "Bearer " + revoked, 401, str("invalid_api_key"), "Incorrect API key provided", false, ""},
		{"auth before routing", "GET", "/v1/chat/completions", "Bearer " + unknown, 401, str("invalid_api_key"), "Incorrect API key", false, ""},
		{"no Authorization", "GET", "/v1/models", "", 401, nil, "You didn't provide an API key", false, ""},
		{"not Bearer", "GET", "/v1/models", "Basic " + live, 401, nil, "You didn't provide an API key", false, ""},
		{"restricted", "GET", "/v1/models", "Bearer " + restricted, 401, nil, "You have insufficient permissions for this operation. Missing scopes: api.model.read.", false, DefaultOrganization},
		{"restricted, bare string", "GET", "/v1/models", "Bearer " + flat, 401, nil, "You have insufficient permissions for this operation. Missing scopes: api.model.read.", true, DefaultOrganization},
		{"project key on the admin route", "GET", "/v1/organization/admin_api_keys", "Bearer " + live, 401, nil, "You have insufficient permissions for this operation. Missing scopes: api.management.read.", false, DefaultOrganization},
		{"region", "GET", "/v1/models", "Bearer " + region, 403, str("unsupported_country_region_territory"), "Country, region, or territory not supported", false, DefaultOrganization},
		{"quota", "GET", "/v1/models", "Bearer " + quota, 429, str("insufficient_quota"), "You exceeded your current quota", false, DefaultOrganization},
		{"unknown path", "GET", "/v1/files", "Bearer " + live, 404, nil, "Invalid URL (GET /v1/files)", false, ""},
		{"wrong method", "POST", "/v1/models", "Bearer " + live, 404, nil, "Invalid URL (POST /v1/models)", false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := get(t, s, tc.method, tc.path, tc.auth)
			if a.status != tc.status {
				t.Fatalf("status = %d, want %d: %s", a.status, tc.status, a.body)
			}
			if ct := a.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if a.header.Get("X-Request-Id") == "" {
				t.Error("no x-request-id")
			}
			if got := a.header.Get("Openai-Organization"); got != tc.org {
				t.Errorf("openai-organization = %q, want %q", got, tc.org)
			}
			switch {
			case tc.flat:
				var doc map[string]string
				if err := json.Unmarshal(a.body, &doc); err != nil || len(doc) != 1 || !strings.HasPrefix(doc["error"], tc.msgPrefix) {
					t.Errorf("body = %s, want a bare error string", a.body)
				}
			case tc.msgPrefix != "":
				msg, typ, code := errorOf(t, a.body)
				if !strings.HasPrefix(msg, tc.msgPrefix) || typ == "" {
					t.Errorf("message %q type %q, want prefix %q", msg, typ, tc.msgPrefix)
				}
				if (code == nil) != (tc.code == nil) || (code != nil && *code != *tc.code) {
					t.Errorf("code = %v, want %v", code, tc.code)
				}
				if _, key, _ := strings.Cut(tc.auth, " "); len(key) > 60 && strings.Contains(string(a.body), key[8:60]) {
					t.Error("the error quotes the key beyond its last four characters")
				}
			default:
				var doc struct {
					Object string            `json:"object"`
					Data   []json.RawMessage `json:"data"`
				}
				if err := json.Unmarshal(a.body, &doc); err != nil || doc.Object != "list" || len(doc.Data) == 0 {
					t.Errorf("body = %s, want a list", a.body)
				}
			}
		})
	}
	if got := s.Controls.CountFor(live); got != 4 {
		t.Errorf("CountFor(live) = %d, want 4", got)
	}
}

func TestAdminKeyList(t *testing.T) {
	s := start(t)
	k := NewAdminKey()
	s.AddToken(k, Live)
	a := get(t, s, "GET", "/v1/organization/admin_api_keys?limit=1", "Bearer "+k)
	var doc struct {
		Object  string `json:"object"`
		HasMore *bool  `json:"has_more"`
		Data    []struct {
			ID, Name, RedactedValue string
			Owner                   map[string]any `json:"owner"`
		} `json:"data"`
	}
	if err := json.Unmarshal(a.body, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Object != "list" || doc.HasMore == nil || len(doc.Data) != 1 || doc.Data[0].ID == "" {
		t.Fatalf("body = %s", a.body)
	}
	for _, f := range []string{"type", "id", "name", "role"} {
		if _, ok := doc.Data[0].Owner[f]; !ok {
			t.Errorf("owner lacks %s", f)
		}
	}
	if strings.Contains(string(a.body), k[9:]) {
		t.Error("the admin key list carries the key")
	}
}

func TestRateLimitAnswer(t *testing.T) {
	s := start(t)
	k := NewToken()
	s.AddToken(k, Live)
	tests := []struct {
		name, retryAfter, reset string
	}{
		{"reset as seconds", "", "1s"},
		{"reset as minutes and seconds", "", "6m0s"},
		{"reset as milliseconds", "", "12ms"},
		{"Retry-After and reset", "7", "6m0s"},
		{"no wait headers", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s.Controls.SetRetryAfter(tc.retryAfter)
			s.SetRateLimitReset(tc.reset)
			s.Controls.Push(partnertest.Fault429)
			a := get(t, s, "GET", "/v1/models", "Bearer "+k)
			if a.status != 429 {
				t.Fatalf("status = %d", a.status)
			}
			if got := a.header.Get("Retry-After"); got != tc.retryAfter {
				t.Errorf("Retry-After = %q, want %q", got, tc.retryAfter)
			}
			if got := a.header.Get("X-Ratelimit-Reset-Requests"); got != tc.reset {
				t.Errorf("x-ratelimit-reset-requests = %q, want %q", got, tc.reset)
			}
			wantRemaining := "0"
			if tc.reset == "" {
				wantRemaining = ""
			}
			if got := a.header.Get("X-Ratelimit-Remaining-Requests"); got != wantRemaining {
				t.Errorf("x-ratelimit-remaining-requests = %q, want %q", got, wantRemaining)
			}
			msg, typ, code := errorOf(t, a.body)
			if code == nil || *code != "rate_limit_exceeded" || typ != "requests" || !strings.HasPrefix(msg, "Rate limit reached for requests") {
				t.Errorf("body = %s", a.body)
			}
		})
	}
	if s.Controls.RateLimited() != int64(len(tests)) {
		t.Errorf("RateLimited = %d", s.Controls.RateLimited())
	}
}

func TestServerErrorBodies(t *testing.T) {
	s := start(t)
	k := NewToken()
	s.AddToken(k, Live)
	for _, tc := range []struct {
		fault  partnertest.Fault
		status int
		msg    string
	}{
		{partnertest.Fault500, 500, "The server had an error"},
		{partnertest.Fault503, 503, "The engine is currently overloaded"},
	} {
		t.Run(tc.fault.String(), func(t *testing.T) {
			s.Controls.Push(tc.fault)
			a := get(t, s, "GET", "/v1/models", "Bearer "+k)
			msg, typ, _ := errorOf(t, a.body)
			if a.status != tc.status || typ != "server_error" || !strings.HasPrefix(msg, tc.msg) {
				t.Errorf("status %d body %s", a.status, a.body)
			}
		})
	}
}

func TestAddTokenAfterRevoke(t *testing.T) {
	s := start(t)
	k := NewToken()
	s.AddToken(k, Live)
	s.RevokeToken(k)
	s.AddToken(k, Restricted)
	if a := get(t, s, "GET", "/v1/models", "Bearer "+k); a.status != 401 || !strings.Contains(string(a.body), "insufficient permissions") {
		t.Errorf("status %d body %s", a.status, a.body)
	}
}

func TestStartOnFixedAddress(t *testing.T) {
	s := start(t)
	if _, err := Start(s.Listener.Addr().String()); err == nil {
		t.Fatal("Start on a busy address succeeded")
	} else if !strings.HasPrefix(err.Error(), "openaidouble: start:") {
		t.Errorf("error %q does not name the operation", err)
	}
}
