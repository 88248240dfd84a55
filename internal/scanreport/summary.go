package scanreport

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/registry"
)

// Summary describes what was read and sent. It holds no token: it is
// built from rule ids, counts and locations only.
type Summary struct {
	// Format, ScanID and Project say what was read and for whom it is sent.
	Format  Format
	ScanID  string
	Project finding.Project
	// Findings is how many findings the report holds.
	Findings int
	// Batches is how many batches were packed, or sent when Sent is true.
	Batches int
	Sent    bool
	// Paired is how many AWS key ids carry their secret key as context.
	Paired int
	// Oversized are the findings no message can carry.
	Oversized []Oversized

	rules    []ruleCount
	unmapped []string
	gcpNoID  int
}

type ruleCount struct {
	scannerRule, rule string
	partner           finding.Partner
	n                 int
}

// Summarize counts a report's findings by rule.
func Summarize(rep *Report, scanID string, project finding.Project, batches int, oversized []Oversized, sent bool) Summary {
	s := Summary{Format: rep.Format, ScanID: scanID, Project: project, Findings: len(rep.Entries), Batches: batches,
		Sent: sent, Paired: rep.PairedAWSSecrets, Oversized: oversized}
	byRule := map[[2]string]*ruleCount{}
	unmapped := map[string]bool{}
	for _, e := range rep.Entries {
		k := [2]string{e.ScannerRule, e.Finding.RuleID}
		rc, ok := byRule[k]
		if !ok {
			rc = &ruleCount{scannerRule: e.ScannerRule, rule: e.Finding.RuleID, partner: PartnerOf(e.Finding.RuleID)}
			byRule[k] = rc
		}
		rc.n++
		if !e.Mapped {
			unmapped[e.ScannerRule] = true
		}
		if needsGCPClientID(e.Finding) {
			s.gcpNoID++
		}
	}
	for _, rc := range byRule {
		s.rules = append(s.rules, *rc)
	}
	sort.Slice(s.rules, func(i, j int) bool {
		if s.rules[i].n != s.rules[j].n {
			return s.rules[i].n > s.rules[j].n
		}
		return s.rules[i].scannerRule < s.rules[j].scannerRule
	})
	for r := range unmapped {
		s.unmapped = append(s.unmapped, r)
	}
	sort.Strings(s.unmapped)
	return s
}

// needsGCPClientID is an OAuth client secret sent without its client id:
// no scanner report carries the id beside the secret.
func needsGCPClientID(f finding.Finding) bool {
	r, _, _ := registry.Check(f)
	return r.TokenType == finding.TokenGCPOAuthClientSecret && f.ContextValue(finding.ContextGCPClientID) == ""
}

// Write prints the summary for people.
func (s Summary) Write(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s report: %d findings, scan %s, project %d %s\n", s.Format, s.Findings, s.ScanID, s.Project.ID, s.Project.FullPath)
	if len(s.rules) > 0 {
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  SCANNER RULE\tRULE ID SENT\tPARTNER\tFINDINGS")
		for _, rc := range s.rules {
			p := string(rc.partner)
			if p == "" {
				p = "- (unsupported_token_type)"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\n", quoteRule(rc.scannerRule), quoteRule(rc.rule), p, rc.n)
		}
		_ = tw.Flush()
	}
	if s.Paired > 0 {
		fmt.Fprintf(&b, "%d AWS key ids carry the secret access key found beside them (context.aws_secret_access_key)\n", s.Paired)
	}
	if len(s.unmapped) > 0 {
		fmt.Fprintf(&b, "unmapped TruffleHog detectors (no rule id of a partner; sent, they come back unsupported_token_type): %s\n", strings.Join(quoteAll(s.unmapped), ", "))
	}
	if s.gcpNoID > 0 {
		fmt.Fprintf(&b, "%d GCP OAuth client secrets have no client id beside them: they come back missing_context (the partner needs context.gcp_client_id)\n", s.gcpNoID)
	}
	for _, o := range s.Oversized {
		fmt.Fprintf(&b, "NOT SENT: finding %s (%s, %s) alone makes a %d-byte message, over the %d-byte SQS limit\n",
			o.Entry.Finding.ID, quoteRule(o.Entry.ScannerRule), o.Entry.Location(), o.Bytes, finding.MaxBodyBytes)
	}
	verb := "sent"
	if !s.Sent {
		verb = "packed"
	}
	fmt.Fprintf(&b, "%d batches %s\n", s.Batches, verb)
	_, err := io.WriteString(w, b.String())
	return err
}

// quoteRule shows a rule id the scanner wrote, which the report could make
// anything: printable text as is, anything else quoted.
func quoteRule(r string) string {
	if r == "" {
		return `""`
	}
	return finding.QuoteRule(r)
}

func quoteAll(rs []string) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = quoteRule(r)
	}
	return out
}

// WriteFindings lists each finding's id with its scanner rule and where it
// was found, so that a result's finding_id leads back to the report. It
// prints no token and no match.
func WriteFindings(w io.Writer, rep *Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FINDING\tSCANNER RULE\tFOUND AT")
	for _, e := range rep.Entries {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", e.Finding.ID, quoteRule(e.ScannerRule), printable(e.Location()))
	}
	return tw.Flush()
}

// printable shows a path from the report with control characters escaped:
// a file name can hold anything, and must not steer the terminal.
func printable(s string) string {
	q := strconv.Quote(s)
	if q[1:len(q)-1] == s {
		return s
	}
	return q
}
