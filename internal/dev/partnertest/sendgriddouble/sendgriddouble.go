// Package sendgriddouble is a local stand-in for the SendGrid v3 API: GET
// /v3/scopes authenticated by "Authorization: Bearer <key>", answering with
// SendGrid's scopes document, its {"errors":[…]} bodies (401 rejection, 403
// temporary block, 406 without Accept, 429 with X-RateLimit-* in epoch
// seconds), behind the shared fault layer of partnertest.
//
// Sources: ../shared/PARTNERS.md, section SendGrid; the v3 API's errors,
// responses and rate-limits pages under
// https://www.twilio.com/docs/sendgrid/api-reference/how-to-use-the-sendgrid-v3-api/.
// Where they are silent (the 403 and 406 messages, which check comes first)
// the double says UNCONFIRMED next to its choice.
package sendgriddouble

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
)

// RateLimitPerMinute is the X-RateLimit-Limit the double announces: GET
// /v3/scopes was observed announcing 600 (a 600 requests/minute/user
// default, twilio.com changelog "Imposing rate limits on some SendGrid V2
// API endpoints").
const RateLimitPerMinute = 600

// Messages of SendGrid's error bodies. The 401 messages are the observed
// ones (../shared/PARTNERS.md, SendGrid; support.sendgrid.com "4XX API
// Errors"); the 429 one is the rate-limits page's.
const (
	// MessageRevoked is SendGrid's 401 for a key that was deleted or revoked.
	MessageRevoked = "The provided authorization grant is invalid, expired, or revoked"
	// MessageWrongCredentials is SendGrid's 401 for a key it does not know.
	MessageWrongCredentials = "Permission denied, wrong credentials"
	// MessageNoAuth is the 401 for a request without a Bearer key.
	MessageNoAuth = "authorization required"
	// MessageTooManyRequests is the 429 message of the rate-limits page.
	MessageTooManyRequests = "too many requests"
	// MessageBlocked is the 403 message; the errors page names the status
	// ("Too many bad requests. Temporary block") but no body: UNCONFIRMED.
	MessageBlocked = "too many bad requests, temporarily blocked"
	// MessageNotAcceptable is the 406 message; the errors page names the
	// status ("Missing Accept header") but no body: UNCONFIRMED.
	MessageNotAcceptable = "missing or unsupported Accept header, e.g. Accept: application/json"
)

// Scope lists for the kinds of keys SendGrid issues (a key can only read
// its own scopes, and GET /v3/scopes needs none: every live key gets a 200,
// however restricted; PARTNERS.md, SendGrid).
var (
	// FullAccessScopes is a sample of what a "Full Access" key lists (the
	// real list has a few hundred entries).
	FullAccessScopes = []string{"2fa_required", "alerts.create", "alerts.read", "api_keys.read",
		"mail.send", "mail_settings.read", "scopes.read", "stats.read", "templates.read", "user.profile.read"}
	// RestrictedScopes is a "Restricted Access" key allowed to send mail only.
	RestrictedScopes = []string{"mail.send", "2fa_required", "sender_verification_eligible"}
	// BillingScopes is a "Billing Access" key.
	BillingScopes = []string{"billing.read", "billing.update", "2fa_required"}
)

// Server is a running SendGrid double. Its embedded partnertest.Server gives
// the URL, the fault Controls and Close.
type Server struct {
	*partnertest.Server

	mu      sync.RWMutex
	keys    map[string][]string // live key -> its scopes
	revoked map[string]bool
	blocked bool
	window  int64 // the current minute (Unix)
	used    int   // requests in it
}

// Start serves the double on addr ("" picks a free loopback port).
func Start(addr string) (*Server, error) {
	s := &Server{keys: map[string][]string{}, revoked: map[string]bool{}}
	ps, err := partnertest.Serve(addr, http.HandlerFunc(s.serveHTTP), WriteError)
	if err != nil {
		return nil, fmt.Errorf("sendgriddouble: start: %w", err)
	}
	s.Server = ps
	return s, nil
}

// AddToken registers a live API key with its scopes (FullAccessScopes when
// none are given). An empty, non-nil list serves {"scopes":[]}, which no
// source shows but none rules out.
func (s *Server) AddToken(key string, scopes ...string) {
	if scopes == nil {
		scopes = FullAccessScopes
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[key] = append([]string{}, scopes...)
	delete(s.revoked, key)
}

// RevokeToken makes a key invalid, as deleting it in SendGrid does.
func (s *Server) RevokeToken(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.keys, key)
	s.revoked[key] = true
}

// SetBlocked makes every request answer SendGrid's 403 temporary block,
// as after too many bad requests from one caller.
func (s *Server) SetBlocked(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.blocked = on
}

// NewToken returns a random key in SendGrid's form, SG.<22>.<43> of
// base64url characters, so tests never carry a real one.
func NewToken() string {
	id := make([]byte, 17)
	secret := make([]byte, 32)
	_, _ = rand.Read(id) // crypto/rand.Read never fails (Go 1.24+)
	_, _ = rand.Read(secret)
	return "SG." + base64.RawURLEncoding.EncodeToString(id)[:22] + "." + base64.RawURLEncoding.EncodeToString(secret)
}

func (s *Server) state(key string) (scopes []string, live, revoked, blocked bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	scopes, live = s.keys[key]
	return scopes, live, s.revoked[key], s.blocked
}

// remaining counts one request against the current minute's window and
// returns what is left and when the window ends.
func (s *Server) remaining(now time.Time) (int, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := now.Unix() / 60; m != s.window {
		s.window, s.used = m, 0
	}
	s.used++
	return max(RateLimitPerMinute-s.used, 0), time.Unix((s.window+1)*60, 0)
}

// serveHTTP answers as SendGrid's v3 API does.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	key, hasBearer := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if hasBearer && key != "" {
		s.Controls.CountKey(key)
	}
	scopes, live, revoked, blocked := s.state(key)
	// Every answer carries the rate-limit headers (rate-limits page:
	// "Each Web API request returns the following header information").
	left, reset := s.remaining(time.Now())
	h := w.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(RateLimitPerMinute))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(left))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
	switch {
	case blocked:
		// errors page: "403 Too many bad requests. Temporary block".
		// Body and headers UNCONFIRMED: the errors shape, no wait announced.
		h.Del("X-RateLimit-Limit")
		h.Del("X-RateLimit-Remaining")
		h.Del("X-RateLimit-Reset")
		WriteError(w, http.StatusForbidden, "", MessageBlocked)
	case !acceptsJSON(r.Header.Values("Accept")):
		// errors page: "406 Missing Accept header". That this comes
		// before authentication is UNCONFIRMED.
		WriteError(w, http.StatusNotAcceptable, "", MessageNotAcceptable)
	case !hasBearer || key == "":
		// errors page: "401 Requires authentication".
		WriteError(w, http.StatusUnauthorized, "", MessageNoAuth)
	case revoked:
		// PARTNERS.md, SendGrid: observed 401 message for a revoked key.
		WriteError(w, http.StatusUnauthorized, "", MessageRevoked)
	case !live:
		// PARTNERS.md, SendGrid: observed 401 message for wrong credentials.
		WriteError(w, http.StatusUnauthorized, "", MessageWrongCredentials)
	case r.URL.Path != "/v3/scopes":
		WriteError(w, http.StatusNotFound, "", "resource not found")
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		WriteError(w, http.StatusMethodNotAllowed, "", "method not allowed")
	default:
		// GET /v3/scopes: {"scopes":[...]} (PARTNERS.md, SendGrid; API
		// reference "Retrieve a list of scopes for which this user has access").
		writeJSON(w, http.StatusOK, map[string][]string{"scopes": scopes})
	}
}

// acceptsJSON reports whether Accept values admit application/json; no
// Accept at all does not (errors page, 406).
func acceptsJSON(values []string) bool {
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err == nil && (mt == "application/json" || mt == "application/*" || mt == "*/*") {
				return true
			}
		}
	}
	return false
}

// ErrorItem is one entry of SendGrid's errors array.
type ErrorItem struct {
	Field   *string `json:"field"`
	Message string  `json:"message"`
}

// ErrorBody is SendGrid's error document (errors page).
type ErrorBody struct {
	Errors []ErrorItem `json:"errors"`
}

// WriteError writes an error as SendGrid does; it is the double's
// partnertest.ErrorWriter. 429 gets SendGrid's "too many requests" and its
// X-RateLimit-* headers with the reset in epoch seconds, and no Retry-After
// (rate-limits page): the fault layer's Retry-After, when set, becomes the
// reset time. 500 and 503 get SendGrid's errors shape too.
func WriteError(w http.ResponseWriter, status int, _ string, msg string) {
	switch status {
	case http.StatusTooManyRequests:
		h := w.Header()
		reset := rateLimitReset(h.Get("Retry-After"), time.Now())
		h.Del("Retry-After")
		h.Set("X-RateLimit-Limit", strconv.Itoa(RateLimitPerMinute))
		h.Set("X-RateLimit-Remaining", "0")
		h.Set("X-RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
		msg = MessageTooManyRequests
	case http.StatusInternalServerError:
		msg = "internal server error" // UNCONFIRMED wording; errors page: "500 Internal server error"
	case http.StatusServiceUnavailable:
		msg = "service unavailable" // UNCONFIRMED wording
	}
	writeJSON(w, status, ErrorBody{Errors: []ErrorItem{{Message: msg}}})
}

// rateLimitReset is when the window reopens: the Retry-After the fault layer
// chose (seconds or an HTTP date), or the end of the current minute.
func rateLimitReset(retryAfter string, now time.Time) time.Time {
	if secs, err := strconv.Atoi(retryAfter); err == nil && secs >= 0 {
		return ceilSecond(now.Add(time.Duration(secs) * time.Second))
	}
	if t, err := http.ParseTime(retryAfter); err == nil {
		return t
	}
	return time.Unix((now.Unix()/60+1)*60, 0)
}

// ceilSecond rounds up, so a client waiting until the announced Unix time
// never comes back early.
func ceilSecond(t time.Time) time.Time {
	return time.Unix(t.Add(time.Second-time.Nanosecond).Unix(), 0)
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
