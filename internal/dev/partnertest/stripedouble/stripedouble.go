// Package stripedouble is a local stand-in for the Stripe API: GET
// /v1/balance authenticated by the key as a Bearer token (or as the Basic
// user name, as curl -u sends it), answering with Stripe's balance object,
// its invalid_request_error bodies for unknown, expired and under-permitted
// keys, and its rate-limit answer, behind the shared fault layer of
// partnertest. Sources: ../shared/PARTNERS.md (Stripe) and the Stripe docs
// cited at each answer.
package stripedouble

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
)

// Mode is how the double answers GET /v1/balance for a registered key.
type Mode int

// The answers a registered key can get.
const (
	// Live: 200 with a balance object (docs.stripe.com/api/balance/balance_retrieve).
	Live Mode = iota
	// NoBalancePermission: a restricted key without the balance read
	// permission, 403 invalid_request_error "… does not have the required
	// permissions …" (observed; ../shared/PARTNERS.md, Stripe).
	NoBalancePermission
	// Expired: a rolled key past its expiry, 401 invalid_request_error with
	// code api_key_expired, "Expired API Key provided: …" (observed in
	// Stripe CLI output; docs.stripe.com/error-codes#api-key-expired).
	Expired
)

// Server is a running Stripe double. Its embedded partnertest.Server gives
// the URL, the fault Controls and Close.
type Server struct {
	*partnertest.Server

	mu   sync.RWMutex
	keys map[string]Mode
}

// Start serves the double on addr ("" picks a free loopback port).
func Start(addr string) (*Server, error) {
	s := &Server{keys: map[string]Mode{}}
	ps, err := partnertest.Serve(addr, http.HandlerFunc(s.serveHTTP), WriteError)
	if err != nil {
		return nil, fmt.Errorf("stripedouble: start: %w", err)
	}
	s.Server = ps
	return s, nil
}

// AddKey registers a key that answers as m.
func (s *Server) AddKey(key string, m Mode) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[key] = m
}

// RevokeKey deletes a key, as deleting it in the Dashboard does: Stripe
// then answers "Invalid API Key provided".
func (s *Server) RevokeKey(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.keys, key)
}

func (s *Server) lookup(key string) (Mode, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	m, ok := s.keys[key]
	return m, ok
}

const alnum = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// NewKey returns a random key of Stripe's current form: prefix (sk_live_,
// rk_live_, sk_test_ or rk_test_) + 99 letters and digits (the length of
// the keys quoted in public answers; ../shared/PARTNERS.md, Stripe), so
// tests never carry a real one.
func NewKey(prefix string) string {
	b := make([]byte, 99)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	for i := range b {
		b[i] = alnum[int(b[i])%len(alnum)]
	}
	return prefix + string(b)
}

// NewSecretKey returns a random live-mode secret key, sk_live_ + 99.
func NewSecretKey() string { return NewKey("sk_live_") }

// NewRestrictedKey returns a random live-mode restricted key, rk_live_ + 99.
func NewRestrictedKey() string { return NewKey("rk_live_") }

// bearer reads the key from Authorization: "Bearer <key>", or Basic with
// the key as user name and an empty password (docs.stripe.com/api/authentication).
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if k, ok := strings.CutPrefix(h, "Bearer "); ok {
		return strings.TrimSpace(k)
	}
	if enc, ok := strings.CutPrefix(h, "Basic "); ok {
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(enc))
		if err == nil {
			user, _, _ := strings.Cut(string(raw), ":")
			return user
		}
	}
	return ""
}

// redact is how Stripe quotes a key in an error message: its prefix, stars
// and the last characters (observed: "sk_live_****…", "rk_test_*****…"; ../shared/PARTNERS.md, Stripe).
func redact(key string) string {
	prefix := ""
	if i := strings.LastIndexByte(key, '_'); i >= 0 && i < 8 {
		prefix = key[:i+1]
	}
	if len(key) <= len(prefix)+4 {
		return prefix + "****"
	}
	return prefix + strings.Repeat("*", len(key)-len(prefix)-4) + key[len(key)-4:]
}

// Messages of Stripe's error bodies, verbatim where a public source quotes them.
const (
	// docs.stripe.com/api/authentication; Stripe answers 401 without a key.
	noKeyMessage = "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/."
	// docs.stripe.com/error-codes#rate-limit.
	rateLimitMessage = "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits."
	// docs.stripe.com/error-low-level: 5xx "Something went wrong on Stripe's end".
	serverMessage = "Something went wrong on Stripe's end."
)

// serveHTTP authenticates first, then routes (UNCONFIRMED: the order in
// which Stripe checks the key and the URL).
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	key := bearer(r)
	if key == "" {
		WriteError(w, http.StatusUnauthorized, "", noKeyMessage)
		return
	}
	s.Controls.CountKey(key)
	mode, ok := s.lookup(key)
	if !ok {
		// Unknown or deleted key (observed; ../shared/PARTNERS.md, Stripe).
		WriteError(w, http.StatusUnauthorized, "", "Invalid API Key provided: "+redact(key))
		return
	}
	if r.URL.Path != "/v1/balance" || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		// Stripe's answer for an unknown route (UNCONFIRMED wording).
		WriteError(w, http.StatusNotFound, "", fmt.Sprintf("Unrecognized request URL (%s: %s). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.", r.Method, r.URL.Path))
		return
	}
	switch mode {
	case Expired:
		WriteError(w, http.StatusUnauthorized, "api_key_expired", "Expired API Key provided: "+redact(key))
	case NoBalancePermission:
		WriteError(w, http.StatusForbidden, "", "The provided key '"+redact(key)+"' does not have the required permissions for this endpoint on account 'acct_1DoubleEXAMPLE0000'. Having the 'rak_balance_read' permission would allow this request to continue.")
	default:
		writeJSON(w, http.StatusOK, balanceFor(strings.Contains(key, "_live_")))
	}
}

// Amount is one currency's amount of a balance.
type Amount struct {
	Amount      int64            `json:"amount"`
	Currency    string           `json:"currency"`
	SourceTypes map[string]int64 `json:"source_types"`
}

// Balance is the balance object of GET /v1/balance
// (docs.stripe.com/api/balance/balance_object).
type Balance struct {
	Object    string   `json:"object"`
	Available []Amount `json:"available"`
	Pending   []Amount `json:"pending"`
	Livemode  bool     `json:"livemode"`
}

func balanceFor(livemode bool) Balance {
	zero := []Amount{{Amount: 0, Currency: "usd", SourceTypes: map[string]int64{"card": 0}}}
	return Balance{Object: "balance", Available: zero, Pending: zero, Livemode: livemode}
}

// errorBody is Stripe's error document (docs.stripe.com/api/errors).
type errorBody struct {
	Error struct {
		Code    string `json:"code,omitempty"`
		DocURL  string `json:"doc_url,omitempty"`
		Message string `json:"message"`
		Type    string `json:"type"`
	} `json:"error"`
}

// WriteError writes an error as Stripe does; it is the double's
// partnertest.ErrorWriter. Client errors are invalid_request_error with
// the given code (none when ""); 429 is the rate_limit error with
// Stripe-Should-Retry: true (docs.stripe.com/error-low-level#should-retry;
// that Stripe sends it on 429 is UNCONFIRMED) and a Retry-After only when
// the fault layer set one (Stripe documents none: docs.stripe.com/rate-limits
// asks for exponential backoff); 5xx are api_error.
func WriteError(w http.ResponseWriter, status int, code, msg string) {
	var b errorBody
	b.Error.Type = "invalid_request_error"
	switch {
	case status == http.StatusTooManyRequests:
		code, msg = "rate_limit", rateLimitMessage
		w.Header().Set("Stripe-Should-Retry", "true")
	case status >= 500:
		b.Error.Type, code, msg = "api_error", "", serverMessage
	}
	b.Error.Code, b.Error.Message = code, msg
	if code != "" {
		b.Error.DocURL = "https://stripe.com/docs/error-codes/" + strings.ReplaceAll(code, "_", "-")
	}
	writeJSON(w, status, b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encode response", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	// Every Stripe answer carries a request id (docs.stripe.com/api/request_ids).
	w.Header().Set("Request-Id", "req_double"+strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
