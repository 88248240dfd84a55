// Package herokudouble is a local stand-in for the Heroku Platform API:
// GET /account authenticated by a Bearer token and gated on the version-3
// Accept header, answering with Heroku's account document, its
// {"id":…,"message":…} error bodies and its RateLimit-Remaining header,
// behind the shared fault layer of partnertest.
//
// Sources: ../shared/PARTNERS.md, section Heroku, and the Platform API
// reference (https://devcenter.heroku.com/articles/platform-api-reference:
// errors, rate limits, account info).
package herokudouble

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
)

// Accept is the only Accept header the Platform API serves (PARTNERS.md:
// 406 not_acceptable without it).
const Accept = "application/vnd.heroku+json; version=3"

// Pool and refill of Heroku's per-account request tokens: at most 4,500,
// refilled at about 75 a minute; RateLimit-Remaining on every answer
// (PARTNERS.md; platform-api-reference#rate-limits).
const (
	PoolSize        = 4500
	RefillPerMinute = 75
)

// Mode is how Heroku answers GET /account for a registered token.
type Mode int

// The answers a registered token can get. Where the sources are vague
// (which 403 an expired key gets), each shape is a mode of its own.
const (
	// Live: 200 with the account document.
	Live Mode = iota
	// Forbidden: 403 {"id":"forbidden"}: "provided credentials do not
	// provide access to specified resource" (platform-api-reference#errors),
	// a scoped token; help.heroku.com (PBGP6IDE) says expired keys get a
	// 403 too, without naming its id.
	Forbidden
	// Suspended: 403 {"id":"suspended"}: "account or application was
	// suspended" (platform-api-reference#errors).
	Suspended
	// Delinquent: 402 {"id":"delinquent"}: the account is delinquent for
	// non-payment (platform-api-reference#errors).
	Delinquent
	// Expired: 401 {"id":"unauthorized"}: "API token is missing, invalid or
	// expired" (platform-api-reference#errors).
	Expired
)

// Messages of Heroku's error bodies (platform-api-reference#errors, and
// the bodies clients quote), so that a client matching on them sees what
// it would see in production.
const (
	unauthorizedMessage  = "Invalid credentials provided."
	forbiddenMessage     = "You do not have access to the account."
	suspendedMessage     = "This account has been suspended."
	delinquentMessage    = "This account is delinquent."
	notAcceptableMessage = "Please specify a version along with Heroku's API MIME type. For example, `Accept: application/vnd.heroku+json; version=3`."
	notFoundMessage      = "The requested API endpoint was not found. Are you using the right HTTP verb (i.e. `GET` vs. `POST`), and did you specify your intended version with the `Accept` header?"
	rateLimitMessage     = "Your account reached the API rate limit\nPlease wait a few minutes before making new requests"
	serverMessage        = "Internal server error."
	unavailableMessage   = "API is temporarily unavailable."
)

// Server is a running Heroku double. Its embedded partnertest.Server gives
// the URL, the fault Controls and Close.
type Server struct {
	*partnertest.Server

	mu     sync.Mutex
	tokens map[string]*account // token -> its account
	pool   float64             // pool size of new accounts (SetPoolSize)
	now    func() time.Time
}

type account struct {
	id        string
	mode      Mode
	remaining float64   // request tokens left
	at        time.Time // when remaining was last refilled
}

// Start serves the double on addr ("" picks a free loopback port).
func Start(addr string) (*Server, error) {
	s := &Server{tokens: map[string]*account{}, pool: PoolSize, now: time.Now}
	ps, err := partnertest.Serve(addr, http.HandlerFunc(s.serveHTTP), WriteError)
	if err != nil {
		return nil, fmt.Errorf("herokudouble: start: %w", err)
	}
	s.Server = ps
	return s, nil
}

// AddToken registers a live token of the account accountID (a UUID).
func (s *Server) AddToken(token, accountID string) { s.AddTokenMode(token, accountID, Live) }

// AddTokenMode registers a token that gets the answer of mode.
func (s *Server) AddTokenMode(token, accountID string, mode Mode) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[token] = &account{id: accountID, mode: mode, remaining: s.pool, at: s.now()}
}

// RevokeToken makes a token unknown, as `heroku authorizations:revoke` or
// regenerating the dashboard API key does: Heroku then answers 401.
func (s *Server) RevokeToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.tokens, token)
}

// SetPoolSize sets the request-token pool of tokens registered from now
// on (PoolSize by default), so that a test can drain one quickly.
func (s *Server) SetPoolSize(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pool = float64(n)
}

// take spends one request token of the token's account, refilling it first
// at RefillPerMinute; it returns the account, what is left and whether the
// request may go on (false: the pool is empty, a 429).
func (s *Server) take(token string) (account, int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.tokens[token]
	if !ok {
		return account{}, 0, false
	}
	now := s.now()
	a.remaining = min(s.pool, a.remaining+now.Sub(a.at).Minutes()*RefillPerMinute)
	a.at = now
	if a.remaining < 1 {
		return *a, 0, false
	}
	a.remaining--
	return *a, int(a.remaining), true
}

// NewToken returns a random token in Heroku's prefixed format, HRKU-AA +
// 58 of [0-9A-Za-z_-] (gitleaks heroku-api-key-v2), so tests never carry a
// real one.
func NewToken() string {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_-"
	b := make([]byte, 58)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return "HRKU-AA" + string(b)
}

// NewLegacyKey returns a random legacy API key: a lower-case UUID.
func NewLegacyKey() string { return NewUUID() }

// NewUUID returns a random version-4 UUID, the form of Heroku's ids.
func NewUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// Account is the account document of GET /account
// (platform-api-reference#account-info), the fields a client may read.
type Account struct {
	AllowTracking           bool    `json:"allow_tracking"`
	Beta                    bool    `json:"beta"`
	CreatedAt               string  `json:"created_at"`
	Email                   string  `json:"email"`
	Federated               bool    `json:"federated"`
	ID                      string  `json:"id"`
	IdentityProvider        *string `json:"identity_provider"`
	LastLogin               string  `json:"last_login"`
	Name                    string  `json:"name"`
	SMSNumber               *string `json:"sms_number"`
	SuspendedAt             *string `json:"suspended_at"`
	DelinquentAt            *string `json:"delinquent_at"`
	TwoFactorAuthentication bool    `json:"two_factor_authentication"`
	UpdatedAt               string  `json:"updated_at"`
	Verified                bool    `json:"verified"`
}

func accountFor(id string) Account {
	return Account{
		AllowTracking: true, CreatedAt: "2012-01-01T12:00:00Z", Email: "user-" + id[:8] + "@example.com",
		ID: id, LastLogin: "2026-11-01T12:00:00Z", Name: "Test User", UpdatedAt: "2026-11-01T12:00:00Z", Verified: true,
	}
}

// bearer returns the token of an "Authorization: Bearer <token>" header.
func bearer(h string) string {
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

// serveHTTP checks the Accept header, authenticates, spends a request
// token, then answers /account, in the order the Platform API reports
// these errors.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Request-Id", NewUUID())
	// PARTNERS.md: 406 not_acceptable without the version-3 Accept header.
	if r.Header.Get("Accept") != Accept {
		WriteError(w, http.StatusNotAcceptable, "not_acceptable", notAcceptableMessage)
		return
	}
	token := bearer(r.Header.Get("Authorization"))
	if token != "" {
		s.Controls.CountKey(token)
	}
	acct, remaining, ok := s.take(token)
	switch {
	case acct.id == "":
		// PARTNERS.md: 401 unauthorized for a missing, invalid or revoked token.
		WriteError(w, http.StatusUnauthorized, "unauthorized", unauthorizedMessage)
		return
	case !ok:
		// PARTNERS.md: 429 rate_limit once the account's pool is empty.
		WriteError(w, http.StatusTooManyRequests, "rate_limit", rateLimitMessage)
		return
	}
	// PARTNERS.md: RateLimit-Remaining on every answer.
	w.Header().Set("RateLimit-Remaining", strconv.Itoa(remaining))
	switch acct.mode {
	case Expired:
		WriteError(w, http.StatusUnauthorized, "unauthorized", unauthorizedMessage)
		return
	case Forbidden:
		WriteError(w, http.StatusForbidden, "forbidden", forbiddenMessage)
		return
	case Suspended:
		WriteError(w, http.StatusForbidden, "suspended", suspendedMessage)
		return
	case Delinquent:
		WriteError(w, http.StatusPaymentRequired, "delinquent", delinquentMessage)
		return
	}
	if r.URL.Path != "/account" || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		WriteError(w, http.StatusNotFound, "not_found", notFoundMessage)
		return
	}
	writeJSON(w, http.StatusOK, accountFor(acct.id))
}

// WriteError writes an error as Heroku does, {"id":code,"message":msg}
// (PARTNERS.md); it is the double's partnertest.ErrorWriter. A 429 gets
// Heroku's rate_limit body and RateLimit-Remaining: 0; Heroku documents no
// wait header, so a Retry-After is there only when the fault layer set one
// (Controls.SetRetryAfter("") serves the documented answer alone). 500 and
// 503 from the fault layer get Heroku-style ids.
func WriteError(w http.ResponseWriter, status int, code, msg string) {
	switch status {
	case http.StatusTooManyRequests:
		w.Header().Set("RateLimit-Remaining", "0")
		code, msg = "rate_limit", rateLimitMessage
	case http.StatusInternalServerError:
		code, msg = "internal_server_error", serverMessage
	case http.StatusServiceUnavailable:
		code, msg = "unavailable", unavailableMessage
	}
	writeJSON(w, status, map[string]string{"id": code, "message": msg})
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
