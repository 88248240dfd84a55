package npmdouble

import (
	"encoding/json"
	"net/http"
	"regexp"
	"testing"

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
}

func do(t *testing.T, s *Server, method, path string, header map[string]string) answer {
	t.Helper()
	status, h, b := partnertest.Do(t, method, s.URL+path, header)
	return answer{status, h, b}
}

func authed(tok string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + tok, "Accept": "application/json"}
}

func TestWhoami(t *testing.T) {
	s := start(t)
	tok := NewToken()
	s.AddToken(tok, "some-maintainer")
	a := do(t, s, http.MethodGet, "/-/whoami", authed(tok))
	if a.status != http.StatusOK || a.header.Get("Content-Type") != "application/json" || string(a.body) != `{"username":"some-maintainer"}` {
		t.Errorf("whoami = %d %q %s", a.status, a.header.Get("Content-Type"), a.body)
	}
	if s.Controls.CountFor(tok) != 1 || s.Controls.Requests() != 1 {
		t.Errorf("counters: %d for the token, %d in all", s.Controls.CountFor(tok), s.Controls.Requests())
	}
	// The scheme is read without case, as HTTP auth schemes are.
	if a := do(t, s, http.MethodGet, "/-/whoami", map[string]string{"Authorization": "bearer " + tok}); a.status != http.StatusOK {
		t.Errorf("lower-case scheme: %d", a.status)
	}
}

func TestRejections(t *testing.T) {
	s := start(t)
	revoked := NewToken()
	s.AddToken(revoked, "someone")
	s.RevokeToken(revoked)
	cases := map[string]map[string]string{
		"no Authorization":    nil,
		"unknown token":       authed(NewToken()),
		"revoked token":       authed(revoked),
		"Basic scheme":        {"Authorization": "Basic " + revoked},
		"empty Bearer":        {"Authorization": "Bearer "},
		"token without a key": {"Authorization": revoked},
	}
	for name, h := range cases {
		t.Run(name, func(t *testing.T) {
			s.SetRejectionBody(RejectEmpty)
			a := do(t, s, http.MethodGet, "/-/whoami", h)
			if a.status != http.StatusUnauthorized || len(a.body) != 0 || a.header.Get("WWW-Authenticate") != "" {
				t.Errorf("empty shape: %d %q %v", a.status, a.body, a.header)
			}
			s.SetRejectionBody(RejectJSON)
			a = do(t, s, http.MethodGet, "/-/whoami", h)
			var doc map[string]string
			if a.status != http.StatusUnauthorized || json.Unmarshal(a.body, &doc) != nil || doc["error"] == "" || len(doc) != 1 {
				t.Errorf("JSON shape: %d %s", a.status, a.body)
			}
		})
	}
}

func TestModes(t *testing.T) {
	s := start(t)
	cases := []struct {
		mode      Mode
		status    int
		challenge string
		body      string
	}{
		{Live, 200, "", `{"username":"u"}`},
		{IPRestricted, 401, "ipaddress", `{"error":"` + ipAddressMessage + `"}`},
		{OTPRequired, 401, "otp", `{"error":"` + otpMessage + `"}`},
		{Forbidden, 403, "", `{"error":"Forbidden"}`},
		{NoUsername, 200, "", `{}`},
	}
	for _, tc := range cases {
		tok := NewToken()
		s.AddTokenMode(tok, "u", tc.mode)
		a := do(t, s, http.MethodGet, "/-/whoami", authed(tok))
		if a.status != tc.status || a.header.Get("WWW-Authenticate") != tc.challenge || string(a.body) != tc.body {
			t.Errorf("mode %d: %d %q %s", tc.mode, a.status, a.header.Get("WWW-Authenticate"), a.body)
		}
	}
}

func TestOtherPathsAndMethods(t *testing.T) {
	s := start(t)
	tok := NewToken()
	s.AddToken(tok, "u")
	for _, c := range []struct{ method, path string }{
		{http.MethodGet, "/whoami"}, {http.MethodPost, "/-/whoami"}, {http.MethodGet, "/-/whoami/x"},
	} {
		if a := do(t, s, c.method, c.path, authed(tok)); a.status != http.StatusNotFound {
			t.Errorf("%s %s = %d, want 404", c.method, c.path, a.status)
		}
	}
}

// TestFaultLayer: the shared knobs answer in the registry's error shape,
// with Retry-After in seconds on a 429.
func TestFaultLayer(t *testing.T) {
	s := start(t)
	tok := NewToken()
	s.AddToken(tok, "u")
	s.Controls.SetRetryAfter("12")
	s.Controls.Push(partnertest.Fault429, partnertest.Fault500, partnertest.Fault503)
	for _, want := range []struct {
		status int
		body   string
	}{{429, `{"error":"Too Many Requests"}`}, {500, `{"error":"Internal Server Error"}`}, {503, `{"error":"Service Unavailable"}`}} {
		a := do(t, s, http.MethodGet, "/-/whoami", authed(tok))
		if a.status != want.status || string(a.body) != want.body {
			t.Errorf("got %d %s, want %d %s", a.status, a.body, want.status, want.body)
		}
		if want.status == 429 && a.header.Get("Retry-After") != "12" {
			t.Errorf("429 Retry-After = %q", a.header.Get("Retry-After"))
		}
	}
	if s.Controls.RateLimited() != 1 {
		t.Errorf("RateLimited = %d", s.Controls.RateLimited())
	}
}

func TestGenerators(t *testing.T) {
	form := regexp.MustCompile(`^npm_[A-Za-z0-9]{36}$`)
	seen := map[string]bool{}
	for range 100 {
		tok := NewToken()
		if !form.MatchString(tok) || seen[tok] {
			t.Fatalf("NewToken = a token of %d characters, or a repeat", len(tok))
		}
		seen[tok] = true
		if checksum(tok[4:34]) != tok[34:] {
			t.Fatal("NewToken's last 6 characters are not the checksum of the 30 before")
		}
	}
	if n := NewUsername(); !regexp.MustCompile(`^[a-z0-9-]{1,214}$`).MatchString(n) {
		t.Errorf("NewUsername = %q", n)
	}
}
