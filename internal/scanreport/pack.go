package scanreport

import (
	"bytes"
	"encoding/json"
	"fmt"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
)

// Oversized is a finding that cannot travel in any batch: alone it makes a
// message larger than SQS's 256 KiB. It is reported, never cut: a cut
// token would be verified as a different one.
type Oversized struct {
	Entry Entry
	// Bytes is the size of the smallest message that would carry it.
	Bytes int
}

// Pack encodes the entries' findings into version-1 batches of the scan,
// each body at most finding.MaxBodyBytes, in report order.
func Pack(scanID string, project finding.Project, es []Entry) (bodies [][]byte, oversized []Oversized, err error) {
	empty, err := finding.Encode(finding.Batch{Version: 1, ScanID: scanID, Project: project, Findings: []finding.Finding{}})
	if err != nil {
		return nil, nil, err
	}
	base := len(empty)
	var cur []finding.Finding
	size := base
	flush := func() error {
		if len(cur) == 0 {
			return nil
		}
		b, err := finding.Encode(finding.Batch{Version: 1, ScanID: scanID, Project: project, Findings: cur})
		if err != nil {
			return err
		}
		if len(b) > finding.MaxBodyBytes { // the size arithmetic below is exact; this guards it
			return fmt.Errorf("pack: batch of %d bytes over the %d limit", len(b), finding.MaxBodyBytes)
		}
		bodies = append(bodies, b)
		cur, size = nil, base
		return nil
	}
	for _, e := range es {
		n, err := encodedLen(e.Finding)
		if err != nil {
			return nil, nil, err
		}
		if base+n > finding.MaxBodyBytes {
			oversized = append(oversized, Oversized{Entry: e, Bytes: base + n})
			continue
		}
		extra := n
		if len(cur) > 0 {
			extra++ // the comma between findings
		}
		if size+extra > finding.MaxBodyBytes {
			if err := flush(); err != nil {
				return nil, nil, err
			}
			extra = n
		}
		cur = append(cur, e.Finding)
		size += extra
	}
	if err := flush(); err != nil {
		return nil, nil, err
	}
	return bodies, oversized, nil
}

// encodedLen is the bytes one finding takes inside a batch, encoded as
// finding.Encode does (no HTML escaping).
func encodedLen(f finding.Finding) (int, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(f); err != nil {
		return 0, fmt.Errorf("pack: encode finding %s: %w", f.ID, err)
	}
	return len(bytes.TrimRight(buf.Bytes(), "\n")), nil
}
