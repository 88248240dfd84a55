package samtemplate

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// TypeApplication is a SAM nested application (a nested stack).
const TypeApplication = "AWS::Serverless::Application"

// FileReader returns the text of a file a template names by a relative
// path (a nested application's local Location).
type FileReader func(name string) ([]byte, error)

// Application is an AWS::Serverless::Application whose Location is a
// local template. The model flattens the child into the parent: every
// child resource becomes a resource of the parent whose logical id is the
// application's id followed by the child's (Aws + Queue = AwsQueue), so the
// model reads as one stack whatever the deployment splits into nested ones.
type Application struct {
	// LogicalID is the application's id: the prefix of its resources.
	LogicalID string
	// Location is the child template's path, relative to the parent's.
	Location string
	// Parameters are the values the parent passes, as written in the parent.
	Parameters map[string]Value
	// ChildParameters are the child template's parameter definitions.
	ChildParameters map[string]*Parameter
	// Resources are the logical ids of the flattened child resources, sorted.
	Resources []string
	// Outputs are the child's outputs, rewritten into the parent's names.
	Outputs map[string]Value
}

// flatResource is one child resource in the parent's names.
type flatResource struct {
	id, app, child string
	def, globals   map[string]any
}

// child is one nested template being flattened into its parent.
type child struct {
	prefix     string
	params     map[string]*Parameter
	bindings   map[string]any
	resources  map[string]bool
	conditions map[string]bool
}

// flatten loads the child template of application id, binds its
// parameters to the parent's expressions and returns its resources, with
// prefixed logical ids and every reference rewritten into the parent's
// names: a child parameter becomes the expression the parent passes (or
// its default), a child resource its prefixed id, a child condition its
// prefixed name.
func (t *Template) flatten(id string, def map[string]any, read FileReader) ([]flatResource, *Application, error) {
	props, _ := def["Properties"].(map[string]any)
	loc, _ := props["Location"].(string)
	where := "nested application " + id
	if read == nil {
		return nil, nil, fmt.Errorf("%s: Location %s: no file reader (use Load or ParseFiles)", where, loc)
	}
	data, err := read(loc)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", where, err)
	}
	raw, err := decodeYAML(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %s: %w", where, loc, err)
	}
	if uses := stackNameRefs(raw["Resources"]); uses != "" {
		// A nested stack's own name is not the root's: names built from it would differ.
		return nil, nil, fmt.Errorf("%s: %s uses %s; pass the root stack's name as a parameter", where, loc, uses)
	}
	c := &child{prefix: id, params: map[string]*Parameter{}, bindings: map[string]any{}, resources: map[string]bool{}, conditions: map[string]bool{}}
	childParams, err := section(raw, "Parameters")
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", where, err)
	}
	for name, pd := range childParams {
		p, err := parseParameter(name, pd)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", where, err)
		}
		c.params[name] = p
	}
	passed, _ := props["Parameters"].(map[string]any)
	app := &Application{LogicalID: id, Location: loc, Parameters: map[string]Value{}, ChildParameters: c.params, Outputs: map[string]Value{}}
	for name, expr := range passed {
		if c.params[name] == nil {
			return nil, nil, fmt.Errorf("%s: passes %s, which %s does not declare", where, name, loc)
		}
		c.bindings[name] = expr
		app.Parameters[name] = Value{Expr: expr, t: t}
	}
	for name, p := range c.params {
		if _, ok := c.bindings[name]; ok {
			continue
		}
		if !p.HasDefault {
			return nil, nil, fmt.Errorf("%s: parameter %s of %s has no value and no default", where, name, loc)
		}
		c.bindings[name] = p.Default
	}
	resources, err := section(raw, "Resources")
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", where, err)
	}
	for rid := range resources {
		c.resources[rid] = true
	}
	conds, err := section(raw, "Conditions")
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", where, err)
	}
	for name := range conds {
		c.conditions[name] = true
	}
	for name, cond := range conds {
		if _, dup := t.Conditions[id+name]; dup {
			return nil, nil, fmt.Errorf("%s: condition %s%s exists in the parent", where, id, name)
		}
		t.Conditions[id+name] = c.rewrite(cond)
	}
	globals, err := section(raw, "Globals")
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", where, err)
	}
	globals, _ = c.rewrite(globals).(map[string]any)
	appCond, _ := def["Condition"].(string)
	var out []flatResource
	for rid, rd := range resources {
		m, ok := rd.(map[string]any)
		if !ok {
			return nil, nil, fmt.Errorf("%s: resource %s is not a mapping", where, rid)
		}
		if literal(m["Type"]) == TypeApplication {
			return nil, nil, fmt.Errorf("%s: %s nests another application (%s); only one level is modelled", where, loc, rid)
		}
		nm := maps.Clone(m)
		if p, ok := m["Properties"]; ok {
			nm["Properties"] = c.rewrite(p)
		}
		if md, ok := m["Metadata"]; ok {
			nm["Metadata"] = c.rewrite(md)
		}
		switch cond := literal(m["Condition"]); {
		case cond != "" && appCond != "":
			return nil, nil, fmt.Errorf("%s: resource %s has a condition inside a conditional application", where, rid)
		case cond != "":
			nm["Condition"] = id + cond
		case appCond != "":
			nm["Condition"] = appCond
		}
		nm["DependsOn"] = c.rewriteDependsOn(m["DependsOn"])
		out = append(out, flatResource{id: id + rid, app: id, child: rid, def: nm, globals: globals})
		app.Resources = append(app.Resources, id+rid)
	}
	slices.Sort(app.Resources)
	outputs, err := section(raw, "Outputs")
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", where, err)
	}
	for name, od := range outputs {
		m, _ := od.(map[string]any)
		app.Outputs[name] = Value{Expr: c.rewrite(m["Value"]), t: t}
	}
	return out, app, nil
}

func (c *child) rewriteDependsOn(v any) any {
	switch d := v.(type) {
	case string:
		return c.prefix + d
	case []any:
		out := make([]any, len(d))
		for i, x := range d {
			out[i] = c.prefix + literal(x)
		}
		return out
	}
	return nil
}

// rewrite returns expr in the parent's names (see flatten). Parameter
// bindings are parent expressions and are inserted as they are.
func (c *child) rewrite(expr any) any {
	switch e := expr.(type) {
	case []any:
		out := make([]any, len(e))
		for i, x := range e {
			out[i] = c.rewrite(x)
		}
		return out
	case map[string]any:
		if len(e) == 1 {
			for k, arg := range e {
				switch k {
				case "Ref":
					name, _ := arg.(string)
					if b, ok := c.bindings[name]; ok {
						return b
					}
					if c.resources[name] {
						return map[string]any{"Ref": c.prefix + name}
					}
					return e
				case "Fn::GetAtt":
					if id, attr, err := getAttArgs(arg); err == nil && c.resources[id] {
						return map[string]any{"Fn::GetAtt": []any{c.prefix + id, c.rewrite(attr)}}
					}
					return e
				case "Fn::Sub":
					return c.rewriteSub(arg)
				case "Fn::If":
					if list, ok := arg.([]any); ok && len(list) == 3 {
						name, _ := list[0].(string)
						if c.conditions[name] {
							name = c.prefix + name
						}
						return map[string]any{"Fn::If": []any{name, c.rewrite(list[1]), c.rewrite(list[2])}}
					}
				case "Condition":
					if name, ok := arg.(string); ok && c.conditions[name] {
						return map[string]any{"Condition": c.prefix + name}
					}
				}
			}
		}
		out := make(map[string]any, len(e))
		for k, x := range e {
			out[k] = c.rewrite(x)
		}
		return out
	}
	return expr
}

// rewriteSub renames child resources inside the format and turns child
// parameters into Fn::Sub variables bound to the parent's expressions.
func (c *child) rewriteSub(arg any) any {
	format, ok := arg.(string)
	vars := map[string]any{}
	if !ok {
		list, isList := arg.([]any)
		if !isList || len(list) != 2 {
			return map[string]any{"Fn::Sub": arg}
		}
		format, _ = list[0].(string)
		m, _ := list[1].(map[string]any)
		for k, v := range m {
			vars[k] = c.rewrite(v)
		}
	}
	local := maps.Clone(vars)
	format = subVar.ReplaceAllStringFunc(format, func(m string) string {
		name := strings.TrimSpace(m[2 : len(m)-1])
		if strings.HasPrefix(name, "!") {
			return m
		}
		if _, ok := local[name]; ok {
			return m
		}
		id, attr, dotted := strings.Cut(name, ".")
		if c.resources[id] {
			if dotted {
				return "${" + c.prefix + id + "." + attr + "}"
			}
			return "${" + c.prefix + id + "}"
		}
		if b, ok := c.bindings[name]; ok && !dotted {
			vars[name] = b
		}
		return m
	})
	if len(vars) == 0 {
		return map[string]any{"Fn::Sub": format}
	}
	return map[string]any{"Fn::Sub": []any{format, vars}}
}

// rewriteOutputs replaces, in a parent expression, !GetAtt App.Outputs.X
// (and ${App.Outputs.X} in Fn::Sub) with the child's output X, so the
// model sees what the output is: AwsQueue's URL rather than an opaque
// nested-stack attribute.
func rewriteOutputs(expr any, apps map[string]*Application) (any, error) {
	switch e := expr.(type) {
	case []any:
		out := make([]any, len(e))
		for i, x := range e {
			y, err := rewriteOutputs(x, apps)
			if err != nil {
				return nil, err
			}
			out[i] = y
		}
		return out, nil
	case map[string]any:
		if ga, ok := e["Fn::GetAtt"]; ok && len(e) == 1 {
			id, attr, err := getAttArgs(ga)
			if a := apps[id]; err == nil && a != nil {
				return a.output(attr)
			}
			return e, nil
		}
		if sub, ok := e["Fn::Sub"]; ok && len(e) == 1 {
			return rewriteSubOutputs(sub, apps)
		}
		out := make(map[string]any, len(e))
		for k, x := range e {
			y, err := rewriteOutputs(x, apps)
			if err != nil {
				return nil, err
			}
			out[k] = y
		}
		return out, nil
	}
	return expr, nil
}

func (a *Application) output(attr any) (any, error) {
	s, _ := attr.(string)
	name, ok := strings.CutPrefix(s, "Outputs.")
	if !ok {
		return nil, fmt.Errorf("nested application %s: attribute %v: only Outputs.<name> is modelled", a.LogicalID, attr)
	}
	o, ok := a.Outputs[name]
	if !ok {
		return nil, fmt.Errorf("nested application %s: %s has no output %s", a.LogicalID, a.Location, name)
	}
	return o.Expr, nil
}

func rewriteSubOutputs(sub any, apps map[string]*Application) (any, error) {
	format, ok := sub.(string)
	vars := map[string]any{}
	if !ok {
		list, isList := sub.([]any)
		if !isList || len(list) != 2 {
			return map[string]any{"Fn::Sub": sub}, nil
		}
		format, _ = list[0].(string)
		m, _ := list[1].(map[string]any)
		for k, v := range m {
			y, err := rewriteOutputs(v, apps)
			if err != nil {
				return nil, err
			}
			vars[k] = y
		}
	}
	var firstErr error
	for _, name := range subVariables(format) {
		id, attr, dotted := strings.Cut(name, ".")
		if a := apps[id]; dotted && a != nil {
			if _, local := vars[name]; local {
				continue
			}
			v, err := a.output(attr)
			if err != nil && firstErr == nil {
				firstErr = err
			}
			vars[name] = v
		}
	}
	if firstErr != nil {
		return nil, firstErr
	}
	if len(vars) == 0 {
		return map[string]any{"Fn::Sub": format}, nil
	}
	return map[string]any{"Fn::Sub": []any{format, vars}}, nil
}

// stackNameRefs names the first use of AWS::StackName or AWS::StackId in
// expr, empty when there is none.
func stackNameRefs(expr any) string {
	switch e := expr.(type) {
	case []any:
		for _, x := range e {
			if s := stackNameRefs(x); s != "" {
				return s
			}
		}
	case map[string]any:
		if ref, ok := e["Ref"].(string); ok && len(e) == 1 && (ref == "AWS::StackName" || ref == "AWS::StackId") {
			return ref
		}
		if sub, ok := e["Fn::Sub"]; ok && len(e) == 1 {
			format, _ := sub.(string)
			if list, isList := sub.([]any); isList && len(list) > 0 {
				format, _ = list[0].(string)
			}
			for _, v := range subVariables(format) {
				if v == "AWS::StackName" || v == "AWS::StackId" {
					return v
				}
			}
		}
		for _, x := range e {
			if s := stackNameRefs(x); s != "" {
				return s
			}
		}
	}
	return ""
}

// validateBindings checks the parameter values the parent passes against
// the child's constraints, as CloudFormation does when it creates the
// nested stack; values that need a deployed resource are left out.
func (t *Template) validateBindings() error {
	for _, id := range slices.Sorted(maps.Keys(t.Applications)) {
		a := t.Applications[id]
		for _, name := range slices.Sorted(maps.Keys(a.Parameters)) {
			v, err := a.Parameters[name].Text()
			if err != nil {
				continue
			}
			if err := a.ChildParameters[name].Validate(v); err != nil {
				return fmt.Errorf("nested application %s: %w", id, err)
			}
		}
	}
	return nil
}

// PartnerStem is the logical-id stem of a partner's nested application
// and, flattened, of its resources: the partner's name with its first
// letter upper-cased (aws: Aws, so AwsQueue, AwsFunction, AwsMaxConcurrency).
func PartnerStem(partner string) string {
	if partner == "" {
		return ""
	}
	return strings.ToUpper(partner[:1]) + partner[1:]
}
