// Package openaidouble is a local stand-in for the OpenAI API: GET /v1/models
// and GET /v1/organization/admin_api_keys authenticated by a Bearer key,
// answering with OpenAI's list documents, its error bodies (invalid key,
// missing key, restricted key in both observed shapes, unsupported region,
// exhausted quota) and its rate-limit headers (reset as a duration), behind
// the shared fault layer of partnertest. Sources: ../shared/PARTNERS.md
// (OpenAI) and the docs URLs cited at each answer.
package openaidouble

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
)

// Mode is how the double answers for one registered key.
type Mode int

// The answers a registered key can get. Where sources disagree (the
// restricted key's 401 shape), each shape is a mode of its own.
const (
	// Live: 200 with the list (https://platform.openai.com/docs/api-reference/models/list,
	// https://platform.openai.com/docs/api-reference/admin-api-keys/list).
	Live Mode = iota
	// Restricted: 401 {"error":{"message":"You have insufficient permissions for this
	// operation. Missing scopes: api.model.read. …","type":"invalid_request_error",
	// "param":null,"code":null}} (observed: ../shared/PARTNERS.md, OpenAI,
	// "Restricted key").
	Restricted
	// RestrictedFlat: the same message as the bare value of "error",
	// {"error":"You have insufficient permissions …"} (observed at /v1/models
	// in public bug reports, not in PARTNERS.md: docs/partners.md, OpenAI).
	RestrictedFlat
	// Region: 403 {"error":{"code":"unsupported_country_region_territory",…}}
	// (https://platform.openai.com/docs/guides/error-codes, 403).
	Region
	// Quota: 429 {"error":{"code":"insufficient_quota",…}}, no reset headers
	// (https://platform.openai.com/docs/guides/error-codes, 429).
	Quota
)

// The rate-limit figures the double announces with 429s, in OpenAI's
// header names and units (x-ratelimit-*-requests; the reset is a duration
// such as 1s, 6m0s or 12ms: ../shared/PARTNERS.md, OpenAI, and
// https://platform.openai.com/docs/guides/rate-limits, Rate limits in headers).
const (
	RateLimitRequests = 500 // usage tier 1's requests per minute
	DefaultReset      = "1s"
)

// Error messages as OpenAI writes them, so that a client matching on them
// sees what it would see in production.
const (
	msgNoKey      = "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're accessing the API from your browser and are prompted for a username. You can obtain an API key from https://platform.openai.com/account/api-keys."
	msgRestricted = "You have insufficient permissions for this operation. Missing scopes: %s. Check that you have the correct role in your organization (Reader, Writer, Owner) and project (Member, Owner), and if you're using a restricted API key, that it has the necessary scopes."
	msgRegion     = "Country, region, or territory not supported"
	msgQuota      = "You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors."
	msgRateLimit  = "Rate limit reached for requests in organization %s on requests per min (RPM): Limit %d, Used %d, Requested 1. Please try again in %s."
	msgServer     = "The server had an error while processing your request. Sorry about that!"
	msgOverloaded = "The engine is currently overloaded, please try again later."
	msgNotFound   = "Invalid URL (%s %s)"
)

// DefaultOrganization is the openai-organization header of keys added
// without one (an organization id, as the API reference's examples show).
const DefaultOrganization = "org-doubleexample0000000000"

type entry struct {
	mode Mode
	org  string // "" sends no openai-organization header
}

// Server is a running OpenAI double. Its embedded partnertest.Server gives
// the URL, the fault Controls and Close.
type Server struct {
	*partnertest.Server

	mu    sync.RWMutex
	keys  map[string]entry
	reset atomic.Value // string: x-ratelimit-reset-requests of 429s, "" for none
}

// Start serves the double on addr ("" picks a free loopback port).
func Start(addr string) (*Server, error) {
	s := &Server{keys: map[string]entry{}}
	s.reset.Store(DefaultReset)
	ps, err := partnertest.Serve(addr, http.HandlerFunc(s.serveHTTP), s.writeError)
	if err != nil {
		return nil, fmt.Errorf("openaidouble: start: %w", err)
	}
	s.Server = ps
	return s, nil
}

// AddToken registers a key answered as mode, naming DefaultOrganization.
func (s *Server) AddToken(key string, mode Mode) { s.AddTokenIn(key, mode, DefaultOrganization) }

// AddTokenIn registers a key answered as mode whose answers name org in
// the openai-organization header ("" sends none: the header is UNCONFIRMED).
func (s *Server) AddTokenIn(key string, mode Mode, org string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[key] = entry{mode: mode, org: org}
}

// RevokeToken makes a key invalid, as deleting it in OpenAI's dashboard does.
func (s *Server) RevokeToken(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.keys, key)
}

// SetRateLimitReset sets the x-ratelimit-reset-requests value sent with
// 429s (a duration: "1s", "6m0s", "12ms"); "" sends no x-ratelimit-*
// headers at all, as some 429s observed in the wild lack them.
func (s *Server) SetRateLimitReset(v string) { s.reset.Store(v) }

func (s *Server) lookup(key string) (entry, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.keys[key]
	return e, ok
}

const keyAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"

func randomText(n int, alphabet string) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// newModern is prefix + 74 + T3BlbkFJ + 74 URL-safe characters, the shape
// of today's keys, so tests never carry a real one. The last character is
// alphanumeric, as in every published example (they end in "A"): a key
// ending in "-" has no word boundary after it, and gitleaks' rule, which
// ends in \b, would not report it.
func newModern(prefix string) string {
	return prefix + randomText(74, keyAlphabet) + "T3BlbkFJ" + randomText(73, keyAlphabet) + randomText(1, keyAlphabet[:62])
}

// NewToken returns a random project key (sk-proj-…), the main key type.
func NewToken() string { return newModern("sk-proj-") }

// NewServiceAccountKey returns a random service-account key (sk-svcacct-…).
func NewServiceAccountKey() string { return newModern("sk-svcacct-") }

// NewAdminKey returns a random admin key (sk-admin-…).
func NewAdminKey() string { return newModern("sk-admin-") }

// NewLegacyKey returns a random legacy key: sk- + 20 + T3BlbkFJ + 20 alphanumerics.
func NewLegacyKey() string {
	const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	return "sk-" + randomText(20, alnum) + "T3BlbkFJ" + randomText(20, alnum)
}

// redact is how OpenAI quotes a wrong key in its 401: the first characters
// and the last four (../shared/PARTNERS.md, OpenAI: "sk-…1234").
func redact(key string) string {
	if len(key) < 12 {
		return "sk-****"
	}
	return key[:3] + strings.Repeat("*", 16) + key[len(key)-4:]
}

// serveHTTP authenticates first, as OpenAI does for every route, then
// answers the two routes the verifier calls.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Request-Id", "req_"+randomText(32, "0123456789abcdef"))
	auth := r.Header.Get("Authorization")
	key, ok := strings.CutPrefix(auth, "Bearer ")
	key = strings.TrimSpace(key)
	if !ok || key == "" {
		// Missing or non-Bearer Authorization: 401 with code null
		// (https://platform.openai.com/docs/api-reference/authentication; message observed).
		writeAPIError(w, http.StatusUnauthorized, msgNoKey, "invalid_request_error", nil)
		return
	}
	s.Controls.CountKey(key)
	e, ok := s.lookup(key)
	if !ok {
		// ../shared/PARTNERS.md, OpenAI, "Bad key" (observed).
		code := "invalid_api_key"
		writeAPIError(w, http.StatusUnauthorized, "Incorrect API key provided: "+redact(key)+". You can find your API key at https://platform.openai.com/account/api-keys.", "invalid_request_error", &code)
		return
	}
	admin := strings.HasPrefix(key, "sk-admin-")
	var scope string
	switch {
	case r.Method != http.MethodGet:
		writeNotFound(w, r)
		return
	case r.URL.Path == "/v1/models":
		scope = "api.model.read"
	case r.URL.Path == "/v1/organization/admin_api_keys":
		scope = "api.management.read"
	default:
		writeNotFound(w, r)
		return
	}
	if e.org != "" {
		// https://platform.openai.com/docs/api-reference/debugging-requests:
		// openai-organization names the organization (UNCONFIRMED for every key).
		w.Header().Set("Openai-Organization", e.org)
	}
	w.Header().Set("Openai-Version", "2020-10-01")
	w.Header().Set("Openai-Processing-Ms", "23")
	switch {
	case e.mode == Restricted || (scope == "api.management.read" && !admin):
		// A project key lacks the admin scope as a restricted key lacks a
		// model scope (UNCONFIRMED for admin routes; the shape is the observed one).
		writeAPIError(w, http.StatusUnauthorized, fmt.Sprintf(msgRestricted, scope), "invalid_request_error", nil)
	case e.mode == RestrictedFlat:
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": fmt.Sprintf(msgRestricted, scope)})
	case e.mode == Region:
		code := "unsupported_country_region_territory"
		writeAPIError(w, http.StatusForbidden, msgRegion, "request_forbidden", &code)
	case e.mode == Quota:
		code := "insufficient_quota"
		writeAPIError(w, http.StatusTooManyRequests, msgQuota, "insufficient_quota", &code)
	case scope == "api.model.read":
		writeJSON(w, http.StatusOK, modelList)
	default:
		writeJSON(w, http.StatusOK, adminKeyList())
	}
}

// Model is one item of GET /v1/models
// (https://platform.openai.com/docs/api-reference/models/list).
type Model struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// List is OpenAI's list document, the answer of both routes.
type List[T any] struct {
	Object  string  `json:"object"`
	Data    []T     `json:"data"`
	FirstID *string `json:"first_id,omitempty"`
	LastID  *string `json:"last_id,omitempty"`
	HasMore *bool   `json:"has_more,omitempty"`
}

var modelList = List[Model]{Object: "list", Data: []Model{
	{ID: "gpt-4o-mini", Object: "model", Created: 1721172741, OwnedBy: "system"},
	{ID: "text-embedding-3-small", Object: "model", Created: 1705948997, OwnedBy: "system"},
	{ID: "whisper-1", Object: "model", Created: 1677532384, OwnedBy: "openai-internal"},
}}

// AdminKey is one item of GET /v1/organization/admin_api_keys
// (https://platform.openai.com/docs/api-reference/admin-api-keys/list;
// ../shared/PARTNERS.md, OpenAI: id, name, redacted_value, owner{type,id,name,role}).
type AdminKey struct {
	Object        string `json:"object"`
	ID            string `json:"id"`
	Name          string `json:"name"`
	RedactedValue string `json:"redacted_value"`
	CreatedAt     int64  `json:"created_at"`
	LastUsedAt    int64  `json:"last_used_at"`
	Owner         struct {
		Type      string `json:"type"`
		Object    string `json:"object"`
		ID        string `json:"id"`
		Name      string `json:"name"`
		CreatedAt int64  `json:"created_at"`
		Role      string `json:"role"`
	} `json:"owner"`
}

func adminKeyList() List[AdminKey] {
	var k AdminKey
	k.Object, k.ID, k.Name, k.RedactedValue = "organization.admin_api_key", "key_double0001", "Main admin key", "sk-admin...ab12"
	k.CreatedAt, k.LastUsedAt = 1711471533, 1711471534
	k.Owner.Type, k.Owner.Object, k.Owner.ID, k.Owner.Name, k.Owner.CreatedAt, k.Owner.Role =
		"user", "organization.user", "user-double0001", "Test Owner", 1711471533, "owner"
	more := false
	return List[AdminKey]{Object: "list", Data: []AdminKey{k}, FirstID: &k.ID, LastID: &k.ID, HasMore: &more}
}

type errorBody struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

func writeAPIError(w http.ResponseWriter, status int, msg, typ string, code *string) {
	var b errorBody
	b.Error.Message, b.Error.Type, b.Error.Code = msg, typ, code
	writeJSON(w, status, b)
}

func writeNotFound(w http.ResponseWriter, r *http.Request) {
	// OpenAI answers an unknown route with 404 invalid_request_error (observed shape; UNCONFIRMED code).
	writeAPIError(w, http.StatusNotFound, fmt.Sprintf(msgNotFound, r.Method, r.URL.Path), "invalid_request_error", nil)
}

// writeError writes a fault as OpenAI does; it is the double's
// partnertest.ErrorWriter. A 429 gets OpenAI's rate_limit_exceeded body
// and its x-ratelimit-*-requests headers, the reset as a duration
// (SetRateLimitReset); a Retry-After set by the fault layer is kept
// (https://platform.openai.com/docs/guides/rate-limits). 500 and 503 get
// OpenAI's server_error bodies (https://platform.openai.com/docs/guides/error-codes).
func (s *Server) writeError(w http.ResponseWriter, status int, _, _ string) {
	switch status {
	case http.StatusTooManyRequests:
		reset, _ := s.reset.Load().(string)
		wait := reset
		if reset != "" {
			h := w.Header()
			h.Set("X-Ratelimit-Limit-Requests", strconv.Itoa(RateLimitRequests))
			h.Set("X-Ratelimit-Remaining-Requests", "0")
			h.Set("X-Ratelimit-Reset-Requests", reset)
			h.Set("X-Ratelimit-Limit-Tokens", "200000")
			h.Set("X-Ratelimit-Remaining-Tokens", "200000")
			h.Set("X-Ratelimit-Reset-Tokens", "0s")
		} else {
			wait = "20s"
		}
		code := "rate_limit_exceeded"
		writeAPIError(w, status, fmt.Sprintf(msgRateLimit, DefaultOrganization, RateLimitRequests, RateLimitRequests, wait), "requests", &code)
	case http.StatusServiceUnavailable:
		writeAPIError(w, status, msgOverloaded, "server_error", nil)
	default:
		writeAPIError(w, status, msgServer, "server_error", nil)
	}
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
