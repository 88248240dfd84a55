package samtemplate

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// TargetKind says what a template value is, when it is a plain reference.
type TargetKind int

// Kinds of Target.
const (
	// TargetNone: the property is absent.
	TargetNone TargetKind = iota
	// TargetLiteral: a plain string.
	TargetLiteral
	// TargetParameter: !Ref of a template parameter.
	TargetParameter
	// TargetPseudo: !Ref of a pseudo parameter such as AWS::Region.
	TargetPseudo
	// TargetResource: !Ref or !GetAtt of a resource.
	TargetResource
	// TargetExpression: any other intrinsic (!Sub, !Join, !If, ...) or a list or map.
	TargetExpression
)

// Target is the classification of one value: a literal, a parameter, or a
// resource and attribute. Tests use it to check what an environment
// variable or an IAM resource points at without evaluating anything.
type Target struct {
	Kind TargetKind
	// Literal is the text of a TargetLiteral.
	Literal string
	// Name is the parameter, pseudo parameter or resource logical id.
	Name string
	// Attribute is the !GetAtt attribute; empty for a !Ref.
	Attribute string
}

// Value is one property value as written in the template (a string, list,
// map or intrinsic), bound to its template so parameter references can be
// resolved.
type Value struct {
	// Expr is the raw value: string, []any, map[string]any or nil.
	Expr any
	t    *Template
}

// IsSet reports whether the property was present.
func (v Value) IsSet() bool { return v.Expr != nil }

// Target classifies the value.
func (v Value) Target() Target {
	switch e := v.Expr.(type) {
	case nil:
		return Target{Kind: TargetNone}
	case string:
		return Target{Kind: TargetLiteral, Literal: e}
	case map[string]any:
		if len(e) != 1 {
			return Target{Kind: TargetExpression}
		}
		if ref, ok := e["Ref"].(string); ok {
			switch {
			case strings.HasPrefix(ref, "AWS::"):
				return Target{Kind: TargetPseudo, Name: ref}
			case v.t != nil && v.t.Parameters[ref] != nil:
				return Target{Kind: TargetParameter, Name: ref}
			default:
				return Target{Kind: TargetResource, Name: ref}
			}
		}
		if ga, ok := e["Fn::GetAtt"]; ok {
			if id, attr, err := getAttArgs(ga); err == nil {
				if a, isStr := attr.(string); isStr {
					return Target{Kind: TargetResource, Name: id, Attribute: a}
				}
			}
		}
	}
	return Target{Kind: TargetExpression}
}

// References lists, sorted and without duplicates, every parameter and
// resource logical id the value mentions, including inside !Sub strings.
// Pseudo parameters are left out.
func (v Value) References() []string {
	seen := map[string]bool{}
	collectRefs(v.Expr, seen)
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func collectRefs(e any, seen map[string]bool) {
	switch x := e.(type) {
	case []any:
		for _, c := range x {
			collectRefs(c, seen)
		}
	case map[string]any:
		if len(x) == 1 {
			if ref, ok := x["Ref"].(string); ok {
				if !strings.HasPrefix(ref, "AWS::") {
					seen[ref] = true
				}
				return
			}
			if ga, ok := x["Fn::GetAtt"]; ok {
				if id, _, err := getAttArgs(ga); err == nil {
					seen[id] = true
				}
				return
			}
			if sub, ok := x["Fn::Sub"]; ok {
				format, vars := sub, map[string]any(nil)
				if list, ok := sub.([]any); ok && len(list) == 2 {
					format = list[0]
					vars, _ = list[1].(map[string]any)
					collectRefs(list[1], seen)
				}
				if s, ok := format.(string); ok {
					for _, name := range subVariables(s) {
						id, _, _ := strings.Cut(name, ".")
						if _, local := vars[name]; !local && !strings.HasPrefix(id, "AWS::") {
							seen[id] = true
						}
					}
				}
				return
			}
		}
		for _, c := range x {
			collectRefs(c, seen)
		}
	}
}

// Text resolves the value to text with the template's parameter values;
// it fails on anything that needs a deployed resource.
func (v Value) Text() (string, error) {
	return v.t.EvalString(v.Expr, Scope{})
}

// Int resolves the value to an integer (see Text).
func (v Value) Int() (int, error) {
	s, err := v.Text()
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("not an integer: %q", s)
	}
	return n, nil
}

// Float resolves the value to a number (see Text).
func (v Value) Float() (float64, error) {
	s, err := v.Text()
	if err != nil {
		return 0, err
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return 0, fmt.Errorf("not a number: %q", s)
	}
	return f, nil
}

// Resolve evaluates the value to text in scope s.
func (v Value) Resolve(s Scope) (string, error) {
	return v.t.EvalString(v.Expr, s)
}

// Scope supplies what a template refers to but does not define: pseudo
// parameters and the physical values of resources (a queue's URL for a
// !Ref, its ARN for !GetAtt Queue.Arn).
type Scope struct {
	// Pseudo maps pseudo parameter names (AWS::StackName, AWS::Region,
	// AWS::AccountId, AWS::Partition, AWS::URLSuffix) to values.
	Pseudo map[string]string
	// Resource returns the value of !Ref id (attr == "") or !GetAtt id.attr.
	// Nil means resources cannot be resolved in this scope.
	Resource func(id, attr string) (string, error)
}

// noValue is what !Ref AWS::NoValue evaluates to: the property is dropped.
type noValue struct{}

// ErrUnresolvable means a value needs something the scope does not supply.
var ErrUnresolvable = errors.New("cannot be resolved in this scope")

// EvalString evaluates expr in scope s and requires text.
func (t *Template) EvalString(expr any, s Scope) (string, error) {
	v, err := t.Eval(expr, s)
	if err != nil {
		return "", err
	}
	switch x := v.(type) {
	case string:
		return x, nil
	case noValue:
		return "", fmt.Errorf("evaluate: AWS::NoValue where text is needed")
	default:
		return "", fmt.Errorf("evaluate: %T where text is needed", v)
	}
}

// Eval evaluates the intrinsics in expr (Ref, Fn::GetAtt, Fn::Sub, Fn::Join,
// Fn::Select, Fn::Split, Fn::If and the condition functions) with the
// template's parameter values and scope s. The result is text, a list or a
// map with every intrinsic replaced.
func (t *Template) Eval(expr any, s Scope) (any, error) {
	return t.eval(expr, s, 0)
}

func (t *Template) eval(expr any, s Scope, depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("evaluate: nested deeper than %d", maxDepth)
	}
	switch e := expr.(type) {
	case nil, string:
		return e, nil
	case []any:
		out := make([]any, 0, len(e))
		for _, c := range e {
			x, err := t.eval(c, s, depth+1)
			if err != nil {
				return nil, err
			}
			if _, drop := x.(noValue); drop {
				continue
			}
			out = append(out, x)
		}
		return out, nil
	case map[string]any:
		if len(e) == 1 {
			for k, arg := range e {
				if k == "Ref" || strings.HasPrefix(k, "Fn::") || k == "Condition" {
					return t.evalIntrinsic(k, arg, s, depth)
				}
			}
		}
		out := make(map[string]any, len(e))
		for k, c := range e {
			x, err := t.eval(c, s, depth+1)
			if err != nil {
				return nil, err
			}
			if _, drop := x.(noValue); drop {
				continue
			}
			out[k] = x
		}
		return out, nil
	default:
		return nil, fmt.Errorf("evaluate: unexpected %T", expr)
	}
}

func (t *Template) evalIntrinsic(fn string, arg any, s Scope, depth int) (any, error) {
	switch fn {
	case "Ref":
		name, ok := arg.(string)
		if !ok {
			return nil, fmt.Errorf("evaluate: Ref takes a name")
		}
		return t.ref(name, s)
	case "Fn::GetAtt":
		id, attr, err := getAttArgs(arg)
		if err != nil {
			return nil, err
		}
		a, err := t.eval(attr, s, depth+1)
		if err != nil {
			return nil, err
		}
		as, ok := a.(string)
		if !ok {
			return nil, fmt.Errorf("evaluate: Fn::GetAtt %s: attribute is not text", id)
		}
		return t.resource(id, as, s)
	case "Fn::Sub":
		return t.evalSub(arg, s, depth)
	case "Fn::Join":
		list, ok := arg.([]any)
		if !ok || len(list) != 2 {
			return nil, fmt.Errorf("evaluate: Fn::Join takes [delimiter, list]")
		}
		delim, ok := list[0].(string)
		if !ok {
			return nil, fmt.Errorf("evaluate: Fn::Join delimiter is not text")
		}
		items, err := t.evalStrings(list[1], s, depth)
		if err != nil {
			return nil, fmt.Errorf("evaluate: Fn::Join: %w", err)
		}
		return strings.Join(items, delim), nil
	case "Fn::Select":
		list, ok := arg.([]any)
		if !ok || len(list) != 2 {
			return nil, fmt.Errorf("evaluate: Fn::Select takes [index, list]")
		}
		idxV, err := t.eval(list[0], s, depth+1)
		if err != nil {
			return nil, err
		}
		idxS, _ := idxV.(string)
		idx, err := strconv.Atoi(idxS)
		if err != nil {
			return nil, fmt.Errorf("evaluate: Fn::Select index %q is not an integer", idxS)
		}
		items, err := t.eval(list[1], s, depth+1)
		if err != nil {
			return nil, err
		}
		arr, ok := items.([]any)
		if !ok || idx < 0 || idx >= len(arr) {
			return nil, fmt.Errorf("evaluate: Fn::Select index %d out of range", idx)
		}
		return arr[idx], nil
	case "Fn::Split":
		list, ok := arg.([]any)
		if !ok || len(list) != 2 {
			return nil, fmt.Errorf("evaluate: Fn::Split takes [delimiter, text]")
		}
		delim, ok := list[0].(string)
		if !ok {
			return nil, fmt.Errorf("evaluate: Fn::Split delimiter is not text")
		}
		src, err := t.EvalString(list[1], s)
		if err != nil {
			return nil, err
		}
		parts := strings.Split(src, delim)
		out := make([]any, len(parts))
		for i, p := range parts {
			out[i] = p
		}
		return out, nil
	case "Fn::If":
		list, ok := arg.([]any)
		if !ok || len(list) != 3 {
			return nil, fmt.Errorf("evaluate: Fn::If takes [condition, then, else]")
		}
		name, ok := list[0].(string)
		if !ok {
			return nil, fmt.Errorf("evaluate: Fn::If condition is not a name")
		}
		c, err := t.Condition(name)
		if err != nil {
			return nil, err
		}
		if c {
			return t.eval(list[1], s, depth+1)
		}
		return t.eval(list[2], s, depth+1)
	case "Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or", "Condition":
		b, err := t.evalCondition(map[string]any{fn: arg}, depth)
		if err != nil {
			return nil, err
		}
		return strconv.FormatBool(b), nil
	}
	return nil, fmt.Errorf("evaluate: %s is not supported", fn)
}

func (t *Template) evalStrings(expr any, s Scope, depth int) ([]string, error) {
	v, err := t.eval(expr, s, depth+1)
	if err != nil {
		return nil, err
	}
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("not a list")
	}
	out := make([]string, len(list))
	for i, x := range list {
		str, ok := x.(string)
		if !ok {
			return nil, fmt.Errorf("item %d is not text", i)
		}
		out[i] = str
	}
	return out, nil
}

func (t *Template) ref(name string, s Scope) (any, error) {
	if name == "AWS::NoValue" {
		return noValue{}, nil
	}
	if strings.HasPrefix(name, "AWS::") {
		if v, ok := s.Pseudo[name]; ok {
			return v, nil
		}
		return nil, fmt.Errorf("evaluate: pseudo parameter %s: %w", name, ErrUnresolvable)
	}
	if p, ok := t.Parameters[name]; ok {
		v, err := t.ParameterValue(name)
		if err != nil {
			return nil, err
		}
		if p.Type == "CommaDelimitedList" || strings.HasPrefix(p.Type, "List<") {
			var list []any
			for _, item := range strings.Split(v, ",") {
				list = append(list, strings.TrimSpace(item))
			}
			return list, nil
		}
		return v, nil
	}
	return t.resource(name, "", s)
}

func (t *Template) resource(id, attr string, s Scope) (string, error) {
	what := id
	if attr != "" {
		what = id + "." + attr
	}
	if _, ok := t.Resources[id]; !ok {
		return "", fmt.Errorf("evaluate: %s: no such resource or parameter", what)
	}
	if s.Resource == nil {
		return "", fmt.Errorf("evaluate: %s: %w", what, ErrUnresolvable)
	}
	v, err := s.Resource(id, attr)
	if err != nil {
		return "", fmt.Errorf("evaluate: %s: %w", what, err)
	}
	return v, nil
}

// subVar matches ${Name} and ${Name.Attr}; ${!Literal} is an escape.
var subVar = regexp.MustCompile(`\$\{([^}]*)\}`)

func subVariables(format string) []string {
	var out []string
	for _, m := range subVar.FindAllStringSubmatch(format, -1) {
		if !strings.HasPrefix(m[1], "!") {
			out = append(out, strings.TrimSpace(m[1]))
		}
	}
	return out
}

func (t *Template) evalSub(arg any, s Scope, depth int) (any, error) {
	format, ok := arg.(string)
	vars := map[string]string{}
	if !ok {
		list, isList := arg.([]any)
		if !isList || len(list) != 2 {
			return nil, fmt.Errorf("evaluate: Fn::Sub takes text or [text, variables]")
		}
		if format, ok = list[0].(string); !ok {
			return nil, fmt.Errorf("evaluate: Fn::Sub format is not text")
		}
		m, isMap := list[1].(map[string]any)
		if !isMap {
			return nil, fmt.Errorf("evaluate: Fn::Sub variables are not a mapping")
		}
		for k, e := range m {
			v, err := t.eval(e, s, depth+1)
			if err != nil {
				return nil, err
			}
			str, isStr := v.(string)
			if !isStr {
				return nil, fmt.Errorf("evaluate: Fn::Sub variable %s is not text", k)
			}
			vars[k] = str
		}
	}
	var firstErr error
	out := subVar.ReplaceAllStringFunc(format, func(m string) string {
		name := strings.TrimSpace(m[2 : len(m)-1])
		if strings.HasPrefix(name, "!") {
			return "${" + name[1:] + "}"
		}
		if v, ok := vars[name]; ok {
			return v
		}
		var v any
		var err error
		if id, attr, dotted := strings.Cut(name, "."); dotted && !strings.HasPrefix(name, "AWS::") {
			v, err = t.resource(id, attr, s)
		} else {
			v, err = t.ref(name, s)
		}
		if err == nil {
			if str, isStr := v.(string); isStr {
				return str
			}
			err = fmt.Errorf("evaluate: Fn::Sub ${%s} is not text", name)
		}
		if firstErr == nil {
			firstErr = err
		}
		return m
	})
	if firstErr != nil {
		return nil, firstErr
	}
	return out, nil
}

func getAttArgs(arg any) (string, any, error) {
	switch a := arg.(type) {
	case string:
		id, attr, ok := strings.Cut(a, ".")
		if ok && id != "" && attr != "" {
			return id, attr, nil
		}
	case []any:
		if len(a) == 2 {
			if id, ok := a[0].(string); ok {
				return id, a[1], nil
			}
		}
	}
	return "", nil, fmt.Errorf("evaluate: Fn::GetAtt takes [resource, attribute]")
}

// Condition evaluates a named condition of the Conditions section with the
// template's parameter values.
func (t *Template) Condition(name string) (bool, error) {
	c, ok := t.Conditions[name]
	if !ok {
		return false, fmt.Errorf("evaluate: no condition %q", name)
	}
	b, err := t.evalCondition(c, 0)
	if err != nil {
		return false, fmt.Errorf("evaluate condition %s: %w", name, err)
	}
	return b, nil
}

func (t *Template) evalCondition(expr any, depth int) (bool, error) {
	if depth > maxDepth {
		return false, fmt.Errorf("condition nested deeper than %d", maxDepth)
	}
	m, ok := expr.(map[string]any)
	if !ok || len(m) != 1 {
		return false, fmt.Errorf("not a condition function")
	}
	for fn, arg := range m {
		switch fn {
		case "Condition":
			name, ok := arg.(string)
			if !ok {
				return false, fmt.Errorf("Condition takes a name")
			}
			c, ok := t.Conditions[name]
			if !ok {
				return false, fmt.Errorf("no condition %q", name)
			}
			return t.evalCondition(c, depth+1)
		case "Fn::Equals":
			list, ok := arg.([]any)
			if !ok || len(list) != 2 {
				return false, fmt.Errorf("Fn::Equals takes two values")
			}
			a, err := t.EvalString(list[0], Scope{})
			if err != nil {
				return false, err
			}
			b, err := t.EvalString(list[1], Scope{})
			if err != nil {
				return false, err
			}
			return a == b, nil
		case "Fn::Not", "Fn::And", "Fn::Or":
			list, ok := arg.([]any)
			if !ok || len(list) == 0 || (fn == "Fn::Not" && len(list) != 1) {
				return false, fmt.Errorf("%s takes a list of conditions", fn)
			}
			results := make([]bool, len(list))
			for i, c := range list {
				b, err := t.evalCondition(c, depth+1)
				if err != nil {
					return false, err
				}
				results[i] = b
			}
			switch fn {
			case "Fn::Not":
				return !results[0], nil
			case "Fn::And":
				for _, b := range results {
					if !b {
						return false, nil
					}
				}
				return true, nil
			default:
				for _, b := range results {
					if b {
						return true, nil
					}
				}
				return false, nil
			}
		}
		return false, fmt.Errorf("%s is not a condition function", fn)
	}
	return false, nil
}
