package localrun

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// RecordFile is where `make run ARGS=--keep` records the running stack,
// relative to the repository root, for tools that send to it
// (bin/submit --local).
const RecordFile = ".local/stack.json"

// Record is a kept stack: its local AWS endpoint and region and every
// queue's URL by logical id.
type Record struct {
	Endpoint string            `json:"endpoint"`
	Region   string            `json:"region"`
	Queues   map[string]string `json:"queues"`
}

// WriteRecord writes the stack's record to path.
func (s *Stack) WriteRecord(path, endpoint string) error {
	r := Record{Endpoint: endpoint, Region: s.Local.Region, Queues: map[string]string{}}
	for id, q := range s.Local.Queues {
		r.Queues[id] = q.URL
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// ReadRecord reads a kept stack's record; the error says how to get one
// when there is none.
func ReadRecord(path string) (Record, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Record{}, fmt.Errorf("%s not found: start the local stack with `make run ARGS=--keep` and leave it running", path)
	}
	if err != nil {
		return Record{}, err
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return Record{}, fmt.Errorf("%s: %w", path, err)
	}
	if r.Endpoint == "" || len(r.Queues) == 0 {
		return Record{}, fmt.Errorf("%s: no endpoint or queues", path)
	}
	return r, nil
}
