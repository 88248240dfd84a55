package npmpartner_test

import (
	"bytes"
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/verifiertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	npmpartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/npm"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
)

// fuzzToken is the token the fuzzer's responses may echo ({{TOKEN}}), drawn
// from a fixed seed; the corpus holds only the placeholder.
var fuzzToken = verifiertest.FuzzToken(0x6e70, 0x6d5f, "npm_", "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", 36)

// FuzzNpmAnswer feeds arbitrary answers to GET /-/whoami (status, headers,
// body, a dropped or truncated connection) to the real verifier and holds
// its classification to the contract: it never panics; a fault (no answer,
// a truncated body, 429, 5xx) is always a *verify.Fault, never a verdict;
// partner_rejected comes only from a complete, non-HTML 401 that challenges
// for neither an IP address nor a one-time password; partner_confirmed only
// from a 200 whoami document, whose user name is the only detail; and the
// token appears in no verdict or fault.
func FuzzNpmAnswer(f *testing.F) {
	srv, v := verifiertest.FuzzTarget(f, npmpartner.New)
	f.Fuzz(func(t *testing.T, mode byte, status int, header string, body []byte) {
		resp := partnertest.NewFuzzAnswer(mode, status, header, body, "{{TOKEN}}", fuzzToken)
		srv.Set(resp)
		fd := finding.Finding{ID: "f-1", RuleID: ruleGitleaks, Token: finding.Secret(fuzzToken)}
		verdict, err := v.Verify(context.Background(), npmpartner.TokenAccessToken, fd)

		if !(verifiertest.FuzzContract{Secrets: []string{fuzzToken, fuzzToken[4:]}}).Check(t, resp, verdict, err) {
			return
		}
		switch verdict.Reason {
		case finding.ReasonPartnerConfirmed:
			name, ok := npmUsername(resp.Status, resp.Body)
			if !ok {
				t.Fatalf("partner_confirmed from http %d with a body that is not npm's whoami document: %q", resp.Status, finding.Scrub(string(resp.Body), fuzzToken))
			}
			if len(verdict.Details) != 1 || verdict.Details[npmpartner.DetailUsername] != name {
				t.Fatalf("details %v, want only the user name", verdict.Details)
			}
		case finding.ReasonPartnerRejected:
			if !isNpmRejection(resp.Status, resp.Header, resp.Body) {
				t.Fatalf("partner_rejected from http %d that is not npm's rejection: %q", resp.Status, finding.Scrub(string(resp.Body), fuzzToken))
			}
		default:
			t.Fatalf("verdict %q for a well-formed token", verdict.Reason)
		}
	})
}

var oracleName = regexp.MustCompile(`^[A-Za-z0-9._~-]{1,214}$`)

// npmUsername is npm's whoami document: a 200 whose body is one JSON object
// and nothing else with, under exactly the key "username", a non-empty
// URL-safe name that does not carry the token. Written independently of the
// verifier's own decoder.
func npmUsername(status int, body []byte) (string, bool) {
	doc, ok := verifiertest.JSONObject(body)
	if status != http.StatusOK || !ok {
		return "", false
	}
	name, ok := verifiertest.JSONString(doc, "username")
	if !ok || !oracleName.MatchString(name) {
		return "", false
	}
	if strings.Contains(strings.ToLower(name), strings.ToLower(fuzzToken[4:])) {
		return "", false
	}
	return name, true
}

// isNpmRejection is npm's answer to an unknown, revoked or expired token
// (contract §7): a 401 that is not an HTML page, whose WWW-Authenticate
// challenges for neither "ipaddress" nor "otp" and whose body does not ask
// for a one-time pass (npm-registry-fetch, check-response.js).
func isNpmRejection(status int, h http.Header, body []byte) bool {
	if status != http.StatusUnauthorized || partnerhttp.IsHTML(h, body) || bytes.Contains(body, []byte("one-time pass")) {
		return false
	}
	for _, v := range h.Values("Www-Authenticate") {
		for _, s := range strings.Split(v, ",") {
			if s = strings.ToLower(strings.TrimSpace(s)); s == "ipaddress" || s == "otp" {
				return false
			}
		}
	}
	return true
}

// TestFuzzOracle shows the oracles tell npm's answers from look-alikes.
func TestFuzzOracle(t *testing.T) {
	html := http.Header{"Content-Type": {"text/html"}}
	cases := []struct {
		name   string
		status int
		header http.Header
		body   string
		reject bool
		active bool
	}{
		{"empty 401", 401, nil, "", true, false},
		{"JSON 401", 401, nil, `{"error":"Unauthorized"}`, true, false},
		{"401 HTML", 401, html, `<html>401</html>`, false, false},
		{"401 ipaddress", 401, http.Header{"Www-Authenticate": {"ipaddress"}}, ``, false, false},
		{"401 OTP", 401, http.Header{"Www-Authenticate": {"Bearer, OTP"}}, ``, false, false},
		{"401 one-time pass", 401, nil, `{"error":"a one-time pass is required"}`, false, false},
		{"403", 403, nil, `{"error":"Forbidden"}`, false, false},
		{"whoami", 200, nil, `{"username":"someone"}`, false, true},
		{"whoami with 201", 201, nil, `{"username":"someone"}`, false, false},
		{"empty username", 200, nil, `{"username":""}`, false, false},
		{"e-mail", 200, nil, `{"username":"a@example.com"}`, false, false},
		{"token echoed", 200, nil, `{"username":"` + fuzzToken + `"}`, false, false},
		{"two documents", 200, nil, `{"username":"a"}{"username":"a"}`, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.header
			if h == nil {
				h = http.Header{}
			}
			if got := isNpmRejection(tc.status, h, []byte(tc.body)); got != tc.reject {
				t.Errorf("isNpmRejection = %v, want %v", got, tc.reject)
			}
			if _, got := npmUsername(tc.status, []byte(tc.body)); got != tc.active {
				t.Errorf("npmUsername ok = %v, want %v", got, tc.active)
			}
		})
	}
}
