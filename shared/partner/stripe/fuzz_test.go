package stripepartner_test

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
	stripepartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/stripe"
)

// fuzzKey is the key the fuzzer's responses may echo ({{TOKEN}}), drawn
// from a fixed seed; the corpus holds only the placeholder.
var fuzzKey = verifiertest.FuzzToken(0x57e1, 0xbe11, "rk_live_", "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", 99)

// FuzzStripeAnswer feeds arbitrary answers to GET /v1/balance (status,
// headers, body, a dropped or truncated connection) to the real verifier
// and holds its classification to the contract: it never panics; a fault
// (no answer, a truncated body, 429, 5xx) is always a *verify.Fault, never a
// verdict; partner_rejected comes only from a 401 whose body is Stripe's
// invalid or expired API key error, partner_confirmed only from a 200
// balance object or a 403 missing-permission error; and the key appears in
// no verdict or fault.
func FuzzStripeAnswer(f *testing.F) {
	srv, v := verifiertest.FuzzTarget(f, stripepartner.New)
	f.Fuzz(func(t *testing.T, mode byte, status int, header string, body []byte) {
		resp := partnertest.NewFuzzAnswer(mode, status, header, body, "{{TOKEN}}", fuzzKey)
		srv.Set(resp)
		fd := finding.Finding{ID: "f-1", RuleID: ruleRestricted, Token: finding.Secret(fuzzKey)}
		verdict, err := v.Verify(context.Background(), stripepartner.TokenRestrictedKey, fd)

		if !(verifiertest.FuzzContract{Secrets: []string{fuzzKey, fuzzKey[8:40]}}).Check(t, resp, verdict, err) {
			return
		}
		switch verdict.Reason {
		case finding.ReasonPartnerConfirmed:
			if !isStripeConfirmation(resp.Status, resp.Body) {
				t.Fatalf("partner_confirmed from http %d with a body that is neither a balance nor a missing-permission error: %q", resp.Status, finding.Scrub(string(resp.Body), fuzzKey))
			}
		case finding.ReasonPartnerRejected:
			if !isStripeRejection(resp.Status, resp.Body) {
				t.Fatalf("partner_rejected from http %d with a body that is not Stripe's key rejection: %q", resp.Status, finding.Scrub(string(resp.Body), fuzzKey))
			}
		default:
			t.Fatalf("verdict %q for a well-formed key", verdict.Reason)
		}
	})
}

// oracleDoc decodes body as exactly one JSON object, keys matched exactly.
func oracleDoc(body []byte) (map[string]json.RawMessage, bool) {
	var doc map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if dec.Decode(&doc) != nil || dec.More() || doc == nil {
		return nil, false
	}
	return doc, true
}

// oracleError returns the type, code and message of Stripe's error document
// {"error":{"type":…,"message":…[,"code":…]}}.
func oracleError(body []byte) (typ, code, msg string, ok bool) {
	doc, ok := oracleDoc(body)
	if !ok {
		return "", "", "", false
	}
	var e map[string]json.RawMessage
	if json.Unmarshal(doc["error"], &e) != nil || e == nil ||
		json.Unmarshal(e["type"], &typ) != nil || json.Unmarshal(e["message"], &msg) != nil {
		return "", "", "", false
	}
	_ = json.Unmarshal(e["code"], &code)
	return typ, code, msg, true
}

// isStripeRejection is Stripe's answer for a key it does not accept: a 401
// invalid_request_error, "Invalid API Key provided: …" or an expired key.
func isStripeRejection(status int, body []byte) bool {
	typ, code, msg, ok := oracleError(body)
	return status == http.StatusUnauthorized && ok && typ == "invalid_request_error" &&
		(code == "api_key_expired" || strings.HasPrefix(msg, "Invalid API Key provided") || strings.HasPrefix(msg, "Expired API Key provided"))
}

// isStripeConfirmation is a 200 balance object or Stripe's 403 for a
// restricted key lacking a permission.
func isStripeConfirmation(status int, body []byte) bool {
	if status == http.StatusOK {
		doc, ok := oracleDoc(body)
		var object string
		return ok && json.Unmarshal(doc["object"], &object) == nil && object == "balance"
	}
	typ, _, msg, ok := oracleError(body)
	return status == http.StatusForbidden && ok && typ == "invalid_request_error" && strings.Contains(msg, "does not have the required permissions")
}

// TestFuzzOracle shows the oracles tell Stripe's bodies from look-alikes.
func TestFuzzOracle(t *testing.T) {
	const invalid = `{"error":{"message":"Invalid API Key provided: rk_live_****1234","type":"invalid_request_error"}}`
	const perm = `{"error":{"message":"The provided key 'rk_live_***' does not have the required permissions for this endpoint on account 'acct_1'.","type":"invalid_request_error"}}`
	cases := []struct {
		name          string
		status        int
		body          string
		reject, admit bool
	}{
		{"Stripe's invalid key", 401, invalid, true, false},
		{"Stripe's expired key", 401, `{"error":{"code":"api_key_expired","message":"Expired API Key provided: rk_live_***","type":"invalid_request_error"}}`, true, false},
		{"same body with 403", 403, invalid, false, false},
		{"no key provided", 401, `{"error":{"message":"You did not provide an API key.","type":"invalid_request_error"}}`, false, false},
		{"upper-case keys", 401, `{"ERROR":{"MESSAGE":"Invalid API Key provided","TYPE":"invalid_request_error"}}`, false, false},
		{"truncated", 401, invalid[:len(invalid)-2], false, false},
		{"trailing garbage", 401, invalid + "x", false, false},
		{"balance", 200, `{"object":"balance","livemode":true}`, false, true},
		{"balance with 201", 201, `{"object":"balance"}`, false, false},
		{"missing permission", 403, perm, false, true},
		{"missing permission with 401", 401, perm, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := isStripeRejection(tc.status, []byte(tc.body)); got != tc.reject {
				t.Errorf("isStripeRejection = %v, want %v", got, tc.reject)
			}
			if got := isStripeConfirmation(tc.status, []byte(tc.body)); got != tc.admit {
				t.Errorf("isStripeConfirmation = %v, want %v", got, tc.admit)
			}
		})
	}
}
