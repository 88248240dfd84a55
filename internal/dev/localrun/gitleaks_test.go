package localrun

import (
	"context"
	"crypto/rand"
	"debug/buildinfo"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/sandbox"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/samtemplate"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/scanreport"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/featureflag"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/registry"
)

func randAlnum(n int) string {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

func randDigits(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = '0' + b[i]%10
	}
	return string(b)
}

func randHexUpper(n int) string { return strings.ToUpper(randHex(n)) }

func randHex(n int) string {
	const alphabet = "0123456789abcdef"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// malformedSample is, per partner, a token that fails the partner's format
// check, and whether gitleaks' own default rule reports it. Where the
// scanner's rule is as strict as our check, no malformed token can come
// out of gitleaks; the sample is still committed, and the test checks that
// gitleaks indeed leaves it out, so a change of either side shows.
var malformedSamples = map[finding.Partner]struct {
	token func() string
	found bool
	why   string
}{
	"aws": {func() string { return "AKIA" + strings.ToLower(randAlnum(16)) }, false,
		"aws-access-token admits only the upper-case key-id alphabet; a well-formed non-AKIA id (ASIA) is unsupported_token_type, not malformed"},
	"gcp":      {func() string { return "AIza" + randAlnum(34) }, false, "gcp-api-key wants exactly 35 characters after AIza, as our check does"},
	"postman":  {func() string { return "PMAK-" + randHexUpper(24) + "-" + randHexUpper(34) }, true, "postman-api-token is case-insensitive; Postman keys are lower-case hex"},
	"heroku":   {func() string { return "HRKU-AA" + randAlnum(57) }, false, "heroku-api-key-v2 wants exactly 58 characters after HRKU-AA, as our check does"},
	"openai":   {func() string { return "sk-proj-" + randAlnum(74) + "T3BlbkFJ" + randAlnum(73) + "!" }, false, "openai-api-key's forms all pass our check"},
	"stripe":   {func() string { return "sk_live_" + randAlnum(12) }, true, "stripe-access-token takes 10 or more characters after sk_live_; Stripe keys have at least 24"},
	"github":   {func() string { return "ghp_" + randAlnum(35) }, false, "github-pat wants exactly 36 characters after ghp_, as our check does"},
	"sendgrid": {func() string { return "SG." + randAlnum(66) }, true, "sendgrid-api-token takes 66 characters after SG. without the dot SendGrid keys have after 22"},
	"anthropic": {func() string { return "sk-ant-api03-" + randAlnum(92) + "AA" }, false,
		"anthropic-api-key wants exactly 93 characters before AA, as our check does"},
	"npm":    {func() string { return "npm_" + randAlnum(35) }, false, "npm-access-token wants exactly 36 characters after npm_, as our check does"},
	"gitlab": {func() string { return "glpat-" + randAlnum(12) }, false, "gitlab-pat wants 20 characters after glpat-, as our check does"},
	"slack": {func() string { return "xoxb-" + randDigits(6) }, false,
		"slack-bot-token wants two runs of 10 to 13 digits, which our check also admits; a shorter token matches neither"},
}

// TestRealGitleaksReport commits live, revoked and malformed credentials of
// every partner to a fresh git repository, scans it with the real gitleaks
// (bin/gitleaks, pinned by the Makefile), sends its report the way
// bin/submit does and checks each finding's verdict from the local stack.
// Live credentials are registered in the doubles; revoked ones are fresh
// credentials of the same kind the doubles do not know, which they answer
// as the partners answer a revoked one.
func TestRealGitleaksReport(t *testing.T) {
	root, err := samtemplate.FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	gitleaks := filepath.Join(root, "bin", "gitleaks")
	if _, err := os.Stat(gitleaks); errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("%s missing: run `make tools` (it installs the pinned gitleaks)", gitleaks)
	}
	// The expectations below are those of one gitleaks release's rules.
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	pin := regexp.MustCompile(`(?m)^GITLEAKS_VERSION := (\S+)$`).FindSubmatch(mk)
	info, err := buildinfo.ReadFile(gitleaks)
	switch {
	case pin == nil:
		t.Fatal("Makefile: no GITLEAKS_VERSION")
	case err != nil:
		t.Fatalf("%s: %v", gitleaks, err)
	case info.Main.Version != string(pin[1]):
		t.Fatalf("%s is %s, the Makefile pins %s: rm %s && make tools", gitleaks, info.Main.Version, pin[1], gitleaks)
	}

	repo := t.TempDir()
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", repo, "-c", "user.name=test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %s: %v\n%s", args[0], err, out)
		}
	}
	git("init", "-q")

	type sample struct{ partner, kind string }
	want := map[string]finding.Reason{} // by fingerprint
	what := map[string]sample{}
	creds := sandbox.Credentials{}
	for _, def := range registry.All() {
		p := def.Name
		live, reg, err := sandbox.LiveFindings(p, 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		revoked, _, err := sandbox.LiveFindings(p, 1, 1)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range reg {
			creds[k] = append(creds[k], v...)
		}
		var lines []string
		name := strings.ToUpper(string(p))
		for i, f := range []finding.Finding{live[0], revoked[0]} {
			kind := [...]string{"live", "revoked"}[i]
			lines = append(lines, fmt.Sprintf("%s_%s_KEY = %s", name, strings.ToUpper(kind), f.Token.Reveal()))
			if sk := f.ContextValue(finding.ContextAWSSecretAccessKey); sk != "" {
				lines = append(lines, fmt.Sprintf("aws_secret_access_key = %s", sk))
			}
			fp := finding.Fingerprint(f.Token.Reveal())
			want[fp] = [...]finding.Reason{finding.ReasonPartnerConfirmed, finding.ReasonPartnerRejected}[i]
			what[fp] = sample{string(p), kind}
		}
		m, ok := malformedSamples[p]
		if !ok {
			t.Errorf("partner %s has no malformed sample: add one to malformedSamples (and whether gitleaks' rule reports it)", p)
		} else {
			tok := m.token()
			lines = append(lines, fmt.Sprintf("%s_MALFORMED_KEY = %s", name, tok))
			fp := finding.Fingerprint(tok)
			what[fp] = sample{string(p), "malformed"}
			if m.found {
				want[fp] = finding.ReasonMalformedToken
			} else {
				want[fp] = "" // gitleaks must not report it
			}
		}
		if err := os.WriteFile(filepath.Join(repo, string(p)+".env"), []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	git("add", ".")
	git("commit", "-q", "-m", "credentials of every partner")

	reportPath := filepath.Join(t.TempDir(), "gitleaks.json")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	scan := exec.CommandContext(ctx, gitleaks, "git", "--report-format", "json", "--report-path", reportPath, "--no-banner", "--exit-code", "0", repo)
	if out, err := scan.CombinedOutput(); err != nil {
		t.Fatalf("gitleaks: %v\n%s", err, out)
	}
	raw, err := os.ReadFile(reportPath)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := scanreport.Read(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	if rep.PairedAWSSecrets != 2 {
		t.Errorf("%d AWS key ids paired with their secret key, want 2 (live and revoked)", rep.PairedAWSSecrets)
	}

	h := newHarness(t, "gitleaks-", nil)
	if err := h.sandbox.Register(creds); err != nil {
		t.Fatal(err)
	}
	h.setFlag(t, featureflag.Change{Enable: true, Groups: []string{"gitlab-org"}})
	project := finding.Project{ID: 4242, FullPath: "gitlab-org/gitleaks-sample"}
	scanID := scanreport.DefaultScanID(raw)
	bodies, oversized, err := scanreport.Pack(scanID, project, rep.Entries)
	if err != nil || len(oversized) > 0 {
		t.Fatalf("pack: %v, %d oversized", err, len(oversized))
	}
	ingress, err := h.stack.Queue("IngressQueue")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := scanreport.Send(ctx, h.stack.SQS, ingress.URL, bodies); err != nil {
		t.Fatal(err)
	}
	if err := h.stack.WaitIdle(ctx); err != nil {
		t.Fatalf("%v\nfunction output:\n%s", err, h.logs.String())
	}
	results, err := h.stack.Results(ctx)
	if err != nil {
		t.Fatal(err)
	}

	byID := map[string]finding.Result{}
	for _, r := range results {
		if r.ScanID != scanID {
			t.Errorf("result of another scan %s", r.ScanID)
		}
		byID[r.FindingID] = r
	}
	seen := map[string]bool{}
	for _, e := range rep.Entries {
		r, ok := byID[e.Finding.ID]
		if !ok {
			t.Errorf("%s finding %s (%s): no result", e.Finding.RuleID, e.Finding.ID, e.Location())
			continue
		}
		if scanreport.PartnerOf(e.Finding.RuleID) == "" {
			// generic-api-key and the like: sent, and no partner verifies them.
			if r.Reason != finding.ReasonUnsupportedTokenType {
				t.Errorf("%s finding at %s: %s, want unsupported_token_type", e.Finding.RuleID, e.Location(), r.Reason)
			}
			continue
		}
		s, known := what[r.Fingerprint]
		if !known {
			t.Errorf("%s finding at %s is none of the samples (gitleaks matched part of one?)", e.Finding.RuleID, e.Location())
			continue
		}
		seen[r.Fingerprint] = true
		if w := want[r.Fingerprint]; r.Reason != w || r.Status != finding.StatusOf(w) || string(r.Partner) != s.partner {
			t.Errorf("%s %s (rule %s): %s %s/%s, want %s", s.partner, s.kind, e.Finding.RuleID, r.Partner, r.Status, r.Reason, w)
		}
	}
	for fp, reason := range want {
		s := what[fp]
		switch {
		case reason == "" && seen[fp]:
			t.Errorf("gitleaks now reports the malformed %s sample: set found in malformedSamples (was: %s)", s.partner, malformedSamples[finding.Partner(s.partner)].why)
		case reason != "" && !seen[fp]:
			t.Errorf("gitleaks did not report the %s %s sample", s.partner, s.kind)
		}
	}
	if t.Failed() && os.Getenv("E2E_VERBOSE") == "" {
		t.Log("E2E_VERBOSE=1 prints the functions' output")
	}
}
