package samtemplate_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/samtemplate"
)

// TestCfnLint runs cfn-lint on template.yaml, which also runs the SAM
// translation: it must report nothing.
func TestCfnLint(t *testing.T) {
	bin, err := exec.LookPath("cfn-lint")
	if err != nil {
		t.Fatal(`cfn-lint is not installed: pip install cfn-lint (the template review needs it; CI must not skip it)`)
	}
	root, err := samtemplate.FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--", filepath.Join(root, samtemplate.FileName), filepath.Join(root, partnerStackFile))
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Fatalf("cfn-lint %s %s: %v\n%s", samtemplate.FileName, partnerStackFile, err, out)
	}
}
