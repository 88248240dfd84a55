package rollout

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"unicode"

	featureflags "gitlab.com/gitlab-org/secret-detection/partner-token-verification/config/feature_flags"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/textfit"
)

// DefinitionDir holds the flag definition files, relative to the repository root.
const DefinitionDir = "config/feature_flags"

// DefinitionPath is the repository-relative path of a flag's definition file.
func DefinitionPath(flag string) string { return DefinitionDir + "/" + flag + ".yml" }

// Code is a flag's definition as the repository checkout holds it: the code
// stages are done when the merged files say so, not when a binary built
// from them is deployed.
type Code struct {
	// Definition is the repository-relative path of the definition file.
	Definition string `json:"definition"`
	// Present is false once the file is gone (the removal merged).
	Present        bool `json:"present"`
	DefaultEnabled bool `json:"default_enabled"`
	// DefaultLine is the 1-based line of default_enabled, 0 when the key is
	// absent (it then defaults to false).
	DefaultLine int    `json:"default_line,omitempty"`
	DefaultText string `json:"-"`
}

var defaultEnabledLine = regexp.MustCompile(`^default_enabled:`)

// ReadCode reads a flag's definition file under root.
func ReadCode(root, flag string) (Code, error) {
	c := Code{Definition: DefinitionPath(flag)}
	data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(c.Definition)))
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("read feature flag definition: %w", err)
	}
	def, err := featureflags.Parse(filepath.Base(c.Definition), data)
	if err != nil {
		return c, err
	}
	c.Present, c.DefaultEnabled = true, def.DefaultEnabled
	for i, line := range strings.Split(string(data), "\n") {
		if defaultEnabledLine.MatchString(line) {
			c.DefaultLine, c.DefaultText = i+1, strings.TrimRight(line, "\r")
			break
		}
	}
	return c, nil
}

// Edit is one line change a person makes by hand (a merge request).
type Edit struct {
	Path string `json:"path"`
	// Line is 1-based; 0 means "append".
	Line int    `json:"line"`
	Old  string `json:"old,omitempty"`
	New  string `json:"new"`
}

// DefaultEnabledEdit is the exact change of the default_enabled stage.
func (c Code) DefaultEnabledEdit() Edit {
	e := Edit{Path: c.Definition, Line: c.DefaultLine, Old: c.DefaultText, New: "default_enabled: true"}
	return e
}

// Reference is one line of the repository that names the flag, directly or
// through a Go constant that holds its name.
type Reference struct {
	Path string `json:"path"`
	Line int    `json:"line"`
	Text string `json:"text"`
	// Via is the Go identifier the line uses, empty for the name itself.
	Via string `json:"via,omitempty"`
}

// skipDirs are never searched: version control, build output, caches.
var skipDirs = []string{".git", ".aws-sam", ".local", "bin", "build", "node_modules", "vendor", ".cache"}

const (
	maxSearchFile = 2 << 20
	maxRefText    = 200
)

// References finds every line under root that names the flag: the name
// itself in any text file, and in Go files the constants defined as the
// name and every use of them. Binary files and build output are skipped.
func References(root, flag string) ([]Reference, error) {
	if !featureflags.ValidName(flag) {
		return nil, fmt.Errorf("find references: %q is not a flag name", flag)
	}
	type file struct {
		rel   string
		lines []string
	}
	var files []file
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != root && slices.Contains(skipDirs, d.Name()) {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil || info.Size() > maxSearchFile {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.IndexByte(data[:min(len(data), 8000)], 0) >= 0 {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		var lines []string
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(make([]byte, 0, 64<<10), maxSearchFile)
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
		files = append(files, file{filepath.ToSlash(rel), lines})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("find references to %s: %w", flag, err)
	}
	constDef := regexp.MustCompile(`^\s*(?:const\s+)?([A-Za-z_][A-Za-z0-9_]*)(?:\s+[A-Za-z_][A-Za-z0-9_.]*)?\s*=\s*"` + regexp.QuoteMeta(flag) + `"`)
	// The name as a whole word: some_flag, not some_flags.
	name := regexp.MustCompile(`(?:^|[^A-Za-z0-9_])` + regexp.QuoteMeta(flag) + `(?:$|[^A-Za-z0-9_])`)
	// A Go identifier holding the name is used bare in its own package
	// (directory) and, if exported, as pkg.Ident anywhere.
	type ident struct{ name, dir string }
	var refs []Reference
	var idents []ident
	for _, f := range files {
		for i, line := range f.lines {
			if !name.MatchString(line) {
				continue
			}
			refs = append(refs, Reference{Path: f.rel, Line: i + 1, Text: clip(line)})
			if m := constDef.FindStringSubmatch(line); m != nil && strings.HasSuffix(f.rel, ".go") {
				if id := (ident{m[1], path.Dir(f.rel)}); !slices.Contains(idents, id) {
					idents = append(idents, id)
				}
			}
		}
	}
	for _, id := range idents {
		bare := regexp.MustCompile(`\b` + regexp.QuoteMeta(id.name) + `\b`)
		qualified := regexp.MustCompile(`\.` + regexp.QuoteMeta(id.name) + `\b`)
		exported := unicode.IsUpper([]rune(id.name)[0])
		for _, f := range files {
			if !strings.HasSuffix(f.rel, ".go") {
				continue
			}
			use := bare
			if path.Dir(f.rel) != id.dir {
				if !exported {
					continue
				}
				use = qualified
			}
			for i, line := range f.lines {
				if name.MatchString(line) || !use.MatchString(line) {
					continue
				}
				refs = append(refs, Reference{Path: f.rel, Line: i + 1, Text: clip(line), Via: id.name})
			}
		}
	}
	slices.SortFunc(refs, func(a, b Reference) int {
		if c := strings.Compare(a.Path, b.Path); c != 0 {
			return c
		}
		return a.Line - b.Line
	})
	return refs, nil
}

// clip trims a referencing line and fits it to maxRefText bytes.
func clip(line string) string { return textfit.Fit(strings.TrimSpace(line), maxRefText) }
