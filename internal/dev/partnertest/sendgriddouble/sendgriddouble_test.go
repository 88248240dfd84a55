package sendgriddouble

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

func do(t *testing.T, s *Server, method, path string, header map[string]string) answer {
	t.Helper()
	status, h, b := partnertest.Do(t, method, s.URL+path, header)
	return answer{status, h, b}
}

func authed(key string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + key, "Accept": "application/json"}
}

func errorsBody(msg string) string {
	return `{"errors":[{"field":null,"message":"` + msg + `"}]}`
}

func TestNewToken(t *testing.T) {
	format := regexp.MustCompile(`^SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}$`)
	seen := map[string]bool{}
	for range 50 {
		k := NewToken()
		if !format.MatchString(k) || len(k) != 69 {
			t.Fatalf("NewToken returned a key of the wrong format (len %d)", len(k))
		}
		if seen[k] {
			t.Fatal("NewToken repeated a key")
		}
		seen[k] = true
	}
}

func TestScopes(t *testing.T) {
	s := start(t)
	full, restricted, empty, revoked, unknown := NewToken(), NewToken(), NewToken(), NewToken(), NewToken()
	s.AddToken(full)
	s.AddToken(restricted, RestrictedScopes...)
	s.AddToken(empty, []string{}...)
	s.AddToken(revoked, BillingScopes...)
	s.RevokeToken(revoked)

	tests := []struct {
		name       string
		method     string
		path       string
		header     map[string]string
		wantStatus int
		wantBody   string
	}{
		{"full access key", "GET", "/v3/scopes", authed(full), 200, `{"scopes":["2fa_required","alerts.create","alerts.read","api_keys.read","mail.send","mail_settings.read","scopes.read","stats.read","templates.read","user.profile.read"]}`},
		{"restricted key", "GET", "/v3/scopes", authed(restricted), 200, `{"scopes":["mail.send","2fa_required","sender_verification_eligible"]}`},
		{"key without scopes", "GET", "/v3/scopes", authed(empty), 200, `{"scopes":[]}`},
		{"revoked key", "GET", "/v3/scopes", authed(revoked), 401, errorsBody(MessageRevoked)},
		{"unknown key", "GET", "/v3/scopes", authed(unknown), 401, errorsBody(MessageWrongCredentials)},
		{"no Authorization", "GET", "/v3/scopes", map[string]string{"Accept": "application/json"}, 401, errorsBody(MessageNoAuth)},
		{"Basic instead of Bearer", "GET", "/v3/scopes", map[string]string{"Authorization": "Basic " + full, "Accept": "application/json"}, 401, errorsBody(MessageNoAuth)},
		{"no Accept", "GET", "/v3/scopes", map[string]string{"Authorization": "Bearer " + full}, 406, errorsBody(MessageNotAcceptable)},
		{"Accept text/html", "GET", "/v3/scopes", map[string]string{"Authorization": "Bearer " + full, "Accept": "text/html"}, 406, errorsBody(MessageNotAcceptable)},
		{"Accept */*", "GET", "/v3/scopes", map[string]string{"Authorization": "Bearer " + restricted, "Accept": "*/*"}, 200, `{"scopes":["mail.send","2fa_required","sender_verification_eligible"]}`},
		{"auth before routing", "GET", "/v3/templates", authed(unknown), 401, errorsBody(MessageWrongCredentials)},
		{"unknown path", "GET", "/v3/templates", authed(full), 404, errorsBody("resource not found")},
		{"wrong method", "POST", "/v3/scopes", authed(full), 405, errorsBody("method not allowed")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := do(t, s, tc.method, tc.path, tc.header)
			if a.status != tc.wantStatus {
				t.Fatalf("status = %d, want %d (%s)", a.status, tc.wantStatus, a.body)
			}
			if ct := a.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if string(a.body) != tc.wantBody {
				t.Errorf("body = %s\nwant   %s", a.body, tc.wantBody)
			}
			if a.header.Get("X-RateLimit-Limit") != "600" || a.header.Get("X-RateLimit-Remaining") == "" {
				t.Errorf("rate-limit headers = %v", a.header)
			}
			reset, err := strconv.ParseInt(a.header.Get("X-RateLimit-Reset"), 10, 64)
			if now := time.Now().Unix(); err != nil || reset <= now-1 || reset > now+61 {
				t.Errorf("X-RateLimit-Reset = %q, want the end of this minute in epoch seconds", a.header.Get("X-RateLimit-Reset"))
			}
		})
	}
	if got := s.Controls.CountFor(full); got != 5 {
		t.Errorf("CountFor(full) = %d, want 5 (Basic is no Bearer key)", got)
	}
	if got := s.Controls.Requests(); got != int64(len(tests)) {
		t.Errorf("Requests = %d, want %d", got, len(tests))
	}
}

func TestAddTokenAfterRevoke(t *testing.T) {
	s := start(t)
	k := NewToken()
	s.AddToken(k, "mail.send")
	s.RevokeToken(k)
	s.AddToken(k, "stats.read")
	if a := do(t, s, "GET", "/v3/scopes", authed(k)); a.status != 200 || string(a.body) != `{"scopes":["stats.read"]}` {
		t.Errorf("status %d body %s", a.status, a.body)
	}
}

func TestBlocked(t *testing.T) {
	s := start(t)
	k := NewToken()
	s.AddToken(k)
	s.SetBlocked(true)
	a := do(t, s, "GET", "/v3/scopes", authed(k))
	if a.status != 403 || string(a.body) != errorsBody(MessageBlocked) {
		t.Fatalf("status %d body %s", a.status, a.body)
	}
	for _, h := range []string{"X-RateLimit-Remaining", "X-RateLimit-Reset", "Retry-After"} {
		if a.header.Get(h) != "" {
			t.Errorf("the block announces %s: %q", h, a.header.Get(h))
		}
	}
	s.SetBlocked(false)
	if a := do(t, s, "GET", "/v3/scopes", authed(k)); a.status != 200 {
		t.Errorf("after the block: %d", a.status)
	}
}

func TestRateLimitAnswer(t *testing.T) {
	s := start(t)
	k := NewToken()
	s.AddToken(k)
	tests := []struct {
		name       string
		retryAfter string
		wantReset  func(now time.Time) (lo, hi int64)
	}{
		{"fault wait in seconds", "7", func(now time.Time) (int64, int64) { return now.Unix() + 7, now.Unix() + 9 }},
		{"fault wait as a date", time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat), func(now time.Time) (int64, int64) {
			return now.Unix() + 88, now.Unix() + 91
		}},
		{"no fault wait: end of the minute", "", func(now time.Time) (int64, int64) { return now.Unix(), now.Unix() + 61 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s.Controls.SetRetryAfter(tc.retryAfter)
			s.Controls.Push(partnertest.Fault429)
			now := time.Now()
			a := do(t, s, "GET", "/v3/scopes", authed(k))
			if a.status != 429 || string(a.body) != errorsBody(MessageTooManyRequests) {
				t.Fatalf("status %d body %s", a.status, a.body)
			}
			if got := a.header.Get("Retry-After"); got != "" {
				t.Errorf("Retry-After = %q; SendGrid sends none", got)
			}
			if a.header.Get("X-RateLimit-Limit") != "600" || a.header.Get("X-RateLimit-Remaining") != "0" {
				t.Errorf("X-RateLimit-Limit/Remaining = %q/%q", a.header.Get("X-RateLimit-Limit"), a.header.Get("X-RateLimit-Remaining"))
			}
			reset, err := strconv.ParseInt(a.header.Get("X-RateLimit-Reset"), 10, 64)
			lo, hi := tc.wantReset(now)
			if err != nil || reset < lo || reset > hi {
				t.Errorf("X-RateLimit-Reset = %q, want a Unix time in [%d, %d]", a.header.Get("X-RateLimit-Reset"), lo, hi)
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
	s.AddToken(k)
	for _, f := range []partnertest.Fault{partnertest.Fault500, partnertest.Fault503} {
		t.Run(f.String(), func(t *testing.T) {
			s.Controls.Push(f)
			a := do(t, s, "GET", "/v3/scopes", authed(k))
			var body ErrorBody
			if err := json.Unmarshal(a.body, &body); err != nil || len(body.Errors) != 1 || body.Errors[0].Message == "" {
				t.Errorf("status %d body %s", a.status, a.body)
			}
			if f.String() != strconv.Itoa(a.status) {
				t.Errorf("status %d for fault %s", a.status, f)
			}
		})
	}
}

func TestStartOnFixedAddress(t *testing.T) {
	s := start(t)
	if _, err := Start(s.Listener.Addr().String()); err == nil {
		t.Fatal("Start on a busy address succeeded")
	} else if !strings.HasPrefix(err.Error(), "sendgriddouble: start:") {
		t.Errorf("error %q does not name the operation", err)
	}
}
