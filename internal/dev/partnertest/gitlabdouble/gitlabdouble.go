// Package gitlabdouble is a local stand-in for the GitLab REST API's GET
// /api/v4/personal_access_tokens/self, authenticated by the PRIVATE-TOKEN
// header: GitLab's token document, its two 401 bodies ({"message":"401
// Unauthorized"} for a token it does not know, the OAuth-style
// {"error":"invalid_token",…} for an expired or revoked one), the 403
// {"error":"insufficient_scope",…}, and the plain-text 429 "Retry later"
// with RateLimit-* headers, Retry-After in seconds, RateLimit-Reset in
// epoch seconds and RateLimit-ResetTime as an HTTP date; behind the shared
// fault layer of partnertest.
//
// Sources: ../shared/PARTNERS.md, section GitLab.com; gitlabhq
// doc/api/personal_access_tokens.md, lib/api/api_guard.rb,
// lib/gitlab/auth/auth_finders.rb and
// doc/administration/settings/user_and_ip_rate_limits.md
// (https://docs.gitlab.com/administration/settings/user_and_ip_rate_limits/).
// Where they are silent (a 200 for an inactive or revoked token, which a
// token that cannot authenticate should never get; 5xx bodies) the double
// serves the shape as a registered-token mode and says UNCONFIRMED.
package gitlabdouble

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
)

// SelfPath is the one path the double serves.
const SelfPath = "/api/v4/personal_access_tokens/self"

// Rate limits the double announces in RateLimit-Limit: GitLab.com's
// authenticated API limit per user and unauthenticated limit per IP, a
// minute each (PARTNERS.md, GitLab.com; docs.gitlab.com/user/gitlab_com/rate_limits/).
const (
	AuthenticatedPerMinute   = 2000
	UnauthenticatedPerMinute = 500
)

// GitLab's error bodies' texts (lib/api/api_guard.rb; Grape's unauthorized!).
const (
	// MessageUnauthorized is the API's 401 for a token it does not know and
	// for a request without one.
	MessageUnauthorized = "401 Unauthorized"
	// DescriptionExpired is the invalid_token description of an expired token.
	DescriptionExpired = "Token is expired. You can either do re-authorization or token refresh."
	// DescriptionRevoked is the invalid_token description of a revoked token.
	DescriptionRevoked = "Token was revoked. You have to re-authorize from the user."
	// DescriptionInsufficientScope is rack-oauth2's default description of
	// insufficient_scope, which api_guard.rb uses.
	DescriptionInsufficientScope = "The request requires higher privileges than provided by the access token."
	// RetryLater is the body of GitLab's 429 (Rack::Attack throttle response).
	RetryLater = "Retry later\n"
)

// State is what GitLab knows of a registered token, and so how it answers.
type State int

// The states of a registered token.
const (
	// Active: 200 with "active": true.
	Active State = iota
	// Restricted: a live token whose scopes GitLab refuses for this
	// endpoint: 403 insufficient_scope (api_guard.rb).
	Restricted
	// Expired: 401 invalid_token "Token is expired…" (api_guard.rb).
	Expired
	// Revoked: 401 invalid_token "Token was revoked…" (api_guard.rb).
	Revoked
	// Inactive200: 200 with "active": false, "revoked": false, as the
	// document lists an expired token (doc/api/personal_access_tokens.md);
	// that GitLab answers it to the token itself is UNCONFIRMED (contract §7).
	Inactive200
	// Revoked200: 200 with "revoked": true, "active": false; UNCONFIRMED
	// as Inactive200.
	Revoked200
)

// RateLimitHeaders chooses which of GitLab's wait headers a 429 carries, so
// that a verifier's reading of each can be tested alone.
type RateLimitHeaders int

// The 429 header forms.
const (
	// AllHeaders: Retry-After, RateLimit-Reset and RateLimit-ResetTime, as GitLab sends.
	AllHeaders RateLimitHeaders = iota
	// RetryAfterOnly: Retry-After (seconds) alone.
	RetryAfterOnly
	// ResetOnly: RateLimit-Reset (epoch seconds) with RateLimit-Remaining: 0.
	ResetOnly
	// ResetTimeOnly: RateLimit-ResetTime (HTTP date) alone.
	ResetTimeOnly
	// NoWait: none of the wait headers.
	NoWait
)

// DefaultScopes are the scopes of a token added without any.
var DefaultScopes = []string{"api", "read_user"}

// RestrictedScopes are a token that may read the registry only.
var RestrictedScopes = []string{"read_registry"}

type token struct {
	id        int64
	state     State
	scopes    []string
	expiresAt string // "" for none (null)
}

// Server is a running GitLab double. Its embedded partnertest.Server gives
// the URL, the fault Controls and Close.
type Server struct {
	*partnertest.Server

	mu      sync.RWMutex
	tokens  map[string]*token
	nextID  int64
	headers RateLimitHeaders
	window  int64 // the current minute (Unix)
	used    int   // requests in it
}

// Start serves the double on addr ("" picks a free loopback port).
func Start(addr string) (*Server, error) {
	s := &Server{tokens: map[string]*token{}, nextID: 1000}
	ps, err := partnertest.Serve(addr, http.HandlerFunc(s.serveHTTP), s.writeError)
	if err != nil {
		return nil, fmt.Errorf("gitlabdouble: start: %w", err)
	}
	s.Server = ps
	return s, nil
}

// AddToken registers a live token with its scopes (DefaultScopes when none
// are given) and no expiry.
func (s *Server) AddToken(tok string, scopes ...string) {
	if scopes == nil {
		scopes = DefaultScopes
	}
	s.SetToken(tok, Active, scopes, "")
}

// SetToken registers a token in a state, with its scopes and expires_at
// ("" for null, else a date such as 2026-12-31).
func (s *Server) SetToken(tok string, st State, scopes []string, expiresAt string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[tok]
	if !ok {
		s.nextID++
		t = &token{id: s.nextID}
		s.tokens[tok] = t
	}
	t.state, t.scopes, t.expiresAt = st, append([]string{}, scopes...), expiresAt
}

// RevokeToken makes a token revoked, as revoking it in GitLab does: 401
// invalid_token "Token was revoked…".
func (s *Server) RevokeToken(tok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.tokens[tok]; ok {
		t.state = Revoked
		return
	}
	s.nextID++
	s.tokens[tok] = &token{id: s.nextID, state: Revoked, scopes: DefaultScopes}
}

// SetRateLimitHeaders chooses the wait headers of every 429.
func (s *Server) SetRateLimitHeaders(h RateLimitHeaders) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.headers = h
}

// NewToken returns a random legacy token, glpat- + 20 of
// [0-9A-Za-z_-], so tests never carry a real one.
func NewToken() string {
	b := make([]byte, 15)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return "glpat-" + base64.RawURLEncoding.EncodeToString(b)
}

// NewRoutableToken returns a random routable token: glpat- + a base64url
// payload (random bytes and routing fields) + ".01." + the payload's length
// in 2 base-36 digits + the CRC32 of everything before it in 7 base-36
// digits (PARTNERS.md, GitLab.com: routable_token.rb).
func NewRoutableToken() string {
	random := make([]byte, 16)
	_, _ = rand.Read(random)
	payload := base64.RawURLEncoding.EncodeToString(append(random, []byte("\nc:1\no:1\nu:42")...))
	body := "glpat-" + payload + ".01." + pad36(int64(len(payload)), 2)
	return body + pad36(int64(crc32.ChecksumIEEE([]byte(body))), 7)
}

func pad36(n int64, width int) string {
	s := big.NewInt(n).Text(36)
	if len(s) > width {
		s = s[len(s)-width:]
	}
	return strings.Repeat("0", width-len(s)) + s
}

func (s *Server) lookup(tok string) (token, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	t, ok := s.tokens[tok]
	if !ok {
		return token{}, false
	}
	return *t, true
}

// count counts one request against the current minute's window and
// returns how many were made and when the window ends.
func (s *Server) count(now time.Time) (int, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := now.Unix() / 60; m != s.window {
		s.window, s.used = m, 0
	}
	s.used++
	return s.used, time.Unix((s.window+1)*60, 0)
}

// credential is the token of a request: PRIVATE-TOKEN, or an
// Authorization: Bearer token, which GitLab also takes for a personal
// access token (doc/api/rest/authentication.md). The private_token query
// parameter GitLab also takes is deliberately not read: a verifier must
// never put the token in a URL, and this makes one that does fail.
func credential(r *http.Request) string {
	if tok := r.Header.Get("Private-Token"); tok != "" {
		return tok
	}
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return tok
}

// serveHTTP answers as GitLab's REST API does.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	tok := credential(r)
	if tok != "" {
		s.Controls.CountKey(tok)
	}
	t, known := s.lookup(tok)
	// PARTNERS.md, GitLab.com: RateLimit-* on every response, the budget
	// of the token's user, or of the IP for a request that authenticates
	// nobody.
	s.setRateLimit(w.Header(), known && (t.state == Active || t.state == Restricted), false)
	switch {
	case r.URL.Path != SelfPath:
		// Grape's unknown route: {"error":"404 Not Found"}.
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "404 Not Found"})
	case tok == "" || !known:
		// No token, or one no PersonalAccessToken matches: auth_finders.rb
		// raises UnauthorizedError, which the API answers as Grape's
		// unauthorized!, {"message":"401 Unauthorized"} (PARTNERS.md marks
		// the unknown-token case UNCONFIRMED).
		writeJSON(w, http.StatusUnauthorized, map[string]string{"message": MessageUnauthorized})
	case t.state == Expired:
		writeInvalidToken(w, DescriptionExpired) // api_guard.rb, ExpiredError
	case t.state == Revoked:
		writeInvalidToken(w, DescriptionRevoked) // api_guard.rb, RevokedError
	case t.state == Restricted:
		// api_guard.rb, InsufficientScopeError: rack-oauth2's Forbidden,
		// no WWW-Authenticate; scope lists the scopes that would do.
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "insufficient_scope",
			"error_description": DescriptionInsufficientScope, "scope": "api read_api read_user"})
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		// The real endpoint also takes DELETE (it revokes the token); the
		// verifier never sends one, and the double refuses it.
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "405 Not Allowed"})
	default:
		// doc/api/personal_access_tokens.md, "Get single personal access
		// token" (self): the token's own document.
		writeJSON(w, http.StatusOK, s.document(t))
	}
}

// document is GitLab's personal access token document for t.
func (s *Server) document(t token) map[string]any {
	var expires any
	if t.expiresAt != "" {
		expires = t.expiresAt
	}
	return map[string]any{
		"id": t.id, "name": "ci token", "revoked": t.state == Revoked200, "created_at": "2025-01-15T09:30:00.000Z",
		"description": "", "scopes": t.scopes, "user_id": 42, "last_used_at": "2025-06-01T12:00:00.000Z",
		"active": t.state == Active, "expires_at": expires,
	}
}

// writeInvalidToken writes api_guard.rb's 401 for an expired or revoked
// token: rack-oauth2's Bearer Unauthorized with a WWW-Authenticate challenge.
func writeInvalidToken(w http.ResponseWriter, desc string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="The API", error="invalid_token", error_description="`+desc+`"`)
	writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token", "error_description": desc})
}

// setRateLimit sets GitLab's RateLimit-* headers for this minute's window.
func (s *Server) setRateLimit(h http.Header, authenticated, throttled bool) {
	used, reset := s.count(time.Now())
	limit, name := UnauthenticatedPerMinute, "throttle_unauthenticated_api"
	if authenticated {
		limit, name = AuthenticatedPerMinute, "throttle_authenticated_api"
	}
	left := max(limit-used, 0)
	if throttled {
		left = 0
	}
	h.Set("RateLimit-Name", name)
	h.Set("RateLimit-Limit", strconv.Itoa(limit))
	h.Set("RateLimit-Observed", strconv.Itoa(used))
	h.Set("RateLimit-Remaining", strconv.Itoa(left))
	h.Set("RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
}

// writeError writes a fault as GitLab does; it is the double's
// partnertest.ErrorWriter. 429 is Rack::Attack's plain-text "Retry later"
// with RateLimit-* headers, RateLimit-Reset in epoch seconds,
// RateLimit-ResetTime as an HTTP date and Retry-After in seconds
// (user_and_ip_rate_limits.md, "Response headers"); the fault layer's
// Retry-After, when set, is the wait. 500 and 503 get Grape's
// {"message":"<status> <text>"} (UNCONFIRMED for 503, which GitLab.com's
// edge may answer as a page).
func (s *Server) writeError(w http.ResponseWriter, status int, _ string, _ string) {
	if status != http.StatusTooManyRequests {
		writeJSON(w, status, map[string]string{"message": strconv.Itoa(status) + " " + http.StatusText(status)})
		return
	}
	h := w.Header()
	now := time.Now()
	reset := resetTime(h.Get("Retry-After"), now)
	h.Del("Retry-After")
	s.mu.RLock()
	form := s.headers
	s.mu.RUnlock()
	s.setRateLimit(h, false, true)
	h.Del("RateLimit-Reset")
	if form == AllHeaders || form == RetryAfterOnly {
		h.Set("Retry-After", strconv.FormatInt(int64(reset.Sub(now.Truncate(time.Second))/time.Second), 10))
	}
	if form == AllHeaders || form == ResetOnly {
		h.Set("RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
	}
	if form == AllHeaders || form == ResetTimeOnly {
		h.Set("RateLimit-ResetTime", reset.UTC().Format(http.TimeFormat))
	}
	h.Set("Content-Type", "text/plain")
	h.Set("Content-Length", strconv.Itoa(len(RetryLater)))
	w.WriteHeader(http.StatusTooManyRequests)
	_, _ = w.Write([]byte(RetryLater))
}

// resetTime is when the throttle lifts: the Retry-After the fault layer
// chose (seconds or an HTTP date), rounded up to a second, or the end of
// the current minute.
func resetTime(retryAfter string, now time.Time) time.Time {
	if secs, err := strconv.Atoi(retryAfter); err == nil && secs >= 0 {
		return time.Unix(now.Add(time.Duration(secs)*time.Second+time.Second-time.Nanosecond).Unix(), 0)
	}
	if t, err := http.ParseTime(retryAfter); err == nil {
		return t
	}
	return time.Unix((now.Unix()/60+1)*60, 0)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encode response", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
