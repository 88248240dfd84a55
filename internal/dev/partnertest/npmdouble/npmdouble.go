// Package npmdouble is a local stand-in for the npm registry's
// GET /-/whoami: a Bearer token in, {"username":"…"} or a 401 out, with
// the WWW-Authenticate challenges npm's own client reads and the registry's
// {"error":"…"} error bodies, behind the shared fault layer of partnertest
// (Retry-After on 429s, in seconds).
//
// Sources: ../shared/PARTNERS.md, section npm; npm's client, which is the
// registry's published contract in practice (npm/cli lib/utils/get-identity.js
// reads "username"; npm-registry-fetch lib/check-response.js and
// lib/errors.js read 401 challenges and the "error" field of error bodies).
// Where they are silent (the body of a 401), each shape is a knob.
package npmdouble

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
)

// Mode is how the registry answers GET /-/whoami for a registered token.
type Mode int

// The answers a registered token can get.
const (
	// Live: 200 {"username":…} (PARTNERS.md, observed; npm/cli
	// get-identity.js reads username).
	Live Mode = iota
	// IPRestricted: 401 with WWW-Authenticate: ipaddress, a token whose
	// CIDR allow-list leaves out the caller (docs.npmjs.com,
	// creating-and-viewing-access-tokens: allowed IP ranges; npm-registry-fetch
	// check-response.js maps the challenge to "Login is not allowed from your
	// IP address").
	IPRestricted
	// OTPRequired: 401 with WWW-Authenticate: otp, the one-time-password
	// challenge (npm-registry-fetch check-response.js, EOTP). The registry
	// asks it of writes; a whoami never should, but a client must not read
	// it as a rejection.
	OTPRequired
	// Forbidden: 403 {"error":"Forbidden"}. No source says the registry
	// answers 403 to a valid but restricted token; public reports show 403
	// on /-/whoami from bans of address ranges (npm/cli#1358, #1716).
	Forbidden
	// NoUsername: 200 {} — what third-party registries send for an
	// unauthenticated whoami (npm/cli#5867); not registry.npmjs.org's answer.
	NoUsername
)

// RejectionBody is the body of the registry's 401 for an unknown, revoked
// or missing token. PARTNERS.md: the status is observed (npm/npm#16448),
// the body UNCONFIRMED, so the double serves each shape.
type RejectionBody int

// The 401 bodies the double can serve.
const (
	// RejectEmpty: 401 with no body. Public reports quote the CLI's line
	// "401 Unauthorized - GET https://registry.npmjs.org/-/whoami" with no
	// " - <error>" suffix, which npm-registry-fetch (errors.js) appends when
	// the body has an "error" field: the likeliest real shape.
	RejectEmpty RejectionBody = iota
	// RejectJSON: 401 {"error":"…"}, the registry's error document as
	// npm-registry-fetch (errors.js, body.error) reads it.
	RejectJSON
)

// Messages of the registry's error documents (UNCONFIRMED wording; npm's
// client reads only the "error" key).
const (
	unauthorizedMessage = "Unauthorized"
	forbiddenMessage    = "Forbidden"
	notFoundMessage     = "Not Found"
	rateLimitMessage    = "Too Many Requests"
	serverMessage       = "Internal Server Error"
	unavailableMessage  = "Service Unavailable"
	otpMessage          = "You must provide a one-time pass. Upgrade your client to npm@latest in order to use 2FA."
	ipAddressMessage    = "Login is not allowed from your IP address"
)

// Server is a running npm registry double. Its embedded partnertest.Server
// gives the URL, the fault Controls and Close.
type Server struct {
	*partnertest.Server

	mu        sync.Mutex
	tokens    map[string]user // token -> its user
	rejection RejectionBody
}

type user struct {
	name string
	mode Mode
}

// Start serves the double on addr ("" picks a free loopback port).
func Start(addr string) (*Server, error) {
	s := &Server{tokens: map[string]user{}}
	ps, err := partnertest.Serve(addr, http.HandlerFunc(s.serveHTTP), WriteError)
	if err != nil {
		return nil, fmt.Errorf("npmdouble: start: %w", err)
	}
	s.Server = ps
	return s, nil
}

// AddToken registers a live token of the user name.
func (s *Server) AddToken(token, name string) { s.AddTokenMode(token, name, Live) }

// AddTokenMode registers a token that gets the answer of mode.
func (s *Server) AddTokenMode(token, name string, mode Mode) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[token] = user{name: name, mode: mode}
}

// RevokeToken makes a token unknown, as `npm token revoke` or deleting it
// on npmjs.com does: the registry then answers 401 as for any unknown token.
func (s *Server) RevokeToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.tokens, token)
}

// SetRejectionBody chooses the body of the 401 for unknown, revoked and
// missing tokens (RejectEmpty by default).
func (s *Server) SetRejectionBody(b RejectionBody) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejection = b
}

func (s *Server) lookup(token string) (user, bool, RejectionBody) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.tokens[token]
	return u, ok, s.rejection
}

// base62 is the alphabet of npm token bodies.
const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// NewToken returns a random, well-formed npm access token: npm_, 30 random
// base62 characters and a 6-character base62 CRC32 checksum, the layout of
// npm's announcement (github.blog, 2021-09-23; the checksum's alphabet
// order is a third-party reconstruction, and the verifier does not check
// it). Tests never carry a real token.
func NewToken() string {
	body := randomBase62(30)
	return "npm_" + body + checksum(body)
}

// NewUsername returns a random npm user name of the registry's form.
func NewUsername() string { return "user-" + strings.ToLower(randomBase62(8)) }

func randomBase62(n int) string {
	b := make([]byte, n)
	for i := range b {
		v, _ := rand.Int(rand.Reader, big.NewInt(int64(len(base62)))) // crypto/rand never fails (Go 1.24+)
		b[i] = base62[v.Int64()]
	}
	return string(b)
}

func checksum(body string) string {
	n := uint64(crc32.ChecksumIEEE([]byte(body)))
	out := make([]byte, 6)
	for i := 5; i >= 0; i-- {
		out[i] = base62[n%62]
		n /= 62
	}
	return string(out)
}

// bearer returns the token of an "Authorization: Bearer <token>" header,
// the scheme npm's client sends for tokens.
func bearer(h string) string {
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

// serveHTTP authenticates, then answers /-/whoami. The registry serves
// packages to anyone, but whoami needs a token: without one (or with an
// unknown or revoked one) it answers 401 (PARTNERS.md, npm/npm#16448).
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/-/whoami" || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		WriteError(w, http.StatusNotFound, "not_found", notFoundMessage)
		return
	}
	token := bearer(r.Header.Get("Authorization"))
	if token != "" {
		s.Controls.CountKey(token)
	}
	u, ok, rejection := s.lookup(token)
	if !ok {
		if rejection == RejectJSON {
			WriteError(w, http.StatusUnauthorized, "unauthorized", unauthorizedMessage)
			return
		}
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	switch u.mode {
	case IPRestricted:
		// npm-registry-fetch check-response.js: the challenge is the signal,
		// the body only what errors.js would show.
		w.Header().Set("WWW-Authenticate", "ipaddress")
		WriteError(w, http.StatusUnauthorized, "ipaddress", ipAddressMessage)
	case OTPRequired:
		w.Header().Set("WWW-Authenticate", "otp")
		WriteError(w, http.StatusUnauthorized, "otp", otpMessage)
	case Forbidden:
		WriteError(w, http.StatusForbidden, "forbidden", forbiddenMessage)
	case NoUsername:
		writeJSON(w, http.StatusOK, map[string]string{})
	default:
		writeJSON(w, http.StatusOK, map[string]string{"username": u.name})
	}
}

// WriteError writes an error as the registry does, {"error":msg} (the key
// npm-registry-fetch errors.js reads); it is the double's
// partnertest.ErrorWriter. A 429 carries only the Retry-After (seconds)
// the fault layer set: npm documents no rate-limit headers
// (blog.npmjs.org, "API rate limiting rolling out": clients must handle 429).
func WriteError(w http.ResponseWriter, status int, _, msg string) {
	switch status {
	case http.StatusTooManyRequests:
		msg = rateLimitMessage
	case http.StatusInternalServerError:
		msg = serverMessage
	case http.StatusServiceUnavailable:
		msg = unavailableMessage
	}
	writeJSON(w, status, map[string]string{"error": msg})
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
