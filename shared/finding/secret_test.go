package finding

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestSecretNeverPrints(t *testing.T) {
	tok := postmanToken()
	aws := randHex(40)
	s := Secret(tok)
	f := Finding{ID: "f-1", RuleID: "Postman API token", Token: s,
		Context: map[string]Secret{ContextAWSSecretAccessKey: Secret(aws)}, Recheck: true,
		Problem: &FieldError{Field: "findings[0].x", Msg: "bad"}}
	b := Batch{Version: 1, ScanID: "s", Project: Project{ID: 1, FullPath: "g/p"}, Findings: []Finding{f}}

	verbs := []string{"%s", "%v", "%+v", "%#v", "%q", "%x", "%X", "%d", "%10.3s"}
	var out []string
	for _, verb := range verbs {
		for _, v := range []any{s, &s, f, &f, b, []Finding{f}, map[string]Secret{"k": s}} {
			out = append(out, fmt.Sprintf(verb, v))
		}
	}
	out = append(out, s.String(), s.GoString(), fmt.Sprint(s), fmt.Sprintln(f),
		fmt.Errorf("verify: %v", f).Error(), errors.New(s.String()).Error())

	for name, h := range map[string]func(*bytes.Buffer) slog.Handler{
		"text": func(w *bytes.Buffer) slog.Handler { return slog.NewTextHandler(w, nil) },
		"json": func(w *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(w, nil) },
	} {
		var buf bytes.Buffer
		log := slog.New(h(&buf))
		log.Info("outcome", "token", s, "finding", f, "finding_ptr", &f, "batch", b,
			slog.Any("secret", s), slog.Group("g", "ctx", f.Context[ContextAWSSecretAccessKey]))
		log.With("token", s).Info("with")
		if buf.Len() == 0 {
			t.Fatalf("%s handler wrote nothing", name)
		}
		out = append(out, buf.String())
	}

	for i, o := range out {
		if strings.Contains(o, tok) || strings.Contains(o, aws) {
			t.Errorf("output %d (of %d) reveals a secret", i, len(out))
		}
		// Even an encoding of the value must not appear.
		if strings.Contains(o, fmt.Sprintf("%x", tok)) || strings.Contains(o, tok[5:29]) {
			t.Errorf("output %d reveals an encoding of the token", i)
		}
	}
	if got, want := fmt.Sprintf("%v", s), fmt.Sprintf("[REDACTED len=%d]", len(tok)); got != want {
		t.Errorf("%%v = %q, want %q", got, want)
	}
}

func TestSlogFindingShape(t *testing.T) {
	tok := postmanToken()
	f := Finding{ID: "f-9", RuleID: "Postman API token", Token: Secret(tok),
		Context: map[string]Secret{"odd key " + randHex(8): "v", ContextGCPClientID: "c"}}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "finding", f)
	var line struct {
		Finding map[string]any `json:"finding"`
	}
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatal(err)
	}
	got := line.Finding
	if got["id"] != "f-9" || got["rule_id"] != "Postman API token" || got["fingerprint"] != Fingerprint(tok) {
		t.Errorf("finding log value = %v", got)
	}
	if got["token"] != Redact(tok) {
		t.Errorf("token = %v, want %q", got["token"], Redact(tok))
	}
	keys, _ := got["context_keys"].([]any)
	if len(keys) != 2 || keys[0] != "<key>" || keys[1] != ContextGCPClientID {
		t.Errorf("context_keys = %v, want the unknown key hidden", got["context_keys"])
	}
}

func TestSecretJSONIsRaw(t *testing.T) {
	tok := postmanToken()
	b, err := json.Marshal(Secret(tok))
	if err != nil || string(b) != `"`+tok+`"` {
		t.Errorf("json.Marshal(Secret) = %s, %v; findings are forwarded between queues verbatim", b, err)
	}
	var back Secret
	if err := json.Unmarshal(b, &back); err != nil || back.Reveal() != tok {
		t.Errorf("json.Unmarshal(Secret) = %v", err)
	}
}

func TestFingerprint(t *testing.T) {
	tests := []struct{ in, want string }{
		{"test", "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
		{"", "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
	}
	for _, tc := range tests {
		if got := Fingerprint(tc.in); got != tc.want {
			t.Errorf("Fingerprint(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
	if got := (Finding{Token: "test"}).Fingerprint(); got != tests[0].want {
		t.Errorf("Finding.Fingerprint = %s", got)
	}
}

func TestScrub(t *testing.T) {
	tok := postmanToken()
	other := randHex(40)
	tests := []struct {
		name    string
		msg     string
		secrets []string
		want    string
	}{
		{"one occurrence", "bad key " + tok + " sent", []string{tok}, "bad key " + Redact(tok) + " sent"},
		{"every occurrence", tok + "/" + tok, []string{tok}, Redact(tok) + "/" + Redact(tok)},
		{"several secrets", tok + " " + other, []string{tok, other}, Redact(tok) + " " + Redact(other)},
		{"absent", "nothing here", []string{tok}, "nothing here"},
		{"short values left alone", "a b abc", []string{"a", "abc", ""}, "a b abc"},
		{"no secrets", "text", nil, "text"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Scrub(tc.msg, tc.secrets...); got != tc.want {
				t.Errorf("Scrub = %q, want %q", got, tc.want)
			}
		})
	}
}
