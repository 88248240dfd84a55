// Package anthropicdouble is a local stand-in for Anthropic's API: GET
// /v1/models for API keys and GET /v1/organizations/api_keys for Admin API
// keys, authenticated by the x-api-key header and requiring
// anthropic-version, answering with Anthropic's list documents, its error
// document {"type":"error","error":{…}} and its rate-limit headers, behind
// the shared fault layer of partnertest.
//
// Sources: ../shared/PARTNERS.md, section Anthropic;
// https://docs.anthropic.com/en/api/errors; https://docs.anthropic.com/en/api/rate-limits;
// https://docs.anthropic.com/en/api/models-list;
// https://docs.anthropic.com/en/api/admin-api/apikeys/list-api-keys.
package anthropicdouble

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

// Headers Anthropic reads.
const (
	HeaderAPIKey  = "X-Api-Key"
	HeaderVersion = "Anthropic-Version"
)

// RequestsPerMinute is the anthropic-ratelimit-requests-limit the double
// announces: the lowest published tier's requests per minute.
const RequestsPerMinute = 50

// Error messages, as Anthropic writes them (PARTNERS.md, Anthropic).
const (
	msgInvalidKey    = "invalid x-api-key"
	msgMissingKey    = "x-api-key header is required"
	msgMissingVer    = "anthropic-version: header is required"
	msgPermission    = "Your API key does not have permission to use the specified resource."
	msgNotFound      = "Not found"
	msgRateLimit     = "This request would exceed your organization's rate limit of 50 requests per minute."
	msgOverloaded    = "Overloaded"
	msgInternalError = "Internal server error"
)

// KeyState is how the double answers for a registered key.
type KeyState int

// The states of a registered key.
const (
	// KeyActive answers 200.
	KeyActive KeyState = iota
	// KeyRestricted answers 403 permission_error: Anthropic authenticated
	// the key but its workspace or role may not make this call.
	KeyRestricted
)

type key struct {
	state KeyState
	org   string
}

// Server is a running Anthropic double. Its embedded partnertest.Server
// gives the URL, the fault Controls and Close.
type Server struct {
	*partnertest.Server

	mu         sync.RWMutex
	keys       map[string]key
	noOrgHdr   bool
	overloaded int
}

// Start serves the double on addr ("" picks a free loopback port).
func Start(addr string) (*Server, error) {
	s := &Server{keys: map[string]key{}}
	ps, err := partnertest.Serve(addr, http.HandlerFunc(s.serveHTTP), WriteError)
	if err != nil {
		return nil, fmt.Errorf("anthropicdouble: start: %w", err)
	}
	s.Server = ps
	return s, nil
}

// AddKey registers a live key (an API key or an Admin API key, told apart
// by prefix) of the organization org (a UUID; "" makes one up).
func (s *Server) AddKey(k, org string) {
	if org == "" {
		org = NewOrganizationID()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[k] = key{state: KeyActive, org: org}
}

// RestrictKey makes a registered key answer 403 permission_error.
func (s *Server) RestrictKey(k string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.keys[k]; ok {
		e.state = KeyRestricted
		s.keys[k] = e
	}
}

// RevokeKey makes a key invalid, as deleting or disabling it in the Console
// does: Anthropic then answers 401 as for a key it never issued.
func (s *Server) RevokeKey(k string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.keys, k)
}

// SetOrganizationHeader chooses whether authenticated answers carry
// anthropic-organization-id. It is observed on /v1/messages answers; no
// source says whether /v1/models sends it, so both shapes are served.
func (s *Server) SetOrganizationHeader(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noOrgHdr = !on
}

// Overload makes the next n requests that pass the fault layer answer 529
// overloaded_error, Anthropic's own "too busy" status (errors doc).
func (s *Server) Overload(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.overloaded = n
}

func (s *Server) lookup(k string) (key, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.keys[k]
	return e, ok
}

func (s *Server) takeOverload() (bool, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.overloaded > 0 {
		s.overloaded--
		return true, !s.noOrgHdr
	}
	return false, !s.noOrgHdr
}

// NewAPIKey returns a random key in Anthropic's API key format,
// sk-ant-api03-<93 of [A-Za-z0-9_-]>AA, so tests never carry a real one.
func NewAPIKey() string { return "sk-ant-api03-" + randomBody() + "AA" }

// NewAdminKey returns a random key in Anthropic's Admin API key format,
// sk-ant-admin01-<93 of [A-Za-z0-9_-]>AA.
func NewAdminKey() string { return "sk-ant-admin01-" + randomBody() + "AA" }

const keyAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

func randomBody() string {
	b := make([]byte, 93)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	for i := range b {
		b[i] = keyAlphabet[int(b[i])%len(keyAlphabet)]
	}
	return string(b)
}

// NewOrganizationID returns a random organization id (a UUID, as the
// anthropic-organization-id header carries).
func NewOrganizationID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func isAdminKey(k string) bool { return len(k) > 15 && k[:15] == "sk-ant-admin01-" }

// serveHTTP checks the version header, then authenticates, then routes.
// The order of the first two is UNCONFIRMED: the 400 without
// anthropic-version is observed (PARTNERS.md, Anthropic) with a valid key.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	setRequestID(w)
	k := r.Header.Get(HeaderAPIKey)
	if k != "" {
		s.Controls.CountKey(k)
	}
	over, orgHdr := s.takeOverload()
	if over {
		// 529 overloaded_error (docs.anthropic.com/en/api/errors).
		WriteError(w, 529, "overloaded_error", msgOverloaded)
		return
	}
	if r.Header.Get(HeaderVersion) == "" {
		// 400 invalid_request_error without anthropic-version (PARTNERS.md, observed).
		WriteError(w, http.StatusBadRequest, "invalid_request_error", msgMissingVer)
		return
	}
	if k == "" {
		// 401 authentication_error (errors doc); the message is UNCONFIRMED.
		WriteError(w, http.StatusUnauthorized, "authentication_error", msgMissingKey)
		return
	}
	e, ok := s.lookup(k)
	admin := isAdminKey(k)
	route := r.Method + " " + r.URL.Path
	switch {
	case route != "GET /v1/models" && route != "GET /v1/organizations/api_keys":
		if !ok {
			WriteError(w, http.StatusUnauthorized, "authentication_error", msgInvalidKey)
			return
		}
		// 404 not_found_error (errors doc).
		WriteError(w, http.StatusNotFound, "not_found_error", msgNotFound)
		return
	case !ok, admin && route == "GET /v1/models":
		// 401 {"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}
		// (PARTNERS.md, observed). The regular API not knowing Admin keys is UNCONFIRMED.
		WriteError(w, http.StatusUnauthorized, "authentication_error", msgInvalidKey)
		return
	case e.state == KeyRestricted, !admin && route == "GET /v1/organizations/api_keys":
		// 403 permission_error (errors doc): authenticated, not allowed this
		// call. A standard key on the Admin API getting it is UNCONFIRMED.
		if orgHdr {
			w.Header().Set("Anthropic-Organization-Id", e.org)
		}
		WriteError(w, http.StatusForbidden, "permission_error", msgPermission)
		return
	}
	if orgHdr {
		w.Header().Set("Anthropic-Organization-Id", e.org)
	}
	setRateHeaders(w.Header(), RequestsPerMinute-1, time.Now().Add(time.Minute))
	if route == "GET /v1/models" {
		writeJSON(w, http.StatusOK, modelsList())
		return
	}
	limit := 20
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			// invalid_request_error for a bad parameter (errors doc).
			WriteError(w, http.StatusBadRequest, "invalid_request_error", "limit: Input should be between 1 and 1000")
			return
		}
		limit = n
	}
	writeJSON(w, http.StatusOK, apiKeysList(limit))
}

// Model is one item of GET /v1/models (docs.anthropic.com/en/api/models-list).
type Model struct {
	Type        string `json:"type"`
	ID          string `json:"id"`
	DisplayName string `json:"display_name"`
	CreatedAt   string `json:"created_at"`
}

// List is Anthropic's list document: data, has_more, first_id, last_id
// (models-list; PARTNERS.md for the Admin API's list).
type List[T any] struct {
	Data    []T     `json:"data"`
	HasMore bool    `json:"has_more"`
	FirstID *string `json:"first_id"`
	LastID  *string `json:"last_id"`
}

func modelsList() List[Model] {
	ms := []Model{
		{Type: "model", ID: "claude-sonnet-4-20250514", DisplayName: "Claude Sonnet 4", CreatedAt: "2025-05-22T00:00:00Z"},
		{Type: "model", ID: "claude-3-5-haiku-20241022", DisplayName: "Claude Haiku 3.5", CreatedAt: "2024-10-22T00:00:00Z"},
	}
	return List[Model]{Data: ms, FirstID: &ms[0].ID, LastID: &ms[len(ms)-1].ID}
}

// Creator is who created an API key (PARTNERS.md: created_by).
type Creator struct {
	ID   string `json:"id"`
	Type string `json:"type"`
}

// APIKey is one item of GET /v1/organizations/api_keys (PARTNERS.md,
// Anthropic; list-api-keys): the key itself is never listed, only a hint.
type APIKey struct {
	Type           string  `json:"type"`
	ID             string  `json:"id"`
	Name           string  `json:"name"`
	CreatedAt      string  `json:"created_at"`
	CreatedBy      Creator `json:"created_by"`
	PartialKeyHint string  `json:"partial_key_hint"`
	Status         string  `json:"status"`
	WorkspaceID    *string `json:"workspace_id"`
}

func apiKeysList(limit int) List[APIKey] {
	all := []APIKey{
		{Type: "api_key", ID: "apikey_01Rj2N8SVvo6BePZj99NhmiT", Name: "Developer Key", CreatedAt: "2024-10-30T23:58:27.427722Z",
			CreatedBy: Creator{ID: "user_01WCz1FkmYMm4gnmykNKUu3Q", Type: "user"}, PartialKeyHint: "sk-ant-api03-R2D...igAA", Status: "active"},
		{Type: "api_key", ID: "apikey_01Sk3P9TWwp7CfQAk00PinjU", Name: "CI Key", CreatedAt: "2025-01-10T10:00:00Z",
			CreatedBy: Creator{ID: "user_01WCz1FkmYMm4gnmykNKUu3Q", Type: "user"}, PartialKeyHint: "sk-ant-api03-K9x...QwAA", Status: "inactive"},
	}
	page := all[:min(limit, len(all))]
	return List[APIKey]{Data: page, HasMore: limit < len(all), FirstID: &page[0].ID, LastID: &page[len(page)-1].ID}
}

// WriteError writes an error as Anthropic does; it is the double's
// partnertest.ErrorWriter: {"type":"error","error":{"type":…,"message":…},
// "request_id":…} with the error type of the status (errors doc: 400
// invalid_request_error, 401 authentication_error, 403 permission_error,
// 404 not_found_error, 429 rate_limit_error, 500 api_error, 529
// overloaded_error). 429 also gets anthropic-ratelimit-requests-* with the
// reset as an RFC 3339 time (rate-limits doc), keeping the Retry-After
// (seconds) the fault layer chose.
func WriteError(w http.ResponseWriter, status int, code, msg string) {
	setRequestID(w)
	switch status {
	case http.StatusTooManyRequests:
		code, msg = "rate_limit_error", msgRateLimit
		setRateHeaders(w.Header(), 0, rateLimitReset(w.Header().Get("Retry-After"), time.Now()))
	case http.StatusInternalServerError:
		code, msg = "api_error", msgInternalError
	case http.StatusServiceUnavailable, 529:
		// 503 is not in Anthropic's list; it is served as overloaded too.
		code, msg = "overloaded_error", msgOverloaded
	}
	writeJSON(w, status, map[string]any{
		"type":       "error",
		"error":      map[string]string{"type": code, "message": msg},
		"request_id": w.Header().Get("Request-Id"),
	})
}

// setRateHeaders writes the request-limit headers Anthropic sends (rate-limits doc).
func setRateHeaders(h http.Header, remaining int, reset time.Time) {
	h.Set("Anthropic-Ratelimit-Requests-Limit", strconv.Itoa(RequestsPerMinute))
	h.Set("Anthropic-Ratelimit-Requests-Remaining", strconv.Itoa(remaining))
	h.Set("Anthropic-Ratelimit-Requests-Reset", reset.UTC().Format(time.RFC3339))
}

// rateLimitReset is when requests are allowed again: the Retry-After the
// fault layer chose (seconds), rounded up to the second as RFC 3339 times
// carry it, or else the end of the one-minute window.
func rateLimitReset(retryAfter string, now time.Time) time.Time {
	d := time.Minute
	if secs, err := strconv.Atoi(retryAfter); err == nil && secs >= 0 {
		d = time.Duration(secs) * time.Second
	}
	t := now.Add(d)
	return time.Unix(t.Add(time.Second-time.Nanosecond).Unix(), 0)
}

// setRequestID sets the request-id header Anthropic puts on every answer.
func setRequestID(w http.ResponseWriter) {
	if w.Header().Get("Request-Id") != "" {
		return
	}
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	w.Header().Set("Request-Id", "req_"+hex.EncodeToString(b))
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
