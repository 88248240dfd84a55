// Package githubdouble is a local stand-in for GitHub's REST API: GET /user
// and GET /installation/repositories authenticated by an Authorization
// header (Bearer or token scheme), answering with GitHub's user and
// repository-list documents, its JSON errors, its scope, expiry and
// x-ratelimit-* headers, and the answers that bite a verifier (the lockout
// after repeated bad credentials, restricted fine-grained and app tokens,
// primary and secondary rate limits), behind the shared fault layer of
// partnertest. Sources: ../shared/PARTNERS.md, section GitHub, and the
// docs.github.com pages cited on each answer.
package githubdouble

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
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
)

// APIVersion is the one X-GitHub-Api-Version the double knows; GitHub
// answers 400 to any other (PARTNERS.md, GitHub; docs.github.com,
// rest/about-the-rest-api/api-versions).
const APIVersion = "2022-11-28"

// Rate limits announced in x-ratelimit-limit (PARTNERS.md, GitHub: 60/h
// unauthenticated, which is what a bad credential is charged to; 5,000/h
// per token).
const (
	LimitUnauthenticated = 60
	LimitAuthenticated   = 5000
)

// Messages of GitHub's answers, verbatim, so that a client matching on them
// sees what it would see in production.
const (
	docsURL             = "https://docs.github.com/rest"
	badCredentials      = "Bad credentials"                       // PARTNERS.md, GitHub (PyGithub#934)
	enterpriseBadCreds  = "Must authenticate to access this API." // PARTNERS.md, GitHub (Enterprise Server)
	requiresAuth        = "Requires authentication"               // docs.github.com, rest/users/users#get-the-authenticated-user (401)
	lockoutMessage      = "Maximum number of login attempts exceeded. Please try again later."
	notFound            = "Not Found"
	restrictedPAT       = "Resource not accessible by personal access token" // PARTNERS.md, GitHub (troubleshooting-the-rest-api.md)
	restrictedApp       = "Resource not accessible by integration"           // PARTNERS.md, GitHub (troubleshooting-the-rest-api.md)
	primaryLimitMessage = "API rate limit exceeded for user ID %d. If you reach out to GitHub Support for help, please include the request ID."
	secondaryMessage    = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
	noUserAgent         = "Request forbidden by administrative rules. Please make sure your request has a User-Agent header (https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required). Check https://githubstatus.com for possible causes.\n"
	badVersion          = "Unsupported 'X-GitHub-Api-Version' header value: %s"
)

// Mode is how the double answers for one registered token: every answer
// GitHub gives a token that is not simply live or dead.
type Mode int

// The modes of a registered token.
const (
	// Live answers 200 with the document.
	Live Mode = iota
	// Revoked answers 401 Bad credentials, as for an unknown token.
	Revoked
	// Restricted403 answers 403 "Resource not accessible by …": a
	// fine-grained or app token without the permission (PARTNERS.md, GitHub).
	Restricted403
	// Restricted404 answers the same message with 404, as GitHub does
	// where it hides that a resource exists (PARTNERS.md, GitHub: "403/404").
	Restricted404
	// LockedOut answers 403 to the token, live or not, as GitHub does to
	// every credential of a user after several bad attempts in a short time
	// (PARTNERS.md, GitHub; docs.github.com, authenticating-to-the-rest-api
	// "Failed login limit").
	LockedOut
	// Primary403 and Primary429 are the primary rate limit: x-ratelimit-
	// remaining 0 and x-ratelimit-reset in epoch seconds; the docs name both
	// statuses (PARTNERS.md, GitHub; rate-limits-for-the-rest-api.md).
	Primary403
	Primary429
	// Secondary403RetryAfter and Secondary429RetryAfter are a secondary
	// limit with retry-after in seconds; Secondary403 and Secondary429 one
	// without any wait header, after which GitHub asks for at least a
	// minute (rate-limits-for-the-rest-api.md, "Exceeding the rate limit").
	Secondary403RetryAfter
	Secondary429RetryAfter
	Secondary403
	Secondary429
)

var modeNames = map[Mode]string{Live: "live", Revoked: "revoked", Restricted403: "restricted403", Restricted404: "restricted404",
	LockedOut: "lockedout", Primary403: "primary403", Primary429: "primary429", Secondary403RetryAfter: "secondary403retryafter",
	Secondary429RetryAfter: "secondary429retryafter", Secondary403: "secondary403", Secondary429: "secondary429"}

// String is the mode's name.
func (m Mode) String() string { return modeNames[m] }

// Token is what the double knows of one registered token.
type Token struct {
	// Login and UserID are the owner's (for ghs_: the app's bot).
	Login  string
	UserID int
	// Scopes are sent as X-OAuth-Scopes when not nil (classic tokens);
	// fine-grained and app tokens get no such header.
	Scopes []string
	// Expires, when set, is sent as GitHub-Authentication-Token-Expiration.
	Expires time.Time
	// Mode is how the double answers.
	Mode Mode
}

// Server is a running GitHub double. Its embedded partnertest.Server gives
// the URL, the fault Controls and Close.
type Server struct {
	*partnertest.Server

	mu         sync.RWMutex
	tokens     map[string]Token
	lockedOut  map[string]bool // logins every credential of which gets 403
	enterprise bool
	// retryAfter is the retry-after, in seconds, of the Secondary*RetryAfter modes.
	retryAfter int
}

// Start serves the double on addr ("" picks a free loopback port).
func Start(addr string) (*Server, error) {
	s := &Server{tokens: map[string]Token{}, lockedOut: map[string]bool{}, retryAfter: 30}
	ps, err := partnertest.Serve(addr, http.HandlerFunc(s.serveHTTP), WriteError)
	if err != nil {
		return nil, fmt.Errorf("githubdouble: start: %w", err)
	}
	s.Server = ps
	return s, nil
}

// AddToken registers a token.
func (s *Server) AddToken(tok string, t Token) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.UserID == 0 {
		t.UserID = 1
	}
	if t.Login == "" {
		t.Login = "octocat"
	}
	s.tokens[tok] = t
}

// RevokeToken makes a token dead, as deleting it on GitHub does; the
// double still knows its owner, whom bad attempts count against.
func (s *Server) RevokeToken(tok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tokens[tok]
	t.Mode = Revoked
	s.tokens[tok] = t
}

// SetMode changes how the double answers for a registered token.
func (s *Server) SetMode(tok string, m Mode) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tokens[tok]
	t.Mode = m
	s.tokens[tok] = t
}

// LockOut makes every token of login, live or not, get GitHub's 403, as
// after repeated bad credentials for that user; false lifts it.
func (s *Server) LockOut(login string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lockedOut[login] = on
}

// SetEnterprise makes 401s read as GitHub Enterprise Server's ("Must
// authenticate to access this API."), which a verifier must judge by
// status and shape, not wording.
func (s *Server) SetEnterprise(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.enterprise = on
}

// SetRetryAfterSeconds sets the retry-after of the Secondary*RetryAfter modes.
func (s *Server) SetRetryAfterSeconds(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.retryAfter = n
}

func (s *Server) lookup(tok string) (Token, bool, bool, int, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	t, ok := s.tokens[tok]
	return t, ok, s.lockedOut[t.Login], s.retryAfter, s.enterprise
}

// base62 is the alphabet GitHub's token bodies use.
const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// NewToken returns a random, well-formed token with prefix (ghp_, gho_,
// ghu_, ghs_, ghr_): 30 random base62 characters and a 6-character CRC32
// checksum in base62, the layout of GitHub's announcement (the checksum's
// alphabet order is a third-party reconstruction; the verifier does not
// check it). Tests never carry a real token.
func NewToken(prefix string) string {
	body := randomBase62(30)
	return prefix + body + checksum(body)
}

// NewFineGrainedToken returns a random github_pat_ token: 22 characters,
// '_', 59 characters (82 after the prefix).
func NewFineGrainedToken() string {
	return "github_pat_" + randomBase62(22) + "_" + randomBase62(59)
}

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

// credential reads the Authorization header: both the Bearer and the token
// scheme work (PARTNERS.md, GitHub).
func credential(h string) string {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || (!strings.EqualFold(scheme, "bearer") && !strings.EqualFold(scheme, "token")) {
		return ""
	}
	return strings.TrimSpace(tok)
}

// serveHTTP checks what GitHub checks before anything else (User-Agent,
// API version), authenticates, then answers the two paths.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("User-Agent") == "" {
		// PARTNERS.md, GitHub: a request without User-Agent gets a plain-text 403 (observed).
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(noUserAgent))
		return
	}
	if v := r.Header.Get("X-GitHub-Api-Version"); v != "" && v != APIVersion {
		// PARTNERS.md, GitHub: an unknown X-GitHub-Api-Version is a 400.
		writeMessage(w, http.StatusBadRequest, fmt.Sprintf(badVersion, v))
		return
	}
	tok := credential(r.Header.Get("Authorization"))
	if tok != "" {
		s.Controls.CountKey(tok)
	}
	t, known, locked, retryAfter, enterprise := s.lookup(tok)
	now := time.Now()
	if tok == "" {
		// docs.github.com, rest/users/users#get-the-authenticated-user: 401 "Requires authentication".
		setRateHeaders(w.Header(), LimitUnauthenticated, LimitUnauthenticated-1, now)
		writeMessage(w, http.StatusUnauthorized, requiresAuth)
		return
	}
	if known && locked {
		// PARTNERS.md, GitHub: after several bad attempts GitHub answers 403
		// to every authentication of that user, valid or not.
		writeMessage(w, http.StatusForbidden, lockoutMessage)
		return
	}
	if !known || t.Mode == Revoked {
		// PARTNERS.md, GitHub: 401 {"message":"Bad credentials",…}; a bad
		// credential is charged to the IP's unauthenticated budget, so the
		// answer carries x-ratelimit-limit: 60 (renovatebot/renovate#2286).
		setRateHeaders(w.Header(), LimitUnauthenticated, LimitUnauthenticated-1, now)
		msg := badCredentials
		if enterprise {
			msg = enterpriseBadCreds
		}
		writeMessage(w, http.StatusUnauthorized, msg)
		return
	}
	if s.rateLimited(w, t, retryAfter, now) {
		return
	}
	setRateHeaders(w.Header(), LimitAuthenticated, LimitAuthenticated-1, now)
	installation := strings.HasPrefix(tok, "ghs_")
	switch {
	case t.Mode == LockedOut:
		writeMessage(w, http.StatusForbidden, lockoutMessage)
		return
	case t.Mode == Restricted403 || t.Mode == Restricted404:
		// PARTNERS.md, GitHub: restricted fine-grained and app tokens get
		// "Resource not accessible by …" with X-Accepted-GitHub-Permissions.
		status := map[Mode]int{Restricted403: http.StatusForbidden, Restricted404: http.StatusNotFound}[t.Mode]
		msg := restrictedPAT
		if installation || strings.HasPrefix(tok, "ghu_") {
			msg = restrictedApp
		}
		w.Header().Set("X-Accepted-GitHub-Permissions", "metadata=read")
		writeMessage(w, status, msg)
		return
	}
	s.setTokenHeaders(w.Header(), t)
	switch {
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		writeMessage(w, http.StatusNotFound, notFound)
	case r.URL.Path == "/user" && installation:
		// An installation token is no user: /user refuses it (PARTNERS.md, GitHub).
		writeMessage(w, http.StatusForbidden, restrictedApp)
	case r.URL.Path == "/user":
		writeJSON(w, http.StatusOK, userDocument(t))
	case r.URL.Path == "/installation/repositories" && installation:
		writeJSON(w, http.StatusOK, repositories(t, r.URL.Query().Get("per_page")))
	case r.URL.Path == "/installation/repositories":
		// docs.github.com, rest/apps/installations: only installation tokens may list them.
		writeMessage(w, http.StatusForbidden, "You must authenticate with an installation access token in order to list repositories for an installation.")
	default:
		writeMessage(w, http.StatusNotFound, notFound)
	}
}

// rateLimited writes the rate-limit answer of t's mode, if it has one.
// Sources: PARTNERS.md, GitHub; github/docs rate-limits-for-the-rest-api.md.
func (s *Server) rateLimited(w http.ResponseWriter, t Token, retryAfter int, now time.Time) bool {
	h := w.Header()
	switch t.Mode {
	case Primary403, Primary429:
		setRateHeaders(h, LimitAuthenticated, 0, now)
		status := map[Mode]int{Primary403: http.StatusForbidden, Primary429: http.StatusTooManyRequests}[t.Mode]
		writeMessage(w, status, fmt.Sprintf(primaryLimitMessage, t.UserID))
	case Secondary403RetryAfter, Secondary429RetryAfter, Secondary403, Secondary429:
		// A secondary limit leaves the primary budget alone.
		setRateHeaders(h, LimitAuthenticated, LimitAuthenticated-10, now)
		if t.Mode == Secondary403RetryAfter || t.Mode == Secondary429RetryAfter {
			h.Set("Retry-After", strconv.Itoa(retryAfter))
		}
		status := http.StatusForbidden
		if t.Mode == Secondary429RetryAfter || t.Mode == Secondary429 {
			status = http.StatusTooManyRequests
		}
		writeMessage(w, status, secondaryMessage)
	default:
		return false
	}
	return true
}

// setRateHeaders writes GitHub's x-ratelimit-* headers, reset in UTC epoch
// seconds at the end of the hour window (PARTNERS.md, GitHub).
func setRateHeaders(h http.Header, limit, remaining int, now time.Time) {
	h.Set("X-RateLimit-Limit", strconv.Itoa(limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
	h.Set("X-RateLimit-Used", strconv.Itoa(limit-remaining))
	h.Set("X-RateLimit-Resource", "core")
	h.Set("X-RateLimit-Reset", strconv.FormatInt(now.Add(time.Hour).Unix(), 10))
}

// setTokenHeaders writes what GitHub says about the token itself:
// X-OAuth-Scopes for classic tokens (docs.github.com, scopes-for-oauth-apps;
// X-Accepted-OAuth-Scopes is empty on /user) and the expiry of expiring
// tokens (PARTNERS.md, GitHub: github/gh-aw#20097).
func (s *Server) setTokenHeaders(h http.Header, t Token) {
	if t.Scopes != nil {
		h.Set("X-OAuth-Scopes", strings.Join(t.Scopes, ", "))
		h.Set("X-Accepted-OAuth-Scopes", "")
	}
	if !t.Expires.IsZero() {
		h.Set("GitHub-Authentication-Token-Expiration", t.Expires.UTC().Format("2006-01-02 15:04:05 MST"))
	}
}

// userDocument is the authenticated user object of GET /user (PARTNERS.md,
// GitHub: login, id; docs.github.com, rest/users/users), without the e-mail
// a real private profile may show.
func userDocument(t Token) map[string]any {
	return map[string]any{
		"login": t.Login, "id": t.UserID, "node_id": "MDQ6VXNlcj" + strconv.Itoa(t.UserID), "type": "User",
		"site_admin": false, "name": "Test User " + strconv.Itoa(t.UserID), "email": nil,
		"html_url": "https://github.com/" + t.Login, "public_repos": 2, "followers": 0, "following": 0,
		"created_at": "2011-01-25T18:44:36Z", "updated_at": "2026-11-25T18:35:16Z",
	}
}

// repositories is GET /installation/repositories's answer (docs.github.com,
// rest/apps/installations#list-repositories-accessible-to-the-app-installation).
func repositories(t Token, perPage string) map[string]any {
	repos := []map[string]any{{"id": 1296269, "name": "Hello-World", "full_name": t.Login + "/Hello-World", "private": false}}
	if n, err := strconv.Atoi(perPage); err == nil && n <= 0 {
		repos = repos[:0]
	}
	return map[string]any{"total_count": 1, "repository_selection": "selected", "repositories": repos}
}

// WriteError writes an error as GitHub does; it is the double's
// partnertest.ErrorWriter. A 429 is the primary limit with x-ratelimit-
// remaining 0 and the reset at the Retry-After the fault layer chose (or a
// minute), in epoch seconds; other statuses get {"message":…}.
func WriteError(w http.ResponseWriter, status int, _, msg string) {
	if status == http.StatusTooManyRequests {
		reset := time.Now().Add(time.Minute)
		if secs, err := strconv.Atoi(w.Header().Get("Retry-After")); err == nil && secs >= 0 {
			reset = time.Now().Add(time.Duration(secs) * time.Second)
		}
		h := w.Header()
		h.Set("X-RateLimit-Limit", strconv.Itoa(LimitAuthenticated))
		h.Set("X-RateLimit-Remaining", "0")
		h.Set("X-RateLimit-Used", strconv.Itoa(LimitAuthenticated))
		h.Set("X-RateLimit-Resource", "core")
		// Rounded up, so that a client waiting until the reset never comes back early.
		h.Set("X-RateLimit-Reset", strconv.FormatInt(reset.Add(time.Second-time.Nanosecond).Unix(), 10))
		writeMessage(w, status, fmt.Sprintf(primaryLimitMessage, 1))
		return
	}
	if status >= 500 {
		msg = "Server Error"
	}
	writeMessage(w, status, msg)
}

// writeMessage writes GitHub's JSON error document.
func writeMessage(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"message": msg, "documentation_url": docsURL, "status": strconv.Itoa(status)})
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
