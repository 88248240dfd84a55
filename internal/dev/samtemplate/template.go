// Package samtemplate reads the project's AWS SAM template (template.yaml)
// into a typed model: parameters, queues, functions with their environment,
// event sources and IAM statements, alarms, the feature-flag parameter and
// the dashboard. Tests use it to hold the template to the contract, and
// `make run` uses it to build the local stack in moto from the same file,
// so the deployed and the local plumbing cannot drift apart.
package samtemplate

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// FileName is the template's file name at the repository root.
const FileName = "template.yaml"

// Resource types the model understands.
const (
	TypeQueue        = "AWS::SQS::Queue"
	TypeFunction     = "AWS::Serverless::Function"
	TypeRole         = "AWS::IAM::Role"
	TypeIAMPolicy    = "AWS::IAM::Policy"
	TypeManagedPol   = "AWS::IAM::ManagedPolicy"
	TypeLogGroup     = "AWS::Logs::LogGroup"
	TypeSSMParameter = "AWS::SSM::Parameter"
	TypeTopic        = "AWS::SNS::Topic"
	TypeSubscription = "AWS::SNS::Subscription"
	TypeAlarm        = "AWS::CloudWatch::Alarm"
	TypeDashboard    = "AWS::CloudWatch::Dashboard"
	TypeKMSKey       = "AWS::KMS::Key"
)

// Template is a parsed SAM template. Parameter values start as the
// defaults; SetParameter changes one and rebuilds the typed model, so every
// number in it reflects the current values.
type Template struct {
	// Path is the file the template was read from.
	Path string
	// Description is the template's Description.
	Description string
	// Transforms lists the Transform section (one or more macros).
	Transforms []string
	// Parameters by name.
	Parameters map[string]*Parameter
	// Conditions by name, as written (evaluate with Condition).
	Conditions map[string]any
	// Resources by logical id; serverless resources have Globals merged in.
	Resources map[string]*Resource
	// Outputs by name.
	Outputs map[string]*Output
	// Applications are the nested applications with a local template, by
	// logical id; their resources are flattened into Resources.
	Applications map[string]*Application

	// Queues, Functions, ... are the typed views of Resources, by logical id.
	Queues        map[string]*Queue
	Functions     map[string]*Function
	Roles         map[string]*Role
	LogGroups     map[string]*LogGroup
	SSMParameters map[string]*SSMParameter
	Topics        map[string]*Topic
	Subscriptions map[string]*Subscription
	Alarms        map[string]*Alarm
	Dashboards    map[string]*Dashboard
	KMSKeys       map[string]*KMSKey

	raw       map[string]any
	overrides map[string]string
}

// Parameter is one entry of the Parameters section.
type Parameter struct {
	Name        string
	Type        string
	Description string
	// Default is the default's text; HasDefault tells an empty default
	// from none.
	Default        string
	HasDefault     bool
	AllowedValues  []string
	AllowedPattern string
	MinValue       *float64
	MaxValue       *float64
	MinLength      *int
	MaxLength      *int
}

// Resource is one entry of the Resources section.
type Resource struct {
	LogicalID string
	Type      string
	// Condition names the condition that decides whether it exists.
	Condition string
	DependsOn []string
	Metadata  map[string]any
	// Properties as written, with Globals merged into serverless resources.
	Properties map[string]any
	// Application is the nested application the resource was flattened
	// from, ChildID its logical id in the child template; both empty for
	// the template's own resources.
	Application string
	ChildID     string
	t           *Template
}

// Prop returns a property's value (IsSet false when absent).
func (r *Resource) Prop(name string) Value {
	return Value{Expr: r.Properties[name], t: r.t}
}

// Output is one entry of the Outputs section.
type Output struct {
	Name        string
	Description string
	Condition   string
	Value       Value
	// Export is Export.Name, unset when the output is not exported.
	Export Value
}

// FindRoot returns the repository root: the nearest directory, from the
// working directory upwards, that holds go.mod. Tests run in their
// package's directory and use it to find template.yaml.
func FindRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repository root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find repository root: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Load reads and parses the template at path; nested applications' local
// templates are read relative to its directory.
func Load(path string) (*Template, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load template: %w", err)
	}
	t, err := ParseFiles(data, DirReader(filepath.Dir(path)))
	if err != nil {
		return nil, fmt.Errorf("load template %s: %w", path, err)
	}
	t.Path = path
	return t, nil
}

// DirReader reads the files a template names relative to dir.
func DirReader(dir string) FileReader {
	return func(name string) ([]byte, error) {
		if filepath.IsAbs(name) || !filepath.IsLocal(name) {
			return nil, fmt.Errorf("read %s: only paths inside the template's directory", name)
		}
		return os.ReadFile(filepath.Join(dir, name))
	}
}

// Parse parses a template from its YAML (or JSON) text. A template with a
// nested application on a local file needs ParseFiles (or Load).
func Parse(data []byte) (*Template, error) {
	return ParseFiles(data, nil)
}

// ParseFiles parses a template whose nested applications' local templates
// read returns.
func ParseFiles(data []byte, read FileReader) (*Template, error) {
	raw, err := decodeYAML(data)
	if err != nil {
		return nil, err
	}
	t := &Template{raw: raw, overrides: map[string]string{}}
	if err := t.parseSections(read); err != nil {
		return nil, err
	}
	if err := t.build(); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *Template) parseSections(read FileReader) error {
	t.Description, _ = t.raw["Description"].(string)
	switch tr := t.raw["Transform"].(type) {
	case string:
		t.Transforms = []string{tr}
	case []any:
		for _, x := range tr {
			if s, ok := x.(string); ok {
				t.Transforms = append(t.Transforms, s)
			}
		}
	}
	t.Parameters = map[string]*Parameter{}
	params, err := section(t.raw, "Parameters")
	if err != nil {
		return err
	}
	for name, def := range params {
		p, err := parseParameter(name, def)
		if err != nil {
			return err
		}
		t.Parameters[name] = p
	}
	if t.Conditions, err = section(t.raw, "Conditions"); err != nil {
		return err
	}
	resources, err := section(t.raw, "Resources")
	if err != nil {
		return err
	}
	if len(resources) == 0 {
		return errors.New("parse template: no Resources")
	}
	globals, err := section(t.raw, "Globals")
	if err != nil {
		return err
	}
	t.Resources = map[string]*Resource{}
	t.Applications = map[string]*Application{}
	for _, id := range slices.Sorted(maps.Keys(resources)) {
		m, _ := resources[id].(map[string]any)
		props, _ := m["Properties"].(map[string]any)
		loc, isStr := props["Location"].(string)
		if literal(m["Type"]) != TypeApplication || !isStr || strings.Contains(loc, "://") {
			continue
		}
		flat, app, err := t.flatten(id, m, read)
		if err != nil {
			return fmt.Errorf("parse template: %w", err)
		}
		t.Applications[id] = app
		for _, f := range flat {
			if _, dup := resources[f.id]; dup || t.Resources[f.id] != nil {
				return fmt.Errorf("parse template: nested application %s: resource %s exists twice", id, f.id)
			}
			r, err := t.parseResource(f.id, f.def, f.globals)
			if err != nil {
				return err
			}
			r.Application, r.ChildID = f.app, f.child
			t.Resources[f.id] = r
		}
	}
	for id, def := range resources {
		def, err := rewriteOutputs(def, t.Applications)
		if err != nil {
			return fmt.Errorf("parse template: resource %s: %w", id, err)
		}
		r, err := t.parseResource(id, def, globals)
		if err != nil {
			return err
		}
		t.Resources[id] = r
	}
	outputs, err := section(t.raw, "Outputs")
	if err != nil {
		return err
	}
	t.Outputs = map[string]*Output{}
	for name, def := range outputs {
		m, ok := def.(map[string]any)
		if !ok {
			return fmt.Errorf("parse template: output %s is not a mapping", name)
		}
		v, err := rewriteOutputs(m["Value"], t.Applications)
		if err != nil {
			return fmt.Errorf("parse template: output %s: %w", name, err)
		}
		o := &Output{Name: name, Value: Value{Expr: v, t: t}}
		o.Description, _ = m["Description"].(string)
		o.Condition, _ = m["Condition"].(string)
		o.Export = Value{t: t}
		if e, ok := m["Export"].(map[string]any); ok {
			o.Export.Expr = e["Name"]
		}
		t.Outputs[name] = o
	}
	return nil
}

func section(raw map[string]any, name string) (map[string]any, error) {
	v, ok := raw[name]
	if !ok || v == nil {
		return map[string]any{}, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("parse template: %s is not a mapping", name)
	}
	return m, nil
}

func parseParameter(name string, def any) (*Parameter, error) {
	m, ok := def.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("parse template: parameter %s is not a mapping", name)
	}
	p := &Parameter{Name: name}
	p.Type, _ = m["Type"].(string)
	if p.Type == "" {
		return nil, fmt.Errorf("parse template: parameter %s has no Type", name)
	}
	p.Description, _ = m["Description"].(string)
	if d, ok := m["Default"]; ok {
		s, isStr := d.(string)
		if !isStr {
			return nil, fmt.Errorf("parse template: parameter %s: Default is not a scalar", name)
		}
		p.Default, p.HasDefault = s, true
	}
	if av, ok := m["AllowedValues"].([]any); ok {
		for _, x := range av {
			s, isStr := x.(string)
			if !isStr {
				return nil, fmt.Errorf("parse template: parameter %s: AllowedValues entry is not a scalar", name)
			}
			p.AllowedValues = append(p.AllowedValues, s)
		}
	}
	p.AllowedPattern, _ = m["AllowedPattern"].(string)
	if p.AllowedPattern != "" {
		if _, err := regexp.Compile(p.AllowedPattern); err != nil {
			return nil, fmt.Errorf("parse template: parameter %s: AllowedPattern: %w", name, err)
		}
	}
	for key, dst := range map[string]**float64{"MinValue": &p.MinValue, "MaxValue": &p.MaxValue} {
		if s, ok := m[key].(string); ok {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return nil, fmt.Errorf("parse template: parameter %s: %s %q is not a number", name, key, s)
			}
			*dst = &f
		}
	}
	for key, dst := range map[string]**int{"MinLength": &p.MinLength, "MaxLength": &p.MaxLength} {
		if s, ok := m[key].(string); ok {
			n, err := strconv.Atoi(s)
			if err != nil {
				return nil, fmt.Errorf("parse template: parameter %s: %s %q is not an integer", name, key, s)
			}
			*dst = &n
		}
	}
	return p, nil
}

// Validate checks a value against the parameter's constraints, as
// CloudFormation does before it creates anything.
func (p *Parameter) Validate(v string) error {
	if len(p.AllowedValues) > 0 && !slices.Contains(p.AllowedValues, v) {
		return fmt.Errorf("parameter %s: %q is not one of %v", p.Name, v, p.AllowedValues)
	}
	if p.AllowedPattern != "" {
		re, err := regexp.Compile(`^(?:` + p.AllowedPattern + `)$`)
		if err != nil {
			return fmt.Errorf("parameter %s: AllowedPattern: %w", p.Name, err)
		}
		if !re.MatchString(v) {
			return fmt.Errorf("parameter %s: %q does not match %s", p.Name, v, p.AllowedPattern)
		}
	}
	if p.MinLength != nil && len(v) < *p.MinLength {
		return fmt.Errorf("parameter %s: shorter than %d", p.Name, *p.MinLength)
	}
	if p.MaxLength != nil && len(v) > *p.MaxLength {
		return fmt.Errorf("parameter %s: longer than %d", p.Name, *p.MaxLength)
	}
	if p.Type == "Number" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return fmt.Errorf("parameter %s: %q is not a number", p.Name, v)
		}
		if p.MinValue != nil && f < *p.MinValue {
			return fmt.Errorf("parameter %s: %v is below %v", p.Name, f, *p.MinValue)
		}
		if p.MaxValue != nil && f > *p.MaxValue {
			return fmt.Errorf("parameter %s: %v is above %v", p.Name, f, *p.MaxValue)
		}
	}
	return nil
}

// ParameterValue returns a parameter's current value: the one given to
// SetParameter, else the default.
func (t *Template) ParameterValue(name string) (string, error) {
	p, ok := t.Parameters[name]
	if !ok {
		return "", fmt.Errorf("parameter %s: not in the template", name)
	}
	if v, ok := t.overrides[name]; ok {
		return v, nil
	}
	if !p.HasDefault {
		return "", fmt.Errorf("parameter %s: no default and no value given", name)
	}
	return p.Default, nil
}

// SetParameter gives a parameter a value (as a deploy's parameter override
// would) after checking its constraints, and rebuilds the typed model.
func (t *Template) SetParameter(name, value string) error {
	p, ok := t.Parameters[name]
	if !ok {
		return fmt.Errorf("set parameter %s: not in the template", name)
	}
	if err := p.Validate(value); err != nil {
		return fmt.Errorf("set parameter: %w", err)
	}
	old, had := t.overrides[name]
	t.overrides[name] = value
	if err := t.build(); err != nil {
		if had {
			t.overrides[name] = old
		} else {
			delete(t.overrides, name)
		}
		if rerr := t.build(); rerr != nil {
			return errors.Join(err, rerr)
		}
		return fmt.Errorf("set parameter %s: %w", name, err)
	}
	return nil
}

func (t *Template) parseResource(id string, def any, globals map[string]any) (*Resource, error) {
	m, ok := def.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("parse template: resource %s is not a mapping", id)
	}
	r := &Resource{LogicalID: id, t: t}
	r.Type, _ = m["Type"].(string)
	if r.Type == "" {
		return nil, fmt.Errorf("parse template: resource %s has no Type", id)
	}
	r.Condition, _ = m["Condition"].(string)
	switch d := m["DependsOn"].(type) {
	case string:
		r.DependsOn = []string{d}
	case []any:
		for _, x := range d {
			if s, ok := x.(string); ok {
				r.DependsOn = append(r.DependsOn, s)
			}
		}
	}
	r.Metadata, _ = m["Metadata"].(map[string]any)
	props, _ := m["Properties"].(map[string]any)
	if props == nil {
		props = map[string]any{}
	}
	if kind, ok := strings.CutPrefix(r.Type, "AWS::Serverless::"); ok {
		if g, ok := globals[kind].(map[string]any); ok {
			merged, _ := mergeGlobals(g, props).(map[string]any)
			props = merged
		}
	}
	r.Properties = props
	return r, nil
}

// mergeGlobals applies SAM's Globals rules: maps merge key by key with the
// resource winning, lists concatenate (globals first), and anything else,
// intrinsics included, is replaced by the resource's value.
func mergeGlobals(global, local any) any {
	gk, lk := mergeKind(global), mergeKind(local)
	switch {
	case gk != lk, gk == "primitive":
		return local
	case gk == "list":
		return append(slices.Clone(global.([]any)), local.([]any)...)
	}
	out := maps.Clone(global.(map[string]any))
	for k, lv := range local.(map[string]any) {
		if gv, ok := out[k]; ok {
			out[k] = mergeGlobals(gv, lv)
		} else {
			out[k] = lv
		}
	}
	return out
}

func mergeKind(v any) string {
	switch x := v.(type) {
	case []any:
		return "list"
	case map[string]any:
		if isIntrinsic(x) {
			return "primitive"
		}
		return "map"
	}
	return "primitive"
}

func isIntrinsic(m map[string]any) bool {
	if len(m) != 1 {
		return false
	}
	for k := range m {
		return k == "Ref" || k == "Condition" || strings.HasPrefix(k, "Fn::")
	}
	return false
}

// ResourcesOfType returns the logical ids of one resource type, sorted.
func (t *Template) ResourcesOfType(typ string) []string {
	var ids []string
	for id, r := range t.Resources {
		if r.Type == typ {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}
