package chaos

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
)

// Key names one accepted finding: a finding id within a scan.
type Key struct{ Scan, Finding string }

// String names the finding as scan/finding for messages.
func (k Key) String() string { return k.Scan + "/" + k.Finding }

// Expectation is what may become of one finding in a scenario.
type Expectation struct {
	// Cred is the credential the finding carries (zero for findings that
	// never reach a partner, such as an unsupported rule).
	Cred Cred
	// Allowed are the reasons its result may have.
	Allowed []finding.Reason
	// Terminal requires a result by the end: being kept in a queue or a
	// dead-letter queue does not do.
	Terminal bool
	// Exactly is the number of results required; 0 accepts any number,
	// as long as they agree (at-least-once delivery may repeat one).
	Exactly int
	// Mixed lets an unknown result stand beside a verdict: one delivery met
	// faults past its retries (or the flag off) while another got the
	// answer. Verdicts must still agree with each other.
	Mixed bool
}

// Observation is everything a scenario left behind, for the invariants.
type Observation struct {
	Scenario string
	// Expect holds every finding the scenario had accepted.
	Expect map[Key]*Expectation
	// Results are the results written, by finding; Bodies their raw text.
	Results map[Key][]finding.Result
	Bodies  []string
	// Unexpected are results for findings the scenario never sent.
	Unexpected []finding.Result
	// DeadLettered and Queued count the findings still held in a
	// dead-letter queue or a source queue at the end.
	DeadLettered map[Key]int
	Queued       map[Key]int
	// Vanished are findings a function reported as processed without
	// writing their result (from direct invocations).
	Vanished []string
	// Lines is every text the system produced: function logs and EMF
	// records, the emulator's lines, the event source mappings' log lines
	// (which carry invocation error strings), probe error strings. Traces
	// are not among them: the Lambda emulator's tracer is a no-op, so no
	// invocation carries a trace context locally (shared/tracing's tests
	// cover what a partner-call subsegment holds).
	Lines []string
	// Secrets is the credential material of the scenario.
	Secrets []string
	// CanaryHits is how many requests the token_uri canary received.
	CanaryHits int64
	// Memory is each function's peak memory.
	Memory []Memory
	// Killed counts the bootstrap processes the scenario itself killed, by
	// function: the restarts they cause are not crashes.
	Killed map[string]int
	// Problems are the scenario's own checks that failed (documented
	// behaviour not seen, a fault that never fired, a crash).
	Problems []string
	// Unsettled says why the stack was not idle at the end ("" when it was).
	Unsettled string
	// Notes are the scenario's own figures, printed beside its verdict.
	Notes []string
}

func newObservation(name string) *Observation {
	return &Observation{Scenario: name, Expect: map[Key]*Expectation{}, Results: map[Key][]finding.Result{},
		DeadLettered: map[Key]int{}, Queued: map[Key]int{}, Killed: map[string]int{}}
}

// Invariant is one column of the table: a property every scenario must keep.
type Invariant struct {
	// Name is the column header.
	Name string
	// Doc says what the invariant requires.
	Doc string
	// Check returns the violations found, none when the invariant holds.
	Check func(*Observation) []string
}

// Invariants are checked after every scenario, in this order.
var Invariants = []Invariant{
	{"nothing lost", "every accepted finding has a result, or is still in a queue or a dead-letter queue", checkNothingLost},
	{"no false inactive", "no fault turned a finding inactive: inactive only for a revoked credential whose partner answered", checkNoFalseInactive},
	{"no secret leaked", "no token, secret key, private key or client secret in logs, metrics (EMF), results or error strings", checkNoSecret},
	{"canary silent", "the token_uri canary of the service-account keys received no request", checkCanary},
	{"memory bounded", "every function's peak resident memory (VmHWM) stayed below its MemorySize", checkMemory},
	{"documented outcome", "each finding ended as docs/failure-behaviour.md says for this fault; no crash, no contradicting results", checkOutcome},
}

func checkNothingLost(o *Observation) []string {
	var v []string
	for _, k := range sortedKeys(o.Expect) {
		if len(o.Results[k]) == 0 && o.DeadLettered[k] == 0 && o.Queued[k] == 0 {
			v = append(v, fmt.Sprintf("%s: no result and in no queue or dead-letter queue", k))
		}
	}
	v = append(v, o.Vanished...)
	if len(v) > 0 && o.Unsettled != "" {
		v = append(v, "the stack was not idle at the end: "+o.Unsettled)
	}
	return v
}

func checkNoFalseInactive(o *Observation) []string {
	var v []string
	for _, k := range sortedKeys(o.Results) {
		e := o.Expect[k]
		for _, r := range o.Results[k] {
			if r.Status != finding.StatusInactive {
				continue
			}
			switch {
			case e == nil:
				v = append(v, fmt.Sprintf("%s: inactive for a finding never sent", k))
			case e.Cred.Active:
				v = append(v, fmt.Sprintf("%s: a live credential (%s) reported inactive (%s)", k, e.Cred.Name, r.Reason))
			case !slices.Contains(e.Allowed, finding.ReasonPartnerRejected):
				v = append(v, fmt.Sprintf("%s: %s reported inactive (%s) while its partner only faulted", k, e.Cred.Name, r.Reason))
			}
		}
	}
	for _, r := range o.Unexpected {
		if r.Status == finding.StatusInactive {
			v = append(v, fmt.Sprintf("%s/%s: inactive for a finding never sent", r.ScanID, r.FindingID))
		}
	}
	return v
}

// window is the length of the credential fragments searched for: long
// enough that a random credential cannot match innocent text, short
// enough to catch a truncated or partly masked copy.
const window = 16

func checkNoSecret(o *Observation) []string {
	frags := map[string]int{}
	var whole []string
	for i, s := range o.Secrets {
		if len(s) > 256 {
			// A key file is mostly public structure; its private key
			// lines are listed as secrets of their own.
			whole = append(whole, s)
			continue
		}
		for j := 0; j+window <= len(s); j++ {
			frags[s[j:j+window]] = i
		}
	}
	seen := map[string]bool{}
	var v []string
	report := func(where, what string) {
		msg := fmt.Sprintf("%s: %s", where, what)
		if !seen[msg] {
			seen[msg] = true
			v = append(v, msg)
		}
	}
	scan := func(where, text string) {
		if strings.Contains(text, "PRIVATE KEY") {
			report(where, "a private key")
		}
		for _, s := range whole {
			if strings.Contains(text, s) {
				report(where, "a whole key file")
			}
		}
		for j := 0; j+window <= len(text); j++ {
			if i, ok := frags[text[j:j+window]]; ok {
				report(where, fmt.Sprintf("credential material (%s)", finding.Redact(o.Secrets[i])))
				return
			}
		}
	}
	for i, l := range o.Lines {
		scan(fmt.Sprintf("output line %d (%s)", i+1, lineSource(l)), l)
	}
	for i, b := range o.Bodies {
		scan(fmt.Sprintf("result %d", i+1), b)
	}
	return v
}

// lineSource is the function or component a collected line came from.
func lineSource(l string) string {
	src, _, _ := strings.Cut(l, " ")
	return src
}

func checkCanary(o *Observation) []string {
	if o.CanaryHits > 0 {
		return []string{fmt.Sprintf("the canary received %d requests", o.CanaryHits)}
	}
	return nil
}

func checkMemory(o *Observation) []string {
	var v []string
	measured := 0
	for _, m := range o.Memory {
		if m.Invocations == 0 {
			continue
		}
		measured++
		switch {
		case m.Samples == 0:
			v = append(v, fmt.Sprintf("%s: its bootstrap was never found to measure", m.Function))
		case m.PeakKB >= int64(m.LimitMB)*1024:
			v = append(v, fmt.Sprintf("%s: peak %d MB reached its MemorySize %d MB", m.Function, m.PeakKB/1024, m.LimitMB))
		}
	}
	if measured == 0 {
		v = append(v, "no function was invoked and measured")
	}
	return v
}

func checkOutcome(o *Observation) []string {
	var v []string
	for _, k := range sortedKeys(o.Expect) {
		e := o.Expect[k]
		rs := o.Results[k]
		switch {
		case e.Terminal && len(rs) == 0:
			v = append(v, fmt.Sprintf("%s: no result (want %s)", k, reasons(e.Allowed)))
		case e.Exactly > 0 && len(rs) > 0 && len(rs) != e.Exactly:
			v = append(v, fmt.Sprintf("%s: %d results, want %d", k, len(rs), e.Exactly))
		}
		for _, r := range rs {
			if !slices.Contains(e.Allowed, r.Reason) {
				v = append(v, fmt.Sprintf("%s (%s): %s/%s, want %s", k, e.Cred.Name, r.Status, r.Reason, reasons(e.Allowed)))
			}
			if contradicts(e, rs[0], r) {
				v = append(v, fmt.Sprintf("%s: contradicting results %s and %s", k, rs[0].Status, r.Status))
			}
		}
	}
	for _, r := range o.Unexpected {
		v = append(v, fmt.Sprintf("%s/%s: a result for a finding never sent", r.ScanID, r.FindingID))
	}
	for _, m := range o.Memory {
		if restarts := m.Processes - 1; restarts > o.Killed[m.Function] {
			v = append(v, fmt.Sprintf("%s: its runtime was restarted %d times, %d of them after the scenario killed it (the others: a crash or hard timeout)",
				m.Function, restarts, o.Killed[m.Function]))
		}
	}
	return append(v, o.Problems...)
}

// contradicts reports whether two results of one finding disagree.
func contradicts(e *Expectation, a, b finding.Result) bool {
	if e.Mixed && (a.Status == finding.StatusUnknown || b.Status == finding.StatusUnknown) {
		return false
	}
	return a.Status != b.Status
}

// Contradictions counts the findings whose results disagree.
func Contradictions(o *Observation) int {
	n := 0
	for k, rs := range o.Results {
		e := o.Expect[k]
		if e == nil {
			continue
		}
		for _, r := range rs[1:] {
			if contradicts(e, rs[0], r) {
				n++
				break
			}
		}
	}
	return n
}

func reasons(rs []finding.Reason) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = string(r)
	}
	return strings.Join(s, "|")
}

func sortedKeys[V any](m map[Key]V) []Key {
	out := make([]Key, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}
