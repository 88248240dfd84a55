package gitlabdouble

import (
	"encoding/json"
	"hash/crc32"
	"math/big"
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
}

func do(t *testing.T, s *Server, method, path string, header map[string]string) answer {
	t.Helper()
	status, h, b := partnertest.Do(t, method, s.URL+path, header)
	return answer{status, h, b}
}

func private(tok string) map[string]string { return map[string]string{"PRIVATE-TOKEN": tok} }

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", b, err)
	}
	return m
}

var tokenForm = regexp.MustCompile(`^glpat-[0-9A-Za-z_.-]{20,}$`)

func TestNewToken(t *testing.T) {
	seen := map[string]bool{}
	for range 50 {
		for _, tok := range []string{NewToken(), NewRoutableToken()} {
			if !tokenForm.MatchString(tok) || seen[tok] {
				t.Fatalf("token of the wrong form or repeated (len %d)", len(tok))
			}
			seen[tok] = true
		}
	}
	if n := len(NewToken()); n != 26 {
		t.Errorf("legacy token length %d, want 26", n)
	}
}

// TestRoutableTokenCRC recomputes the routable token's length and CRC32
// fields from their definition.
func TestRoutableTokenCRC(t *testing.T) {
	tok := NewRoutableToken()
	i := strings.LastIndex(tok, ".01.")
	if i < 0 || len(tok) < 43 || len(tok) > 316 {
		t.Fatalf("routable token has no .01. or a bad length %d", len(tok))
	}
	payload := strings.TrimPrefix(tok[:i], "glpat-")
	tail := tok[i+4:]
	if len(tail) != 9 {
		t.Fatalf("tail has %d characters, want 2 + 7", len(tail))
	}
	n, _ := strconv.ParseInt(tail[:2], 36, 64)
	if int(n) != len(payload)%(36*36) {
		t.Errorf("length field %d, payload %d", n, len(payload))
	}
	crc, _ := new(big.Int).SetString(tail[2:], 36)
	if crc.Int64() != int64(crc32.ChecksumIEEE([]byte(tok[:len(tok)-7]))) {
		t.Error("CRC field does not match")
	}
}

func TestAnswers(t *testing.T) {
	s := start(t)
	live, restricted, expired, revoked, inactive200, revoked200, unknown := NewToken(), NewToken(), NewToken(), NewToken(), NewToken(), NewToken(), NewToken()
	s.SetToken(live, Active, []string{"api", "read_repository"}, "2026-12-31")
	s.SetToken(restricted, Restricted, RestrictedScopes, "")
	s.SetToken(expired, Expired, DefaultScopes, "2024-01-01")
	s.AddToken(revoked)
	s.RevokeToken(revoked)
	s.SetToken(inactive200, Inactive200, DefaultScopes, "2024-01-01")
	s.SetToken(revoked200, Revoked200, DefaultScopes, "")

	a := do(t, s, "GET", SelfPath, private(live))
	if a.status != 200 {
		t.Fatalf("live: %d %s", a.status, a.body)
	}
	doc := decode(t, a.body)
	if doc["active"] != true || doc["revoked"] != false || doc["expires_at"] != "2026-12-31" || doc["id"] == nil {
		t.Errorf("live document = %v", doc)
	}
	if sc, _ := json.Marshal(doc["scopes"]); string(sc) != `["api","read_repository"]` {
		t.Errorf("scopes = %s", sc)
	}
	if a.header.Get("RateLimit-Name") != "throttle_authenticated_api" || a.header.Get("RateLimit-Limit") != "2000" {
		t.Errorf("rate-limit headers of an authenticated request: %v", a.header)
	}
	// Bearer works too, as on GitLab.
	if a := do(t, s, "GET", SelfPath, map[string]string{"Authorization": "Bearer " + live}); a.status != 200 {
		t.Errorf("Bearer: %d", a.status)
	}

	a = do(t, s, "GET", SelfPath, private(restricted))
	if m := decode(t, a.body); a.status != 403 || m["error"] != "insufficient_scope" || m["error_description"] == nil {
		t.Errorf("restricted: %d %s", a.status, a.body)
	}
	for tok, desc := range map[string]string{expired: DescriptionExpired, revoked: DescriptionRevoked} {
		a = do(t, s, "GET", SelfPath, private(tok))
		if m := decode(t, a.body); a.status != 401 || m["error"] != "invalid_token" || m["error_description"] != desc {
			t.Errorf("invalid token: %d %s", a.status, a.body)
		}
		if !strings.Contains(a.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("WWW-Authenticate = %q", a.header.Get("WWW-Authenticate"))
		}
	}
	a = do(t, s, "GET", SelfPath, private(inactive200))
	if m := decode(t, a.body); a.status != 200 || m["active"] != false || m["revoked"] != false {
		t.Errorf("inactive 200: %d %s", a.status, a.body)
	}
	a = do(t, s, "GET", SelfPath, private(revoked200))
	if m := decode(t, a.body); a.status != 200 || m["active"] != false || m["revoked"] != true || m["expires_at"] != nil {
		t.Errorf("revoked 200: %d %s", a.status, a.body)
	}
	for name, h := range map[string]map[string]string{"unknown": private(unknown), "no token": nil} {
		a = do(t, s, "GET", SelfPath, h)
		if a.status != 401 || string(a.body) != `{"message":"401 Unauthorized"}` {
			t.Errorf("%s: %d %s", name, a.status, a.body)
		}
		if a.header.Get("RateLimit-Name") != "throttle_unauthenticated_api" || a.header.Get("RateLimit-Limit") != "500" {
			t.Errorf("%s: rate-limit headers %v", name, a.header)
		}
	}
	// The token in the query string is not read: a verifier that puts it
	// in the URL gets a 401.
	if a = do(t, s, "GET", SelfPath+"?private_token="+live, nil); a.status != 401 {
		t.Errorf("query token: %d", a.status)
	}
	if a = do(t, s, "GET", "/api/v4/user", private(live)); a.status != 404 {
		t.Errorf("other path: %d", a.status)
	}
	if a = do(t, s, "DELETE", SelfPath, private(live)); a.status != 405 {
		t.Errorf("DELETE: %d", a.status)
	}
	if got := s.Controls.CountFor(live); got != 4 {
		t.Errorf("CountFor(live) = %d, want 4 (the query token is not counted)", got)
	}
}

func TestRateLimitHeaders(t *testing.T) {
	s := start(t)
	tok := NewToken()
	s.AddToken(tok)
	cases := []struct {
		form             RateLimitHeaders
		retry, reset, rt bool
	}{
		{AllHeaders, true, true, true},
		{RetryAfterOnly, true, false, false},
		{ResetOnly, false, true, false},
		{ResetTimeOnly, false, false, true},
		{NoWait, false, false, false},
	}
	for _, tc := range cases {
		s.Controls.Reset()
		s.Controls.SetRetryAfter("30")
		s.SetRateLimitHeaders(tc.form)
		s.Controls.Push(partnertest.Fault429)
		before := time.Now()
		a := do(t, s, "GET", SelfPath, private(tok))
		if a.status != 429 || string(a.body) != RetryLater || !strings.HasPrefix(a.header.Get("Content-Type"), "text/plain") {
			t.Fatalf("form %d: %d %q %v", tc.form, a.status, a.body, a.header)
		}
		if a.header.Get("RateLimit-Remaining") != "0" || a.header.Get("RateLimit-Limit") == "" || a.header.Get("RateLimit-Name") == "" || a.header.Get("RateLimit-Observed") == "" {
			t.Errorf("form %d: RateLimit-* = %v", tc.form, a.header)
		}
		if got := a.header.Get("Retry-After") != ""; got != tc.retry {
			t.Errorf("form %d: Retry-After present %v", tc.form, got)
		} else if got {
			if secs, _ := strconv.Atoi(a.header.Get("Retry-After")); secs < 30 || secs > 31 {
				t.Errorf("Retry-After = %d", secs)
			}
		}
		if got := a.header.Get("RateLimit-Reset") != ""; got != tc.reset {
			t.Errorf("form %d: RateLimit-Reset present %v", tc.form, got)
		} else if got {
			epoch, _ := strconv.ParseInt(a.header.Get("RateLimit-Reset"), 10, 64)
			if d := time.Unix(epoch, 0).Sub(before); d < 29*time.Second || d > 32*time.Second {
				t.Errorf("RateLimit-Reset is %v away", d)
			}
		}
		if got := a.header.Get("RateLimit-ResetTime") != ""; got != tc.rt {
			t.Errorf("form %d: RateLimit-ResetTime present %v", tc.form, got)
		} else if got {
			if _, err := http.ParseTime(a.header.Get("RateLimit-ResetTime")); err != nil {
				t.Errorf("RateLimit-ResetTime %q: %v", a.header.Get("RateLimit-ResetTime"), err)
			}
		}
	}
}

func TestFaults(t *testing.T) {
	s := start(t)
	tok := NewToken()
	s.AddToken(tok)
	s.Controls.Push(partnertest.Fault500, partnertest.Fault503, partnertest.FaultHTML401)
	if a := do(t, s, "GET", SelfPath, private(tok)); a.status != 500 || string(a.body) != `{"message":"500 Internal Server Error"}` {
		t.Errorf("500: %d %s", a.status, a.body)
	}
	if a := do(t, s, "GET", SelfPath, private(tok)); a.status != 503 {
		t.Errorf("503: %d", a.status)
	}
	if a := do(t, s, "GET", SelfPath, private(tok)); a.status != 401 || !strings.Contains(string(a.body), "<html") {
		t.Errorf("html 401: %d %s", a.status, a.body)
	}
	if s.Controls.Requests() != 3 {
		t.Errorf("requests = %d", s.Controls.Requests())
	}
}
