// Package msgschema validates messages against the JSON Schemas in
// docs/schemas, the message contract integrators read. Tests use it as an
// oracle independent of shared/finding: a JSON Schema validator that knows
// nothing of this project's parser. It never ships (functions/shipped_test.go).
package msgschema

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// The schema files, relative to the repository root.
const (
	// BatchFile is the finding batch (scanner -> ingress queue, dispatcher -> partner queues).
	BatchFile = "docs/schemas/finding-batch-v1.schema.json"
	// ResultFile is the result (every function -> results queue).
	ResultFile = "docs/schemas/result-v1.schema.json"
)

// Root returns the repository root, found from this file's own path so that
// tests of any package (each runs in its own directory) find the schemas.
func Root() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("msgschema: cannot locate the source file")
	}
	return filepath.Abs(filepath.Join(filepath.Dir(file), "..", "..", ".."))
}

// Schema is one compiled message schema.
type Schema struct {
	s *jsonschema.Schema
}

var (
	mu       sync.Mutex
	compiled = map[string]*Schema{}
)

// Load compiles the schema file at rel (BatchFile, ResultFile) once. Formats
// such as date-time are asserted, not just annotated.
func Load(rel string) (*Schema, error) {
	mu.Lock()
	defer mu.Unlock()
	if s, ok := compiled[rel]; ok {
		return s, nil
	}
	root, err := Root()
	if err != nil {
		return nil, err
	}
	path := filepath.Join(root, rel)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("msgschema: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	s, err := c.Compile(path)
	if err != nil {
		return nil, fmt.Errorf("msgschema: compile %s: %w", rel, err)
	}
	compiled[rel] = &Schema{s}
	return compiled[rel], nil
}

// Batch returns the finding-batch schema.
func Batch() (*Schema, error) { return Load(BatchFile) }

// Result returns the result schema.
func Result() (*Schema, error) { return Load(ResultFile) }

// Validate checks one message body. The error lists every violation by
// JSON pointer; it can quote values of the body, so callers that hold
// credentials must not print it as is (see Check).
func (s *Schema) Validate(body []byte) error {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	return s.s.Validate(doc)
}

// Check is Validate for bodies that carry credentials: the error names only
// where the body breaks the schema (a JSON pointer, whose property names come
// from the body) and which keyword failed, never a value.
func (s *Schema) Check(body []byte) error {
	err := s.Validate(body)
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		if err != nil {
			return errors.New("not JSON")
		}
		return nil
	}
	var b bytes.Buffer
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			fmt.Fprintf(&b, "%s breaks %s; ", pointer(e.InstanceLocation), strings.Join(e.ErrorKind.KeywordPath(), "/"))
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	return errors.New(b.String())
}

func pointer(loc []string) string {
	var b bytes.Buffer
	for _, p := range loc {
		b.WriteString("/" + p)
	}
	if b.Len() == 0 {
		return "/"
	}
	return b.String()
}
