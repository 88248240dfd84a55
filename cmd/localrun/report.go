package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/localrun"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/scanreport"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
)

// reportProject is the project a report's findings are sent for: it lies
// below gitlab-org, one of the groups `make run` turns the flag on for.
var reportProject = finding.Project{ID: 1, FullPath: "gitlab-org/scanner-report"}

// loadReport reads a gitleaks or TruffleHog report (--report) into the
// bodies to send and the findings each must get a result for, and prints
// what it read. Findings too large for any message are reported and not
// expected.
func loadReport(path string, stdout io.Writer) ([]string, map[key]bool, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	rep, err := scanreport.Read(bytes.NewReader(raw))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	scanID := scanreport.DefaultScanID(raw)
	packed, oversized, err := scanreport.Pack(scanID, reportProject, rep.Entries)
	if err != nil {
		return nil, nil, err
	}
	if err := scanreport.Summarize(rep, scanID, reportProject, len(packed), oversized, false).Write(stdout); err != nil {
		return nil, nil, err
	}
	if err := scanreport.WriteFindings(stdout, rep); err != nil {
		return nil, nil, err
	}
	bodies := make([]string, len(packed))
	for i, b := range packed {
		bodies[i] = string(b)
	}
	skipped := map[string]bool{}
	for _, o := range oversized {
		skipped[o.Entry.Finding.ID] = true
	}
	expected := map[key]bool{}
	for _, e := range rep.Entries {
		if !skipped[e.Finding.ID] {
			expected[key{scanID, e.Finding.ID}] = true
		}
	}
	return bodies, expected, nil
}

// keepRecord writes the kept stack's record for bin/submit --local and
// returns what removes it when the stack stops.
func keepRecord(root, endpoint string, stack *localrun.Stack) (func(), error) {
	path := filepath.Join(root, localrun.RecordFile)
	if err := stack.WriteRecord(path, endpoint); err != nil {
		return nil, err
	}
	return func() { _ = os.Remove(path) }, nil
}
