package localrun

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/registry"
	"maps"
	"math/big"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/sandbox"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/samtemplate"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/featureflag"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/metrics"
)

// contractUnits are the units of CONTRACT.md §5, the one place they are
// fixed: the template's alarms and widgets name no unit, so the emitted
// unit is held to the contract.
var contractUnits = map[string]string{
	metrics.Requests: "Count", metrics.Errors: "Count", metrics.NetworkErrors: "Count",
	metrics.RateLimitHits: "Count", metrics.Latency: "Milliseconds", metrics.Verifications: "Count",
}

// emittedButUnread lists metrics (by metricKey) the functions may emit
// although no alarm or dashboard widget reads them, each with the reason
// it is worth its cost. Empty: every emitted series is on the dashboard
// (Verifications of every partner and status, including Partner "none" for
// findings no partner verifies).
var emittedButUnread = map[string]string{}

// readButUnemittable lists dashboard lines no function can ever feed, each
// with the reason the line stays. The dashboard finds partner metrics by
// SEARCH now, so it names none by value.
var readButUnemittable = map[string]string{}

// metricKey names one CloudWatch metric: namespace, name and the dimension
// set with its values, in a stable order.
func metricKey(ns, name string, dims map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(dims)) {
		parts = append(parts, k+"="+dims[k])
	}
	return ns + " " + name + " {" + strings.Join(parts, ",") + "}"
}

// shapeKey is metricKey without the dimension values.
func shapeKey(ns, name string, dims map[string]string) string {
	return ns + " " + name + " [" + strings.Join(slices.Sorted(maps.Keys(dims)), ",") + "]"
}

// settle waits until the collector has stopped receiving records (function
// output is read asynchronously) and returns how many it holds.
func settle(c *EMFCollector) int {
	n := len(c.Records())
	for range 20 {
		time.Sleep(150 * time.Millisecond)
		m := len(c.Records())
		if m == n {
			return n
		}
		n = m
	}
	return n
}

const tokenAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

func randomText(t *testing.T, alphabet string, n int) string {
	t.Helper()
	b := make([]byte, n)
	for i := range b {
		k, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			t.Fatal(err)
		}
		b[i] = alphabet[k.Int64()]
	}
	return string(b)
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, (n+1)/2)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)[:n]
}

// generated are random tokens of each routable form, unknown to the doubles.
func randomToken(t *testing.T, rule string) string {
	switch rule {
	case "AWS":
		return "AKIA" + randomText(t, tokenAlphabet, 16)
	case "GCP API key":
		return "AIza" + randomText(t, tokenAlphabet+"abcdefghijklmnopqrstuvwxyz_-", 35)
	case "Postman API token":
		return "PMAK-" + randomHex(t, 24) + "-" + randomHex(t, 34)
	}
	t.Fatalf("no generator for rule %q", rule)
	return ""
}

// scanBody is an ingress message of n findings of one rule with random
// tokens; the tokens are appended to *tokens for the leak checks.
func scanBody(t *testing.T, scanID, rule string, n int, tokens *[]string) string {
	t.Helper()
	type f struct {
		ID     string `json:"id"`
		RuleID string `json:"rule_id"`
		Token  string `json:"token"`
	}
	b := struct {
		Version  int    `json:"version"`
		ScanID   string `json:"scan_id"`
		Project  any    `json:"project"`
		Findings []f    `json:"findings"`
	}{Version: 1, ScanID: scanID, Project: map[string]any{"id": 278964, "full_path": "gitlab-org/gitlab"}}
	for i := range n {
		tok := randomToken(t, rule)
		*tokens = append(*tokens, tok)
		b.Findings = append(b.Findings, f{ID: fmt.Sprintf("%s-%d", scanID, i), RuleID: rule, Token: tok})
	}
	raw, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// withRecheck sets recheck on every finding of an ingress body, so that a
// scan already verified by this stack reaches the partners again instead
// of the verdict cache.
func withRecheck(t *testing.T, body string) string {
	t.Helper()
	var b map[string]any
	if err := json.Unmarshal([]byte(body), &b); err != nil {
		t.Fatal(err)
	}
	fs, _ := b["findings"].([]any)
	for _, f := range fs {
		if m, ok := f.(map[string]any); ok {
			m["recheck"] = true
		}
	}
	raw, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

func sampleTokens() []string {
	return []string{sandbox.SampleAWSSecret, sandbox.SampleAWSKeyID, sandbox.SampleAWSInactiveKeyID, sandbox.SampleGCPAPIKey,
		sandbox.SampleGCPInactiveAPIKey, sandbox.SampleGCPClientSecret, sandbox.SampleGCPInactiveSecret, sandbox.SampleGCPAccessToken,
		sandbox.SampleGCPInactiveToken, sandbox.SamplePostmanKey, sandbox.SamplePostmanInactiveKey}
}

// TestMetricsContract runs scans through the real functions against the
// partner doubles, with faults, and holds their EMF output to the template:
// every metric an alarm or a dashboard widget reads is emitted with the
// same namespace, name, dimensions and unit; nothing is emitted that
// neither reads unless emittedButUnread says why; the figures agree with
// what the doubles saw; no record carries a token or a fingerprint.
func TestMetricsContract(t *testing.T) {
	h := newHarness(t, "metrics-", nil)
	h.setFlag(t, featureflag.Change{Enable: true})
	tokens := sampleTokens()
	ctl := h.sandbox.Controls()
	reset := func() {
		for _, cs := range ctl {
			for _, c := range cs {
				c.Reset()
			}
		}
	}

	steps := []struct {
		name   string
		before func()
		bodies func() []string
		// check looks at the step's EMF figures per partner.
		check func(t *testing.T, got map[string]PartnerFigures)
	}{
		{
			name:   "the sample scan, every token type, partners healthy",
			bodies: func() []string { return eventBodies(t, "ingress-scan.json") },
			check: func(t *testing.T, got map[string]PartnerFigures) {
				for _, p := range []string{"aws", "gcp", "postman", "github", "anthropic"} {
					if got[p].Requests == 0 || got[p].Errors != 0 || len(got[p].LatencyMS) != int(got[p].Requests) {
						t.Errorf("%s: %+v, want requests, no errors, one latency per request", p, got[p])
					}
				}
			},
		},
		{
			name: "postman answers 503, then 429 with Retry-After",
			before: func() {
				h.sandbox.Postman.Controls.SetRetryAfter("1")
				h.sandbox.Postman.Controls.Push(partnertest.Fault503, partnertest.Fault429)
			},
			bodies: func() []string { return []string{scanBody(t, "metrics-postman", "Postman API token", 2, &tokens)} },
			check: func(t *testing.T, got map[string]PartnerFigures) {
				p := got["postman"]
				if p.Errors != 1 || p.RateLimitHits < 1 || p.NetworkErrors != 0 {
					t.Errorf("postman: %+v, want 1 error (the 503; a 429 is not an error), at least 1 rate-limit hit, no network error", p)
				}
			},
		},
		{
			name:   "STS resets the connection",
			before: func() { h.sandbox.STS.Controls.Push(partnertest.FaultReset) },
			bodies: func() []string { return []string{scanBody(t, "metrics-aws", "AWS", 2, &tokens)} },
			check: func(t *testing.T, got map[string]PartnerFigures) {
				p := got["aws"]
				if p.NetworkErrors != 1 || p.Errors != 1 || p.RateLimitHits != 0 {
					t.Errorf("aws: %+v, want the reset as 1 network error and 1 error", p)
				}
			},
		},
		{
			name:   "Google answers a proxy's 502 page and a garbled body",
			before: func() { h.sandbox.Google.Discovery.Controls.Push(partnertest.Fault502, partnertest.FaultGarbled) },
			bodies: func() []string { return []string{scanBody(t, "metrics-gcp", "GCP API key", 3, &tokens)} },
			check: func(t *testing.T, got map[string]PartnerFigures) {
				p := got["gcp"]
				if p.Errors != 2 || p.NetworkErrors != 0 {
					t.Errorf("gcp: %+v, want 2 errors (the 502 and the unusable 200), no network error", p)
				}
			},
		},
		{
			name: "postman switched off: no request, feature_disabled counted as unknown",
			before: func() {
				h.setFlag(t, featureflag.Change{Enable: false, Partners: []finding.Partner{finding.PartnerPostman}})
			},
			bodies: func() []string { return []string{scanBody(t, "metrics-postman-off", "Postman API token", 2, &tokens)} },
			check: func(t *testing.T, got map[string]PartnerFigures) {
				if got["postman"].Requests != 0 {
					t.Errorf("postman: %+v, want no request while switched off", got["postman"])
				}
			},
		},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			reset()
			beforeFigures, beforeDoubles := h.stack.Metrics.Partners(), h.sandbox.Requests()
			beforeVerifs := h.stack.Metrics.Verifications()
			if st.before != nil {
				st.before()
			}
			results := h.run(t, "IngressQueue", st.bodies()...)
			settle(h.stack.Metrics)
			got := map[string]PartnerFigures{}
			for p, f := range h.stack.Metrics.Partners() {
				b := beforeFigures[p]
				got[p] = PartnerFigures{
					Requests: f.Requests - b.Requests, Errors: f.Errors - b.Errors,
					NetworkErrors: f.NetworkErrors - b.NetworkErrors, RateLimitHits: f.RateLimitHits - b.RateLimitHits,
					LatencyMS: f.LatencyMS[len(b.LatencyMS):],
				}
			}
			// Every request a double received is counted once, by the
			// function that sent it.
			for p, n := range h.sandbox.Requests() {
				if sent := n - beforeDoubles[p]; got[p].Requests != float64(sent) {
					t.Errorf("%s: EMF counts %v requests, the double received %d", p, got[p].Requests, sent)
				}
			}
			// Every result is counted once in Verifications, with its status.
			want := map[[2]string]float64{}
			for _, r := range results {
				p := string(r.Partner)
				if p == "" {
					p = metrics.UnroutedPartner
				}
				want[[2]string{p, string(r.Status)}]++
			}
			after := h.stack.Metrics.Verifications()
			for k := range after {
				if d := after[k] - beforeVerifs[k]; d != want[k] {
					t.Errorf("Verifications %s/%s: %v, want %v (one per result)", k[0], k[1], d, want[k])
				}
			}
			st.check(t, got)
		})
	}
	reset()

	records := h.stack.Metrics.Records()
	tpl := h.stack.Template
	scope := h.stack.Local.Scope()
	emitted := map[string]string{}      // metricKey -> unit
	emittedShape := map[string]string{} // metricKey -> shapeKey
	shapes := map[string]bool{}
	t.Run("records are valid EMF and carry only dimensions and metrics", func(t *testing.T) {
		secrets := slices.Clone(tokens)
		for i, rec := range records {
			ds, err := DecodeEMF(rec)
			if err != nil {
				t.Errorf("record %d: %v", i, err)
				continue
			}
			allowed := map[string]bool{"_aws": true}
			for _, d := range ds {
				for k := range d.Dimensions {
					allowed[k] = true
				}
				allowed[d.Name] = true
				key := metricKey(d.Namespace, d.Name, d.Dimensions)
				if u, seen := emitted[key]; seen && u != d.Unit {
					t.Errorf("%s emitted with units %s and %s", key, u, d.Unit)
				}
				emitted[key] = d.Unit
				emittedShape[key] = shapeKey(d.Namespace, d.Name, d.Dimensions)
				shapes[shapeKey(d.Namespace, d.Name, d.Dimensions)] = true
			}
			for k := range rec {
				if !allowed[k] {
					t.Errorf("record %d has member %q that is neither a dimension nor a metric", i, k)
				}
			}
			raw, _ := json.Marshal(rec)
			if strings.Contains(string(raw), "sha256:") {
				t.Errorf("record %d carries a fingerprint", i)
			}
			for _, s := range secrets {
				if strings.Contains(string(raw), s) {
					t.Errorf("record %d carries a credential (%s)", i, finding.Redact(s))
				}
			}
		}
		if len(emitted) == 0 {
			t.Fatal("no EMF record was captured")
		}
	})

	// read collects what the template reads from the contract's namespace:
	// metricKey -> where. AWS/SQS metrics are CloudWatch's own.
	read := map[string][]string{}
	readShape := map[string]bool{}
	searched := map[string][]string{} // shapeKey -> the SEARCH widgets that read it
	note := func(ns, name string, dims map[string]string, where string) {
		if ns != metrics.Namespace {
			return
		}
		read[metricKey(ns, name, dims)] = append(read[metricKey(ns, name, dims)], where)
		readShape[shapeKey(ns, name, dims)] = true
	}
	for id, a := range tpl.Alarms {
		qs, err := a.MetricDataQueries(scope)
		if err != nil {
			t.Fatalf("alarm %s: %v", id, err)
		}
		for _, q := range qs {
			if q.MetricStat == nil {
				continue
			}
			dims := map[string]string{}
			for _, d := range q.MetricStat.Metric.Dimensions {
				dims[*d.Name] = *d.Value
			}
			note(*q.MetricStat.Metric.Namespace, *q.MetricStat.Metric.MetricName, dims, "alarm "+id)
			if u := string(q.MetricStat.Unit); u != "" && u != contractUnits[*q.MetricStat.Metric.MetricName] {
				t.Errorf("alarm %s reads %s in %s, the contract's unit is %s", id, *q.MetricStat.Metric.MetricName, u, contractUnits[*q.MetricStat.Metric.MetricName])
			}
		}
	}
	// Alarm ARNs exist only in a deployed stack: the dashboard is read in a
	// symbolic scope, where the partner metrics' literal dimensions are
	// the same.
	symbolic := samtemplate.SymbolicScope(h.stack.Local.StackName, h.stack.Local.Region, samtemplate.LocalAccountID)
	for id, d := range tpl.Dashboards {
		ws, err := d.Widgets(symbolic)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range ws {
			for _, m := range w.Metrics {
				if m.Expression == "" {
					note(m.Namespace, m.MetricName, m.Dimensions, "dashboard "+id+" widget "+w.Title)
				}
				// A SEARCH reads every metric of its schema: each partner's, whoever emits it.
				if sr := m.Search; sr != nil && sr.Namespace == metrics.Namespace {
					dims := map[string]string{}
					for _, d := range sr.Dimensions {
						dims[d] = ""
					}
					searched[shapeKey(sr.Namespace, sr.MetricName, dims)] = append(searched[shapeKey(sr.Namespace, sr.MetricName, dims)], "dashboard "+id+" widget "+w.Title)
					readShape[shapeKey(sr.Namespace, sr.MetricName, dims)] = true
				}
			}
		}
	}
	if len(read) == 0 && len(searched) == 0 {
		t.Fatal("the template reads nothing from " + metrics.Namespace)
	}

	t.Run("every metric an alarm or widget reads is emitted, same namespace, name, dimensions and unit", func(t *testing.T) {
		for _, key := range slices.Sorted(maps.Keys(read)) {
			unit, ok := emitted[key]
			_, unemittable := readButUnemittable[key]
			switch {
			case ok && unemittable:
				t.Errorf("%s is listed in readButUnemittable but was emitted: drop the entry", key)
			case !ok && !unemittable:
				t.Errorf("%s (read by %s) was never emitted", key, strings.Join(read[key], "; "))
			case ok:
				name := strings.Fields(key)[1]
				if unit != contractUnits[name] {
					t.Errorf("%s emitted in %s, the contract's unit is %s", key, unit, contractUnits[name])
				}
			}
		}
		for shape := range readShape {
			if !shapes[shape] {
				t.Errorf("no metric of shape %s was emitted", shape)
			}
		}
	})

	t.Run("nothing is emitted that no alarm or widget reads, unless allowed with a reason", func(t *testing.T) {
		keys := slices.Sorted(maps.Keys(emitted))
		for _, key := range keys {
			_, isRead := read[key]
			if _, bySearch := searched[emittedShape[key]]; bySearch {
				isRead = true
			}
			reason, allowed := emittedButUnread[key]
			switch {
			case !isRead && !allowed:
				t.Errorf("%s is emitted but no alarm or widget reads it (add it to the dashboard, or to emittedButUnread with a reason)", key)
			case isRead && allowed:
				t.Errorf("%s is read by %s: drop it from emittedButUnread (%s)", key, strings.Join(read[key], "; "), reason)
			}
		}
		for key := range emittedButUnread {
			if _, ok := emitted[key]; !ok {
				t.Errorf("emittedButUnread lists %s, which was not emitted: drop the entry", key)
			}
		}
	})

	t.Run("every alarm of the contract's namespace reads a metric the run fed", func(t *testing.T) {
		var ids []string
		for id := range tpl.Alarms {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		n := 0
		for _, id := range ids {
			a := tpl.Alarms[id]
			if _, ok := alarmPartner(a, scope); !ok {
				continue
			}
			n++
			for _, m := range a.AllMetrics() {
				dims := map[string]string{}
				for _, d := range m.Dimensions {
					v, err := d.Value.Resolve(scope)
					if err != nil {
						t.Fatal(err)
					}
					dims[d.Name] = v
				}
				if _, ok := emitted[metricKey(m.Namespace, m.MetricName, dims)]; !ok {
					t.Errorf("alarm %s: %s was never emitted", id, metricKey(m.Namespace, m.MetricName, dims))
				}
			}
		}
		if want := 4 * len(registry.Names()); n != want {
			t.Errorf("%d partner alarms, want %d (four alerts per partner)", n, want)
		}
	})
}
