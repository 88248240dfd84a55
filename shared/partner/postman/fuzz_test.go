package postmanpartner_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/verifiertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	postmanpartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/postman"
)

// fuzzKey is the API key the fuzzer's responses may echo ({{TOKEN}}),
// drawn from a fixed seed; the corpus holds only the placeholder.
var fuzzKey = func() string {
	r := verifiertest.NewFuzzRand(0x9057, 0xf022)
	const hex = "0123456789abcdef"
	return "PMAK-" + r.Pick(hex, 24) + "-" + r.Pick(hex, 34)
}()

// FuzzPostmanAnswer feeds arbitrary answers to GET /me (status, headers,
// body, a dropped or truncated connection) to the real verifier and holds
// its classification to the contract: it never panics; a fault (no answer,
// a truncated body, 429, 5xx) is always a *verify.Fault, never a verdict;
// partner_rejected comes only from a 401 whose body is Postman's own
// AuthenticationError document; and the key appears in no verdict or fault.
func FuzzPostmanAnswer(f *testing.F) {
	srv, v := verifiertest.FuzzTarget(f, postmanpartner.New)
	f.Fuzz(func(t *testing.T, mode byte, status int, header string, body []byte) {
		resp := partnertest.NewFuzzAnswer(mode, status, header, body, "{{TOKEN}}", fuzzKey, "{{SECRET}}", "")
		srv.Set(resp)
		fd := finding.Finding{ID: "f-1", RuleID: rule, Token: finding.Secret(fuzzKey)}
		verdict, err := v.Verify(context.Background(), finding.TokenPostmanAPIKey, fd)

		if !(verifiertest.FuzzContract{Secrets: []string{fuzzKey}}).Check(t, resp, verdict, err) {
			return
		}
		switch verdict.Reason {
		case finding.ReasonPartnerConfirmed:
			if resp.Status != http.StatusOK {
				t.Fatalf("partner_confirmed from http %d", resp.Status)
			}
		case finding.ReasonPartnerRejected:
			if !isPostmanRejection(resp.Status, resp.Body) {
				t.Fatalf("partner_rejected from http %d with a body that is not Postman's AuthenticationError: %q", resp.Status, finding.Scrub(string(resp.Body), fuzzKey))
			}
		default:
			t.Fatalf("verdict %q for a well-formed key", verdict.Reason)
		}
	})
}

// isPostmanRejection is Postman's answer for an invalid key: a 401 whose
// body is one JSON object with, under exactly the key "error", an object
// whose "name" is "AuthenticationError".
func isPostmanRejection(status int, body []byte) bool {
	if status != http.StatusUnauthorized {
		return false
	}
	var doc, errObj map[string]json.RawMessage
	var name string
	return json.Unmarshal(body, &doc) == nil &&
		json.Unmarshal(doc["error"], &errObj) == nil &&
		json.Unmarshal(errObj["name"], &name) == nil && name == "AuthenticationError"
}

// TestFuzzOracle shows the rejection oracle tells Postman's body from
// look-alikes.
func TestFuzzOracle(t *testing.T) {
	const real = `{"error":{"name":"AuthenticationError","message":"Invalid API Key. Every request requires a valid API Key to be sent."}}`
	cases := []struct {
		name   string
		status int
		body   string
		want   bool
	}{
		{"Postman's answer", 401, real, true},
		{"same body with 403", 403, real, false},
		{"another name", 401, `{"error":{"name":"forbiddenError"}}`, false},
		{"upper-case keys", 401, `{"ERROR":{"NAME":"AuthenticationError"}}`, false},
		{"only the exact key counts", 401, `{"error":{"name":"AuthenticationError"},"Error":{"name":"x"}}`, true},
		{"name at top level", 401, `{"name":"AuthenticationError"}`, false},
		{"truncated", 401, real[:len(real)-2], false},
		{"trailing garbage", 401, real + "x", false},
		{"HTML", 401, `<html><body>AuthenticationError</body></html>`, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := isPostmanRejection(tc.status, []byte(tc.body)); got != tc.want {
				t.Fatalf("isPostmanRejection = %v, want %v", got, tc.want)
			}
		})
	}
}
