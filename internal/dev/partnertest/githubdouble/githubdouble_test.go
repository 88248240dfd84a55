package githubdouble

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
)

func start(t *testing.T) *Server {
	t.Helper()
	s, err := Start("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

type answer struct {
	status int
	header http.Header
	body   []byte
	msg    string
}

// get sends what a GitHub client sends; headers maps names to values, ""
// removing one (net/http adds a User-Agent unless told not to).
func get(t *testing.T, s *Server, path, auth string, headers map[string]string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("User-Agent", "githubdouble-test")
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", APIVersion)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	for k, v := range headers {
		if v == "" {
			req.Header[http.CanonicalHeaderKey(k)] = []string{""}
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := answer{status: resp.StatusCode, header: resp.Header, body: body}
	var doc struct {
		Message string `json:"message"`
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") && json.Unmarshal(body, &doc) == nil {
		a.msg = doc.Message
	}
	return a
}

func TestTokens(t *testing.T) {
	classic := regexp.MustCompile(`^gh[pousr]_[A-Za-z0-9]{36}$`)
	for _, p := range []string{"ghp_", "gho_", "ghu_", "ghs_", "ghr_"} {
		a, b := NewToken(p), NewToken(p)
		if !classic.MatchString(a) || !strings.HasPrefix(a, p) || a == b {
			t.Errorf("NewToken(%q) = %q, %q", p, a, b)
		}
		if checksum(a[4:34]) != a[34:] {
			t.Errorf("%s: the last 6 characters are not the checksum of the body", p)
		}
	}
	if fg := NewFineGrainedToken(); !regexp.MustCompile(`^github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}$`).MatchString(fg) {
		t.Errorf("NewFineGrainedToken = %q", fg)
	}
}

func TestAnswers(t *testing.T) {
	s := start(t)
	live := NewToken("ghp_")
	s.AddToken(live, Token{Login: "octocat", UserID: 583231, Scopes: []string{"repo", "read:org"}, Expires: time.Date(2031, 10, 7, 19, 7, 53, 0, time.UTC)})
	fine := NewFineGrainedToken()
	s.AddToken(fine, Token{Login: "octocat", UserID: 583231})
	inst := NewToken("ghs_")
	s.AddToken(inst, Token{Login: "app[bot]", UserID: 9})
	revoked := NewToken("gho_")
	s.AddToken(revoked, Token{Login: "octocat"})
	s.RevokeToken(revoked)

	t.Run("user document with scope and expiry headers; Bearer and token schemes", func(t *testing.T) {
		for _, scheme := range []string{"Bearer ", "token "} {
			a := get(t, s, "/user", scheme+live, nil)
			var u map[string]any
			if a.status != 200 || json.Unmarshal(a.body, &u) != nil || u["login"] != "octocat" || u["id"] != float64(583231) {
				t.Fatalf("%s: %d %s", scheme, a.status, a.body)
			}
			if a.header.Get("X-OAuth-Scopes") != "repo, read:org" || a.header.Get("GitHub-Authentication-Token-Expiration") != "2031-10-07 19:07:53 UTC" {
				t.Errorf("token headers %v", a.header)
			}
			if a.header.Get("X-RateLimit-Limit") != "5000" || a.header.Get("X-RateLimit-Resource") != "core" {
				t.Errorf("rate headers %v", a.header)
			}
		}
	})
	t.Run("fine-grained token: no scope header", func(t *testing.T) {
		if a := get(t, s, "/user", "Bearer "+fine, nil); a.status != 200 || len(a.header.Values("X-OAuth-Scopes")) != 0 {
			t.Errorf("%d %v", a.status, a.header)
		}
	})
	t.Run("installation token: its repositories, not /user", func(t *testing.T) {
		a := get(t, s, "/installation/repositories?per_page=1", "Bearer "+inst, nil)
		var doc struct {
			TotalCount   *int              `json:"total_count"`
			Repositories []json.RawMessage `json:"repositories"`
		}
		if a.status != 200 || json.Unmarshal(a.body, &doc) != nil || doc.TotalCount == nil || len(doc.Repositories) != 1 {
			t.Errorf("%d %s", a.status, a.body)
		}
		if a := get(t, s, "/user", "Bearer "+inst, nil); a.status != 403 || a.msg != restrictedApp {
			t.Errorf("/user: %d %q", a.status, a.msg)
		}
		if a := get(t, s, "/installation/repositories", "Bearer "+live, nil); a.status != 403 {
			t.Errorf("a user token listing installation repositories: %d", a.status)
		}
	})
	t.Run("bad credentials: 401 JSON, charged to the unauthenticated budget", func(t *testing.T) {
		for _, tok := range []string{revoked, NewToken("ghp_")} {
			a := get(t, s, "/user", "Bearer "+tok, nil)
			if a.status != 401 || a.msg != badCredentials || a.header.Get("X-RateLimit-Limit") != "60" {
				t.Errorf("%d %q %v", a.status, a.msg, a.header)
			}
		}
		s.SetEnterprise(true)
		defer s.SetEnterprise(false)
		if a := get(t, s, "/user", "Bearer "+revoked, nil); a.status != 401 || a.msg != enterpriseBadCreds {
			t.Errorf("enterprise: %d %q", a.status, a.msg)
		}
	})
	t.Run("no credential: 401 Requires authentication", func(t *testing.T) {
		for _, auth := range []string{"", "Basic abc", "Bearer"} {
			if a := get(t, s, "/user", auth, nil); a.status != 401 || a.msg != requiresAuth {
				t.Errorf("%q: %d %q", auth, a.status, a.msg)
			}
		}
	})
	t.Run("no User-Agent: 403 plain text", func(t *testing.T) {
		a := get(t, s, "/user", "Bearer "+live, map[string]string{"User-Agent": ""})
		if a.status != 403 || !strings.HasPrefix(a.header.Get("Content-Type"), "text/plain") || !strings.Contains(string(a.body), "User-Agent") {
			t.Errorf("%d %v %s", a.status, a.header, a.body)
		}
	})
	t.Run("unknown API version: 400; none at all is the default", func(t *testing.T) {
		if a := get(t, s, "/user", "Bearer "+live, map[string]string{"X-GitHub-Api-Version": "1999-01-01"}); a.status != 400 || !strings.Contains(a.msg, "X-GitHub-Api-Version") {
			t.Errorf("%d %q", a.status, a.msg)
		}
		if a := get(t, s, "/user", "Bearer "+live, map[string]string{"X-GitHub-Api-Version": ""}); a.status != 200 {
			t.Errorf("no version: %d", a.status)
		}
	})
	t.Run("unknown path: 404", func(t *testing.T) {
		if a := get(t, s, "/me", "Bearer "+live, nil); a.status != 404 || a.msg != notFound {
			t.Errorf("%d %q", a.status, a.msg)
		}
	})
}

func TestModes(t *testing.T) {
	s := start(t)
	s.SetRetryAfterSeconds(17)
	tests := []struct {
		mode       Mode
		prefix     string
		status     int
		msg        string
		remaining  string
		retryAfter string
	}{
		{Restricted403, "github_pat_", 403, restrictedPAT, "4999", ""},
		{Restricted404, "github_pat_", 404, restrictedPAT, "4999", ""},
		{Restricted403, "ghs_", 403, restrictedApp, "4999", ""},
		{LockedOut, "ghp_", 403, lockoutMessage, "4999", ""},
		{Primary403, "ghp_", 403, "API rate limit exceeded for user ID 1. If you reach out to GitHub Support for help, please include the request ID.", "0", ""},
		{Primary429, "ghp_", 429, "", "0", ""},
		{Secondary403RetryAfter, "ghp_", 403, secondaryMessage, "4990", "17"},
		{Secondary429RetryAfter, "ghp_", 429, secondaryMessage, "4990", "17"},
		{Secondary403, "ghp_", 403, secondaryMessage, "4990", ""},
		{Secondary429, "ghp_", 429, secondaryMessage, "4990", ""},
	}
	for _, tc := range tests {
		t.Run(tc.mode.String()+" "+tc.prefix, func(t *testing.T) {
			tok := NewToken(tc.prefix)
			if tc.prefix == "github_pat_" {
				tok = NewFineGrainedToken()
			}
			s.AddToken(tok, Token{Mode: tc.mode})
			path := "/user"
			if tc.prefix == "ghs_" {
				path = "/installation/repositories"
			}
			a := get(t, s, path, "Bearer "+tok, nil)
			if a.status != tc.status || (tc.msg != "" && a.msg != tc.msg) {
				t.Errorf("%d %q, want %d %q", a.status, a.msg, tc.status, tc.msg)
			}
			if got := a.header.Get("X-RateLimit-Remaining"); got != tc.remaining {
				t.Errorf("x-ratelimit-remaining %q, want %q", got, tc.remaining)
			}
			if got := a.header.Get("Retry-After"); got != tc.retryAfter {
				t.Errorf("retry-after %q, want %q", got, tc.retryAfter)
			}
			if tc.remaining == "0" {
				reset, err := strconv.ParseInt(a.header.Get("X-RateLimit-Reset"), 10, 64)
				if err != nil || reset < time.Now().Unix() || reset > time.Now().Add(time.Hour+time.Second).Unix() {
					t.Errorf("x-ratelimit-reset %q is not an epoch second within the hour", a.header.Get("X-RateLimit-Reset"))
				}
			}
		})
	}
}

func TestLockOutCoversEveryTokenOfTheUser(t *testing.T) {
	s := start(t)
	live, dead, other := NewToken("ghp_"), NewToken("ghp_"), NewToken("ghp_")
	s.AddToken(live, Token{Login: "victim"})
	s.AddToken(dead, Token{Login: "victim"})
	s.RevokeToken(dead)
	s.AddToken(other, Token{Login: "someone-else"})
	s.LockOut("victim", true)
	for _, tok := range []string{live, dead} {
		if a := get(t, s, "/user", "Bearer "+tok, nil); a.status != 403 || a.msg != lockoutMessage {
			t.Errorf("locked-out user: %d %q", a.status, a.msg)
		}
	}
	if a := get(t, s, "/user", "Bearer "+other, nil); a.status != 200 {
		t.Errorf("another user: %d", a.status)
	}
	s.LockOut("victim", false)
	if a := get(t, s, "/user", "Bearer "+live, nil); a.status != 200 {
		t.Errorf("after the lockout: %d", a.status)
	}
}

// TestFaultLayer: the shared knobs answer in GitHub's error format.
func TestFaultLayer(t *testing.T) {
	s := start(t)
	tok := NewToken("ghp_")
	s.AddToken(tok, Token{})
	s.Controls.SetRetryAfter("9")
	s.Controls.Push(partnertest.Fault429, partnertest.Fault500)
	a := get(t, s, "/user", "Bearer "+tok, nil)
	reset, _ := strconv.ParseInt(a.header.Get("X-RateLimit-Reset"), 10, 64)
	if a.status != 429 || a.header.Get("Retry-After") != "9" || a.header.Get("X-RateLimit-Remaining") != "0" ||
		reset < time.Now().Add(8*time.Second).Unix() || !strings.HasPrefix(a.msg, "API rate limit exceeded") {
		t.Errorf("429: %d %v %q", a.status, a.header, a.msg)
	}
	if a := get(t, s, "/user", "Bearer "+tok, nil); a.status != 500 || a.msg != "Server Error" {
		t.Errorf("500: %d %q", a.status, a.msg)
	}
	// Scripted faults answer before the double reads the credential.
	if s.Controls.CountFor(tok) != 0 || s.Controls.Requests() != 2 {
		t.Errorf("counted %d for the token, %d requests", s.Controls.CountFor(tok), s.Controls.Requests())
	}
}
