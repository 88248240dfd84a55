// Package slackdouble is a local stand-in for Slack's Web API method
// auth.test: POST (or GET) /api/auth.test — also /auth.test, since the
// double's base URL stands for https://slack.com/api — authenticated by
// "Authorization: Bearer <token>" (or a token form field, which Slack also
// reads), answering with Slack's {"ok":…} envelope: ok:true with the
// workspace and user ids, ok:false with invalid_auth, not_authed,
// account_inactive, token_revoked, token_expired, team_added_to_org,
// invalid_post_type and ratelimited, behind the shared fault layer of
// partnertest.
//
// Sources: ../shared/PARTNERS.md, section Slack; https://api.slack.com/methods/auth.test,
// https://api.slack.com/web (tokens, content types, the envelope) and
// https://api.slack.com/docs/rate-limits (429 with Retry-After in seconds).
// Where they are silent (which HTTP status carries an error, the bodies of
// 5xx answers) the double serves each shape behind a knob and says
// UNCONFIRMED next to its choice.
package slackdouble

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"math/big"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
)

// State is what Slack knows of a registered token.
type State int

// The token states the double serves; each is an auth.test answer.
const (
	// Live answers ok:true (auth.test "Response").
	Live State = iota
	// Revoked answers token_revoked (auth.test "Errors").
	Revoked
	// Expired answers token_expired (listed for other methods; PARTNERS.md, Slack).
	Expired
	// AccountInactive answers account_inactive: the user or workspace was
	// deactivated (auth.test "Errors").
	AccountInactive
	// AddedToOrg answers team_added_to_org: the workspace is being moved
	// into an Enterprise Grid org, which says nothing of the token
	// (auth.test "Errors").
	AddedToOrg
)

var stateErrors = map[State]string{
	Revoked: "token_revoked", Expired: "token_expired", AccountInactive: "account_inactive", AddedToOrg: "team_added_to_org",
}

// Identity is what auth.test tells of a live token.
type Identity struct {
	TeamID, UserID, BotID string
}

// Server is a running Slack double. Its embedded partnertest.Server gives
// the URL, the fault Controls and Close.
type Server struct {
	*partnertest.Server

	mu           sync.RWMutex
	tokens       map[string]Identity
	states       map[string]State
	cookies      map[string]string // session token -> the d cookie it needs
	forced       string            // an error code every request gets ("" for none)
	rejectStatus int               // the HTTP status of auth errors
	limitStatus  int               // the HTTP status of "ratelimited"
}

// Start serves the double on addr ("" picks a free loopback port).
func Start(addr string) (*Server, error) {
	s := &Server{tokens: map[string]Identity{}, states: map[string]State{}, cookies: map[string]string{},
		rejectStatus: http.StatusOK, limitStatus: http.StatusTooManyRequests}
	ps, err := partnertest.Serve(addr, http.HandlerFunc(s.serveHTTP), s.writeError)
	if err != nil {
		return nil, fmt.Errorf("slackdouble: start: %w", err)
	}
	s.Server = ps
	return s, nil
}

// AddToken registers a live token with fresh ids (a bot id for xoxb-
// tokens) and returns them.
func (s *Server) AddToken(tok string) Identity {
	id := Identity{TeamID: "T" + randomID(10), UserID: "U" + randomID(10)}
	if strings.HasPrefix(tok, "xoxb-") || strings.HasPrefix(tok, "xoxe.xoxb-") {
		id.BotID = "B" + randomID(10)
	}
	s.AddTokenAs(tok, id)
	return id
}

// AddTokenAs registers a live token with the given ids.
func (s *Server) AddTokenAs(tok string, id Identity) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[tok] = id
	s.states[tok] = Live
}

// AddSession registers a live browser session token (xoxc-) that Slack
// accepts only with its d cookie (PARTNERS.md, Slack).
func (s *Server) AddSession(tok, dCookie string) Identity {
	id := s.AddToken(tok)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cookies[tok] = dCookie
	return id
}

// SetState puts a token in a state, registering it if need be.
func (s *Server) SetState(tok string, st State) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.tokens[tok]; !ok {
		s.tokens[tok] = Identity{TeamID: "T" + randomID(10), UserID: "U" + randomID(10)}
	}
	s.states[tok] = st
}

// RevokeToken makes a token revoked, as uninstalling the app or
// auth.revoke does.
func (s *Server) RevokeToken(tok string) { s.SetState(tok, Revoked) }

// SetError makes every authenticated request answer ok:false with code
// ("" turns it off): Slack's request-format and server errors
// (invalid_form_data, request_timeout, fatal_error, internal_error,
// service_unavailable; https://api.slack.com/methods/auth.test "Errors"),
// or "ratelimited" inside an HTTP 200 (SetRateLimitStatus says which status).
func (s *Server) SetError(code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forced = code
}

// SetRejectStatus sets the HTTP status of Slack's authentication errors:
// 200 by default (the Web API's rule that errors come with 200;
// https://api.slack.com/web "Evaluating responses"), 401 for the shape no
// source rules out (PARTNERS.md, Slack: 200 here is UNCONFIRMED).
func (s *Server) SetRejectStatus(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejectStatus = status
}

// SetRateLimitStatus sets the HTTP status of a "ratelimited" answer: 429
// with Retry-After (https://api.slack.com/docs/rate-limits, the default),
// or 200 as the Web API's envelope rule would give (PARTNERS.md, Slack).
func (s *Server) SetRateLimitStatus(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limitStatus = status
}

// Reset drops the knobs of this double (not its tokens) and the shared ones.
func (s *Server) Reset() {
	s.mu.Lock()
	s.forced, s.rejectStatus, s.limitStatus = "", http.StatusOK, http.StatusTooManyRequests
	s.mu.Unlock()
	s.Controls.Reset()
}

const digits = "0123456789"
const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

func randomFrom(alphabet string, n int) string {
	var b strings.Builder
	for range n {
		i, _ := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		b.WriteByte(alphabet[i.Int64()])
	}
	return b.String()
}

// randomID is the tail of a Slack id: upper-case letters and digits.
func randomID(n int) string { return randomFrom(alnum[:26]+digits, n) }

// NewToken returns a random bot token of the public samples' shape,
// xoxb-<12 digits>-<13 digits>-<24 letters and digits>, so tests never carry a real one.
func NewToken() string {
	return "xoxb-" + randomFrom(digits, 12) + "-" + randomFrom(digits, 13) + "-" + randomFrom(alnum, 24)
}

// NewUserToken returns a random user token,
// xoxp-<12 digits>-<12 digits>-<13 digits>-<32 hex>.
func NewUserToken() string {
	return "xoxp-" + randomFrom(digits, 12) + "-" + randomFrom(digits, 12) + "-" + randomFrom(digits, 13) + "-" + randomFrom("0123456789abcdef", 32)
}

// NewRotatingToken returns a random rotating (token rotation) bot or user
// access token, xoxe.xoxb-1-… / xoxe.xoxp-1-… with 163 letters and digits.
func NewRotatingToken(user bool) string {
	kind := "xoxb"
	if user {
		kind = "xoxp"
	}
	return "xoxe." + kind + "-1-" + randomFrom(alnum, 163)
}

// validPostTypes are the content types Slack reads a POST body as
// (https://api.slack.com/web, "invalid_post_type").
var validPostTypes = map[string]bool{
	"application/x-www-form-urlencoded": true, "multipart/form-data": true, "application/json": true, "text/plain": true,
}

// serveHTTP answers as Slack's auth.test does.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/auth.test" && r.URL.Path != "/auth.test" {
		// An unknown method: Slack answers unknown_method (https://api.slack.com/web).
		s.writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error": "unknown_method"})
		return
	}
	if r.Method == http.MethodPost {
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); r.Header.Get("Content-Type") != "" && (err != nil || !validPostTypes[mt]) {
			s.writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error": "invalid_post_type"})
			return
		}
	}
	tok, hasBearer := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !hasBearer || tok == "" {
		// Slack also reads a token form field (https://api.slack.com/web);
		// the verifier never sends one.
		if err := r.ParseForm(); err == nil {
			tok = r.PostForm.Get("token")
		}
	}
	if tok == "" {
		// auth.test "Errors": not_authed, "No authentication token provided."
		s.writeAuthError(w, "not_authed")
		return
	}
	s.Controls.CountKey(tok)
	s.mu.RLock()
	id, known := s.tokens[tok]
	st := s.states[tok]
	cookie, session := s.cookies[tok]
	forced := s.forced
	limitStatus := s.limitStatus
	s.mu.RUnlock()
	switch {
	case forced == "ratelimited":
		s.writeRateLimited(w, limitStatus, "1")
	case forced != "":
		s.writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error": forced})
	case strings.HasPrefix(tok, "xoxc-") && (!session || !hasCookie(r, cookie)):
		// PARTNERS.md, Slack: a session token without its d cookie is invalid_auth.
		s.writeAuthError(w, "invalid_auth")
	case !known:
		// auth.test "Errors": invalid_auth, "Some aspect of authentication cannot be validated."
		s.writeAuthError(w, "invalid_auth")
	case st == Live:
		// auth.test "Response"; the url, team and user names are made up.
		body := map[string]any{"ok": true, "url": "https://example-workspace.slack.com/", "team": "Example Workspace",
			"user": "example-user", "team_id": id.TeamID, "user_id": id.UserID, "is_enterprise_install": false}
		if id.BotID != "" {
			body["bot_id"] = id.BotID
		}
		s.writeJSON(w, http.StatusOK, body)
	case st == AddedToOrg:
		s.writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error": stateErrors[st]})
	default:
		s.writeAuthError(w, stateErrors[st])
	}
}

// hasCookie reports whether the request carries the d cookie a session needs.
func hasCookie(r *http.Request, want string) bool {
	c, err := r.Cookie("d")
	return err == nil && c.Value == want
}

func (s *Server) writeAuthError(w http.ResponseWriter, code string) {
	s.mu.RLock()
	status := s.rejectStatus
	s.mu.RUnlock()
	s.writeJSON(w, status, map[string]any{"ok": false, "error": code})
}

// writeRateLimited answers Slack's rate limit: {"ok":false,"error":"ratelimited"}
// with Retry-After in seconds (https://api.slack.com/docs/rate-limits).
func (s *Server) writeRateLimited(w http.ResponseWriter, status int, retryAfter string) {
	if retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	s.writeJSON(w, status, map[string]any{"ok": false, "error": "ratelimited"})
}

// writeError is the double's partnertest.ErrorWriter: a 429 becomes Slack's
// ratelimited answer (the fault layer has set Retry-After, in seconds; with
// SetRateLimitStatus(200) the status is 200), 500 and 503 Slack's envelope
// with fatal_error and service_unavailable (UNCONFIRMED: no source shows
// Slack's 5xx bodies).
func (s *Server) writeError(w http.ResponseWriter, status int, _ string, _ string) {
	switch status {
	case http.StatusTooManyRequests:
		s.mu.RLock()
		ls := s.limitStatus
		s.mu.RUnlock()
		s.writeRateLimited(w, ls, w.Header().Get("Retry-After"))
	case http.StatusServiceUnavailable:
		s.writeJSON(w, status, map[string]any{"ok": false, "error": "service_unavailable"})
	default:
		s.writeJSON(w, status, map[string]any{"ok": false, "error": "fatal_error"})
	}
}

func (s *Server) writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encode response", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
