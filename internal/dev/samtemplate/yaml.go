package samtemplate

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// decodeYAML turns a CloudFormation YAML document into plain Go values:
// maps (map[string]any), lists ([]any), strings and nil. Scalars stay
// strings because CloudFormation itself treats them as text (5, "5" and
// 5.0 differ only to the property that reads them), and keeping the text
// avoids float formatting surprises such as 1.5 becoming 1.500000.
// Short-form intrinsics become their long JSON form, so `!Ref X` and
// `{"Ref": "X"}` are the same value to everything downstream.
func decodeYAML(data []byte) (map[string]any, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse yaml: %w", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, fmt.Errorf("parse yaml: expected one document")
	}
	v, err := convertNode(doc.Content[0], 0)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("parse yaml: top level is not a mapping")
	}
	return m, nil
}

// maxDepth bounds recursion through aliases and nesting; a CloudFormation
// template is nowhere near it, a hostile alias loop is.
const maxDepth = 200

func convertNode(n *yaml.Node, depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("parse yaml: line %d: nesting deeper than %d", n.Line, maxDepth)
	}
	var v any
	switch n.Kind {
	case yaml.AliasNode:
		return convertNode(n.Alias, depth+1)
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			v = nil
		} else {
			v = n.Value
		}
	case yaml.SequenceNode:
		list := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			x, err := convertNode(c, depth+1)
			if err != nil {
				return nil, err
			}
			list = append(list, x)
		}
		v = list
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("parse yaml: line %d: mapping key is not a scalar", k.Line)
			}
			if k.Value == "<<" && k.Tag == "!!merge" {
				if err := mergeInto(m, val, depth); err != nil {
					return nil, err
				}
				continue
			}
			if _, dup := m[k.Value]; dup {
				return nil, fmt.Errorf("parse yaml: line %d: duplicate key %q", k.Line, k.Value)
			}
			x, err := convertNode(val, depth+1)
			if err != nil {
				return nil, err
			}
			m[k.Value] = x
		}
		v = m
	default:
		return nil, fmt.Errorf("parse yaml: line %d: unexpected node kind %d", n.Line, n.Kind)
	}
	return intrinsicFromTag(n, v)
}

// mergeInto applies a YAML merge key (<<: *anchor); keys already present win.
func mergeInto(m map[string]any, val *yaml.Node, depth int) error {
	x, err := convertNode(val, depth+1)
	if err != nil {
		return err
	}
	sources := []any{x}
	if list, ok := x.([]any); ok {
		sources = list
	}
	for _, s := range sources {
		sm, ok := s.(map[string]any)
		if !ok {
			return fmt.Errorf("parse yaml: line %d: merge value is not a mapping", val.Line)
		}
		for k, v := range sm {
			if _, ok := m[k]; !ok {
				m[k] = v
			}
		}
	}
	return nil
}

// intrinsicFromTag rewrites a node with a CloudFormation short tag into the
// long form: !Ref and !Condition keep their names, every other !Name
// becomes Fn::Name (the rule CloudFormation applies), and !GetAtt A.B
// becomes the list [A, B].
func intrinsicFromTag(n *yaml.Node, v any) (any, error) {
	tag := n.Tag
	if !strings.HasPrefix(tag, "!") || strings.HasPrefix(tag, "!!") {
		return v, nil
	}
	name := tag[1:]
	switch name {
	case "Ref", "Condition":
		if _, ok := v.(string); !ok {
			return nil, fmt.Errorf("parse yaml: line %d: %s takes a name", n.Line, tag)
		}
		return map[string]any{name: v}, nil
	case "GetAtt":
		if s, ok := v.(string); ok {
			id, attr, found := strings.Cut(s, ".")
			if !found || id == "" || attr == "" {
				return nil, fmt.Errorf("parse yaml: line %d: !GetAtt %q is not Resource.Attribute", n.Line, s)
			}
			v = []any{id, attr}
		}
		return map[string]any{"Fn::GetAtt": v}, nil
	case "":
		return nil, fmt.Errorf("parse yaml: line %d: empty tag", n.Line)
	}
	return map[string]any{"Fn::" + name: v}, nil
}
