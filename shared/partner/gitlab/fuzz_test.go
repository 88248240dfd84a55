package gitlabpartner_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/verifiertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	gitlabpartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/gitlab"
)

// fuzzToken is the token the fuzzer's responses may echo ({{TOKEN}}, and
// its part after glpat- as {{BODY}}), drawn from a fixed seed; the corpus
// holds only the placeholders.
var fuzzToken = verifiertest.FuzzToken(0x91ab, 0x7a7, "glpat-", "abcdefghijklmnopqrstuvwxyz0123456789", 20)

// FuzzGitlabAnswer feeds arbitrary answers to GET
// /api/v4/personal_access_tokens/self (status, headers, body, a dropped or
// truncated connection) to the real verifier and holds its classification
// to the contract: it never panics; a fault (no answer, a truncated body,
// 429, 5xx) is always a *verify.Fault, never a verdict; partner_rejected
// comes only from GitLab's own rejection (a 401 with {"message":"401
// Unauthorized"} or {"error":"invalid_token"}, or a 200 token document
// that says inactive or revoked); partner_confirmed only from a 200 or a
// 403 insufficient_scope; and the token appears in no verdict, detail or fault.
func FuzzGitlabAnswer(f *testing.F) {
	srv, v := verifiertest.FuzzTarget(f, gitlabpartner.New)
	body := strings.TrimPrefix(fuzzToken, "glpat-")
	f.Fuzz(func(t *testing.T, mode byte, status int, header string, raw []byte) {
		resp := partnertest.NewFuzzAnswer(mode, status, header, raw, "{{TOKEN}}", fuzzToken, "{{BODY}}", body)
		srv.Set(resp)
		fd := finding.Finding{ID: "f-1", RuleID: rule, Token: finding.Secret(fuzzToken)}
		verdict, err := v.Verify(context.Background(), gitlabpartner.TokenPAT, fd)

		if !(verifiertest.FuzzContract{Secrets: []string{body}, FoldCase: true, Unreadable429: true}).Check(t, resp, verdict, err) {
			return
		}
		switch verdict.Reason {
		case finding.ReasonPartnerConfirmed:
			if resp.Status != http.StatusOK && !(resp.Status == http.StatusForbidden && oauthCode(resp.Body) == "insufficient_scope") {
				t.Fatalf("partner_confirmed from http %d", resp.Status)
			}
		case finding.ReasonPartnerRejected:
			if !isGitlabRejection(resp.Status, resp.Body) {
				t.Fatalf("partner_rejected from http %d with a body that is not GitLab's rejection: %q", resp.Status, finding.Scrub(string(resp.Body), fuzzToken))
			}
		default:
			t.Fatalf("verdict %q for a well-formed token", verdict.Reason)
		}
	})
}

// oauthCode is the "error" string of a one-object JSON body, "" if none.
func oauthCode(body []byte) string {
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	if dec.Decode(&doc) != nil || dec.More() {
		return ""
	}
	s, _ := doc["error"].(string)
	return s
}

// isGitlabRejection is GitLab's answer for a token it refuses: a 401
// whose body is one JSON object with "message": "401 Unauthorized" or
// "error": "invalid_token", or a 200 token document (exact keys "active"
// and "revoked", booleans) saying the token is inactive or revoked.
func isGitlabRejection(status int, body []byte) bool {
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	if dec.Decode(&doc) != nil || dec.More() {
		return false
	}
	switch status {
	case http.StatusUnauthorized:
		return doc["message"] == "401 Unauthorized" || doc["error"] == "invalid_token"
	case http.StatusOK:
		active, ok1 := doc["active"].(bool)
		revoked, ok2 := doc["revoked"].(bool)
		return ok1 && ok2 && (!active || revoked)
	}
	return false
}

// TestFuzzOracle shows the rejection oracle tells GitLab's bodies from
// look-alikes.
func TestFuzzOracle(t *testing.T) {
	cases := []struct {
		name   string
		status int
		body   string
		want   bool
	}{
		{"unknown token", 401, `{"message":"401 Unauthorized"}`, true},
		{"expired token", 401, `{"error":"invalid_token","error_description":"Token is expired. You can either do re-authorization or token refresh."}`, true},
		{"revoked token", 401, `{"error":"invalid_token","error_description":"Token was revoked. You have to re-authorize from the user."}`, true},
		{"inactive document", 200, `{"id":1,"active":false,"revoked":false,"scopes":[]}`, true},
		{"revoked document", 200, `{"id":1,"active":false,"revoked":true,"scopes":[]}`, true},
		{"active document", 200, `{"id":1,"active":true,"revoked":false,"scopes":[]}`, false},
		{"same message with 403", 403, `{"message":"401 Unauthorized"}`, false},
		{"insufficient scope", 403, `{"error":"insufficient_scope"}`, false},
		{"dpop error", 401, `{"error":"dpop_error"}`, false},
		{"other message", 401, `{"message":"Unauthorized"}`, false},
		{"upper-case key", 401, `{"Message":"401 Unauthorized"}`, false},
		{"truncated", 401, `{"message":"401 Unauthorized"`, false},
		{"trailing garbage", 401, `{"message":"401 Unauthorized"}x`, false},
		{"HTML", 401, `<html><body>401 Unauthorized</body></html>`, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := isGitlabRejection(tc.status, []byte(tc.body)); got != tc.want {
				t.Fatalf("isGitlabRejection = %v, want %v", got, tc.want)
			}
		})
	}
}
