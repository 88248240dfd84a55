package finding_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/msgschema"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
)

// The schemas in docs/schemas are what integrators build against; these
// tests hold them and this package to the same edge cases, with a JSON
// Schema validator that knows nothing of Parse as the second opinion.

func batchSchema(t *testing.T) *msgschema.Schema {
	t.Helper()
	s, err := msgschema.Batch()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func resultSchema(t *testing.T) *msgschema.Schema {
	t.Helper()
	s, err := msgschema.Result()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// schemaDoc is a valid batch of two findings as a generic document.
func schemaDoc() map[string]any {
	return map[string]any{
		"version": 1,
		"scan_id": "pipeline-88213",
		"project": map[string]any{"id": 278964, "full_path": "gitlab-org/gitlab"},
		"findings": []any{
			map[string]any{"id": "f-1", "rule_id": "AWS", "token": "AKIA0000000000000000",
				"context": map[string]any{"aws_secret_access_key": strings.Repeat("k", 40)}},
			map[string]any{"id": "f-2", "rule_id": "Postman API token", "token": "PMAK-x", "recheck": true},
		},
	}
}

func finding0(d map[string]any) map[string]any { return d["findings"].([]any)[0].(map[string]any) }

// parserAccepts is Parse's verdict in the schema's terms: the body parses,
// no finding is rejected and none has a Problem (which would make it a
// malformed_token result instead of a partner call).
func parserAccepts(body []byte) (bool, string) {
	b, err := finding.Parse(body)
	if err != nil {
		return false, err.Error()
	}
	if re := b.Rejection(); re != nil {
		return false, re.Error()
	}
	for _, f := range b.Findings {
		if f.Problem != nil {
			return false, f.Problem.Error()
		}
	}
	return true, ""
}

func contextOf(n, keyLen, valueLen int) map[string]any {
	c := map[string]any{}
	for i := range n {
		k := strings.Repeat("k", keyLen-1) + string(rune('a'+i))
		c[k] = strings.Repeat("v", valueLen)
	}
	return c
}

func TestBatchSchemaAgreesWithParse(t *testing.T) {
	type mut func(d map[string]any)
	f0 := func(m func(f map[string]any)) mut { return func(d map[string]any) { m(finding0(d)) } }
	tests := []struct {
		name  string
		mut   mut
		valid bool
	}{
		{"valid batch", func(map[string]any) {}, true},
		{"no findings", func(d map[string]any) { d["findings"] = []any{} }, true},
		{"unknown fields", func(d map[string]any) { d["producer"] = "x"; finding0(d)["severity"] = "high" }, true},
		{"version 2", func(d map[string]any) { d["version"] = 2 }, false},
		{"version as string", func(d map[string]any) { d["version"] = "1" }, false},
		{"version missing", func(d map[string]any) { delete(d, "version") }, false},
		{"scan_id of 128 characters", func(d map[string]any) { d["scan_id"] = strings.Repeat("é", 128) }, true},
		{"scan_id of 129 characters", func(d map[string]any) { d["scan_id"] = strings.Repeat("é", 129) }, false},
		{"scan_id empty", func(d map[string]any) { d["scan_id"] = "" }, false},
		{"scan_id with a DEL", func(d map[string]any) { d["scan_id"] = "a\x7fb" }, false},
		{"project missing", func(d map[string]any) { delete(d, "project") }, false},
		{"project.id 1", func(d map[string]any) { d["project"].(map[string]any)["id"] = 1 }, true},
		{"project.id 0", func(d map[string]any) { d["project"].(map[string]any)["id"] = 0 }, false},
		{"project.id negative", func(d map[string]any) { d["project"].(map[string]any)["id"] = -3 }, false},
		{"project.id as string", func(d map[string]any) { d["project"].(map[string]any)["id"] = "278964" }, false},
		{"project.full_path empty", func(d map[string]any) { d["project"].(map[string]any)["full_path"] = "" }, false},
		{"project.full_path missing", func(d map[string]any) { delete(d["project"].(map[string]any), "full_path") }, false},
		{"project.full_path of 8192 characters", func(d map[string]any) { d["project"].(map[string]any)["full_path"] = strings.Repeat("g", 8192) }, true},
		{"project.full_path of 8193 characters", func(d map[string]any) { d["project"].(map[string]any)["full_path"] = strings.Repeat("g", 8193) }, false},
		{"findings missing", func(d map[string]any) { delete(d, "findings") }, false},
		{"findings as object", func(d map[string]any) { d["findings"] = map[string]any{} }, false},
		{"finding as string", func(d map[string]any) { d["findings"] = []any{"f-1"} }, false},
		{"finding id of 128 characters", f0(func(f map[string]any) { f["id"] = strings.Repeat("i", 128) }), true},
		{"finding id of 128 multibyte characters", f0(func(f map[string]any) { f["id"] = strings.Repeat("ü", 128) }), true},
		{"finding id of 129 characters", f0(func(f map[string]any) { f["id"] = strings.Repeat("i", 129) }), false},
		{"finding id of 200 characters", f0(func(f map[string]any) { f["id"] = strings.Repeat("i", 200) }), false},
		{"finding id empty", f0(func(f map[string]any) { f["id"] = "" }), false},
		{"finding id missing", f0(func(f map[string]any) { delete(f, "id") }), false},
		{"finding id a number", f0(func(f map[string]any) { f["id"] = 17 }), false},
		{"finding id with a tab", f0(func(f map[string]any) { f["id"] = "f\t1" }), false},
		{"finding id with a space and unicode", f0(func(f map[string]any) { f["id"] = "f 1 — ü" }), true},
		{"rule_id of 128 characters", f0(func(f map[string]any) { f["rule_id"] = strings.Repeat("r", 128) }), true},
		{"rule_id of 129 characters", f0(func(f map[string]any) { f["rule_id"] = strings.Repeat("r", 129) }), false},
		{"rule_id empty", f0(func(f map[string]any) { f["rule_id"] = "" }), false},
		{"rule_id missing", f0(func(f map[string]any) { delete(f, "rule_id") }), false},
		{"rule_id a number", f0(func(f map[string]any) { f["rule_id"] = 5 }), false},
		{"token of 16384 characters", f0(func(f map[string]any) { f["token"] = strings.Repeat("A", 16384) }), true},
		{"token of 16385 characters", f0(func(f map[string]any) { f["token"] = strings.Repeat("A", 16385) }), false},
		{"token empty", f0(func(f map[string]any) { f["token"] = "" }), false},
		{"token missing", f0(func(f map[string]any) { delete(f, "token") }), false},
		{"token an object", f0(func(f map[string]any) { f["token"] = map[string]any{"v": "x"} }), false},
		{"context of 8 entries", f0(func(f map[string]any) { f["context"] = contextOf(8, 10, 10) }), true},
		{"context of 9 entries", f0(func(f map[string]any) { f["context"] = contextOf(9, 10, 10) }), false},
		{"context key of 128 characters", f0(func(f map[string]any) { f["context"] = contextOf(1, 128, 10) }), true},
		{"context key of 129 characters", f0(func(f map[string]any) { f["context"] = contextOf(1, 129, 10) }), false},
		{"context value of 4096 characters", f0(func(f map[string]any) { f["context"] = contextOf(1, 10, 4096) }), true},
		{"context value of 4097 characters", f0(func(f map[string]any) { f["context"] = contextOf(1, 10, 4097) }), false},
		{"context aws_secret_access_key of 4097 characters", f0(func(f map[string]any) {
			f["context"] = map[string]any{finding.ContextAWSSecretAccessKey: strings.Repeat("v", 4097)}
		}), false},
		{"context value a number", f0(func(f map[string]any) { f["context"] = map[string]any{"gcp_client_id": 4} }), false},
		{"context an array", f0(func(f map[string]any) { f["context"] = []any{"x"} }), false},
		{"recheck a string", f0(func(f map[string]any) { f["recheck"] = "yes" }), false},
		{"recheck false", f0(func(f map[string]any) { f["recheck"] = false }), true},
	}
	schema := batchSchema(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := schemaDoc()
			tc.mut(d)
			body := mustMarshalJSON(t, d)
			schemaErr := schema.Check(body)
			parsed, why := parserAccepts(body)
			if (schemaErr == nil) != tc.valid {
				t.Errorf("schema: valid=%v (%v), want %v", schemaErr == nil, schemaErr, tc.valid)
			}
			if parsed != tc.valid {
				t.Errorf("Parse: accepted=%v (%s), want %v", parsed, why, tc.valid)
			}
		})
	}
}

// TestBatchSchemaGaps pins what JSON Schema cannot say and the schema's
// description states in words: the schema accepts these, Parse does not.
// Should a schema rule ever cover one, move the case to the table above.
func TestBatchSchemaGaps(t *testing.T) {
	schema := batchSchema(t)
	dup := schemaDoc()
	finding0(dup)["id"] = "f-2"
	multibyte := schemaDoc()
	finding0(multibyte)["token"] = strings.Repeat("é", 16384) // 32768 bytes
	tests := map[string]map[string]any{"duplicate finding ids": dup, "token of 16384 characters but 32768 bytes": multibyte}
	for name, d := range tests {
		body := mustMarshalJSON(t, d)
		if err := schema.Check(body); err != nil {
			t.Errorf("%s: the schema now refuses it (%v): move it to TestBatchSchemaAgreesWithParse", name, err)
		}
		if ok, _ := parserAccepts(body); ok {
			t.Errorf("%s: Parse accepts it", name)
		}
	}
	desc := schemaDescription(t, msgschema.BatchFile)
	for _, words := range []string{"ids are unique within a batch", "16384 bytes", "262144 bytes"} {
		if !strings.Contains(desc, words) {
			t.Errorf("the schema's description does not say %q", words)
		}
	}
}

func schemaDescription(t *testing.T, rel string) string {
	t.Helper()
	root, err := msgschema.Root()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	var s struct{ Description string }
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	return s.Description
}

// TestResultSchemaAgreesWithResult: every result this package encodes
// passes the schema, and a result outside the contract (an unknown status
// or reason, a status its reason does not imply) is refused by both.
func TestResultSchemaAgreesWithResult(t *testing.T) {
	schema := resultSchema(t)
	b := finding.Batch{Version: 1, ScanID: "pipeline-88213", Project: finding.Project{ID: 278964, FullPath: "gitlab-org/gitlab"}}
	now := time.Date(2026, 11, 25, 18, 35, 16, 0, time.UTC)
	base := func(reason finding.Reason) finding.Result {
		return finding.NewResult(b, finding.Finding{ID: "f-1", RuleID: "AWS", Token: "test"},
			finding.Route{Partner: finding.PartnerAWS, TokenType: finding.TokenAWSAccessKey}, reason, now)
	}
	reasons := []finding.Reason{
		finding.ReasonPartnerConfirmed, finding.ReasonPartnerRejected, finding.ReasonUnsupportedTokenType,
		finding.ReasonMalformedToken, finding.ReasonMissingContext, finding.ReasonFeatureDisabled,
		finding.ReasonRateLimited, finding.ReasonCanaryToken, finding.ReasonPartnerError,
	}
	type tc struct {
		name  string
		r     finding.Result
		valid bool
	}
	var tests []tc
	for _, reason := range reasons {
		tests = append(tests, tc{"reason " + string(reason), base(reason), true})
	}
	with := func(reason finding.Reason, mut func(r *finding.Result)) finding.Result {
		r := base(reason)
		mut(&r)
		return r
	}
	tests = append(tests,
		tc{"contract example with details", with(finding.ReasonPartnerConfirmed, func(r *finding.Result) {
			r.Details = finding.Details{"aws_account_id": "123456789012", "scopes": []string{"a", "b"}, "canary": false}
		}), true},
		tc{"canary with details", with(finding.ReasonCanaryToken, func(r *finding.Result) {
			r.Details = finding.Details{"aws_account_id": "123456789012", "canary": true}
		}), true},
		tc{"unrouted, no partner or token type", with(finding.ReasonUnsupportedTokenType, func(r *finding.Result) {
			r.Partner, r.TokenType, r.RuleID, r.Message = "", "", "Slack token", "no partner verifies rule_id"
		}), true},
		tc{"rule_id empty", with(finding.ReasonMalformedToken, func(r *finding.Result) { r.RuleID = "" }), true},
		tc{"finding_id of 128 characters", with(finding.ReasonMalformedToken, func(r *finding.Result) { r.FindingID = strings.Repeat("ü", 128) }), true},
		tc{"finding_id of 129 characters", with(finding.ReasonMalformedToken, func(r *finding.Result) { r.FindingID = strings.Repeat("ü", 129) }), false},
		tc{"finding_id empty", with(finding.ReasonMalformedToken, func(r *finding.Result) { r.FindingID = "" }), false},
		tc{"scan_id with a control character", with(finding.ReasonMalformedToken, func(r *finding.Result) { r.ScanID = "a\nb" }), false},
		tc{"reason outside the enum", with(finding.ReasonPartnerError, func(r *finding.Result) { r.Reason = "something_new" }), false},
		tc{"reason empty", with(finding.ReasonPartnerError, func(r *finding.Result) { r.Reason = "" }), false},
		tc{"status outside the enum", with(finding.ReasonPartnerError, func(r *finding.Result) { r.Status = "possibly_active" }), false},
		tc{"confirmed but unknown", with(finding.ReasonPartnerConfirmed, func(r *finding.Result) { r.Status = finding.StatusUnknown }), false},
		tc{"rejected but active", with(finding.ReasonPartnerRejected, func(r *finding.Result) { r.Status = finding.StatusActive }), false},
		tc{"a fault as inactive", with(finding.ReasonPartnerError, func(r *finding.Result) { r.Status = finding.StatusInactive }), false},
		tc{"canary as active", with(finding.ReasonCanaryToken, func(r *finding.Result) { r.Status = finding.StatusActive }), false},
		tc{"version 2", with(finding.ReasonPartnerError, func(r *finding.Result) { r.Version = 2 }), false},
		tc{"project_id 0", with(finding.ReasonPartnerError, func(r *finding.Result) { r.ProjectID = 0 }), false},
		tc{"fingerprint in upper case", with(finding.ReasonPartnerError, func(r *finding.Result) { r.Fingerprint = strings.ToUpper(r.Fingerprint) }), false},
		tc{"fingerprint of the raw token", with(finding.ReasonPartnerError, func(r *finding.Result) { r.Fingerprint = "test" }), false},
	)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body, err := json.Marshal(tc.r)
			if (err == nil) != tc.valid {
				t.Fatalf("json.Marshal: err %v, want valid=%v", err, tc.valid)
			}
			if err != nil {
				var re *finding.ResultError
				if !errors.As(err, &re) {
					t.Errorf("error %v is %T, want a *finding.ResultError", err, err)
				}
				// Encode the refused result by hand, to hear the schema on it.
				type plain finding.Result
				body, err = json.Marshal(struct {
					plain
					CheckedAt string `json:"checked_at"`
				}{plain(tc.r), tc.r.CheckedAt.Format(time.RFC3339)})
				if err != nil {
					t.Fatal(err)
				}
			}
			if err := schema.Check(body); (err == nil) != tc.valid {
				t.Errorf("schema: valid=%v (%v), want %v", err == nil, err, tc.valid)
			}
		})
	}
}

// TestResultSchemaDetails: the details rules that only the schema states
// (no person's e-mail, expires_at a date or date-time, scopes a list).
func TestResultSchemaDetails(t *testing.T) {
	schema := resultSchema(t)
	tests := []struct {
		name    string
		details map[string]any
		valid   bool
	}{
		{"service account address", map[string]any{"gcp_service_account_email": "sa@project-1.iam.gserviceaccount.com"}, true},
		{"a person's e-mail", map[string]any{"github_login": "jane.doe@example.com"}, false},
		{"expires_at a date", map[string]any{"expires_at": "2026-12-31"}, true},
		{"expires_at a date-time", map[string]any{"expires_at": "2026-12-31T10:00:00+01:00"}, true},
		{"expires_at free text", map[string]any{"expires_at": "next week"}, false},
		{"scopes a list", map[string]any{"scopes": []any{"api", "read_user"}}, true},
		{"scopes a string", map[string]any{"scopes": "api read_user"}, false},
		{"aws_account_id of 11 digits", map[string]any{"aws_account_id": "12345678901"}, false},
		{"a number", map[string]any{"count": 3}, false},
		{"a nested object", map[string]any{"owner": map[string]any{"login": "x"}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := map[string]any{
				"version": 1, "scan_id": "s", "project_id": 1, "finding_id": "f", "rule_id": "AWS",
				"status": "active", "reason": "partner_confirmed", "cached": false, "checked_at": "2026-11-25T18:35:16Z",
				"fingerprint": finding.Fingerprint("test"), "details": tc.details,
			}
			if err := schema.Check(mustMarshalJSON(t, r)); (err == nil) != tc.valid {
				t.Errorf("schema: valid=%v (%v), want %v", err == nil, err, tc.valid)
			}
		})
	}
}

func mustMarshalJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
