package sendgridpartner_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/verifiertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	sendgridpartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/sendgrid"
)

// fuzzKey is the API key the fuzzer's responses may echo ({{TOKEN}}, and
// its id and secret as {{ID}} and {{SECRET}}), drawn from a fixed seed;
// the corpus holds only the placeholders.
var fuzzKey = func() string {
	r := verifiertest.NewFuzzRand(0x5e9d, 0x9a1d)
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	return "SG." + r.Pick(alphabet, 22) + "." + r.Pick(alphabet, 43)
}()

// FuzzSendgridAnswer feeds arbitrary answers to GET /v3/scopes (status,
// headers, body, a dropped or truncated connection) to the real verifier
// and holds its classification to the contract: it never panics; a fault
// (no answer, a truncated body, 429, 5xx) is always a *verify.Fault, never
// a verdict; partner_rejected comes only from a 401 whose body is
// SendGrid's errors document, partner_confirmed only from a 200; a 403 is
// never a verdict; and the key appears in no verdict, detail or fault.
func FuzzSendgridAnswer(f *testing.F) {
	srv, v := verifiertest.FuzzTarget(f, sendgridpartner.New)
	id, secret, _ := strings.Cut(strings.TrimPrefix(fuzzKey, "SG."), ".")
	f.Fuzz(func(t *testing.T, mode byte, status int, header string, body []byte) {
		resp := partnertest.NewFuzzAnswer(mode, status, header, body, "{{TOKEN}}", fuzzKey, "{{ID}}", id, "{{SECRET}}", secret)
		srv.Set(resp)
		fd := finding.Finding{ID: "f-1", RuleID: rule, Token: finding.Secret(fuzzKey)}
		verdict, err := v.Verify(context.Background(), sendgridpartner.TokenAPIKey, fd)

		if !(verifiertest.FuzzContract{Secrets: []string{id, secret}, FoldCase: true, NoVerdict: []int{http.StatusForbidden}, Unreadable429: true}).Check(t, resp, verdict, err) {
			return
		}
		switch verdict.Reason {
		case finding.ReasonPartnerConfirmed:
			if resp.Status != http.StatusOK {
				t.Fatalf("partner_confirmed from http %d", resp.Status)
			}
		case finding.ReasonPartnerRejected:
			if !isSendgridRejection(resp.Status, resp.Body) {
				t.Fatalf("partner_rejected from http %d with a body that is not SendGrid's errors document: %q", resp.Status, finding.Scrub(string(resp.Body), fuzzKey))
			}
		default:
			t.Fatalf("verdict %q for a well-formed key", verdict.Reason)
		}
	})
}

// isSendgridRejection is SendGrid's answer for a key it refuses: a 401
// whose body is one JSON object with, under exactly the key "errors", a
// non-empty array of objects, each with a string "message".
func isSendgridRejection(status int, body []byte) bool {
	if status != http.StatusUnauthorized {
		return false
	}
	var top map[string]json.RawMessage
	var list []map[string]any
	if json.Unmarshal(body, &top) != nil || json.Unmarshal(top["errors"], &list) != nil || len(list) == 0 {
		return false
	}
	for _, e := range list {
		if _, ok := e["message"].(string); !ok {
			return false
		}
	}
	return true
}

// TestFuzzOracle shows the rejection oracle tells SendGrid's body from
// look-alikes.
func TestFuzzOracle(t *testing.T) {
	const real = `{"errors":[{"field":null,"message":"The provided authorization grant is invalid, expired, or revoked"}]}`
	cases := []struct {
		name   string
		status int
		body   string
		want   bool
	}{
		{"SendGrid's answer", 401, real, true},
		{"other observed message", 401, `{"errors":[{"field":null,"message":"Permission denied, wrong credentials"}]}`, true},
		{"without field", 401, `{"errors":[{"message":"x"}]}`, true},
		{"same body with 403", 403, real, false},
		{"empty list", 401, `{"errors":[]}`, false},
		{"null message", 401, `{"errors":[{"field":null,"message":null}]}`, false},
		{"one entry without message", 401, `{"errors":[{"message":"x"},{"field":"y"}]}`, false},
		{"upper-case key", 401, `{"Errors":[{"message":"x"}]}`, false},
		{"flat error", 401, `{"error":"invalid"}`, false},
		{"truncated", 401, real[:len(real)-2], false},
		{"trailing garbage", 401, real + "x", false},
		{"HTML", 401, `<html><body>errors</body></html>`, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := isSendgridRejection(tc.status, []byte(tc.body)); got != tc.want {
				t.Fatalf("isSendgridRejection = %v, want %v", got, tc.want)
			}
		})
	}
}
