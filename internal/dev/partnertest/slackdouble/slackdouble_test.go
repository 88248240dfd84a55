package slackdouble

import (
	"encoding/json"
	"io"
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
	doc    map[string]any
}

// call sends auth.test as the verifier does unless header overrides it.
func call(t *testing.T, s *Server, method, path, body string, header map[string]string) answer {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("body %q is not JSON: %v", b, err)
	}
	return answer{resp.StatusCode, resp.Header, doc}
}

func bearer(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

func wantError(t *testing.T, a answer, status int, code string) {
	t.Helper()
	if a.status != status || a.doc["ok"] != false || a.doc["error"] != code {
		t.Errorf("answer = %d %v, want %d ok:false error %q", a.status, a.doc, status, code)
	}
	if a.header.Get("Content-Type") != "application/json; charset=utf-8" {
		t.Errorf("Content-Type = %q", a.header.Get("Content-Type"))
	}
}

func TestTokens(t *testing.T) {
	forms := map[string]*regexp.Regexp{
		NewToken():              regexp.MustCompile(`^xoxb-[0-9]{12}-[0-9]{13}-[A-Za-z0-9]{24}$`),
		NewUserToken():          regexp.MustCompile(`^xoxp-[0-9]{12}-[0-9]{12}-[0-9]{13}-[0-9a-f]{32}$`),
		NewRotatingToken(false): regexp.MustCompile(`^xoxe\.xoxb-1-[A-Za-z0-9]{163}$`),
		NewRotatingToken(true):  regexp.MustCompile(`^xoxe\.xoxp-1-[A-Za-z0-9]{163}$`),
	}
	for tok, re := range forms {
		if !re.MatchString(tok) {
			t.Errorf("token of the wrong form (%d characters, prefix %s)", len(tok), tok[:5])
		}
	}
	if a, b := NewToken(), NewToken(); a == b {
		t.Error("NewToken repeated a token")
	}
}

func TestAuthTest(t *testing.T) {
	s := start(t)
	bot, user := NewToken(), NewUserToken()
	botID, userID := s.AddToken(bot), s.AddToken(user)
	if botID.BotID == "" || userID.BotID != "" {
		t.Errorf("bot ids: %+v %+v", botID, userID)
	}
	for _, path := range []string{"/api/auth.test", "/auth.test"} {
		for _, method := range []string{http.MethodPost, http.MethodGet} {
			a := call(t, s, method, path, "", bearer(bot))
			if a.status != 200 || a.doc["ok"] != true || a.doc["team_id"] != botID.TeamID || a.doc["user_id"] != botID.UserID || a.doc["bot_id"] != botID.BotID {
				t.Errorf("%s %s: %d %v", method, path, a.status, a.doc)
			}
		}
	}
	a := call(t, s, http.MethodPost, "/api/auth.test", "", bearer(user))
	if a.doc["ok"] != true || a.doc["user_id"] != userID.UserID || a.doc["bot_id"] != nil {
		t.Errorf("user token: %v", a.doc)
	}
	// Slack also reads a token form field.
	if a := call(t, s, http.MethodPost, "/api/auth.test", "token="+bot, nil); a.doc["ok"] != true {
		t.Errorf("form token: %v", a.doc)
	}
	if s.Controls.CountFor(bot) != 5 || s.Controls.Requests() != 6 {
		t.Errorf("counted %d for the bot token, %d in all", s.Controls.CountFor(bot), s.Controls.Requests())
	}
}

func TestErrors(t *testing.T) {
	s := start(t)
	tok := NewToken()
	s.AddToken(tok)
	wantError(t, call(t, s, http.MethodPost, "/api/auth.test", "", nil), 200, "not_authed")
	wantError(t, call(t, s, http.MethodPost, "/api/auth.test", "", map[string]string{"Authorization": "Basic eDp5"}), 200, "not_authed")
	wantError(t, call(t, s, http.MethodPost, "/api/auth.test", "", bearer(NewToken())), 200, "invalid_auth")
	wantError(t, call(t, s, http.MethodPost, "/api/auth.test", "", map[string]string{"Authorization": "Bearer " + tok, "Content-Type": "application/xml"}), 200, "invalid_post_type")
	wantError(t, call(t, s, http.MethodPost, "/api/no.such", "", bearer(tok)), 200, "unknown_method")
	for st, code := range map[State]string{Revoked: "token_revoked", Expired: "token_expired", AccountInactive: "account_inactive", AddedToOrg: "team_added_to_org"} {
		other := NewUserToken()
		s.SetState(other, st)
		wantError(t, call(t, s, http.MethodPost, "/api/auth.test", "", bearer(other)), 200, code)
	}
	s.SetRejectStatus(http.StatusUnauthorized)
	wantError(t, call(t, s, http.MethodPost, "/api/auth.test", "", bearer(NewToken())), 401, "invalid_auth")
	wantError(t, call(t, s, http.MethodPost, "/api/auth.test", "", nil), 401, "not_authed")
	s.SetState(tok, AddedToOrg) // not an authentication error: still 200
	wantError(t, call(t, s, http.MethodPost, "/api/auth.test", "", bearer(tok)), 200, "team_added_to_org")
	s.Reset()
	s.SetState(tok, Live)
	for _, code := range []string{"invalid_form_data", "request_timeout", "fatal_error", "internal_error", "service_unavailable"} {
		s.SetError(code)
		wantError(t, call(t, s, http.MethodPost, "/api/auth.test", "", bearer(tok)), 200, code)
	}
}

func TestSessionToken(t *testing.T) {
	s := start(t)
	tok := "xoxc-123456789012-" + strings.Repeat("a", 40)
	s.AddSession(tok, "xoxd-secret-cookie")
	wantError(t, call(t, s, http.MethodPost, "/api/auth.test", "", bearer(tok)), 200, "invalid_auth")
	wantError(t, call(t, s, http.MethodPost, "/api/auth.test", "", map[string]string{"Authorization": "Bearer " + tok, "Cookie": "d=other"}), 200, "invalid_auth")
	if a := call(t, s, http.MethodPost, "/api/auth.test", "", map[string]string{"Authorization": "Bearer " + tok, "Cookie": "d=xoxd-secret-cookie"}); a.doc["ok"] != true {
		t.Errorf("session with its cookie: %v", a.doc)
	}
}

func TestRateLimited(t *testing.T) {
	s := start(t)
	tok := NewToken()
	s.AddToken(tok)
	s.Controls.SetRetryAfter("30")
	s.Controls.Push(partnertest.Fault429)
	a := call(t, s, http.MethodPost, "/api/auth.test", "", bearer(tok))
	wantError(t, a, 429, "ratelimited")
	if a.header.Get("Retry-After") != "30" {
		t.Errorf("Retry-After = %q, want seconds", a.header.Get("Retry-After"))
	}
	s.SetRateLimitStatus(http.StatusOK)
	s.Controls.Push(partnertest.Fault429)
	a = call(t, s, http.MethodPost, "/api/auth.test", "", bearer(tok))
	wantError(t, a, 200, "ratelimited")
	if a.header.Get("Retry-After") != "30" {
		t.Errorf("Retry-After = %q", a.header.Get("Retry-After"))
	}
	s.SetError("ratelimited")
	wantError(t, call(t, s, http.MethodPost, "/api/auth.test", "", bearer(tok)), 200, "ratelimited")
	s.Reset()
	s.Controls.SetRateLimit(0.001, 1)
	if a := call(t, s, http.MethodPost, "/api/auth.test", "", bearer(tok)); a.doc["ok"] != true {
		t.Fatalf("first request: %v", a.doc)
	}
	wantError(t, call(t, s, http.MethodPost, "/api/auth.test", "", bearer(tok)), 429, "ratelimited")
	if s.Controls.RateLimited() != 1 {
		t.Errorf("RateLimited = %d", s.Controls.RateLimited())
	}
}

func TestServerErrorsInSlacksEnvelope(t *testing.T) {
	s := start(t)
	tok := NewToken()
	s.AddToken(tok)
	s.Controls.Push(partnertest.Fault500, partnertest.Fault503)
	wantError(t, call(t, s, http.MethodPost, "/api/auth.test", "", bearer(tok)), 500, "fatal_error")
	wantError(t, call(t, s, http.MethodPost, "/api/auth.test", "", bearer(tok)), 503, "service_unavailable")
}
