package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/scanreport"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
)

func TestLoadReport(t *testing.T) {
	const path = "../../internal/scanreport/testdata/trufflehog-git.jsonl"
	var out bytes.Buffer
	bodies, expected, err := loadReport(path, &out)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	scanID := scanreport.DefaultScanID(raw)
	if len(bodies) != 1 || len(expected) != 4 {
		t.Fatalf("%d bodies, %d expected findings", len(bodies), len(expected))
	}
	b, err := finding.Parse([]byte(bodies[0]))
	if err != nil {
		t.Fatal(err)
	}
	if b.ScanID != scanID || b.Project != reportProject {
		t.Errorf("batch scan %s project %+v", b.ScanID, b.Project)
	}
	for _, f := range b.Findings {
		if !expected[key{scanID, f.ID}] {
			t.Errorf("finding %s is sent but no result is expected for it", f.ID)
		}
		if strings.Contains(out.String(), f.Token.Reveal()) {
			t.Errorf("the report summary prints a token:\n%s", out.String())
		}
		if !strings.Contains(out.String(), f.ID) {
			t.Errorf("finding %s is not listed:\n%s", f.ID, out.String())
		}
	}
	if _, _, err := loadReport("testdata-missing.json", &out); err == nil {
		t.Error("a missing report is no error")
	}
}
