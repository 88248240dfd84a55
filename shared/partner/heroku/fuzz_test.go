package herokupartner_test

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/verifiertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	herokupartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/heroku"
)

// fuzzKey is the token the fuzzer's responses may echo ({{TOKEN}}), drawn
// from a fixed seed; the corpus holds only the placeholder.
var fuzzKey = verifiertest.FuzzToken(0x4e70, 0x6b75, "HRKU-AA", "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_-", 58)

// FuzzHerokuAnswer feeds arbitrary answers to GET /account (status,
// headers, body, a dropped or truncated connection) to the real verifier
// and holds its classification to the contract: it never panics; a fault
// (no answer, a truncated body, 429, 5xx) is always a *verify.Fault, never
// a verdict; partner_rejected comes only from a 401 whose body is Heroku's
// own {"id":"unauthorized","message":…}; partner_confirmed only from a 200
// account document, whose id is the only detail; and the token appears in
// no verdict or fault.
func FuzzHerokuAnswer(f *testing.F) {
	srv, v := verifiertest.FuzzTarget(f, herokupartner.New)
	f.Fuzz(func(t *testing.T, mode byte, status int, header string, body []byte) {
		resp := partnertest.NewFuzzAnswer(mode, status, header, body, "{{TOKEN}}", fuzzKey)
		srv.Set(resp)
		fd := finding.Finding{ID: "f-1", RuleID: ruleV2, Token: finding.Secret(fuzzKey)}
		verdict, err := v.Verify(context.Background(), herokupartner.TokenAPIKey, fd)

		if !(verifiertest.FuzzContract{Secrets: []string{fuzzKey}}).Check(t, resp, verdict, err) {
			return
		}
		switch verdict.Reason {
		case finding.ReasonPartnerConfirmed:
			id, ok := herokuAccountID(resp.Status, resp.Body)
			if !ok {
				t.Fatalf("partner_confirmed from http %d with a body that is not Heroku's account document: %q", resp.Status, finding.Scrub(string(resp.Body), fuzzKey))
			}
			if len(verdict.Details) != 1 || verdict.Details[herokupartner.DetailAccountID] != id {
				t.Fatalf("details %v, want only the account id", verdict.Details)
			}
		case finding.ReasonPartnerRejected:
			if !isHerokuRejection(resp.Status, resp.Body) {
				t.Fatalf("partner_rejected from http %d with a body that is not Heroku's unauthorized error: %q", resp.Status, finding.Scrub(string(resp.Body), fuzzKey))
			}
		default:
			t.Fatalf("verdict %q for a well-formed token", verdict.Reason)
		}
	})
}

var oracleUUID = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// herokuAccountID is Heroku's account document: a 200 whose body is one
// JSON object with, under exactly the key "id", a lower-case UUID string.
func herokuAccountID(status int, body []byte) (string, bool) {
	doc, ok := verifiertest.JSONObject(body)
	var id string
	if status != http.StatusOK || !ok || json.Unmarshal(doc["id"], &id) != nil || !oracleUUID.MatchString(id) {
		return "", false
	}
	return id, true
}

// isHerokuRejection is Heroku's answer for a missing, invalid, revoked or
// expired token: a 401 whose body is one JSON object with "id"
// "unauthorized" and a string "message".
func isHerokuRejection(status int, body []byte) bool {
	doc, ok := verifiertest.JSONObject(body)
	var id, msg string
	return status == http.StatusUnauthorized && ok &&
		json.Unmarshal(doc["id"], &id) == nil && id == "unauthorized" &&
		json.Unmarshal(doc["message"], &msg) == nil
}

// TestFuzzOracle shows the oracles tell Heroku's bodies from look-alikes.
func TestFuzzOracle(t *testing.T) {
	const rejection = `{"id":"unauthorized","message":"Invalid credentials provided."}`
	const account = `{"id":"01234567-89ab-4cde-8f01-23456789abcd","email":"a@example.com"}`
	cases := []struct {
		name   string
		status int
		body   string
		reject bool
		active bool
	}{
		{"Heroku's rejection", 401, rejection, true, false},
		{"rejection with 403", 403, rejection, false, false},
		{"another id", 401, `{"id":"forbidden","message":"x"}`, false, false},
		{"no message", 401, `{"id":"unauthorized"}`, false, false},
		{"upper-case key", 401, `{"ID":"unauthorized","message":"x"}`, false, false},
		{"truncated", 401, rejection[:len(rejection)-2], false, false},
		{"trailing garbage", 401, rejection + "x", false, false},
		{"HTML", 401, `<html><body>{"id":"unauthorized","message":"x"}</body></html>`, false, false},
		{"account", 200, account, false, true},
		{"account with 201", 201, account, false, false},
		{"account id upper case", 200, strings.ToUpper(account), false, false},
		{"two accounts", 200, account + account, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := isHerokuRejection(tc.status, []byte(tc.body)); got != tc.reject {
				t.Errorf("isHerokuRejection = %v, want %v", got, tc.reject)
			}
			if _, got := herokuAccountID(tc.status, []byte(tc.body)); got != tc.active {
				t.Errorf("herokuAccountID ok = %v, want %v", got, tc.active)
			}
		})
	}
}
