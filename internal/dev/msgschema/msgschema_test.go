package msgschema_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/msgschema"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
)

// unparseable are the samples in events/ that are meant to reach the
// dead-letter queue; every other sample must be a valid finding batch.
var unparseable = map[string]bool{"ingress-unparseable.json": true}

// TestEventsMatchTheBatchSchema validates the batch inside every SQS event
// of events/ (what `make invoke` and `make run` send) against the schema
// integrators read, and requires Parse to agree on each.
func TestEventsMatchTheBatchSchema(t *testing.T) {
	schema, err := msgschema.Batch()
	if err != nil {
		t.Fatal(err)
	}
	root, err := msgschema.Root()
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(root, "events", "*.json"))
	if err != nil || len(files) < 10 {
		t.Fatalf("found %d samples in events/ (%v): the test is not looking at them", len(files), err)
	}
	failing := 0
	for _, path := range files {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var ev events.SQSEvent
			if err := json.Unmarshal(raw, &ev); err != nil || len(ev.Records) == 0 {
				t.Fatalf("not an SQS event with records: %v", err)
			}
			for i, rec := range ev.Records {
				schemaErr := schema.Check([]byte(rec.Body))
				b, parseErr := finding.Parse([]byte(rec.Body))
				if parseErr == nil && b.Rejection() != nil {
					parseErr = b.Rejection()
				}
				switch {
				case unparseable[name] && schemaErr == nil:
					t.Errorf("record %d: meant to be dead-lettered, but the schema accepts it", i)
				case unparseable[name] && parseErr == nil:
					t.Errorf("record %d: meant to be dead-lettered, but Parse accepts it", i)
				case !unparseable[name] && schemaErr != nil:
					t.Errorf("record %d breaks the schema: %v", i, schemaErr)
				case !unparseable[name] && parseErr != nil:
					t.Errorf("record %d: Parse: %v", i, parseErr)
				}
				if schemaErr != nil {
					failing++
				}
			}
		})
	}
	if failing != len(unparseable) {
		t.Errorf("%d records break the schema, want exactly the %d unparseable sample(s)", failing, len(unparseable))
	}
}

// TestSchemasCompile: both files are valid draft 2020-12 schemas, and
// Load reports a missing file by name.
func TestSchemasCompile(t *testing.T) {
	for _, rel := range []string{msgschema.BatchFile, msgschema.ResultFile} {
		if _, err := msgschema.Load(rel); err != nil {
			t.Errorf("%s: %v", rel, err)
		}
	}
	if _, err := msgschema.Load("docs/schemas/missing.schema.json"); err == nil {
		t.Error("a missing schema file loaded")
	}
}
