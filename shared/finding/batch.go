package finding

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Limits that keep a hostile message from costing unbounded memory or time.
const (
	// MaxBodyBytes is SQS's message size limit, which the contract adopts.
	MaxBodyBytes = 256 * 1024
	// MaxIDLength bounds scan_id and finding ids (contract §2).
	MaxIDLength = 128
	// MaxTokenBytes bounds a token; a service-account key file is about 2.4 KB.
	MaxTokenBytes = 16 * 1024
	// MaxContextValueBytes bounds one companion value in context.
	MaxContextValueBytes = 4 * 1024
	// MaxContextEntries bounds the companion values of one finding; the
	// contract defines two.
	MaxContextEntries = 8
	// MaxRuleIDLength bounds a rule_id (a scanner rule name) and a context key.
	MaxRuleIDLength = 128
	// MaxFullPathLength bounds project.full_path: GitLab allows 21 levels of
	// 255-character paths.
	MaxFullPathLength = 8 * 1024
	// maxNesting bounds JSON depth; the schema needs 4 levels.
	maxNesting = 32
)

// Project identifies the project a scan belongs to.
type Project struct {
	ID       int64  `json:"id"`
	FullPath string `json:"full_path"`
}

// Finding is one detected token (contract §2).
type Finding struct {
	ID      string            `json:"id"`
	RuleID  string            `json:"rule_id"`
	Token   Secret            `json:"token"`
	Context map[string]Secret `json:"context,omitempty"`
	Recheck bool              `json:"recheck,omitempty"`

	// Problem is set by Parse when the finding could be identified (it has a
	// valid id) but breaks the schema; such a finding gets a malformed_token
	// result instead of a partner call. It is never serialized.
	Problem error `json:"-"`
}

// Batch is one SQS message body of the contract's finding-batch schema.
type Batch struct {
	Version  int       `json:"version"`
	ScanID   string    `json:"scan_id"`
	Project  Project   `json:"project"`
	Findings []Finding `json:"findings"`

	// Rejected are the findings Parse could not identify (no usable id, or
	// the id of an earlier finding): they can get no result, so the message
	// must go to the dead-letter queue once the accepted findings are done.
	// Findings holds only the accepted ones. It is never serialized.
	Rejected []Rejection `json:"-"`
}

// Rejection is one finding of a batch that cannot be identified.
type Rejection struct {
	// Index is the finding's position in the message's findings array.
	Index int
	// Err names the field at fault without quoting it.
	Err *BodyError
}

// ContextValue returns a companion value by name, or "" when absent.
func (f Finding) ContextValue(name string) string {
	return f.Context[name].Reveal()
}

// Fingerprint returns the contract fingerprint of the finding's token.
func (f Finding) Fingerprint() string { return Fingerprint(f.Token.Reveal()) }

// BodyError reports a message body that cannot be attributed to a scan and
// findings; such a body goes to the dead-letter queue. Its text names the
// field at fault and never quotes the body.
type BodyError struct {
	Field string
	Msg   string
}

// Error says what is wrong with the body without quoting it.
func (e *BodyError) Error() string {
	if e.Field == "" {
		return "finding batch: " + e.Msg
	}
	return "finding batch: " + e.Field + ": " + e.Msg
}

// FieldError reports one identified finding that breaks the schema.
type FieldError struct {
	Field string
	Msg   string
}

// Error names the field and what is wrong with it.
func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// rawBatch defers the findings so that one bad finding does not cost the rest.
type rawBatch struct {
	Version  *int              `json:"version"`
	ScanID   *string           `json:"scan_id"`
	Project  *json.RawMessage  `json:"project"`
	Findings []json.RawMessage `json:"findings"`
}

// Parse decodes and validates a finding batch. It returns a *BodyError when
// the body as a whole is unusable (not JSON, wrong version, no scan id or
// project, no findings array). A finding without a usable id, or with the id
// of an earlier finding, is listed in Batch.Rejected by index and left out
// of Batch.Findings, so one bad finding does not hold back the others.
// Findings that can be identified but break the schema are returned with
// Problem set.
func Parse(body []byte) (Batch, error) {
	if len(body) > MaxBodyBytes {
		return Batch{}, &BodyError{Msg: fmt.Sprintf("body is %d bytes, limit %d", len(body), MaxBodyBytes)}
	}
	if !utf8.Valid(body) {
		return Batch{}, &BodyError{Msg: "body is not valid UTF-8"}
	}
	if err := checkNesting(body); err != nil {
		return Batch{}, err
	}
	var raw rawBatch
	if err := json.Unmarshal(body, &raw); err != nil {
		return Batch{}, &BodyError{Msg: "not a JSON object of the finding-batch schema: " + DescribeJSONError(err)}
	}
	var b Batch
	switch {
	case raw.Version == nil:
		return Batch{}, &BodyError{Field: "version", Msg: "missing"}
	case *raw.Version != 1:
		return Batch{}, &BodyError{Field: "version", Msg: fmt.Sprintf("unsupported version %d, want 1", *raw.Version)}
	}
	b.Version = 1
	if raw.ScanID == nil || *raw.ScanID == "" {
		return Batch{}, &BodyError{Field: "scan_id", Msg: "empty"}
	}
	if err := checkID(*raw.ScanID); err != "" {
		return Batch{}, &BodyError{Field: "scan_id", Msg: err}
	}
	b.ScanID = *raw.ScanID
	if raw.Project == nil {
		return Batch{}, &BodyError{Field: "project", Msg: "missing"}
	}
	if err := json.Unmarshal(*raw.Project, &b.Project); err != nil {
		return Batch{}, &BodyError{Field: "project", Msg: DescribeJSONError(err)}
	}
	if b.Project.ID <= 0 {
		return Batch{}, &BodyError{Field: "project.id", Msg: "missing or not a positive integer"}
	}
	if b.Project.FullPath == "" {
		return Batch{}, &BodyError{Field: "project.full_path", Msg: "empty"}
	}
	if n := utf8.RuneCountInString(b.Project.FullPath); n > MaxFullPathLength {
		return Batch{}, &BodyError{Field: "project.full_path", Msg: fmt.Sprintf("%d characters, limit %d", n, MaxFullPathLength)}
	}
	if raw.Findings == nil {
		return Batch{}, &BodyError{Field: "findings", Msg: "missing"}
	}
	seen := make(map[string]int, len(raw.Findings))
	b.Findings = make([]Finding, 0, len(raw.Findings))
	for i, rf := range raw.Findings {
		f, err := parseFinding(i, rf)
		if err != nil {
			b.Rejected = append(b.Rejected, Rejection{Index: i, Err: err})
			continue
		}
		if j, dup := seen[f.ID]; dup {
			b.Rejected = append(b.Rejected, Rejection{Index: i, Err: &BodyError{Field: fmt.Sprintf("findings[%d].id", i), Msg: fmt.Sprintf("duplicate of findings[%d].id", j)}})
			continue
		}
		seen[f.ID] = i
		b.Findings = append(b.Findings, f)
	}
	return b, nil
}

// parseFinding returns a *BodyError only when the finding has no usable id.
func parseFinding(i int, raw json.RawMessage) (Finding, *BodyError) {
	field := func(name string) string { return fmt.Sprintf("findings[%d].%s", i, name) }
	var idOnly struct {
		ID any `json:"id"`
	}
	if err := json.Unmarshal(raw, &idOnly); err != nil {
		return Finding{}, &BodyError{Field: fmt.Sprintf("findings[%d]", i), Msg: DescribeJSONError(err)}
	}
	id, ok := idOnly.ID.(string)
	switch {
	case idOnly.ID == nil:
		return Finding{}, &BodyError{Field: field("id"), Msg: "missing"}
	case !ok:
		return Finding{}, &BodyError{Field: field("id"), Msg: "not a string"}
	case id == "":
		return Finding{}, &BodyError{Field: field("id"), Msg: "empty"}
	}
	if msg := checkID(id); msg != "" {
		return Finding{}, &BodyError{Field: field("id"), Msg: msg}
	}
	var f Finding
	if err := json.Unmarshal(raw, &f); err != nil {
		// Keep what can be kept (the rule_id) so the result can name it.
		var ruleOnly struct {
			RuleID any `json:"rule_id"`
		}
		_ = json.Unmarshal(raw, &ruleOnly)
		rule, _ := ruleOnly.RuleID.(string)
		if utf8.RuneCountInString(rule) > MaxRuleIDLength {
			rule = "" // it would be copied into the result
		}
		return Finding{ID: id, RuleID: rule, Problem: &FieldError{Field: fmt.Sprintf("findings[%d]", i), Msg: DescribeJSONError(err)}}, nil
	}
	f.Problem = validateFinding(i, f)
	if utf8.RuneCountInString(f.RuleID) > MaxRuleIDLength {
		// The result copies the rule_id: an unbounded one could make the
		// result too big for the results queue.
		f.RuleID = ""
	}
	return f, nil
}

func validateFinding(i int, f Finding) error {
	field := func(name string) string { return fmt.Sprintf("findings[%d].%s", i, name) }
	switch {
	case f.RuleID == "":
		return &FieldError{Field: field("rule_id"), Msg: "empty"}
	case f.Token == "":
		return &FieldError{Field: field("token"), Msg: "empty"}
	case utf8.RuneCountInString(f.RuleID) > MaxRuleIDLength:
		return &FieldError{Field: field("rule_id"), Msg: fmt.Sprintf("%d characters, limit %d", utf8.RuneCountInString(f.RuleID), MaxRuleIDLength)}
	case len(f.Token) > MaxTokenBytes:
		return &FieldError{Field: field("token"), Msg: fmt.Sprintf("%d bytes, limit %d", len(f.Token), MaxTokenBytes)}
	case len(f.Context) > MaxContextEntries:
		return &FieldError{Field: field("context"), Msg: fmt.Sprintf("%d entries, limit %d", len(f.Context), MaxContextEntries)}
	}
	// These bounds keep a finding forwarded alone, or its result, within
	// one SQS message even when re-encoding doubles its size (U+2028 is 3
	// bytes in and 6 out).
	for k, v := range f.Context {
		if n := utf8.RuneCountInString(k); n > MaxRuleIDLength {
			return &FieldError{Field: field("context.<key>"), Msg: fmt.Sprintf("key is %d characters, limit %d", n, MaxRuleIDLength)}
		}
		if len(v) > MaxContextValueBytes {
			return &FieldError{Field: field("context." + safeName(k)), Msg: fmt.Sprintf("%d bytes, limit %d", len(v), MaxContextValueBytes)}
		}
	}
	return nil
}

func checkID(id string) string {
	if n := utf8.RuneCountInString(id); n > MaxIDLength {
		return fmt.Sprintf("%d characters, limit %d", n, MaxIDLength)
	}
	for _, r := range id {
		if r < 0x20 || r == 0x7f {
			return "contains a control character"
		}
	}
	return ""
}

// safeName shows a context key only when it is one the contract defines:
// keys come from the message, and an unknown one could be anything, even a
// credential pasted in the wrong place.
func safeName(k string) string {
	if k == ContextAWSSecretAccessKey || k == ContextGCPClientID {
		return k
	}
	return "<key>"
}

// DescribeJSONError names what went wrong without quoting input: the json
// package's syntax errors never include the input, and type errors name a
// field path and a JSON kind, both safe. The kind is cut to its first word:
// for a number that does not fit (1e999, 1.5 for an id) the json package
// appends the literal itself, which could be the whole body.
func DescribeJSONError(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("invalid JSON at byte %d", se.Offset)
	case errors.As(err, &te):
		kind, _, _ := strings.Cut(te.Value, " ")
		if te.Field != "" {
			return fmt.Sprintf("%s: wrong type %s", te.Field, kind)
		}
		return fmt.Sprintf("wrong type %s", kind)
	default:
		return "invalid JSON"
	}
}

// checkNesting rejects deeply nested JSON before the decoder walks it.
func checkNesting(body []byte) error {
	depth, inString, escaped := 0, false, false
	for _, c := range body {
		switch {
		case escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			depth++
			if depth > maxNesting {
				return &BodyError{Msg: fmt.Sprintf("JSON nested deeper than %d levels", maxNesting)}
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return nil
}

// Encode writes a batch in the contract's schema; the dispatcher uses it to
// forward one finding per partner-queue message.
func Encode(b Batch) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(b); err != nil {
		return nil, fmt.Errorf("encode finding batch: %w", err)
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// Rejection returns the dead-letter reason of a batch with rejected
// findings, or nil when every finding was accepted.
func (b Batch) Rejection() *RejectedError {
	if len(b.Rejected) == 0 {
		return nil
	}
	return &RejectedError{Rejected: b.Rejected, Accepted: len(b.Findings)}
}

// RejectedError says which findings of a message could not be identified
// and how many others were accepted; like BodyError it never quotes the body.
type RejectedError struct {
	Rejected []Rejection
	Accepted int
}

// maxListedRejections keeps the reason short: the index list names them all.
const maxListedRejections = 4

// Error names the first rejected findings and what is wrong with each.
func (e *RejectedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "finding batch: %d of %d findings rejected (no usable id), the other %d accepted: ",
		len(e.Rejected), len(e.Rejected)+e.Accepted, e.Accepted)
	for i, r := range e.Rejected {
		if i == maxListedRejections {
			fmt.Fprintf(&b, "; and %d more", len(e.Rejected)-i)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(r.Err.Field + ": " + r.Err.Msg)
	}
	return b.String()
}

// Unwrap gives the rejections' errors, so errors.As finds a *BodyError.
func (e *RejectedError) Unwrap() []error {
	errs := make([]error, len(e.Rejected))
	for i, r := range e.Rejected {
		errs[i] = r.Err
	}
	return errs
}

// maxIndexListBytes bounds Indexes: a message attribute counts against the
// dead-letter queue's message size, next to the original body.
const maxIndexListBytes = 1024

// Indexes lists the rejected findings' indexes in the findings array,
// consecutive ones as ranges ("2,5,7-9"), for a person or a script that
// resends them. A list longer than 1 KiB ends with ",..." after the last
// index that fits.
func (e *RejectedError) Indexes() string {
	var parts []string
	for i := 0; i < len(e.Rejected); {
		j := i
		for j+1 < len(e.Rejected) && e.Rejected[j+1].Index == e.Rejected[j].Index+1 {
			j++
		}
		if j > i {
			parts = append(parts, fmt.Sprintf("%d-%d", e.Rejected[i].Index, e.Rejected[j].Index))
		} else {
			parts = append(parts, fmt.Sprintf("%d", e.Rejected[i].Index))
		}
		i = j + 1
	}
	var b strings.Builder
	for i, p := range parts {
		if b.Len()+len(p)+5 > maxIndexListBytes {
			b.WriteString(",...")
			break
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(p)
	}
	return b.String()
}
