package partner

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

func TestPatternCompilesOnFirstUse(t *testing.T) {
	p := NewPattern(`(`) // invalid: must not panic until used
	defer func() {
		if recover() == nil {
			t.Fatal("MatchString of an invalid pattern did not panic")
		}
	}()
	p.MatchString("x")
}

func TestPatternMatches(t *testing.T) {
	p := NewPattern(`^ab{2,3}$`)
	for s, want := range map[string]bool{"abb": true, "abbb": true, "ab": false, "xabb": false} {
		if got := p.MatchString(s); got != want {
			t.Errorf("MatchString(%q) = %v, want %v", s, got, want)
		}
	}
	if p.String() != `^ab{2,3}$` {
		t.Errorf("String() = %q", p.String())
	}
}

// Every partner function links every partner package: an expression
// compiled in a package-level variable would be compiled at every cold start
// of every partner's function.
func TestNoPartnerCompilesExpressionsAtInit(t *testing.T) {
	files, err := filepath.Glob("*/*.go")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.VAR {
				continue
			}
			ast.Inspect(gd, func(n ast.Node) bool {
				sel, ok := n.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				if x, ok := sel.X.(*ast.Ident); ok && x.Name == "regexp" && strings.Contains(sel.Sel.Name, "Compile") {
					t.Errorf("%s: package-level regexp.%s compiles at init in every partner function; use NewPattern", name, sel.Sel.Name)
				}
				return true
			})
		}
	}
	if checked < 12 {
		t.Fatalf("checked %d files of the partner packages; the glob is wrong", checked)
	}
}
