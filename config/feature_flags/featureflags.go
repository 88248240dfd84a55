// Package featureflags holds the feature flag definition files (GitLab's
// format) and embeds them, so that a function binary carries the definitions
// it evaluates: a Lambda has no repository checkout to read them from.
//
// A flag without a definition file cannot be evaluated or set; its
// default_enabled is what applies while its SSM parameter is absent.
package featureflags

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// PartnerTokenVerification is the flag that gates every partner call.
const PartnerTokenVerification = "secret_detection_partner_token_verification"

// Types are GitLab's feature flag types; a definition must use one of them.
var Types = []string{"gitlab_com_derisk", "wip", "beta", "ops", "experiment", "worker"}

// Definition is one flag's definition file.
type Definition struct {
	Name            string `yaml:"name"`
	Description     string `yaml:"description"`
	FeatureIssueURL string `yaml:"feature_issue_url"`
	IntroducedByURL string `yaml:"introduced_by_url"`
	RolloutIssueURL string `yaml:"rollout_issue_url"`
	Milestone       string `yaml:"milestone"`
	Group           string `yaml:"group"`
	Type            string `yaml:"type"`
	DefaultEnabled  bool   `yaml:"default_enabled"`
}

//go:embed *.yml
var files embed.FS

var (
	nameRE      = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	milestoneRE = regexp.MustCompile(`^[0-9]+\.[0-9]+$`)
	urlRE       = regexp.MustCompile(`^https://[^\s]+$`)

	definitions map[string]Definition
)

func init() {
	defs, err := load(files)
	if err != nil {
		// The files are compiled in: a bad one must stop the build's tests
		// and every binary, not be skipped at run time.
		panic(err)
	}
	definitions = defs
}

// ValidName reports whether s has the form of a flag name (snake case).
func ValidName(s string) bool { return nameRE.MatchString(s) }

// Lookup returns the definition of the named flag; false means there is none
// and the flag must be neither evaluated nor set.
func Lookup(name string) (Definition, bool) {
	d, ok := definitions[name]
	return d, ok
}

// All returns every definition, sorted by name.
func All() []Definition {
	out := make([]Definition, 0, len(definitions))
	for _, d := range definitions {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Parse decodes and checks one definition file; file is its base name, which
// must be the flag's name plus ".yml".
func Parse(file string, data []byte) (Definition, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var d Definition
	if err := dec.Decode(&d); err != nil {
		if errors.Is(err, io.EOF) {
			return Definition{}, fmt.Errorf("feature flag definition %s: empty file", file)
		}
		return Definition{}, fmt.Errorf("feature flag definition %s: %w", file, err)
	}
	if err := d.check(file); err != nil {
		return Definition{}, fmt.Errorf("feature flag definition %s: %w", file, err)
	}
	return d, nil
}

func (d Definition) check(file string) error {
	var problems []string
	switch {
	case !ValidName(d.Name):
		problems = append(problems, fmt.Sprintf("name %q is not snake case", d.Name))
	case d.Name+".yml" != file:
		problems = append(problems, fmt.Sprintf("name %q does not match the file name", d.Name))
	}
	if strings.TrimSpace(d.Description) == "" {
		problems = append(problems, "description is empty")
	}
	for _, u := range []struct{ field, value string }{
		{"introduced_by_url", d.IntroducedByURL},
		{"rollout_issue_url", d.RolloutIssueURL},
	} {
		if !urlRE.MatchString(u.value) {
			problems = append(problems, u.field+" is not an https URL")
		}
	}
	if d.FeatureIssueURL != "" && !urlRE.MatchString(d.FeatureIssueURL) {
		problems = append(problems, "feature_issue_url is not an https URL")
	}
	if !milestoneRE.MatchString(d.Milestone) {
		problems = append(problems, fmt.Sprintf("milestone %q is not MAJOR.MINOR", d.Milestone))
	}
	if !strings.HasPrefix(d.Group, "group::") {
		problems = append(problems, fmt.Sprintf("group %q does not start with group::", d.Group))
	}
	known := false
	for _, t := range Types {
		known = known || d.Type == t
	}
	if !known {
		problems = append(problems, fmt.Sprintf("type %q is not one of %s", d.Type, strings.Join(Types, ", ")))
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// load reads every *.yml file at the root of fsys.
func load(fsys fs.FS) (map[string]Definition, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("read feature flag definitions: %w", err)
	}
	defs := make(map[string]Definition, len(entries))
	for _, e := range entries {
		if e.IsDir() || path.Ext(e.Name()) != ".yml" {
			continue
		}
		data, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, fmt.Errorf("read feature flag definition %s: %w", e.Name(), err)
		}
		d, err := Parse(e.Name(), data)
		if err != nil {
			return nil, err
		}
		defs[d.Name] = d
	}
	return defs, nil
}
