package functions_test

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// module is this repository's module path.
const module = "gitlab.com/gitlab-org/secret-detection/partner-token-verification"

// forbidden are imports no shipped package may have: local and test tooling
// runs only here, never in Lambda, and a reader of shared/ must be able to
// trust that every line there ships.
var forbidden = []string{module + "/internal/", module + "/cmd/", "os/exec", "net/http/httptest", "testing",
	// The JSON Schema validator checks messages in tests only.
	"github.com/santhosh-tekuri/jsonschema/"}

// TestShippedCodeImportsNoTooling lists what the functions link (go list
// -deps ./functions/..., the shipped code) and fails on any package of this
// module outside functions/, shared/ and config/, and on any forbidden
// import, naming the shipped package that pulls it in.
func TestShippedCodeImportsNoTooling(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-json=ImportPath,Imports", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	shipped := 0
	for dec.More() {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(p.ImportPath, module+"/") || p.ImportPath == module+"/functions" { // this test's own package
			continue
		}
		shipped++
		rel := strings.TrimPrefix(p.ImportPath, module+"/")
		if !strings.HasPrefix(rel, "functions/") && !strings.HasPrefix(rel, "shared/") && !strings.HasPrefix(rel, "config/") {
			t.Errorf("shipped code includes %s: only functions/, shared/ and config/ ship", rel)
		}
		for _, imp := range p.Imports {
			for _, f := range forbidden {
				if imp == f || (strings.HasSuffix(f, "/") && strings.HasPrefix(imp, f)) {
					t.Errorf("shipped package %s imports %s", rel, imp)
				}
			}
		}
	}
	if shipped < 10 {
		t.Fatalf("go list found %d shipped packages of this module: the test is not looking at the functions", shipped)
	}
}
