package stripedouble

import (
	"encoding/base64"
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

type errDoc struct {
	Error struct {
		Code, Message, Type string
		DocURL              string `json:"doc_url"`
	} `json:"error"`
}

func TestNewKey(t *testing.T) {
	format := regexp.MustCompile(`^(sk|rk)_live_[0-9A-Za-z]{99}$`)
	seen := map[string]bool{}
	for range 50 {
		for _, k := range []string{NewSecretKey(), NewRestrictedKey()} {
			if !format.MatchString(k) {
				t.Fatalf("a generated key has the wrong format (len %d)", len(k))
			}
			if seen[k] {
				t.Fatal("a key repeated")
			}
			seen[k] = true
		}
	}
	if !strings.HasPrefix(NewKey("sk_test_"), "sk_test_") {
		t.Error("NewKey ignores its prefix")
	}
}

func TestBalance(t *testing.T) {
	s := start(t)
	live, restricted, noPerm, expired, revoked, unknown, test := NewSecretKey(), NewRestrictedKey(), NewRestrictedKey(), NewSecretKey(), NewSecretKey(), NewSecretKey(), NewKey("sk_test_")
	s.AddKey(live, Live)
	s.AddKey(restricted, Live)
	s.AddKey(noPerm, NoBalancePermission)
	s.AddKey(expired, Expired)
	s.AddKey(revoked, Live)
	s.RevokeKey(revoked)
	s.AddKey(test, Live)
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(live+":"))

	tests := []struct {
		name       string
		method     string
		path, auth string
		wantStatus int
		wantType   string // error type; "" for a balance
		wantCode   string
		wantMsg    string // prefix of the error message
		livemode   bool
	}{
		{"secret key", http.MethodGet, "/v1/balance", "Bearer " + live, 200, "", "", "", true},
		{"restricted key with balance read", http.MethodGet, "/v1/balance", "Bearer " + restricted, 200, "", "", "", true},
		{"Basic auth, key as user", http.MethodGet, "/v1/balance", basic, 200, "", "", "", true},
		{"test-mode key", http.MethodGet, "/v1/balance", "Bearer " + test, 200, "", "", "", false},
		{"restricted key without balance read", http.MethodGet, "/v1/balance", "Bearer " + noPerm, 403, "invalid_request_error", "", "The provided key 'rk_live_***", false},
		{"expired key", http.MethodGet, "/v1/balance", "Bearer " + expired, 401, "invalid_request_error", "api_key_expired", "Expired API Key provided: sk_live_***", false},
		{"revoked key", http.MethodGet, "/v1/balance", "Bearer " + revoked, 401, "invalid_request_error", "", "Invalid API Key provided: sk_live_***", false},
		{"unknown key", http.MethodGet, "/v1/balance", "Bearer " + unknown, 401, "invalid_request_error", "", "Invalid API Key provided: ", false},
		{"no Authorization", http.MethodGet, "/v1/balance", "", 401, "invalid_request_error", "", "You did not provide an API key.", false},
		{"key in another scheme", http.MethodGet, "/v1/balance", "Token " + live, 401, "invalid_request_error", "", "You did not provide an API key.", false},
		{"auth before routing", http.MethodGet, "/v1/charges", "Bearer " + unknown, 401, "invalid_request_error", "", "Invalid API Key provided", false},
		{"unknown path", http.MethodGet, "/v1/charges", "Bearer " + live, 404, "invalid_request_error", "", "Unrecognized request URL (GET: /v1/charges)", false},
		{"wrong method", http.MethodPost, "/v1/balance", "Bearer " + live, 404, "invalid_request_error", "", "Unrecognized request URL (POST: /v1/balance)", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := get(t, s, tc.method, tc.path, tc.auth)
			if a.status != tc.wantStatus {
				t.Fatalf("status = %d, want %d: %s", a.status, tc.wantStatus, a.body)
			}
			if ct := a.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if a.header.Get("Request-Id") == "" {
				t.Error("no Request-Id")
			}
			if tc.wantType == "" {
				var b Balance
				if err := json.Unmarshal(a.body, &b); err != nil {
					t.Fatal(err)
				}
				if b.Object != "balance" || b.Livemode != tc.livemode || len(b.Available) == 0 || len(b.Pending) == 0 {
					t.Errorf("balance = %s", a.body)
				}
				return
			}
			var e errDoc
			if err := json.Unmarshal(a.body, &e); err != nil {
				t.Fatal(err)
			}
			if e.Error.Type != tc.wantType || e.Error.Code != tc.wantCode || !strings.HasPrefix(e.Error.Message, tc.wantMsg) {
				t.Errorf("error = %s", a.body)
			}
			if (e.Error.Code != "") != (e.Error.DocURL != "") {
				t.Errorf("doc_url %q with code %q", e.Error.DocURL, e.Error.Code)
			}
			for _, k := range []string{live, restricted, noPerm, expired, revoked, unknown} {
				if strings.Contains(string(a.body), k[8:]) {
					t.Error("an error body quotes a whole key; Stripe shows only its last four characters")
				}
			}
		})
	}
	if got := s.Controls.CountFor(live); got != 4 {
		t.Errorf("CountFor(live) = %d, want 4", got)
	}
	if got := s.Controls.Requests(); got != int64(len(tests)) {
		t.Errorf("Requests = %d, want %d", got, len(tests))
	}
}

func TestRevokeThenAdd(t *testing.T) {
	s := start(t)
	k := NewSecretKey()
	s.AddKey(k, Live)
	s.RevokeKey(k)
	if a := get(t, s, http.MethodGet, "/v1/balance", "Bearer "+k); a.status != 401 {
		t.Fatalf("revoked key: %d", a.status)
	}
	s.AddKey(k, NoBalancePermission)
	if a := get(t, s, http.MethodGet, "/v1/balance", "Bearer "+k); a.status != 403 {
		t.Fatalf("re-added key: %d", a.status)
	}
}

func TestRateLimitAnswer(t *testing.T) {
	s := start(t)
	k := NewSecretKey()
	s.AddKey(k, Live)
	for _, retryAfter := range []string{"", "3"} {
		t.Run("Retry-After="+retryAfter, func(t *testing.T) {
			s.Controls.SetRetryAfter(retryAfter)
			s.Controls.Push(partnertest.Fault429)
			a := get(t, s, http.MethodGet, "/v1/balance", "Bearer "+k)
			if a.status != 429 || a.header.Get("Retry-After") != retryAfter || a.header.Get("Stripe-Should-Retry") != "true" {
				t.Fatalf("status %d, Retry-After %q, Stripe-Should-Retry %q", a.status, a.header.Get("Retry-After"), a.header.Get("Stripe-Should-Retry"))
			}
			var e errDoc
			if err := json.Unmarshal(a.body, &e); err != nil || e.Error.Type != "invalid_request_error" || e.Error.Code != "rate_limit" {
				t.Errorf("body = %s (%v)", a.body, err)
			}
		})
	}
	if s.Controls.RateLimited() != 2 {
		t.Errorf("RateLimited = %d", s.Controls.RateLimited())
	}
}

func TestServerErrorBodies(t *testing.T) {
	s := start(t)
	k := NewSecretKey()
	s.AddKey(k, Live)
	for _, f := range []partnertest.Fault{partnertest.Fault500, partnertest.Fault503} {
		s.Controls.Push(f)
		a := get(t, s, http.MethodGet, "/v1/balance", "Bearer "+k)
		var e errDoc
		if err := json.Unmarshal(a.body, &e); err != nil || a.status < 500 || e.Error.Type != "api_error" || e.Error.Message == "" {
			t.Errorf("%s: status %d body %s", f, a.status, a.body)
		}
	}
}

func TestRedact(t *testing.T) {
	k := "sk_live_" + strings.Repeat("a", 20) + "WXYZ"
	if got := redact(k); got != "sk_live_"+strings.Repeat("*", 20)+"WXYZ" {
		t.Errorf("redact = %q", got)
	}
	if got := redact("sk_live_ab"); got != "sk_live_****" {
		t.Errorf("redact short = %q", got)
	}
}

func TestStartOnFixedAddress(t *testing.T) {
	s := start(t)
	if _, err := Start(s.Listener.Addr().String()); err == nil {
		t.Fatal("Start on a busy address succeeded")
	} else if !strings.HasPrefix(err.Error(), "stripedouble: start:") {
		t.Errorf("error %q does not name the operation", err)
	}
}
