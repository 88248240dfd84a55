// Package docscheck holds the tests that keep documentation honest: a claim
// in docs/ that names a test, a template defect or a chaos scenario must
// name one that exists.
package docscheck

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var (
	backticked = regexp.MustCompile("`([^`]+)`")
	testName   = regexp.MustCompile(`^(Test|Fuzz)[A-Z][A-Za-z0-9_]*$`)
	// defectRef and scenarioRef find "defect(s) `a`, `b`" and
	// "chaos scenario(s) `x`, `y`": the names that follow are checked.
	defectRef   = regexp.MustCompile("defects? ((?:`[^`]+`(?:, | and )?)+)")
	scenarioRef = regexp.MustCompile("chaos scenarios? ((?:`[^`]+`(?:, | and )?)+)")
)

// repoRoot is two levels up from this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// testSources concatenates every _test.go file of the repository, so a
// named test can be looked up by its declaration.
func testSources(t *testing.T, root string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "bin" || d.Name() == "build") {
			return filepath.SkipDir
		}
		if strings.HasSuffix(path, "_test.go") {
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			b.Write(data)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestSecurityModelNamesRealChecks fails when docs/security.md names a test,
// a template-review defect or a chaos scenario that does not exist.
func TestSecurityModelNamesRealChecks(t *testing.T) {
	root := repoRoot(t)
	raw, err := os.ReadFile(filepath.Join(root, "docs", "security.md"))
	if err != nil {
		t.Fatal(err)
	}
	// A name may wrap across lines in the prose.
	doc := strings.Join(strings.Fields(string(raw)), " ")
	tests := testSources(t, root)
	review, err := os.ReadFile(filepath.Join(root, "internal", "dev", "samtemplate", "review_test.go"))
	if err != nil {
		t.Fatal(err)
	}
	var scenarios []byte
	chaosFiles, err := filepath.Glob(filepath.Join(root, "internal", "dev", "chaos", "*.go"))
	if err != nil || len(chaosFiles) == 0 {
		t.Fatalf("no chaos sources (%v)", err)
	}
	for _, f := range chaosFiles {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		scenarios = append(scenarios, data...)
	}
	var named int
	for _, m := range backticked.FindAllStringSubmatch(doc, -1) {
		if name := m[1]; testName.MatchString(name) {
			named++
			if !strings.Contains(tests, "func "+name+"(") {
				t.Errorf("docs/security.md names %s, which no _test.go declares", name)
			}
		}
	}
	for _, ref := range defectRef.FindAllStringSubmatch(doc, -1) {
		for _, m := range backticked.FindAllStringSubmatch(ref[1], -1) {
			named++
			if !strings.Contains(string(review), `{"`+m[1]+`",`) {
				t.Errorf("docs/security.md names the template defect %q, which TestReviewCatchesDefects does not make", m[1])
			}
		}
	}
	for _, ref := range scenarioRef.FindAllStringSubmatch(doc, -1) {
		for _, m := range backticked.FindAllStringSubmatch(ref[1], -1) {
			if !strings.Contains(string(scenarios), `"`+m[1]+`"`) {
				t.Errorf("docs/security.md names the chaos scenario %q, which internal/dev/chaos does not define", m[1])
			}
		}
	}
	if named < 20 {
		t.Errorf("docs/security.md names %d tests and defects; a threat model whose claims name no test proves nothing", named)
	}
}
