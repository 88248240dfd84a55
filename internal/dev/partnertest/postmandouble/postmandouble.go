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
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
)

// HeaderAPIKey is the header Postman reads the API key from.
const HeaderAPIKey = "X-API-Key"

// RateLimitPerMinute is the X-RateLimit-Limit the double announces; Postman's
// API allows 300 requests a minute per key.
const RateLimitPerMinute = 300

// Messages of Postman's error bodies, verbatim, so that a client matching on
// them sees what it would see in production.
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

	mu   sync.RWMutex
	keys map[string]int // API key -> user id
}

// Start serves the double on addr ("" picks a free loopback port).
func Start(addr string) (*Server, error) {
	s := &Server{keys: map[string]int{}}
	ps, err := partnertest.Serve(addr, http.HandlerFunc(s.serveHTTP), WriteError)
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
// answers /me.
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
	writeJSON(w, http.StatusOK, meFor(userID))
}

type errorBody struct {
	Error struct {
		Name    string `json:"name"`
		Message string `json:"message"`
	} `json:"error"`
}

// WriteError writes an error as Postman does; it is the double's
// partnertest.ErrorWriter. 429 gets Postman's flat rateLimited body and its
// X-RateLimit-* headers (Retry-After, when set by the fault layer, is kept);
// 500 and 503 get Postman's server error names; everything else is
// {"error":{"name":code,"message":msg}}.
func WriteError(w http.ResponseWriter, status int, code, msg string) {
	switch status {
	case http.StatusTooManyRequests:
		reset := rateLimitReset(w.Header().Get("Retry-After"), time.Now())
		h := w.Header()
		h.Set("X-RateLimit-Limit", strconv.Itoa(RateLimitPerMinute))
		h.Set("X-RateLimit-Remaining", "0")
		h.Set("X-RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
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
