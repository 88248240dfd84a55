package finding

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
)

// randHex returns n random lowercase hex characters, so tests never carry a
// real credential.
func randHex(n int) string {
	b := make([]byte, (n+1)/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

// randUpper returns n random characters of [0-9A-Z].
func randUpper(n int) string {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

func postmanToken() string { return "PMAK-" + randHex(24) + "-" + randHex(34) }

// validDoc is a batch as a generic JSON document that cases mutate.
func validDoc() map[string]any {
	return map[string]any{
		"version": 1,
		"scan_id": "pipeline-88213",
		"project": map[string]any{"id": 278964, "full_path": "gitlab-org/gitlab"},
		"findings": []any{
			map[string]any{"id": "f-1", "rule_id": "Postman API token", "token": postmanToken()},
		},
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return b
}

func nested(depth int) string {
	return strings.Repeat("[", depth) + strings.Repeat("]", depth)
}

func TestParseBodyErrors(t *testing.T) {
	withDoc := func(mut func(d map[string]any)) func(t *testing.T) []byte {
		return func(t *testing.T) []byte {
			d := validDoc()
			mut(d)
			return mustJSON(t, d)
		}
	}
	raw := func(s string) func(*testing.T) []byte { return func(*testing.T) []byte { return []byte(s) } }
	tests := []struct {
		name      string
		body      func(t *testing.T) []byte
		wantField string
		wantMsg   string
	}{
		{"not JSON", raw("not json at all"), "", "invalid JSON"},
		{"truncated JSON", raw(`{"version":1,`), "", "invalid JSON"},
		{"top-level array", raw(`[1,2]`), "", "not a JSON object"},
		{"null body", raw(`null`), "version", "missing"},
		{"invalid UTF-8", func(t *testing.T) []byte {
			b := mustJSON(t, validDoc())
			return append(b[:len(b)-1], []byte(`,"x":"`+"\xff\xfe"+`"}`)...)
		}, "", "not valid UTF-8"},
		{"over 256 KiB", func(t *testing.T) []byte {
			b := mustJSON(t, validDoc())
			return append(b, []byte(strings.Repeat(" ", MaxBodyBytes+1-len(b)))...)
		}, "", "limit 262144"},
		{"nested 33 levels", withDoc(func(d map[string]any) {
			d["x"] = json.RawMessage(nested(32)) // + the top-level object = 33
		}), "", "nested deeper than 32"},
		{"version missing", withDoc(func(d map[string]any) { delete(d, "version") }), "version", "missing"},
		{"version 2", withDoc(func(d map[string]any) { d["version"] = 2 }), "version", "unsupported version 2"},
		{"version as string", withDoc(func(d map[string]any) { d["version"] = "1" }), "", "wrong type"},
		{"scan_id missing", withDoc(func(d map[string]any) { delete(d, "scan_id") }), "scan_id", "empty"},
		{"scan_id empty", withDoc(func(d map[string]any) { d["scan_id"] = "" }), "scan_id", "empty"},
		{"scan_id 129 chars", withDoc(func(d map[string]any) { d["scan_id"] = strings.Repeat("s", 129) }), "scan_id", "129 characters, limit 128"},
		{"scan_id 129 multibyte chars", withDoc(func(d map[string]any) { d["scan_id"] = strings.Repeat("é", 129) }), "scan_id", "129 characters, limit 128"},
		{"scan_id control char", withDoc(func(d map[string]any) { d["scan_id"] = "a\nb" }), "scan_id", "control character"},
		{"project missing", withDoc(func(d map[string]any) { delete(d, "project") }), "project", "missing"},
		{"project not an object", withDoc(func(d map[string]any) { d["project"] = "gitlab-org/gitlab" }), "project", "wrong type"},
		{"project.id missing", withDoc(func(d map[string]any) { d["project"] = map[string]any{"full_path": "g/p"} }), "project.id", "not a positive integer"},
		{"project.id zero", withDoc(func(d map[string]any) { d["project"] = map[string]any{"id": 0, "full_path": "g/p"} }), "project.id", "not a positive integer"},
		{"project.id negative", withDoc(func(d map[string]any) { d["project"] = map[string]any{"id": -4, "full_path": "g/p"} }), "project.id", "not a positive integer"},
		{"project.full_path empty", withDoc(func(d map[string]any) { d["project"] = map[string]any{"id": 7, "full_path": ""} }), "project.full_path", "empty"},
		{"project.full_path missing", withDoc(func(d map[string]any) { d["project"] = map[string]any{"id": 7} }), "project.full_path", "empty"},
		{"findings missing", withDoc(func(d map[string]any) { delete(d, "findings") }), "findings", "missing"},
		{"findings null", withDoc(func(d map[string]any) { d["findings"] = nil }), "findings", "missing"},
		{"findings not an array", withDoc(func(d map[string]any) { d["findings"] = map[string]any{} }), "", "wrong type"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := tc.body(t)
			b, err := Parse(body)
			var be *BodyError
			if !errors.As(err, &be) {
				t.Fatalf("Parse error = %v (%T), want *BodyError; batch %+v", err, err, b)
			}
			if be.Field != tc.wantField {
				t.Errorf("Field = %q, want %q (error %q)", be.Field, tc.wantField, err)
			}
			if !strings.Contains(be.Msg, tc.wantMsg) {
				t.Errorf("Msg = %q, want it to contain %q", be.Msg, tc.wantMsg)
			}
			if !strings.HasPrefix(err.Error(), "finding batch: ") {
				t.Errorf("error %q does not name the operation", err)
			}
			if len(err.Error()) > 300 {
				t.Errorf("error is %d bytes long; it must not quote the body", len(err.Error()))
			}
		})
	}
}

// TestParseRejectsUnidentifiedFindings: a finding without a usable id, or
// with the id of an earlier one, is rejected by index; the findings beside
// it are accepted, so one bad finding does not hold back a scan.
func TestParseRejectsUnidentifiedFindings(t *testing.T) {
	good := func(id string) map[string]any {
		return map[string]any{"id": id, "rule_id": "Postman API token", "token": postmanToken()}
	}
	tests := []struct {
		name      string
		bad       any
		wantField string
		wantMsg   string
	}{
		{"finding not an object", "f-1", "findings[1]", "wrong type"},
		{"finding without id", map[string]any{"rule_id": "AWS", "token": "x"}, "findings[1].id", "missing"},
		{"finding id null", map[string]any{"id": nil, "rule_id": "AWS", "token": "x"}, "findings[1].id", "missing"},
		{"finding id a number", map[string]any{"id": 17, "rule_id": "AWS", "token": "x"}, "findings[1].id", "not a string"},
		{"finding id empty", map[string]any{"id": "", "rule_id": "AWS", "token": "x"}, "findings[1].id", "empty"},
		{"finding id 129 chars", map[string]any{"id": strings.Repeat("i", 129), "rule_id": "AWS", "token": "x"}, "findings[1].id", "129 characters, limit 128"},
		{"finding id 200 chars", map[string]any{"id": strings.Repeat("i", 200), "rule_id": "AWS", "token": "x"}, "findings[1].id", "200 characters, limit 128"},
		{"finding id control char", map[string]any{"id": "f\x00", "rule_id": "AWS", "token": "x"}, "findings[1].id", "control character"},
		{"duplicate id", good("g-0"), "findings[1].id", "duplicate of findings[0].id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := validDoc()
			d["findings"] = []any{good("g-0"), tc.bad, good("g-2")}
			b, err := Parse(mustJSON(t, d))
			if err != nil {
				t.Fatalf("Parse: %v; one bad finding must not fail the batch", err)
			}
			if len(b.Findings) != 2 || b.Findings[0].ID != "g-0" || b.Findings[1].ID != "g-2" {
				t.Fatalf("accepted %+v, want g-0 and g-2", b.Findings)
			}
			for _, f := range b.Findings {
				if f.Problem != nil {
					t.Errorf("%s: Problem %v", f.ID, f.Problem)
				}
			}
			if len(b.Rejected) != 1 || b.Rejected[0].Index != 1 {
				t.Fatalf("Rejected = %+v, want findings[1]", b.Rejected)
			}
			be := b.Rejected[0].Err
			if be.Field != tc.wantField || !strings.Contains(be.Msg, tc.wantMsg) {
				t.Errorf("rejection %q, want field %q and a message containing %q", be, tc.wantField, tc.wantMsg)
			}
			re := b.Rejection()
			if re == nil {
				t.Fatal("Rejection() = nil")
			}
			msg := re.Error()
			if !strings.HasPrefix(msg, "finding batch: 1 of 3 findings rejected (no usable id), the other 2 accepted: "+tc.wantField+": ") {
				t.Errorf("reason %q does not count and name the rejected finding", msg)
			}
			if re.Indexes() != "1" {
				t.Errorf("Indexes() = %q, want 1", re.Indexes())
			}
			var got *BodyError
			if !errors.As(re, &got) || got != be {
				t.Error("errors.As does not find the rejection's *BodyError")
			}
		})
	}
}

func TestParseRejectsLaterDuplicates(t *testing.T) {
	d := validDoc()
	f := func(id string) map[string]any { return map[string]any{"id": id, "rule_id": "AWS", "token": "x"} }
	d["findings"] = []any{f("a"), f("b"), f("a"), f("a"), f("b")}
	b, err := Parse(mustJSON(t, d))
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Findings) != 2 || b.Findings[0].ID != "a" || b.Findings[1].ID != "b" {
		t.Fatalf("accepted %+v, want the first a and the first b", b.Findings)
	}
	want := []string{"findings[2].id: duplicate of findings[0].id", "findings[3].id: duplicate of findings[0].id", "findings[4].id: duplicate of findings[1].id"}
	if len(b.Rejected) != len(want) {
		t.Fatalf("Rejected = %+v, want %d", b.Rejected, len(want))
	}
	for i, r := range b.Rejected {
		if got := r.Err.Field + ": " + r.Err.Msg; got != want[i] {
			t.Errorf("rejection %d = %q, want %q", i, got, want[i])
		}
	}
	if got := b.Rejection().Indexes(); got != "2-4" {
		t.Errorf("Indexes() = %q, want 2-4", got)
	}
}

func TestParseEveryFindingRejected(t *testing.T) {
	d := validDoc()
	d["findings"] = []any{map[string]any{"rule_id": "AWS", "token": "x"}}
	b, err := Parse(mustJSON(t, d))
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Findings) != 0 || len(b.Rejected) != 1 {
		t.Fatalf("findings %d, rejected %d; want 0 and 1", len(b.Findings), len(b.Rejected))
	}
	if msg := b.Rejection().Error(); msg != "finding batch: 1 of 1 findings rejected (no usable id), the other 0 accepted: findings[0].id: missing" {
		t.Errorf("reason %q", msg)
	}
}

func TestParseWithoutRejections(t *testing.T) {
	b, err := Parse(mustJSON(t, validDoc()))
	if err != nil {
		t.Fatal(err)
	}
	if b.Rejected != nil || b.Rejection() != nil {
		t.Errorf("a clean batch has rejections %+v", b.Rejected)
	}
}

func TestRejectedErrorIsBounded(t *testing.T) {
	var rs []Rejection
	for i := range 4000 {
		if i%3 == 1 {
			continue // gaps keep the ranges short, so the list must be cut
		}
		rs = append(rs, Rejection{Index: i, Err: &BodyError{Field: "findings[" + strconv.Itoa(i) + "].id", Msg: "missing"}})
	}
	re := &RejectedError{Rejected: rs, Accepted: 1333}
	msg := re.Error()
	if !strings.Contains(msg, "2667 of 4000 findings rejected") || !strings.HasSuffix(msg, "; and 2663 more") {
		t.Errorf("reason %q", msg)
	}
	if len(msg) > 300 {
		t.Errorf("reason is %d bytes", len(msg))
	}
	idx := re.Indexes()
	if len(idx) > maxIndexListBytes || !strings.HasPrefix(idx, "0,2-3,5-6,") || !strings.HasSuffix(idx, ",...") {
		t.Errorf("Indexes() is %d bytes: %.40s...%s", len(idx), idx, idx[max(0, len(idx)-20):])
	}
}

func TestParseErrorNeverQuotesTheBody(t *testing.T) {
	tok := postmanToken()
	bodies := [][]byte{
		[]byte(`{"version":1,"scan_id":"s","project":{"id":1,"full_path":"g"},"findings":[{"id":"f","token":"` + tok + `",}]}`),
		[]byte(`{"version":1,"scan_id":"s","project":{"id":1,"full_path":"g"},"findings":[{"id":"f","rule_id":"AWS","token":"` + tok + `","context":{"` + tok + `":5}}]}`),
		[]byte(`{"version":1,"scan_id":"s","project":{"id":1,"full_path":"g"},"findings":[{"id":"f","rule_id":"AWS","token":"` + tok + `","context":{"` + tok + `":"` + strings.Repeat("v", MaxContextValueBytes+1) + `"}}]}`),
		[]byte(`{"version":"` + tok + `"}`),
		[]byte(`{"version":1,"scan_id":"s","project":{"id":"` + tok + `"}}`),
	}
	for i, body := range bodies {
		b, err := Parse(body)
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		for _, f := range b.Findings {
			if f.Problem != nil {
				msg += f.Problem.Error()
			}
		}
		if msg == "" {
			t.Fatalf("body %d: no error and no problem", i)
		}
		if strings.Contains(msg, tok) || strings.Contains(msg, tok[5:15]) {
			t.Errorf("body %d: error text contains the token", i)
		}
	}
}

func TestParseIdentifiedButBroken(t *testing.T) {
	tests := []struct {
		name      string
		finding   map[string]any
		wantField string
		wantMsg   string
	}{
		{"token a number", map[string]any{"id": "b", "rule_id": "AWS", "token": 12}, "findings[1]", "wrong type number"},
		{"token missing", map[string]any{"id": "b", "rule_id": "AWS"}, "findings[1].token", "empty"},
		{"token empty", map[string]any{"id": "b", "rule_id": "AWS", "token": ""}, "findings[1].token", "empty"},
		{"rule_id a number", map[string]any{"id": "b", "rule_id": 5, "token": "x"}, "findings[1]", "wrong type number"},
		{"rule_id empty", map[string]any{"id": "b", "rule_id": "", "token": "x"}, "findings[1].rule_id", "empty"},
		{"rule_id missing", map[string]any{"id": "b", "token": "x"}, "findings[1].rule_id", "empty"},
		{"context not an object", map[string]any{"id": "b", "rule_id": "AWS", "token": "x", "context": []any{"a"}}, "findings[1]", "wrong type array"},
		{"context value a number", map[string]any{"id": "b", "rule_id": "AWS", "token": "x", "context": map[string]any{ContextAWSSecretAccessKey: 4}}, "findings[1]", "wrong type number"},
		{"recheck a string", map[string]any{"id": "b", "rule_id": "AWS", "token": "x", "recheck": "yes"}, "findings[1]", "wrong type string"},
		{"huge token", map[string]any{"id": "b", "rule_id": "AWS", "token": strings.Repeat("A", MaxTokenBytes+1)}, "findings[1].token", "16385 bytes, limit 16384"},
		{"huge context value", map[string]any{"id": "b", "rule_id": "AWS", "token": "x", "context": map[string]any{ContextAWSSecretAccessKey: strings.Repeat("k", MaxContextValueBytes+1)}}, "findings[1].context.aws_secret_access_key", "4097 bytes, limit 4096"},
		{"huge context value under a hostile key", map[string]any{"id": "b", "rule_id": "AWS", "token": "x", "context": map[string]any{strings.Repeat("q", 65): strings.Repeat("k", MaxContextValueBytes+1)}}, "findings[1].context.<key>", "limit 4096"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := validDoc()
			good := d["findings"].([]any)[0]
			d["findings"] = []any{good, tc.finding}
			b, err := Parse(mustJSON(t, d))
			if err != nil {
				t.Fatalf("Parse: %v; an identified finding must not fail the batch", err)
			}
			if len(b.Findings) != 2 {
				t.Fatalf("got %d findings, want 2", len(b.Findings))
			}
			if b.Findings[0].Problem != nil {
				t.Errorf("the good finding got Problem %v", b.Findings[0].Problem)
			}
			f := b.Findings[1]
			if f.ID != "b" {
				t.Errorf("ID = %q, want b", f.ID)
			}
			var fe *FieldError
			if !errors.As(f.Problem, &fe) {
				t.Fatalf("Problem = %v, want *FieldError", f.Problem)
			}
			if fe.Field != tc.wantField || !strings.Contains(fe.Msg, tc.wantMsg) {
				t.Errorf("Problem = %q, want field %q and message containing %q", f.Problem, tc.wantField, tc.wantMsg)
			}
		})
	}
}

func TestParseBrokenFindingKeepsRuleID(t *testing.T) {
	d := validDoc()
	d["findings"] = []any{map[string]any{"id": "f", "rule_id": "GCP API key", "token": 42}}
	b, err := Parse(mustJSON(t, d))
	if err != nil {
		t.Fatal(err)
	}
	if got := b.Findings[0].RuleID; got != "GCP API key" {
		t.Errorf("RuleID = %q, want it kept so the result can name its route", got)
	}
	if b.Findings[0].Problem == nil {
		t.Error("Problem not set")
	}
}

func TestParseAccepts(t *testing.T) {
	tests := []struct {
		name string
		body func(t *testing.T) []byte
		want func(t *testing.T, b Batch)
	}{
		{"contract example", func(t *testing.T) []byte {
			return []byte(`{
  "version": 1,
  "scan_id": "pipeline-88213",
  "project": { "id": 278964, "full_path": "gitlab-org/gitlab" },
  "findings": [
    { "id": "f-1", "rule_id": "AWS", "token": "AKIA` + randUpper(16) + `",
      "context": { "aws_secret_access_key": "` + randHex(40) + `" } },
    { "id": "f-2", "rule_id": "GCP API key", "token": "AIza` + randHex(35) + `" },
    { "id": "f-5", "rule_id": "Postman API token", "token": "` + postmanToken() + `", "recheck": true }
  ]
}`)
		}, func(t *testing.T, b Batch) {
			if b.Version != 1 || b.ScanID != "pipeline-88213" || b.Project != (Project{278964, "gitlab-org/gitlab"}) {
				t.Errorf("header = %d %q %+v", b.Version, b.ScanID, b.Project)
			}
			if len(b.Findings) != 3 {
				t.Fatalf("findings = %d, want 3", len(b.Findings))
			}
			if b.Findings[0].ContextValue(ContextAWSSecretAccessKey) == "" || b.Findings[0].ContextValue("absent") != "" {
				t.Error("ContextValue does not return the companion value")
			}
			if !b.Findings[2].Recheck || b.Findings[1].Recheck {
				t.Error("recheck not decoded")
			}
			for _, f := range b.Findings {
				if f.Problem != nil {
					t.Errorf("%s: Problem %v", f.ID, f.Problem)
				}
			}
		}},
		{"unknown fields ignored", func(t *testing.T) []byte {
			d := validDoc()
			d["producer"] = "scanner 9"
			d["project"].(map[string]any)["name"] = "gitlab"
			d["findings"].([]any)[0].(map[string]any)["line"] = 12
			return mustJSON(t, d)
		}, func(t *testing.T, b Batch) {
			if len(b.Findings) != 1 || b.Findings[0].Problem != nil {
				t.Errorf("findings = %+v", b.Findings)
			}
		}},
		{"empty findings", func(t *testing.T) []byte {
			d := validDoc()
			d["findings"] = []any{}
			return mustJSON(t, d)
		}, func(t *testing.T, b Batch) {
			if b.Findings == nil || len(b.Findings) != 0 {
				t.Errorf("findings = %#v, want empty", b.Findings)
			}
		}},
		{"exactly 256 KiB", func(t *testing.T) []byte {
			b := mustJSON(t, validDoc())
			return append(b, []byte(strings.Repeat(" ", MaxBodyBytes-len(b)))...)
		}, func(*testing.T, Batch) {}},
		{"nested 32 levels", func(t *testing.T) []byte {
			d := validDoc()
			d["x"] = json.RawMessage(nested(31))
			return mustJSON(t, d)
		}, func(*testing.T, Batch) {}},
		{"brackets inside strings do not count as nesting", func(t *testing.T) []byte {
			d := validDoc()
			d["findings"].([]any)[0].(map[string]any)["token"] = `\"` + nested(40)
			return mustJSON(t, d)
		}, func(t *testing.T, b Batch) {
			if got := b.Findings[0].Token.Reveal(); got != `\"`+nested(40) {
				t.Errorf("token not decoded intact")
			}
		}},
		{"128-character ids", func(t *testing.T) []byte {
			d := validDoc()
			d["scan_id"] = strings.Repeat("é", 128)
			d["findings"].([]any)[0].(map[string]any)["id"] = strings.Repeat("f", 128)
			return mustJSON(t, d)
		}, func(*testing.T, Batch) {}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Parse(tc.body(t))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			tc.want(t, b)
		})
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	tok := "PMAK-<" + randHex(10) + ">&"
	in := Batch{Version: 1, ScanID: "s-1", Project: Project{ID: 9, FullPath: "g/p"}, Findings: []Finding{
		{ID: "f-1", RuleID: "Postman API token", Token: Secret(tok), Recheck: true,
			Context: map[string]Secret{ContextGCPClientID: "1-a.apps.googleusercontent.com"}},
	}}
	body, err := Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(string(body), "\n") {
		t.Error("Encode leaves a trailing newline")
	}
	out, err := Parse(body)
	if err != nil {
		t.Fatalf("Parse(Encode(b)): %v", err)
	}
	got := out.Findings[0]
	if got.Token.Reveal() != tok || got.ContextValue(ContextGCPClientID) != "1-a.apps.googleusercontent.com" || !got.Recheck || got.ID != "f-1" {
		t.Errorf("round trip changed the finding: %v", got)
	}
}

func TestFieldErrorText(t *testing.T) {
	err := error(&FieldError{Field: "findings[3].token", Msg: "empty"})
	if err.Error() != "findings[3].token: empty" {
		t.Errorf("FieldError = %q", err)
	}
	var be error = &BodyError{Msg: "body is not valid UTF-8"}
	if be.Error() != "finding batch: body is not valid UTF-8" {
		t.Errorf("BodyError without field = %q", be)
	}
	var target *BodyError
	if !errors.As(be, &target) {
		t.Error("errors.As does not find *BodyError")
	}
}
