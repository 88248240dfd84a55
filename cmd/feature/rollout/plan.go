// Package rollout runs a feature flag's rollout plan
// (config/rollouts/<flag>.yml) as code: it reads where each stage stands
// from the live flag values per environment and the repository, decides
// whether the next stage may be applied (its earliest date, the current
// stage's soak time, the watched CloudWatch alarms), applies it, and rolls
// the whole plan back. The `feature rollout` command is its user interface;
// every AWS client and the clock are injected, so the decisions are tested
// against fakes and moto alike.
package rollout

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	featureflags "gitlab.com/gitlab-org/secret-detection/partner-token-verification/config/feature_flags"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/featureflag"
)

// Dir is where plan files live, relative to the repository root; a flag's
// plan is Dir/<flag>.yml.
const Dir = "config/rollouts"

// PlanPath is the repository-relative path of a flag's plan file.
func PlanPath(flag string) string { return Dir + "/" + flag + ".yml" }

// Code changes a stage can ask for.
const (
	// CodeDefaultEnabled sets default_enabled: true in the definition file.
	CodeDefaultEnabled = "default_enabled"
	// CodeRemove removes the definition file and every reference, then
	// deletes the flag's parameter in the stage's environments.
	CodeRemove = "remove"
)

// Plan is a flag's rollout plan: ordered stages.
type Plan struct {
	Flag            string  `yaml:"flag" json:"flag"`
	RolloutIssueURL string  `yaml:"rollout_issue_url" json:"rollout_issue_url"`
	Stages          []Stage `yaml:"stages" json:"stages"`
	// Path is the file the plan was read from.
	Path string `yaml:"-" json:"path"`
}

// Stage is one step of a plan.
type Stage struct {
	Name        string `yaml:"name" json:"name"`
	Description string `yaml:"description" json:"description,omitempty"`
	// Environments are samconfig.toml sections: where Set is applied, or
	// where a removal deletes the parameter.
	Environments []string `yaml:"environments" json:"environments,omitempty"`
	// Set is the flag change of a flag stage; CodeChange names the code
	// change of the others. A stage has exactly one of them.
	Set        *FlagSet `yaml:"set" json:"set,omitempty"`
	CodeChange string   `yaml:"code_change" json:"code_change,omitempty"`
	// Earliest is the first UTC day the stage may be applied.
	Earliest Date `yaml:"earliest" json:"earliest"`
	// Soak is how long the stage must run quietly before the next one.
	Soak Duration `yaml:"soak" json:"soak"`
	// Alarms are alert names (CONTRACT.md §5): each has one alarm per
	// partner in every environment's stack, <alert>-<stack>-<partner>.
	Alarms []string `yaml:"alarms" json:"alarms,omitempty"`
}

// FlagSet is a `feature set <flag> <value> [--group=...] [--project=...]
// [--percentage-of-actors=N]` as a plan writes it.
type FlagSet struct {
	Value              bool     `yaml:"value" json:"value"`
	Groups             []string `yaml:"groups" json:"groups,omitempty"`
	Projects           []int64  `yaml:"projects" json:"projects,omitempty"`
	PercentageOfActors *int     `yaml:"percentage_of_actors" json:"percentage_of_actors,omitempty"`
}

// Change is the flag change the `feature set` command line means.
func (s FlagSet) Change() featureflag.Change {
	c := featureflag.Change{Enable: s.Value, Groups: slices.Clone(s.Groups), Projects: slices.Clone(s.Projects)}
	if s.PercentageOfActors != nil {
		c.SetPercentage, c.Percentage = true, *s.PercentageOfActors
	}
	return c
}

// Args are the `feature set` arguments after the flag's name.
func (s FlagSet) Args() []string {
	args := []string{strconv.FormatBool(s.Value)}
	if len(s.Groups) > 0 {
		args = append(args, "--group="+strings.Join(s.Groups, ","))
	}
	if len(s.Projects) > 0 {
		ids := make([]string, len(s.Projects))
		for i, id := range s.Projects {
			ids[i] = strconv.FormatInt(id, 10)
		}
		args = append(args, "--project="+strings.Join(ids, ","))
	}
	if s.PercentageOfActors != nil {
		args = append(args, "--percentage-of-actors="+strconv.Itoa(*s.PercentageOfActors))
	}
	return args
}

// IsFlag reports whether the stage changes the flag's value.
func (s Stage) IsFlag() bool { return s.Set != nil }

// Command is the stage as the operator would type it: the `feature set` or
// `feature delete` command, or a description of the code change.
func (s Stage) Command(flag string) string {
	envs := make([]string, len(s.Environments))
	for i, e := range s.Environments {
		envs[i] = "--" + e
	}
	switch {
	case s.Set != nil:
		return strings.Join(slices.Concat([]string{"feature", "set", flag}, s.Set.Args(), envs), " ")
	case s.CodeChange == CodeDefaultEnabled:
		return "merge request: default_enabled: true in " + DefinitionPath(flag)
	default:
		return "merge request: remove the flag and its definition; then " +
			strings.Join(slices.Concat([]string{"feature", "delete", flag}, envs), " ")
	}
}

// Environments lists every environment the plan names, in plan order.
func (p *Plan) Environments() []string {
	var out []string
	for _, s := range p.Stages {
		for _, e := range s.Environments {
			if !slices.Contains(out, e) {
				out = append(out, e)
			}
		}
	}
	return out
}

// FlagEnvironments lists the environments whose flag value some stage
// sets, latest stage first: the order a rollback turns them off in, so
// the widest exposure (production) goes first.
func (p *Plan) FlagEnvironments() []string {
	var out []string
	for i := len(p.Stages) - 1; i >= 0; i-- {
		if !p.Stages[i].IsFlag() {
			continue
		}
		for _, e := range p.Stages[i].Environments {
			if !slices.Contains(out, e) {
				out = append(out, e)
			}
		}
	}
	return out
}

// Date is a UTC calendar day, written YYYY-MM-DD.
type Date struct{ time.Time }

const dateLayout = "2006-01-02"

// ParseDate reads YYYY-MM-DD as midnight UTC.
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(dateLayout, s)
	if err != nil {
		return Date{}, fmt.Errorf("date %q is not YYYY-MM-DD", s)
	}
	return Date{t.UTC()}, nil
}

// String is the day as YYYY-MM-DD.
func (d Date) String() string { return d.Format(dateLayout) }

// UnmarshalYAML reads the node's text, so 2026-11-19 is not taken for a
// timestamp with a time zone.
func (d *Date) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseDate(n.Value)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalJSON writes the day as "YYYY-MM-DD".
func (d Date) MarshalJSON() ([]byte, error) { return []byte(`"` + d.String() + `"`), nil }

// UnmarshalJSON reads "YYYY-MM-DD", for readers of `status --json`.
func (d *Date) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := ParseDate(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// Duration is a Go duration written as text (24h, 30m, 0s).
type Duration time.Duration

// UnmarshalYAML parses a Go duration.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("soak %q is not a Go duration such as 24h", n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes the duration as Go text.
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Duration(d).String() + `"`), nil
}

// UnmarshalJSON reads a Go duration written as text.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

var (
	stageNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
	envNameRE   = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)
	alertNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*$`)
)

// Load reads and checks the plan at path.
func Load(path string) (*Plan, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read rollout plan: %w", err)
	}
	p, err := Parse(filepath.Base(path), data)
	if err != nil {
		return nil, err
	}
	p.Path = path
	return p, nil
}

// Parse decodes and checks a plan; file is its base name, which must be the
// flag's name plus ".yml".
func Parse(file string, data []byte) (*Plan, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var p Plan
	if err := dec.Decode(&p); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("rollout plan %s: empty file", file)
		}
		return nil, fmt.Errorf("rollout plan %s: %w", file, err)
	}
	if err := p.check(file); err != nil {
		return nil, fmt.Errorf("rollout plan %s: %w", file, err)
	}
	return &p, nil
}

func (p *Plan) check(file string) error {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if !featureflags.ValidName(p.Flag) {
		add("flag %q is not a flag name", p.Flag)
	} else if p.Flag+".yml" != file {
		add("flag %q does not match the file name", p.Flag)
	}
	if p.RolloutIssueURL != "" && !strings.HasPrefix(p.RolloutIssueURL, "https://") {
		add("rollout_issue_url is not an https URL")
	}
	if len(p.Stages) == 0 {
		add("no stages")
	}
	seen := map[string]bool{}
	for i, s := range p.Stages {
		where := fmt.Sprintf("stage %d (%s)", i+1, s.Name)
		if !stageNameRE.MatchString(s.Name) {
			add("stage %d: name %q is not lower-case words joined by -", i+1, s.Name)
		}
		if seen[s.Name] {
			add("%s: name used twice", where)
		}
		seen[s.Name] = true
		if s.Earliest.IsZero() {
			add("%s: no earliest date", where)
		}
		if i > 0 && s.Earliest.Before(p.Stages[i-1].Earliest.Time) {
			add("%s: earliest date %s is before the previous stage's %s", where, s.Earliest, p.Stages[i-1].Earliest)
		}
		if s.Soak < 0 {
			add("%s: negative soak", where)
		}
		for _, e := range s.Environments {
			if !envNameRE.MatchString(e) {
				add("%s: environment %q is not a samconfig.toml section name", where, e)
			}
		}
		if len(slices.Compact(slices.Sorted(slices.Values(s.Environments)))) != len(s.Environments) {
			add("%s: an environment is listed twice", where)
		}
		for _, a := range s.Alarms {
			if !alertNameRE.MatchString(a) {
				add("%s: alarm %q is not an alert name", where, a)
			}
		}
		switch {
		case s.Set != nil && s.CodeChange != "":
			add("%s: has both set and code_change", where)
		case s.Set != nil:
			if len(s.Environments) == 0 {
				add("%s: set needs environments", where)
			}
			if err := s.Set.Change().Validate(); err != nil {
				add("%s: set: %v", where, err)
			}
		case s.CodeChange == CodeDefaultEnabled:
			if len(s.Environments) > 0 {
				add("%s: the default_enabled code change acts on no environment", where)
			}
			if s.Soak != 0 {
				add("%s: a code change has no soak: when it was deployed is not known here", where)
			}
		case s.CodeChange == CodeRemove:
			if i != len(p.Stages)-1 {
				add("%s: remove must be the last stage", where)
			}
			if s.Soak != 0 {
				add("%s: the last stage has no soak", where)
			}
		case s.CodeChange == "":
			add("%s: needs set or code_change", where)
		default:
			add("%s: code_change %q is not %s or %s", where, s.CodeChange, CodeDefaultEnabled, CodeRemove)
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}
