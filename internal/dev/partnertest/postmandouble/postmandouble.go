// Package postmandouble is a local stand-in for the Postman API: GET /me
// authenticated by the X-API-Key header, answering with Postman's own user
// document, its AuthenticationError body and its rate-limit body and headers,
// behind the shared fault layer of partnertest.
package postmandouble

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
)

// HeaderAPIKey is the header Postman reads the API key from
// (learning.postman.com, Postman API authentication; ../shared/PARTNERS.md,
// Postman: "GET /me, X-Api-Key"). Header names are case-insensitive.
const HeaderAPIKey = "X-API-Key"

// RateLimitPerMinute is the X-RateLimit-Limit the double announces; Postman's
// API allows 300 requests a minute per key (../shared/PARTNERS.md, Postman;
// https://learning.postman.com/docs/developer/postman-api/postman-api-rate-limits/).
// An older support article (support.getpostman.com, "Postman API Usage and
// Rate Limit") said 60 a minute: the current docs win.
const RateLimitPerMinute = 300

// Messages of Postman's error bodies, so that a client matching on them sees
// what it would see in production. authMessage is the 401 of
// ../shared/PARTNERS.md (Postman). The 404, 500 and 503 messages are the
// double's own: no source we read quotes them (the 503 of the support article
// above names itself "503 service unavailable" with a longer message); the
// verifier judges those answers by status, not by message.
const (
	authMessage      = "Invalid API Key. Every request requires a valid API Key to be sent."
	notFoundMessage  = "Requested resource not found"
	serverMessage    = "An error has occurred on the server."
	unavailableError = "Service unavailable. Please try again later."
)

// Server is a running Postman double. Its embedded partnertest.Server gives
// the URL, the fault Controls and Close.
type Server struct {
	*partnertest.Server

	mu        sync.RWMutex
	keys      map[string]int // API key -> user id
	legacy429 atomic.Bool
}

// Start serves the double on addr ("" picks a free loopback port).
func Start(addr string) (*Server, error) {
	s := &Server{keys: map[string]int{}}
	ps, err := partnertest.Serve(addr, http.HandlerFunc(s.serveHTTP), s.writeError)
	if err != nil {
		return nil, fmt.Errorf("postmandouble: start: %w", err)
	}
	s.Server = ps
	return s, nil
}

// AddKey registers a live API key belonging to the user with id userID.
func (s *Server) AddKey(key string, userID int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[key] = userID
}

// RevokeKey makes a key invalid, as deleting it in Postman does.
func (s *Server) RevokeKey(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.keys, key)
}

func (s *Server) lookup(key string) (int, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	id, ok := s.keys[key]
	return id, ok
}

// NewAPIKey returns a random key in Postman's format, PMAK-<24 hex>-<34 hex>,
// so tests never carry a real one.
func NewAPIKey() string {
	a := make([]byte, 12)
	b := make([]byte, 17)
	_, _ = rand.Read(a) // crypto/rand.Read never fails (Go 1.24+)
	_, _ = rand.Read(b)
	return "PMAK-" + hex.EncodeToString(a) + "-" + hex.EncodeToString(b)
}

// User is the user object of GET /me.
type User struct {
	ID       int     `json:"id"`
	Username string  `json:"username"`
	Email    string  `json:"email"`
	FullName string  `json:"fullName"`
	Avatar   *string `json:"avatar"`
	IsPublic bool    `json:"isPublic"`
}

// Operation is one usage counter of GET /me's operations list.
type Operation struct {
	Name    string `json:"name"`
	Limit   int    `json:"limit"`
	Usage   int    `json:"usage"`
	Overage int    `json:"overage"`
}

// Me is the document GET /me answers with.
type Me struct {
	User       User        `json:"user"`
	Operations []Operation `json:"operations"`
}

func meFor(userID int) Me {
	return Me{
		User: User{
			ID:       userID,
			Username: "user-" + strconv.Itoa(userID),
			Email:    "user-" + strconv.Itoa(userID) + "@example.com",
			FullName: "Test User " + strconv.Itoa(userID),
		},
		Operations: []Operation{
			{Name: "api_usage", Limit: 1000, Usage: 1},
			{Name: "mock_usage", Limit: 1000},
			{Name: "monitor_request_runs", Limit: 1000},
			{Name: "collection_run_limit", Limit: 25},
		},
	}
}

// serveHTTP authenticates first, as Postman does for every route, then
// answers /me. Without the X-API-Key header the double answers the same 401
// AuthenticationError as for a wrong key: the message ("Every request
// requires a valid API Key to be sent") says so, but no source shows the
// answer to a request without the header; UNCONFIRMED.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get(HeaderAPIKey)
	if key != "" {
		s.Controls.CountKey(key)
	}
	userID, ok := s.lookup(key)
	if key == "" || !ok {
		WriteError(w, http.StatusUnauthorized, "AuthenticationError", authMessage)
		return
	}
	if r.URL.Path != "/me" || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		WriteError(w, http.StatusNotFound, "notFound", notFoundMessage)
		return
	}
	// 200 {"user":{"id",...},"operations":[...]} (../shared/PARTNERS.md,
	// Postman; learning.postman.com, users API). The user's fields beyond id
	// (teamId, teamName, teamDomain in the docs' example) are not all served:
	// the verifier reads user.id only, and make smoke-live shows the rest.
	writeJSON(w, http.StatusOK, meFor(userID))
}

type errorBody struct {
	Error struct {
		Name    string `json:"name"`
		Message string `json:"message"`
	} `json:"error"`
}

// WriteError writes an error as Postman does; it is the double's
// partnertest.ErrorWriter. 429 gets the headers of the current docs
// (learning.postman.com, postman-api-rate-limits; ../shared/PARTNERS.md,
// Postman): X-RateLimit-Limit/-Remaining/-Reset (UTC epoch seconds),
// X-RateLimit-RetryAfter (seconds), RateLimit and RateLimit-Policy:
// 300;w=60; Retry-After, when set by the fault layer, is kept. The docs
// show no 429 body; the double sends the flat rateLimited body Postman's
// API answers with today, or with SetLegacyRateLimitBody the older support
// article's {"error":{"name":"rateLimitError","message":"... retry at
// <epoch milliseconds>"}}. A 429 is a rate limit by its status alone, so no
// body shape changes a verdict (the verifier's table has a row for each);
// 500 and 503 get Postman's server error names; everything else is
// {"error":{"name":code,"message":msg}}.
func WriteError(w http.ResponseWriter, status int, code, msg string) {
	writeError(w, status, code, msg, false)
}

// SetLegacyRateLimitBody makes the double's 429s carry the support
// article's nested body instead of the flat one.
func (s *Server) SetLegacyRateLimitBody(on bool) { s.legacy429.Store(on) }

func (s *Server) writeError(w http.ResponseWriter, status int, code, msg string) {
	writeError(w, status, code, msg, s.legacy429.Load())
}

func writeError(w http.ResponseWriter, status int, code, msg string, legacy429 bool) {
	// 401 {"error":{"name":"AuthenticationError","message":...}} is
	// ../shared/PARTNERS.md (Postman); the other statuses reuse that envelope,
	// as the support article's 429 and 503 bodies do.
	switch status {
	case http.StatusTooManyRequests:
		now := time.Now()
		reset := rateLimitReset(w.Header().Get("Retry-After"), now)
		wait := strconv.FormatInt(int64((reset.Sub(now)+time.Second-1)/time.Second), 10) // rounded up: never early
		h := w.Header()
		h.Set("X-RateLimit-Limit", strconv.Itoa(RateLimitPerMinute))
		h.Set("X-RateLimit-Remaining", "0")
		h.Set("X-RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
		h.Set("X-RateLimit-RetryAfter", wait)
		h.Set("RateLimit", "limit="+strconv.Itoa(RateLimitPerMinute)+", remaining=0, reset="+wait)
		h.Set("RateLimit-Policy", strconv.Itoa(RateLimitPerMinute)+";w=60")
		if legacy429 {
			var b errorBody
			b.Error.Name = "rateLimitError"
			b.Error.Message = "You have exceeded the rate limit, retry at " + strconv.FormatInt(reset.UnixMilli(), 10)
			writeJSON(w, status, b)
			return
		}
		writeJSON(w, status, map[string]string{
			"error":   "rateLimited",
			"message": "Rate limit exceeded. Please retry after " + strconv.FormatInt(reset.Unix(), 10),
		})
		return
	case http.StatusInternalServerError:
		code, msg = "serverError", serverMessage
	case http.StatusServiceUnavailable:
		code, msg = "serviceUnavailable", unavailableError
	}
	var b errorBody
	b.Error.Name, b.Error.Message = code, msg
	writeJSON(w, status, b)
}

// rateLimitReset is when the window reopens: the Retry-After the fault layer
// chose (seconds or an HTTP date), or the end of Postman's one-minute window.
func rateLimitReset(retryAfter string, now time.Time) time.Time {
	if secs, err := strconv.Atoi(retryAfter); err == nil && secs >= 0 {
		return ceilSecond(now.Add(time.Duration(secs) * time.Second))
	}
	if t, err := http.ParseTime(retryAfter); err == nil {
		return t
	}
	return ceilSecond(now.Add(time.Minute))
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
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
