package slackpartner_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/verifiertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	slackpartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/slack"
)

// fuzzToken is the bot token the fuzzer's responses may echo ({{TOKEN}},
// and its secret tail as {{SECRET}}), drawn from a fixed seed; the corpus
// holds only the placeholders.
var fuzzToken = func() string {
	r := verifiertest.NewFuzzRand(0x51ac, 0x7e57)
	const digits, alnum = "0123456789", "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	return "xoxb-" + r.Pick(digits, 12) + "-" + r.Pick(digits, 13) + "-" + r.Pick(alnum, 24)
}()

// FuzzSlackAnswer feeds arbitrary answers to POST /auth.test (status,
// headers, body, a dropped or truncated connection) to the real verifier
// and holds its classification to the contract: it never panics; a fault
// (no answer, a truncated body, 429, 5xx) is always a *verify.Fault, never
// a verdict; partner_rejected comes only from a 200 or 401 whose body is
// Slack's envelope with ok false and one of its authentication errors,
// partner_confirmed only from a 200 with ok true; "ratelimited" is never a
// verdict; and the token appears in no verdict, detail or fault.
func FuzzSlackAnswer(f *testing.F) {
	srv, v := verifiertest.FuzzTarget(f, slackpartner.New)
	secret := fuzzToken[strings.LastIndex(fuzzToken, "-")+1:]
	f.Fuzz(func(t *testing.T, mode byte, status int, header string, body []byte) {
		resp := partnertest.NewFuzzAnswer(mode, status, header, body, "{{TOKEN}}", fuzzToken, "{{SECRET}}", secret)
		srv.Set(resp)
		fd := finding.Finding{ID: "f-1", RuleID: rule, Token: finding.Secret(fuzzToken)}
		verdict, err := v.Verify(context.Background(), slackpartner.TokenBot, fd)

		if !(verifiertest.FuzzContract{Secrets: []string{secret}, FoldCase: true, Unreadable429: true}).Check(t, resp, verdict, err) {
			return
		}
		switch verdict.Reason {
		case finding.ReasonPartnerConfirmed:
			if resp.Status != http.StatusOK || !isSlackOK(resp.Body) {
				t.Fatalf("partner_confirmed from http %d with a body that is not Slack's ok:true", resp.Status)
			}
		case finding.ReasonPartnerRejected:
			if !isSlackRejection(resp.Status, resp.Body) {
				t.Fatalf("partner_rejected from http %d with a body that is not Slack's rejection: %q", resp.Status, finding.Scrub(string(resp.Body), fuzzToken))
			}
		default:
			t.Fatalf("verdict %q for a well-formed token", verdict.Reason)
		}
	})
}

// isSlackOK is Slack's success: one JSON object whose "ok" is true.
func isSlackOK(body []byte) bool {
	var doc map[string]any
	return json.Unmarshal(body, &doc) == nil && doc["ok"] == true
}

// isSlackRejection is Slack's answer for a token it refuses: a 200 (or a
// 401) whose body is one JSON object with "ok" false and, under "error",
// one of the authentication errors of auth.test.
func isSlackRejection(status int, body []byte) bool {
	if status != http.StatusOK && status != http.StatusUnauthorized {
		return false
	}
	var doc map[string]any
	if json.Unmarshal(body, &doc) != nil || doc["ok"] != false {
		return false
	}
	switch doc["error"] {
	case "invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired":
		return true
	}
	return false
}

// TestFuzzOracle shows the rejection oracle tells Slack's body from look-alikes.
func TestFuzzOracle(t *testing.T) {
	cases := []struct {
		name   string
		status int
		body   string
		want   bool
	}{
		{"invalid_auth", 200, `{"ok":false,"error":"invalid_auth"}`, true},
		{"token_revoked with 401", 401, `{"ok":false,"error":"token_revoked"}`, true},
		{"with a warning", 200, `{"ok":false,"error":"account_inactive","warning":"superfluous_charset"}`, true},
		{"same body with 403", 403, `{"ok":false,"error":"invalid_auth"}`, false},
		{"ratelimited", 200, `{"ok":false,"error":"ratelimited"}`, false},
		{"team_added_to_org", 200, `{"ok":false,"error":"team_added_to_org"}`, false},
		{"ok true", 200, `{"ok":true,"error":"invalid_auth"}`, false},
		{"ok a string", 200, `{"ok":"false","error":"invalid_auth"}`, false},
		{"upper-case keys", 200, `{"OK":false,"Error":"invalid_auth"}`, false},
		{"truncated", 200, `{"ok":false,"error":"invalid_au`, false},
		{"HTML", 200, `<html><body>invalid_auth</body></html>`, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := isSlackRejection(tc.status, []byte(tc.body)); got != tc.want {
				t.Fatalf("isSlackRejection = %v, want %v", got, tc.want)
			}
		})
	}
}
