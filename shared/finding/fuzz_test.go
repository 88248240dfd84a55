package finding_test

import (
	"encoding/json"
	"errors"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/registry"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
)

// fuzzTokens are the credentials the seed corpus names by placeholder. They
// are generated, never pasted, and generated from a fixed seed so that a
// failing input found by the fuzzer reproduces byte for byte; the corpus
// files hold only the placeholders, so no token-shaped string is committed.
var fuzzTokens = func() map[string]string {
	r := rand.New(rand.NewPCG(0x5eed, 0xf022))
	pick := func(alphabet string, n int) string {
		var b strings.Builder
		for range n {
			b.WriteByte(alphabet[r.IntN(len(alphabet))])
		}
		return b.String()
	}
	const (
		upper = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
		b64   = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/+"
		url   = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
		hex   = "0123456789abcdef"
	)
	return map[string]string{
		"{{AWS_KEY}}":           "AKIA" + pick(upper, 16),
		"{{AWS_TEMP_KEY}}":      "ASIA" + pick(upper, 16),
		"{{AWS_SECRET}}":        pick(b64, 40),
		"{{GCP_API_KEY}}":       "AIza" + pick(url, 35),
		"{{GCP_CLIENT_SECRET}}": "GOCSPX-" + pick(url, 28),
		"{{GCP_ACCESS_TOKEN}}":  "ya29." + pick(url, 80),
		"{{POSTMAN_KEY}}":       "PMAK-" + pick(hex, 24) + "-" + pick(hex, 34),
	}
}()

// expandTokens replaces the placeholders of a corpus entry with the
// generated credentials and returns those that the body now contains.
func expandTokens(raw []byte) ([]byte, []string) {
	s := string(raw)
	var present []string
	for ph, tok := range fuzzTokens {
		if strings.Contains(s, ph) {
			s = strings.ReplaceAll(s, ph, tok)
		}
	}
	for _, tok := range fuzzTokens {
		if strings.Contains(s, tok) {
			present = append(present, tok)
		}
	}
	return []byte(s), present
}

// bodyErrorText is every text a *BodyError may have. Apart from the fixed
// words, only numbers (sizes, offsets, indexes, a version) come from the
// body: no field value, key or token is ever quoted.
var bodyErrorText = func() *regexp.Regexp {
	jsonErr := `(?:invalid JSON at byte \d+|invalid JSON|(?:[a-z_.]+: )?wrong type (?:number|string|bool|array|object))`
	field := `(?:version|scan_id|project|project\.id|project\.full_path|findings|findings\[\d+\](?:\.id)?)`
	msg := `(?:body is \d+ bytes, limit \d+|body is not valid UTF-8|JSON nested deeper than \d+ levels|` +
		`not a JSON object of the finding-batch schema: ` + jsonErr + `|missing|empty|not a string|` +
		`missing or not a positive integer|unsupported version -?\d+, want 1|\d+ characters, limit \d+|` +
		`contains a control character|duplicate of findings\[\d+\]\.id|` + jsonErr + `)`
	return regexp.MustCompile(`^finding batch: (?:` + field + `: )?` + msg + `$`)
}()

// fieldErrorText is every text a finding's Problem may have: the finding's
// index, a schema field name (a context key only when the contract defines
// it) and a fixed message with numbers.
var fieldErrorText = regexp.MustCompile(`^findings\[\d+\](?:\.(?:rule_id|token|context|context\.(?:aws_secret_access_key|gcp_client_id|<key>)))?: ` +
	`(?:empty|\d+ bytes, limit \d+|\d+ characters, limit \d+|key is \d+ characters, limit \d+|\d+ entries, limit \d+|` +
	`invalid JSON at byte \d+|invalid JSON|(?:[a-z_.]+: )?wrong type (?:number|string|bool|array|object))$`)

// FuzzParse holds Parse to its contract for any body: it never panics; it
// returns either a *BodyError whose text quotes nothing of the body, or a
// batch whose findings have unique, bounded, printable ids and whose
// rejections name their index without quoting anything; every finding it
// accepts can be forwarded alone, and get its result, within one SQS
// message; and no text derived from it (errors, problems, Check messages)
// contains a credential of the body.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, raw []byte) {
		body, tokens := expandTokens(raw)
		b, err := finding.Parse(body)
		leaks := func(what, text string, exempt string) {
			for _, tok := range tokens {
				if strings.Contains(text, tok) && !strings.Contains(exempt, tok) {
					t.Fatalf("%s contains a credential of the body (%d bytes)", what, len(tok))
				}
			}
		}
		if err != nil {
			var be *finding.BodyError
			if !errors.As(err, &be) {
				t.Fatalf("Parse error is %T, want *finding.BodyError", err)
			}
			if !bodyErrorText.MatchString(err.Error()) {
				t.Fatalf("body error text %q is outside the fixed vocabulary", err)
			}
			leaks("body error", err.Error(), "")
			if b.ScanID != "" || b.Findings != nil {
				t.Fatalf("Parse returned a batch together with an error")
			}
			return
		}
		switch {
		case b.Version != 1:
			t.Fatalf("accepted version %d", b.Version)
		case b.ScanID == "" || utf8.RuneCountInString(b.ScanID) > finding.MaxIDLength:
			t.Fatalf("accepted a scan_id of %d characters", utf8.RuneCountInString(b.ScanID))
		case b.Project.ID <= 0 || b.Project.FullPath == "":
			t.Fatalf("accepted project %d with an empty path or a non-positive id", b.Project.ID)
		}
		lastRejected := -1
		for _, r := range b.Rejected {
			if r.Index <= lastRejected || r.Index < 0 {
				t.Fatalf("rejections out of order: index %d after %d", r.Index, lastRejected)
			}
			lastRejected = r.Index
			if !bodyErrorText.MatchString(r.Err.Error()) {
				t.Fatalf("rejection text %q is outside the fixed vocabulary", r.Err)
			}
			leaks("rejection", r.Err.Error(), "")
		}
		if re := b.Rejection(); re != nil {
			if len(re.Error()) > 1024 || len(re.Indexes()) > 1024 {
				t.Fatalf("the dead-letter reason (%d bytes) or index list (%d bytes) is unbounded", len(re.Error()), len(re.Indexes()))
			}
			leaks("dead-letter reason", re.Error()+re.Indexes(), "")
		}
		seen := make(map[string]bool, len(b.Findings))
		now := time.Date(2026, 11, 25, 18, 35, 16, 0, time.UTC)
		for i, fd := range b.Findings {
			switch {
			case fd.ID == "":
				t.Fatalf("finding %d has an empty id", i)
			case utf8.RuneCountInString(fd.ID) > finding.MaxIDLength:
				t.Fatalf("finding %d id is %d characters, limit %d", i, utf8.RuneCountInString(fd.ID), finding.MaxIDLength)
			case strings.ContainsFunc(fd.ID, func(r rune) bool { return r < 0x20 || r == 0x7f }):
				t.Fatalf("finding %d id holds a control character", i)
			case seen[fd.ID]:
				t.Fatalf("finding %d repeats an id", i)
			}
			seen[fd.ID] = true
			if fd.Problem != nil {
				var fe *finding.FieldError
				if !errors.As(fd.Problem, &fe) {
					t.Fatalf("finding %d problem is %T, want *finding.FieldError", i, fd.Problem)
				}
				if !fieldErrorText.MatchString(fd.Problem.Error()) {
					t.Fatalf("finding %d problem %q is outside the fixed vocabulary", i, fd.Problem)
				}
			}
			rt, reason, msg := registry.Check(fd)
			if fd.Problem != nil && reason != finding.ReasonMalformedToken {
				t.Fatalf("finding %d has a problem but Check says %q", i, reason)
			}
			// A message may name the rule_id (a scanner name, not a secret).
			leaks("Check message", msg, fd.RuleID)
			result := finding.NewResult(b, fd, rt, reasonOr(reason), now)
			result.Message = msg
			rb, err := json.Marshal(result)
			if err != nil {
				t.Fatalf("finding %d: encode result: %v", i, err)
			}
			if len(rb) > finding.MaxBodyBytes {
				t.Fatalf("finding %d: its result is %d bytes, over the SQS limit %d", i, len(rb), finding.MaxBodyBytes)
			}
			if reason != "" {
				continue
			}
			forwardRoundTrip(t, i, b, fd)
		}
	})
}

// reasonOr stands in partner_confirmed for a finding that passes Check,
// so that its result's size is checked too.
func reasonOr(r finding.Reason) finding.Reason {
	if r == "" {
		return finding.ReasonPartnerConfirmed
	}
	return r
}

// forwardRoundTrip is what the dispatcher and a partner function do with a
// finding that passes Check: encode it alone, send it, parse it again. It
// must fit one SQS message and come back unchanged.
func forwardRoundTrip(t *testing.T, i int, b finding.Batch, fd finding.Finding) {
	t.Helper()
	body, err := finding.Encode(finding.Batch{Version: 1, ScanID: b.ScanID, Project: b.Project, Findings: []finding.Finding{fd}})
	if err != nil {
		t.Fatalf("finding %d: encode forward: %v", i, err)
	}
	if len(body) > finding.MaxBodyBytes {
		t.Fatalf("finding %d: forwarded alone it is %d bytes, over the SQS limit %d", i, len(body), finding.MaxBodyBytes)
	}
	back, err := finding.Parse(body)
	if err != nil {
		t.Fatalf("finding %d: the forwarded message does not parse: %v", i, err)
	}
	if len(back.Findings) != 1 || back.ScanID != b.ScanID || back.Project != b.Project {
		t.Fatalf("finding %d: the forwarded message lost its scan or project", i)
	}
	g := back.Findings[0]
	if g.ID != fd.ID || g.RuleID != fd.RuleID || g.Token != fd.Token || g.Recheck != fd.Recheck || g.Problem != nil || len(g.Context) != len(fd.Context) {
		t.Fatalf("finding %d changed on the way to its partner queue", i)
	}
	for k, v := range fd.Context {
		if g.Context[k] != v {
			t.Fatalf("finding %d: a context value changed on the way to its partner queue", i)
		}
	}
	if _, r, _ := registry.Check(g); r != "" {
		t.Fatalf("finding %d passes Check before forwarding and fails it after (%s)", i, r)
	}
}
