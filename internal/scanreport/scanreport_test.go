package scanreport

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
)

func readFixture(t *testing.T, name string) (*Report, []byte) {
	t.Helper()
	raw, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Read(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	return rep, raw
}

func byRule(rep *Report) map[string][]Entry {
	m := map[string][]Entry{}
	for _, e := range rep.Entries {
		m[e.Finding.RuleID] = append(m[e.Finding.RuleID], e)
	}
	return m
}

func TestReadGitleaks(t *testing.T) {
	rep, _ := readFixture(t, "gitleaks-git.json")
	if rep.Format != Gitleaks || len(rep.Entries) != 6 {
		t.Fatalf("format %s, %d entries; want gitleaks, 6", rep.Format, len(rep.Entries))
	}
	m := byRule(rep)
	aws := m["aws-access-token"]
	if len(aws) != 1 || aws[0].Finding.Token.Reveal() != "AKIAQWERTYUIOPASDFG7" || aws[0].Line != 1 || aws[0].File != "creds.env" {
		t.Fatalf("aws finding: %+v", aws)
	}
	// The secret key is gitleaks' generic-api-key finding two lines away.
	if got := aws[0].Finding.ContextValue(finding.ContextAWSSecretAccessKey); got != "Xk3/p9Lm2Qz8Rt5Vw1Yb4Nc7Hd0Jf6Gs2Ka9Ue+T" {
		t.Errorf("aws secret context = %q", got)
	}
	if rep.PairedAWSSecrets != 1 {
		t.Errorf("paired %d, want 1", rep.PairedAWSSecrets)
	}
	if gh := m["github-pat"]; len(gh) != 2 || gh[0].Finding.ID == gh[1].Finding.ID {
		t.Errorf("the same token in two commits must be two findings with two ids: %+v", gh)
	}
	if pk := m["private-key"]; len(pk) != 1 || PartnerOf("private-key") != "" {
		t.Errorf("private-key: %d findings, partner %q", len(pk), PartnerOf("private-key"))
	}
	for _, e := range rep.Entries {
		if !e.Mapped || e.ScannerRule != e.Finding.RuleID {
			t.Errorf("gitleaks rule ids are sent as they are: %s -> %s", e.ScannerRule, e.Finding.RuleID)
		}
	}
}

func TestReadTruffleHog(t *testing.T) {
	rep, _ := readFixture(t, "trufflehog-git.jsonl")
	if rep.Format != TruffleHog || len(rep.Entries) != 4 {
		t.Fatalf("format %s, %d entries; want trufflehog, 4", rep.Format, len(rep.Entries))
	}
	want := []struct {
		rule, token, file string
		line              int
		mapped            bool
	}{
		{"aws-access-token", "AKIAZXCVBNMASDFGHJK2", "config/aws.yml", 3, true},
		{"github-pat", "ghs_Qm8Zr2Lk9Xw4Tv1Bn8Yc5Hd3Jf6Gs0Pa2Ue7", "config/ci.env", 7, true},
		{"Slack token", "xoxb-1234567890-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", "notes/slack.txt", 2, true},
		{"trufflehog:Mailgun", "key-3ax6xnjp29jd6fds4gc373sgvjxteol0", "notes/mailgun.txt", 1, false},
	}
	for i, w := range want {
		e := rep.Entries[i]
		if e.Finding.RuleID != w.rule || e.Finding.Token.Reveal() != w.token || e.File != w.file || e.Line != w.line || e.Mapped != w.mapped {
			t.Errorf("entry %d: rule %q file %s:%d mapped %v; want %+v", i, e.Finding.RuleID, e.File, e.Line, e.Mapped, w)
		}
	}
	if got := rep.Entries[0].Finding.ContextValue(finding.ContextAWSSecretAccessKey); got != "Pq7/Zr2Lm9Xk4Tw1Vb8Nc5Hy3Jf6Gs0Ka2Ue+Rt9" {
		t.Errorf("aws secret from RawV2 = %q", got)
	}
	if rep.Entries[0].Commit != "9f2c1e7a5b3d4c6e8f0a1b2c3d4e5f6a7b8c9d0e" || rep.Entries[2].Commit != "" {
		t.Errorf("commits: %q %q", rep.Entries[0].Commit, rep.Entries[2].Commit)
	}
}

func TestAWSPairOlderRawV2(t *testing.T) {
	id, secret := "AKIAZXCVBNMASDFGHJK2", "Pq7/Zr2Lm9Xk4Tw1Vb8Nc5Hy3Jf6Gs0Ka2Ue+Rt9"
	for _, rawV2 := range []string{id + secret, id + ":" + secret} {
		if gotID, gotSecret, ok := awsPair("aws-access-token", id, rawV2); !ok || gotID != id || gotSecret != secret {
			t.Errorf("awsPair(%d bytes) = %v", len(rawV2), ok)
		}
	}
	for _, rawV2 := range []string{"", id, id + ":short", "OTHER" + secret} {
		if _, _, ok := awsPair("aws-access-token", id, rawV2); ok {
			t.Errorf("awsPair paired a RawV2 of %d bytes", len(rawV2))
		}
	}
	if _, _, ok := awsPair("github-pat", id, id+":"+secret); ok {
		t.Error("only AWS findings are paired")
	}
}

func TestIDsStable(t *testing.T) {
	a, raw := readFixture(t, "gitleaks-git.json")
	b, _ := readFixture(t, "gitleaks-git.json")
	for i := range a.Entries {
		if a.Entries[i].Finding.ID != b.Entries[i].Finding.ID {
			t.Fatalf("entry %d: ids differ between two reads", i)
		}
	}
	e := a.Entries[0]
	if want := BaseID(e.File, e.Line, e.Commit, e.Finding.RuleID); e.Finding.ID != want || len(want) != 22 {
		t.Errorf("id %s, want %s", e.Finding.ID, want)
	}
	if DefaultScanID(raw) != DefaultScanID(append([]byte(nil), raw...)) || DefaultScanID(raw) == DefaultScanID(append(raw, ' ')) {
		t.Error("DefaultScanID must follow the report's bytes")
	}
	// Two findings of one rule on one line of one commit: numbered.
	dup := `[{"RuleID":"github-pat","Secret":"ghp_1","File":"a","StartLine":1,"Commit":"c"},{"RuleID":"github-pat","Secret":"ghp_2","File":"a","StartLine":1,"Commit":"c"}]`
	rep, err := Read(strings.NewReader(dup))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Entries[1].Finding.ID != rep.Entries[0].Finding.ID+"-2" {
		t.Errorf("ids %s %s", rep.Entries[0].Finding.ID, rep.Entries[1].Finding.ID)
	}
}

func TestReadRejects(t *testing.T) {
	const secret = "ghp_SECRETSECRETSECRETSECRETSECRETSECRE"
	for name, in := range map[string]string{
		"empty":            "  \n",
		"not json":         "RuleID: x " + secret,
		"gitleaks broken":  `[{"RuleID":"github-pat","Secret":"` + secret + `"`,
		"gitleaks no rule": `[{"Secret":"` + secret + `"}]`,
		"gitleaks wrong":   `[{"RuleID":1,"Secret":"` + secret + `"}]`,
		"trufflehog bad":   `{"DetectorName":"Github","Raw":"` + secret + `"}` + "\n{\"Raw\": " + secret,
		"trufflehog none":  `{"Raw":"` + secret + `"}`,
	} {
		_, err := Read(strings.NewReader(in))
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		if strings.Contains(err.Error(), "SECRET") {
			t.Errorf("%s: error quotes the report: %v", name, err)
		}
	}
	rep, err := Read(strings.NewReader("[]"))
	if err != nil || len(rep.Entries) != 0 || rep.Format != Gitleaks {
		t.Errorf("an empty gitleaks report: %v %+v", err, rep)
	}
}

func TestPack(t *testing.T) {
	project := finding.Project{ID: 7, FullPath: "gitlab-org/x"}
	// 3000 findings of ~200 bytes each: several batches, none over the limit.
	var es []Entry
	for i := range 3000 {
		tok := strings.Repeat("a", 100+i%50)
		es = append(es, Entry{Finding: finding.Finding{ID: BaseID("f", i, "c", "r"), RuleID: "github-pat", Token: finding.Secret(tok)}, File: "f", Line: i})
	}
	big := Entry{Finding: finding.Finding{ID: "f-big", RuleID: "private-key", Token: finding.Secret(strings.Repeat("k", finding.MaxBodyBytes))}}
	es = append(es[:10], append([]Entry{big}, es[10:]...)...)
	bodies, oversized, err := Pack("scan-1", project, es)
	if err != nil {
		t.Fatal(err)
	}
	if len(oversized) != 1 || oversized[0].Entry.Finding.ID != "f-big" {
		t.Fatalf("oversized = %+v", len(oversized))
	}
	if len(bodies) < 2 {
		t.Fatalf("%d batches, want several", len(bodies))
	}
	var ids []string
	for i, b := range bodies {
		if len(b) > finding.MaxBodyBytes {
			t.Errorf("batch %d is %d bytes", i, len(b))
		}
		// Full batches are nearly full: the packing is not wasteful.
		if i < len(bodies)-1 && len(b) < finding.MaxBodyBytes-400 {
			t.Errorf("batch %d is only %d bytes", i, len(b))
		}
		parsed, err := finding.Parse(b)
		if err != nil {
			t.Fatalf("batch %d does not parse: %v", i, err)
		}
		if parsed.ScanID != "scan-1" || parsed.Project != project || parsed.Version != 1 {
			t.Errorf("batch %d: %+v", i, parsed.Project)
		}
		for _, f := range parsed.Findings {
			ids = append(ids, f.ID)
		}
	}
	if len(ids) != 3000 || ids[0] != es[0].Finding.ID || ids[10] != es[11].Finding.ID || ids[2999] != es[3000].Finding.ID {
		t.Errorf("%d findings sent, or out of order", len(ids))
	}
	// A finding exactly at the limit still travels alone.
	over, err := encodedLen(es[0].Finding)
	if err != nil {
		t.Fatal(err)
	}
	empty, _ := finding.Encode(finding.Batch{Version: 1, ScanID: "scan-1", Project: project, Findings: []finding.Finding{}})
	fit := es[0]
	fit.Finding.Token = finding.Secret(strings.Repeat("b", finding.MaxBodyBytes-len(empty)-over+len(es[0].Finding.Token)))
	bodies, oversized, err = Pack("scan-1", project, []Entry{fit})
	if err != nil || len(oversized) != 0 || len(bodies) != 1 || len(bodies[0]) != finding.MaxBodyBytes {
		t.Errorf("a finding that exactly fits: err %v, %d oversized, %d batches", err, len(oversized), len(bodies))
	}
}

func TestSummaryNeverPrintsSecrets(t *testing.T) {
	for _, name := range []string{"gitleaks-git.json", "trufflehog-git.jsonl"} {
		rep, raw := readFixture(t, name)
		bodies, oversized, err := Pack("s", finding.Project{ID: 1, FullPath: "g/p"}, rep.Entries)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := Summarize(rep, "s", finding.Project{ID: 1, FullPath: "g/p"}, len(bodies), oversized, true).Write(&out); err != nil {
			t.Fatal(err)
		}
		for _, s := range fixtureSecrets(t, raw) {
			if strings.Contains(out.String(), s) {
				t.Errorf("%s: summary prints a secret:\n%s", name, out.String())
			}
		}
		if !strings.Contains(out.String(), "1 batches sent") {
			t.Errorf("%s: summary:\n%s", name, out.String())
		}
	}
}

// fixtureSecrets returns every credential of a report: gitleaks' Secret and
// (and its lines) and Match, TruffleHog's Raw and RawV2 and their parts.
func fixtureSecrets(t *testing.T, raw []byte) []string {
	t.Helper()
	var out []string
	add := func(s string) {
		for _, p := range strings.FieldsFunc(s, func(r rune) bool { return r == ':' || r == '\n' || r == ' ' }) {
			if len(p) >= 8 && !strings.HasPrefix(p, "-----") {
				out = append(out, p)
			}
		}
	}
	if bytes.HasPrefix(bytes.TrimSpace(raw), []byte("[")) {
		var gs []map[string]any
		if err := json.Unmarshal(raw, &gs); err != nil {
			t.Fatal(err)
		}
		for _, g := range gs {
			add(g["Secret"].(string))
			out = append(out, g["Match"].(string)) // whole: it names the key too
		}
		return out
	}
	for _, l := range bytes.Split(bytes.TrimSpace(raw), []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatal(err)
		}
		add(m["Raw"].(string))
		add(m["RawV2"].(string))
	}
	return out
}

func TestWriteFindings(t *testing.T) {
	rep, raw := readFixture(t, "gitleaks-git.json")
	rep.Entries[0].File = "evil\x1b[2Jname"
	var out bytes.Buffer
	if err := WriteFindings(&out, rep); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	if strings.Contains(s, "\x1b") || !strings.Contains(s, `"evil\x1b[2Jname:4 @615bc43c5f04"`) || !regexp.MustCompile(rep.Entries[1].Finding.ID+` +"generic-api-key" +creds.env:2 @615bc43c5f04\n`).MatchString(s) {
		t.Errorf("listing:\n%s", s)
	}
	for _, sec := range fixtureSecrets(t, raw) {
		if strings.Contains(s, sec) {
			t.Errorf("listing prints a secret:\n%s", s)
		}
	}
}
