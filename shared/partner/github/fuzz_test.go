package githubpartner_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/verifiertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	githubpartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/github"
)

// fuzzTokens are the tokens the fuzzer's responses may echo ({{TOKEN}}):
// a classic token (GET /user) and an installation token (GET
// /installation/repositories), chosen by the third bit of mode, drawn from
// a fixed seed; the corpus holds only the placeholder.
var fuzzTokens = func() [2]string {
	r := verifiertest.NewFuzzRand(0x6174, 0x6875)
	const alnum = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	return [2]string{"ghp_" + r.Pick(alnum, 36), "ghs_" + r.Pick(alnum, 36)}
}()

// FuzzGithubAnswer feeds arbitrary answers (status, headers, body, a
// dropped or truncated connection) to the real verifier and holds its
// classification to the contract: it never panics; a fault (no answer, a
// truncated body, 429, 5xx) is always a *verify.Fault, never a verdict; a
// 429 is a rate limit with a wait; partner_rejected comes only from a 401
// whose body is GitHub's JSON error; partner_confirmed only from a 200, or
// a 403/404 whose JSON message is GitHub's "Resource not accessible by";
// and the token appears in no verdict, detail or fault.
func FuzzGithubAnswer(f *testing.F) {
	srv, v := verifiertest.FuzzTarget(f, githubpartner.New)
	f.Fuzz(func(t *testing.T, mode byte, status int, header string, body []byte) {
		tok, tt := fuzzTokens[0], githubpartner.TokenPAT
		if mode&4 != 0 {
			tok, tt = fuzzTokens[1], githubpartner.TokenAppInstallation
		}
		resp := partnertest.NewFuzzAnswer(mode, status, header, body, "{{TOKEN}}", tok)
		srv.Set(resp)
		fd := finding.Finding{ID: "f-1", RuleID: rule, Token: finding.Secret(tok)}
		verdict, err := v.Verify(context.Background(), tt, fd)

		if !(verifiertest.FuzzContract{Secrets: []string{tok, tok[4:]}, WantRetryAfter: true}).Check(t, resp, verdict, err) {
			return
		}
		switch verdict.Reason {
		case finding.ReasonPartnerConfirmed:
			if resp.Status != http.StatusOK && !isRestricted(resp.Status, resp.Body) {
				t.Fatalf("partner_confirmed from http %d", resp.Status)
			}
		case finding.ReasonPartnerRejected:
			if !isGithubRejection(resp.Status, resp.Body) {
				t.Fatalf("partner_rejected from http %d with a body that is not GitHub's JSON error: %q", resp.Status, finding.Scrub(string(resp.Body), tok))
			}
		default:
			t.Fatalf("verdict %q for a well-formed token", verdict.Reason)
		}
	})
}

// githubMessage returns the "message" of a body that is one JSON object
// with, under exactly that key, a string.
func githubMessage(body []byte) (string, bool) {
	var doc map[string]json.RawMessage
	var msg string
	dec := json.NewDecoder(strings.NewReader(string(body)))
	if dec.Decode(&doc) != nil || dec.More() || doc == nil || json.Unmarshal(doc["message"], &msg) != nil {
		return "", false
	}
	return msg, true
}

// isGithubRejection is GitHub's answer for a bad token: a 401 whose body
// is its JSON error document, whatever the wording.
func isGithubRejection(status int, body []byte) bool {
	_, ok := githubMessage(body)
	return status == http.StatusUnauthorized && ok
}

// isRestricted is GitHub's answer for a live token without the permission.
func isRestricted(status int, body []byte) bool {
	msg, ok := githubMessage(body)
	return (status == http.StatusForbidden || status == http.StatusNotFound) && ok && strings.HasPrefix(msg, "Resource not accessible by ")
}

// TestFuzzOracle shows the oracles tell GitHub's bodies from look-alikes.
func TestFuzzOracle(t *testing.T) {
	const bad = `{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest","status":"401"}`
	cases := []struct {
		name       string
		status     int
		body       string
		rejection  bool
		restricted bool
	}{
		{"GitHub's 401", 401, bad, true, false},
		{"Enterprise wording", 401, `{"message":"Must authenticate to access this API."}`, true, false},
		{"same body with 403", 403, bad, false, false},
		{"message not a string", 401, `{"message":1}`, false, false},
		{"upper-case key", 401, `{"Message":"Bad credentials"}`, false, false},
		{"truncated", 401, bad[:len(bad)-2], false, false},
		{"trailing garbage", 401, bad + "x", false, false},
		{"HTML", 401, `<html><body>{"message":"Bad credentials"}</body></html>`, false, false},
		{"restricted 403", 403, `{"message":"Resource not accessible by integration"}`, false, true},
		{"restricted 404", 404, `{"message":"Resource not accessible by personal access token"}`, false, true},
		{"restricted wording on 401", 401, `{"message":"Resource not accessible by integration"}`, true, false},
		{"lockout", 403, `{"message":"Maximum number of login attempts exceeded. Please try again later."}`, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := isGithubRejection(tc.status, []byte(tc.body)); got != tc.rejection {
				t.Errorf("isGithubRejection = %v, want %v", got, tc.rejection)
			}
			if got := isRestricted(tc.status, []byte(tc.body)); got != tc.restricted {
				t.Errorf("isRestricted = %v, want %v", got, tc.restricted)
			}
		})
	}
}
