// Package scanreport turns a secret scanner's own report (gitleaks' JSON
// report or TruffleHog's JSON lines) into version-1 finding batches for the
// ingress queue (contract §2), so that a user of either scanner gets
// verdicts without writing a producer. bin/submit and `make run
// ARGS='--report FILE'` use it.
//
// A finding's id is derived from where it was found, never from the token:
// "f-" and the first 20 hex digits of SHA-256 over file, line, commit and
// rule id (each followed by a NUL byte), so the same report always yields
// the same ids; when one report holds several findings with the same four
// values (two tokens of one rule on one line), the second and later get
// "-2", "-3", … in report order.
package scanreport

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
)

// Format names the scanner a report comes from.
type Format string

// The report formats Read understands.
const (
	// Gitleaks is `gitleaks git|dir --report-format json`: one JSON array.
	Gitleaks Format = "gitleaks"
	// TruffleHog is `trufflehog … --json`: one JSON object per line.
	TruffleHog Format = "trufflehog"
)

// MaxReportBytes bounds a report read into memory.
const MaxReportBytes = 1 << 30

// Entry is one finding of a report, with where it was found.
type Entry struct {
	Finding finding.Finding
	// ScannerRule is the scanner's own rule id or detector name.
	ScannerRule string
	// Mapped is false for a TruffleHog detector that has no rule id of
	// contract §7: its finding is still sent and comes back
	// unsupported_token_type.
	Mapped bool
	// File, Line and Commit are where the scanner found it (Commit is
	// empty for a directory or filesystem scan).
	File   string
	Line   int
	Commit string
}

// Report is a scanner report read into findings.
type Report struct {
	// Format is the scanner the report came from.
	Format Format
	// Entries are the findings in report order.
	Entries []Entry
	// PairedAWSSecrets counts AWS key ids that got the secret access key
	// found beside them as context.aws_secret_access_key.
	PairedAWSSecrets int
}

// Read detects the report's format by its content and reads every finding.
// Errors name the line or index at fault and never quote the report.
func Read(r io.Reader) (*Report, error) {
	raw, err := io.ReadAll(io.LimitReader(r, MaxReportBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read report: %w", err)
	}
	if len(raw) > MaxReportBytes {
		return nil, fmt.Errorf("read report: larger than %d bytes", MaxReportBytes)
	}
	trimmed := bytes.TrimLeft(raw, " \t\r\n\ufeff")
	switch {
	case len(trimmed) == 0:
		return nil, errors.New("read report: empty; want a gitleaks JSON report (an array) or TruffleHog JSON lines")
	case trimmed[0] == '[':
		return readGitleaks(trimmed)
	case trimmed[0] == '{':
		return readTruffleHog(trimmed)
	default:
		return nil, errors.New("read report: not JSON; want a gitleaks JSON report (--report-format json) or TruffleHog JSON lines (--json)")
	}
}

// gitleaksFinding is the part of a gitleaks report entry that is used
// (report.Finding in github.com/zricethezav/gitleaks/v8/report).
type gitleaksFinding struct {
	RuleID    string `json:"RuleID"`
	Secret    string `json:"Secret"`
	Match     string `json:"Match"`
	File      string `json:"File"`
	StartLine int    `json:"StartLine"`
	Commit    string `json:"Commit"`
}

func readGitleaks(raw []byte) (*Report, error) {
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, fmt.Errorf("gitleaks report: %s", finding.DescribeJSONError(err))
	}
	rep := &Report{Format: Gitleaks}
	found := make([]gitleaksFinding, 0, len(items))
	for i, it := range items {
		var g gitleaksFinding
		if err := json.Unmarshal(it, &g); err != nil {
			return nil, fmt.Errorf("gitleaks report: finding %d: %s", i, finding.DescribeJSONError(err))
		}
		if g.RuleID == "" {
			return nil, fmt.Errorf("gitleaks report: finding %d has no RuleID", i)
		}
		found = append(found, g)
		rep.Entries = append(rep.Entries, Entry{
			Finding:     finding.Finding{RuleID: g.RuleID, Token: finding.Secret(g.Secret)},
			ScannerRule: g.RuleID, Mapped: true,
			File: g.File, Line: g.StartLine, Commit: g.Commit,
		})
	}
	rep.PairedAWSSecrets = pairGitleaksAWS(rep.Entries, found)
	assignIDs(rep.Entries)
	return rep, nil
}

// trufflehogFinding is the part of a TruffleHog JSON line that is used
// (pkg/output/json.go of github.com/trufflesecurity/trufflehog/v3: the
// detector's name, Raw and RawV2, and the source metadata of the git and
// filesystem sources).
type trufflehogFinding struct {
	DetectorName   string `json:"DetectorName"`
	Raw            string `json:"Raw"`
	RawV2          string `json:"RawV2"`
	SourceMetadata struct {
		Data map[string]struct {
			File   string `json:"file"`
			Line   int    `json:"line"`
			Commit string `json:"commit"`
		} `json:"Data"`
	} `json:"SourceMetadata"`
}

// maxLine bounds one TruffleHog line: a finding with a key file is a few KiB.
const maxLine = 16 << 20

func readTruffleHog(raw []byte) (*Report, error) {
	rep := &Report{Format: TruffleHog}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 64*1024), maxLine)
	n := 0
	for sc.Scan() {
		n++
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var t trufflehogFinding
		if err := json.Unmarshal(line, &t); err != nil {
			return nil, fmt.Errorf("trufflehog report: line %d: %s", n, finding.DescribeJSONError(err))
		}
		if t.DetectorName == "" {
			// TruffleHog prints only findings on stdout with --json; a line
			// without a detector is not one, and guessing would lose it.
			return nil, fmt.Errorf("trufflehog report: line %d has no DetectorName", n)
		}
		e := Entry{ScannerRule: t.DetectorName}
		for _, d := range t.SourceMetadata.Data { // one key: Git, Filesystem, Github, …
			e.File, e.Line, e.Commit = d.File, d.Line, d.Commit
		}
		rule, ok := TruffleHogRule(t.DetectorName)
		e.Mapped = ok
		e.Finding = finding.Finding{RuleID: rule, Token: finding.Secret(t.Raw)}
		if id, secret, ok := awsPair(rule, t.Raw, t.RawV2); ok {
			e.Finding.Token = finding.Secret(id)
			e.Finding.Context = map[string]finding.Secret{finding.ContextAWSSecretAccessKey: finding.Secret(secret)}
			rep.PairedAWSSecrets++
		}
		rep.Entries = append(rep.Entries, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("trufflehog report: line %d: %v", n+1, err)
	}
	assignIDs(rep.Entries)
	return rep, nil
}

// assignIDs gives every entry its stable id (see the package comment).
func assignIDs(es []Entry) {
	seen := map[string]int{}
	for i := range es {
		id := BaseID(es[i].File, es[i].Line, es[i].Commit, es[i].Finding.RuleID)
		seen[id]++
		if n := seen[id]; n > 1 {
			id += "-" + strconv.Itoa(n)
		}
		es[i].Finding.ID = id
	}
}

// BaseID is a finding's id before duplicates are numbered: "f-" and the
// first 20 hex digits of SHA-256(file NUL line NUL commit NUL rule NUL).
func BaseID(file string, line int, commit, rule string) string {
	h := sha256.New()
	for _, s := range []string{file, strconv.Itoa(line), commit, rule} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return "f-" + hex.EncodeToString(h.Sum(nil))[:20]
}

// Location is where a finding was found, for people: file:line and the
// short commit. It never includes the match.
func (e Entry) Location() string {
	loc := e.File
	if e.Line > 0 {
		loc += ":" + strconv.Itoa(e.Line)
	}
	if c := strings.TrimSpace(e.Commit); c != "" {
		if len(c) > 12 {
			c = c[:12]
		}
		loc += " @" + c
	}
	return loc
}

// DefaultScanID is the scan id of a report sent without one: "report-"
// and the first 16 hex digits of SHA-256 of the report's bytes, so sending
// the same report again repeats its scan id as well as its finding ids.
func DefaultScanID(report []byte) string {
	sum := sha256.Sum256(report)
	return "report-" + hex.EncodeToString(sum[:])[:16]
}
