package openaipartner_test

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
	openaipartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/openai"
)

// fuzzKey returns the key of the given prefix the fuzzer's responses may
// echo ({{TOKEN}}), drawn from a fixed seed; the corpus holds only the
// placeholder.
func fuzzKey(prefix string, seed uint64) string {
	r := verifiertest.NewFuzzRand(0x0a1, seed)
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
	return prefix + r.Pick(alphabet, 74) + "T3BlbkFJ" + r.Pick(alphabet, 74)
}

var (
	fuzzProjectKey = fuzzKey("sk-proj-", 1)
	fuzzAdminKey   = fuzzKey("sk-admin-", 2)
)

// FuzzOpenaiAnswer feeds arbitrary answers (status, headers, body, a
// dropped or truncated connection) to the real verifier, for a project key
// or, with bit 2 of mode set, an admin key, and holds its classification
// to the contract: it never panics; a fault (no answer, a truncated body,
// 429, 5xx) is always a *verify.Fault, never a verdict; partner_rejected
// comes only from a 401 whose body is OpenAI's invalid_api_key error;
// partner_confirmed only from a 200 or OpenAI's missing-scopes 401; and the
// key appears in no verdict or fault.
func FuzzOpenaiAnswer(f *testing.F) {
	srv, v := verifiertest.FuzzTarget(f, openaipartner.New)
	f.Fuzz(func(t *testing.T, mode byte, status int, header string, body []byte) {
		key, tt := fuzzProjectKey, openaipartner.TokenAPIKey
		if mode&4 != 0 {
			key, tt = fuzzAdminKey, openaipartner.TokenAdminKey
		}
		resp := partnertest.NewFuzzAnswer(mode, status, header, body, "{{TOKEN}}", key)
		srv.Set(resp)
		verdict, err := v.Verify(context.Background(), tt, finding.Finding{ID: "f-1", RuleID: rule, Token: finding.Secret(key)})

		if !(verifiertest.FuzzContract{Secrets: []string{key, key[10:40]}, Unreadable429: true}).Check(t, resp, verdict, err) {
			return
		}
		switch verdict.Reason {
		case finding.ReasonPartnerConfirmed:
			if resp.Status != http.StatusOK && !isRestricted(resp.Status, resp.Body) {
				t.Fatalf("partner_confirmed from http %d that is not OpenAI's missing-scopes answer", resp.Status)
			}
		case finding.ReasonPartnerRejected:
			if !isOpenAIRejection(resp.Status, resp.Body) {
				t.Fatalf("partner_rejected from http %d with a body that is not OpenAI's invalid_api_key error: %q", resp.Status, finding.Scrub(string(resp.Body), key))
			}
		default:
			t.Fatalf("verdict %q for a well-formed key", verdict.Reason)
		}
	})
}

// errorObject returns the object under exactly the key "error" of a body
// that is one JSON object.
func errorObject(body []byte) (map[string]json.RawMessage, json.RawMessage, bool) {
	var doc map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if dec.Decode(&doc) != nil || dec.More() {
		return nil, nil, false
	}
	raw, ok := doc["error"]
	if !ok {
		return nil, nil, false
	}
	var e map[string]json.RawMessage
	if json.Unmarshal(raw, &e) != nil {
		return nil, raw, true
	}
	return e, raw, true
}

// isOpenAIRejection is OpenAI's answer for a wrong or revoked key: a 401
// whose body is one JSON object with, under "error", an object whose
// "code" is "invalid_api_key".
func isOpenAIRejection(status int, body []byte) bool {
	e, _, ok := errorObject(body)
	var code string
	return status == http.StatusUnauthorized && ok && e != nil && json.Unmarshal(e["code"], &code) == nil && code == "invalid_api_key"
}

// isRestricted is OpenAI's answer for a restricted key: a 401 whose
// "error" is the missing-scopes message, bare or as an object's "message"
// with a null or absent "code".
func isRestricted(status int, body []byte) bool {
	e, raw, ok := errorObject(body)
	if status != http.StatusUnauthorized || !ok {
		return false
	}
	var msg string
	if e == nil {
		return json.Unmarshal(raw, &msg) == nil && strings.HasPrefix(msg, openaipartner.RestrictedMessage)
	}
	if c, ok := e["code"]; ok && string(bytes.TrimSpace(c)) != "null" {
		return false
	}
	return json.Unmarshal(e["message"], &msg) == nil && strings.HasPrefix(msg, openaipartner.RestrictedMessage)
}

// TestFuzzOracle shows the oracles tell OpenAI's bodies from look-alikes.
func TestFuzzOracle(t *testing.T) {
	const invalid = `{"error":{"message":"Incorrect API key provided: sk-proj-****1234.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`
	const restricted = `{"error":{"message":"You have insufficient permissions for this operation. Missing scopes: api.model.read.","type":"invalid_request_error","param":null,"code":null}}`
	cases := []struct {
		name             string
		status           int
		body             string
		reject, restrict bool
	}{
		{"OpenAI's invalid key", 401, invalid, true, false},
		{"same body with 403", 403, invalid, false, false},
		{"restricted key", 401, restricted, false, true},
		{"restricted key, bare string", 401, `{"error":"You have insufficient permissions for this operation. Missing scopes: api.model.read."}`, false, true},
		{"restricted message with a code", 401, `{"error":{"message":"You have insufficient permissions for this operation.","code":"x"}}`, false, false},
		{"another code", 401, `{"error":{"code":"invalid_organization"}}`, false, false},
		{"upper-case keys", 401, `{"ERROR":{"CODE":"invalid_api_key"}}`, false, false},
		{"code at top level", 401, `{"code":"invalid_api_key"}`, false, false},
		{"truncated", 401, invalid[:len(invalid)-2], false, false},
		{"trailing garbage", 401, invalid + "x", false, false},
		{"HTML", 401, `<html><body>invalid_api_key</body></html>`, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := isOpenAIRejection(tc.status, []byte(tc.body)); got != tc.reject {
				t.Errorf("isOpenAIRejection = %v, want %v", got, tc.reject)
			}
			if got := isRestricted(tc.status, []byte(tc.body)); got != tc.restrict {
				t.Errorf("isRestricted = %v, want %v", got, tc.restrict)
			}
		})
	}
}
