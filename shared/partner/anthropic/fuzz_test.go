package anthropicpartner_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/verifiertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	anthropicpartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/anthropic"
)

// fuzzKeys are the API key and Admin key the fuzzer's answers may echo
// ({{TOKEN}}), drawn from a fixed seed; the corpus holds only the
// placeholder.
var fuzzKeys = func() [2]string {
	r := verifiertest.NewFuzzRand(0xa7, 0x0c1c)
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	return [2]string{"sk-ant-api03-" + r.Pick(alphabet, 93) + "AA", "sk-ant-admin01-" + r.Pick(alphabet, 93) + "AA"}
}()

// FuzzAnthropicAnswer feeds arbitrary answers (status, headers, body, a
// dropped or truncated connection) to the real verifier, for an API key or
// (mode bit 2) an Admin key, and holds its classification to the
// contract: it never panics; no answer, a truncated body, 429 and 5xx
// (529 overloaded included) are always a *verify.Fault, never a verdict;
// partner_rejected comes only from a 401 whose body is Anthropic's own
// authentication_error document; partner_confirmed only from a 200 or a
// 403 permission_error; and the key appears in no verdict or fault.
func FuzzAnthropicAnswer(f *testing.F) {
	srv, v := verifiertest.FuzzTarget(f, anthropicpartner.New)
	f.Fuzz(func(t *testing.T, mode byte, status int, header string, body []byte) {
		key, tt := fuzzKeys[0], anthropicpartner.TokenAPIKey
		if mode&4 != 0 {
			key, tt = fuzzKeys[1], anthropicpartner.TokenAdminKey
		}
		resp := partnertest.NewFuzzAnswer(mode, status, header, body, "{{TOKEN}}", key)
		srv.Set(resp)
		fd := finding.Finding{ID: "f-1", RuleID: "anthropic-api-key", Token: finding.Secret(key)}
		verdict, err := v.Verify(context.Background(), tt, fd)

		if !(verifiertest.FuzzContract{Secrets: []string{key, key[15:60]}}).Check(t, resp, verdict, err) {
			return
		}
		switch verdict.Reason {
		case finding.ReasonPartnerConfirmed:
			if resp.Status != http.StatusOK && !(resp.Status == http.StatusForbidden && anthropicError(resp.Body) == "permission_error") {
				t.Fatalf("partner_confirmed from http %d", resp.Status)
			}
		case finding.ReasonPartnerRejected:
			if resp.Status != http.StatusUnauthorized || anthropicError(resp.Body) != "authentication_error" {
				t.Fatalf("partner_rejected from http %d with a body that is not Anthropic's authentication_error: %q",
					resp.Status, finding.Scrub(string(resp.Body), key))
			}
		default:
			t.Fatalf("verdict %q for a well-formed key", verdict.Reason)
		}
	})
}

// anthropicError is the oracle's own reading of Anthropic's error
// document: one JSON object whose exact key "type" is "error" and whose
// "error" object has a string "type"; "" for anything else.
func anthropicError(body []byte) string {
	var doc, errObj map[string]json.RawMessage
	var top, typ string
	if json.Unmarshal(body, &doc) != nil || json.Unmarshal(doc["type"], &top) != nil || top != "error" ||
		json.Unmarshal(doc["error"], &errObj) != nil || json.Unmarshal(errObj["type"], &typ) != nil {
		return ""
	}
	return typ
}

// TestFuzzOracle shows the rejection oracle tells Anthropic's body from
// look-alikes.
func TestFuzzOracle(t *testing.T) {
	const real = `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"},"request_id":"req_011CSLsW7mFqvHHnzrKdKjAE"}`
	cases := []struct {
		name, body, want string
	}{
		{"Anthropic's answer", real, "authentication_error"},
		{"permission_error", `{"type":"error","error":{"type":"permission_error","message":"x"}}`, "permission_error"},
		{"no top-level type", `{"error":{"type":"authentication_error"}}`, ""},
		{"top-level type not error", `{"type":"message","error":{"type":"authentication_error"}}`, ""},
		{"upper-case keys", `{"TYPE":"error","ERROR":{"TYPE":"authentication_error"}}`, ""},
		{"error a string", `{"type":"error","error":"authentication_error"}`, ""},
		{"truncated", real[:len(real)-2], ""},
		{"trailing garbage", real + "x", ""},
		{"HTML", `<html><body>authentication_error</body></html>`, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := anthropicError([]byte(tc.body)); got != tc.want {
				t.Fatalf("anthropicError = %q, want %q", got, tc.want)
			}
		})
	}
}
