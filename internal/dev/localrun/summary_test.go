package localrun

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/samtemplate"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/metrics"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/registry"
)

func loadTemplate(t *testing.T) *samtemplate.Template {
	t.Helper()
	root, err := samtemplate.FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := samtemplate.Load(filepath.Join(root, samtemplate.FileName))
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

// request is one partner request fed to a metrics.Recorder.
type request struct {
	partner string
	status  int
	latency time.Duration
}

func repeat(n int, r request) []request {
	out := make([]request, n)
	for i := range out {
		out[i] = r
	}
	return out
}

// collect runs requests through the functions' own recorder, flushing
// every flushEvery requests as one invocation would, and feeds the EMF
// lines to a collector.
func collect(t *testing.T, flushEvery int, reqs ...request) *EMFCollector {
	t.Helper()
	c := NewEMFCollector()
	rec := metrics.New()
	flush := func() {
		var b bytes.Buffer
		if err := rec.Flush(&b, time.Now()); err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
			c.Line(l)
		}
	}
	for i, r := range reqs {
		rec.Request(r.partner, r.status, r.latency)
		rec.Verification(r.partner, finding.StatusActive)
		if (i+1)%flushEvery == 0 {
			flush()
		}
	}
	flush()
	return c
}

func TestSummarize(t *testing.T) {
	tpl := loadTemplate(t)
	fast := 200 * time.Millisecond
	healthy := slices.Concat(
		repeat(30, request{"aws", 200, fast}), repeat(30, request{"gcp", 200, fast}), repeat(20, request{"postman", 200, fast}))
	tests := []struct {
		name     string
		reqs     []request
		duration time.Duration
		// firing lists "alert/partner" of the alarms that must be in ALARM.
		firing []string
		// rows are substrings the table must hold.
		rows []string
	}{
		{name: "healthy traffic of every partner", reqs: healthy, duration: time.Minute,
			rows: []string{"aws      30", "postman  20        0       0.0      200     200"}},
		{name: "postman: 20% 5xx and 6 s latency",
			reqs:     slices.Concat(healthy[:60], repeat(8, request{"postman", 200, 6 * time.Second}), repeat(2, request{"postman", 503, 6 * time.Second})),
			duration: time.Minute,
			firing:   []string{"SecretDetectionPartnerAPIHighErrorRate/postman", "SecretDetectionPartnerAPIHighLatency/postman"},
			rows:     []string{"postman  10        2       20.0     6000    6000"}},
		{name: "aws: 429s above 0.1/s",
			reqs:     slices.Concat(healthy, repeat(12, request{"aws", 429, fast})),
			duration: time.Minute,
			firing:   []string{"SecretDetectionPartnerAPIRateLimitHit/aws"}},
		{name: "aws: the same 429s spread over ten minutes stay below 0.1/s",
			reqs:     slices.Concat(healthy, repeat(12, request{"aws", 429, fast})),
			duration: 10 * time.Minute},
		{name: "gcp: no answer at all, 0.67/s",
			reqs:     slices.Concat(healthy[:30], repeat(40, request{"gcp", 0, 4 * time.Second})),
			duration: time.Minute,
			firing:   []string{"SecretDetectionPartnerAPIHighErrorRate/gcp", "SecretDetectionPartnerAPINetworkErrors/gcp"}},
		{name: "gcp: 10% errors is not above the threshold",
			reqs:     slices.Concat(healthy[:30], repeat(27, request{"gcp", 200, fast}), repeat(3, request{"gcp", 500, fast})),
			duration: time.Minute},
		{name: "no traffic: every watched partner listed, no alarm",
			duration: time.Minute,
			rows:     []string{"aws      0         0       0.0      -       -"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := collect(t, 7, tc.reqs...)
			s := Summarize(c, tpl, tc.duration)
			if len(s.Problems) > 0 {
				t.Fatalf("problems: %v", s.Problems)
			}
			if len(s.Alarms) != 4*len(registry.Names()) {
				t.Errorf("%d partner alarms, want 4 alerts x %d partners", len(s.Alarms), len(registry.Names()))
			}
			var firing []string
			for _, a := range s.Alarms {
				if a.InAlarm {
					firing = append(firing, a.Alert+"/"+a.Partner)
				}
			}
			slices.Sort(firing)
			want := slices.Sorted(slices.Values(tc.firing))
			if !slices.Equal(firing, want) {
				t.Errorf("in ALARM: %v, want %v", firing, want)
			}
			var partners []string
			for _, p := range s.Partners {
				partners = append(partners, p.Partner)
			}
			var names []string
			for _, n := range registry.Names() {
				names = append(names, string(n))
			}
			if slices.Sort(names); !slices.Equal(partners, names) {
				t.Errorf("partners %v", partners)
			}
			var out bytes.Buffer
			if err := s.Write(&out); err != nil {
				t.Fatal(err)
			}
			for _, r := range tc.rows {
				// Column widths follow the longest partner name.
				if !strings.Contains(strings.Join(strings.Fields(out.String()), " "), strings.Join(strings.Fields(r), " ")) {
					t.Errorf("summary lacks %q:\n%s", r, out.String())
				}
			}
			for _, f := range tc.firing {
				alert, partner, _ := strings.Cut(f, "/")
				if !strings.Contains(out.String(), alert+" ("+partner+")") {
					t.Errorf("summary does not name %s:\n%s", f, out.String())
				}
			}
		})
	}
}

func TestSummarizeReportsBrokenRecords(t *testing.T) {
	c := NewEMFCollector()
	c.Line(`{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"` + metrics.Namespace + `","Dimensions":[["Partner"]],"Metrics":[{"Name":"PartnerAPIRequests","Unit":"Count"}]}]},"PartnerAPIRequests":3}`)
	s := Summarize(c, loadTemplate(t), time.Minute)
	if len(s.Problems) != 1 || !strings.Contains(s.Problems[0], `dimension "Partner"`) {
		t.Fatalf("problems = %v, want one naming the missing Partner value", s.Problems)
	}
}

func TestDecodeEMF(t *testing.T) {
	rec := func(extra string) string {
		return `{"_aws":{"Timestamp":1700000000000,"CloudWatchMetrics":[{"Namespace":"NS","Dimensions":[["Partner"],["Partner","Status"]],` +
			`"Metrics":[{"Name":"A","Unit":"Count"},{"Name":"L","Unit":"Milliseconds"}]}]}` + extra + `}`
	}
	many := "[" + strings.TrimSuffix(strings.Repeat("1,", 101), ",") + "]"
	tests := []struct {
		name    string
		line    string
		want    int
		wantErr string
	}{
		{"two metrics in two dimension sets", rec(`,"Partner":"aws","Status":"active","A":2,"L":[1.5,2]`), 4, ""},
		{"no _aws", `{"A":1}`, 0, "no _aws"},
		{"no timestamp", `{"_aws":{"CloudWatchMetrics":[]},"A":1}`, 0, "Timestamp"},
		{"dimension value missing", rec(`,"Partner":"aws","A":2,"L":1`), 0, `dimension "Status"`},
		{"dimension value not text", rec(`,"Partner":1,"Status":"x","A":2,"L":1`), 0, `dimension "Partner"`},
		{"metric value missing", rec(`,"Partner":"aws","Status":"x","A":2`), 0, "metric L"},
		{"metric value not numeric", rec(`,"Partner":"aws","Status":"x","A":"2","L":1`), 0, "metric A"},
		{"more than 100 values", rec(`,"Partner":"aws","Status":"x","A":2,"L":` + many), 0, "101 values"},
		{"a value in the list not numeric", rec(`,"Partner":"aws","Status":"x","A":2,"L":[1,"x"]`), 0, "value 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var raw map[string]any
			if err := json.Unmarshal([]byte(tc.line), &raw); err != nil {
				t.Fatal(err)
			}
			ds, err := DecodeEMF(raw)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || len(ds) != tc.want {
				t.Fatalf("%d data, %v; want %d", len(ds), err, tc.want)
			}
			for _, d := range ds {
				if d.Namespace != "NS" || d.Dimensions["Partner"] != "aws" {
					t.Errorf("datum %+v", d)
				}
				if d.Name == "L" && (d.Unit != "Milliseconds" || len(d.Values) != 2) {
					t.Errorf("latency datum %+v", d)
				}
			}
		})
	}
}

func TestStatistic(t *testing.T) {
	vals := []float64{5, 1, 4, 2, 3, 6, 7, 8, 9, 10}
	tests := []struct {
		stat    string
		values  []float64
		want    float64
		wantErr bool
	}{
		{"Sum", vals, 55, false},
		{"SampleCount", vals, 10, false},
		{"Average", vals, 5.5, false},
		{"Minimum", vals, 1, false},
		{"Maximum", vals, 10, false},
		{"p50", vals, 5, false},
		{"p95", vals, 10, false},
		{"p90", vals, 9, false},
		{"p99.9", vals, 10, false},
		{"Sum", nil, math.NaN(), false},
		{"p95", nil, math.NaN(), false},
		{"SampleCount", nil, math.NaN(), false},
		{"p101", vals, 0, true},
		{"tm99", vals, 0, true},
		{"Median", vals, 0, true},
	}
	for _, tc := range tests {
		got, err := Statistic(tc.values, tc.stat)
		if tc.wantErr {
			if err == nil {
				t.Errorf("%s: no error", tc.stat)
			}
			continue
		}
		if err != nil || !(got == tc.want || math.IsNaN(got) && math.IsNaN(tc.want)) {
			t.Errorf("%s of %v = %v, %v; want %v", tc.stat, tc.values, got, err, tc.want)
		}
	}
}

func TestMathExpr(t *testing.T) {
	values := map[string]float64{"requests": 10, "errors": 2, "zero": 0, "hits": 12, "missing": math.NaN()}
	env := MathEnv{
		Value: func(id string) (float64, error) {
			v, ok := values[id]
			if !ok {
				return 0, errors.New("unknown id " + id)
			}
			return v, nil
		},
		Period: func(id string) (float64, error) { return 60, nil },
	}
	tests := []struct {
		expr     string
		want     float64
		parseErr bool
		evalErr  bool
	}{
		{expr: "IF(requests > 0, errors / requests * 100, 0)", want: 20},
		{expr: "IF(zero > 0, errors / zero * 100, 0)", want: 0},
		{expr: "IF(missing > 0, errors / missing * 100, 0)", want: math.NaN()},
		{expr: "hits / PERIOD(hits)", want: 0.2},
		{expr: "1 + 2 * 3", want: 7},
		{expr: "(1 + 2) * 3", want: 9},
		{expr: "10 - 4 - 3", want: 3},
		{expr: "-2 * 3", want: -6},
		{expr: "errors / zero", want: math.NaN()},
		{expr: "IF(zero > 1, 5)", want: math.NaN()},
		{expr: "IF(requests >= 10, 1, 2)", want: 1},
		{expr: "requests != 10", want: 0},
		{expr: "requests == 10", want: 1},
		{expr: "requests <= 9.5", want: 0},
		{expr: "IF(requests)", parseErr: true},
		{expr: "FILL(requests, 0)", parseErr: true},
		{expr: "requests +", parseErr: true},
		{expr: "(requests", parseErr: true},
		{expr: "requests $ errors", parseErr: true},
		{expr: "PERIOD(1)", parseErr: true},
		{expr: "requests errors", parseErr: true},
		{expr: "nosuch * 2", evalErr: true},
	}
	for _, tc := range tests {
		e, err := ParseMath(tc.expr)
		if tc.parseErr {
			if err == nil {
				t.Errorf("%q parsed", tc.expr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.expr, err)
			continue
		}
		got, err := e.Eval(env)
		if tc.evalErr {
			if err == nil {
				t.Errorf("%q evaluated to %v", tc.expr, got)
			}
			continue
		}
		if err != nil || !(math.Abs(got-tc.want) < 1e-9 || math.IsNaN(got) && math.IsNaN(tc.want)) {
			t.Errorf("%q = %v, %v; want %v", tc.expr, got, err, tc.want)
		}
	}
}

// TestTemplateMathParses holds the evaluator to every expression the
// template's alarms and dashboard use, so a new one cannot slip past the
// summary and the alarm test unevaluated.
func TestTemplateMathParses(t *testing.T) {
	tpl := loadTemplate(t)
	var exprs []string
	for _, a := range tpl.Alarms {
		for _, q := range a.Metrics {
			if q.Expression != "" {
				exprs = append(exprs, q.Expression)
			}
		}
	}
	for _, d := range tpl.Dashboards {
		ws, err := d.Widgets(samtemplate.SymbolicScope("s", "us-east-1", samtemplate.LocalAccountID))
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range ws {
			for _, m := range w.Metrics {
				// A SEARCH selects metrics; it is not metric math to evaluate here.
				if m.Expression != "" && m.Search == nil {
					exprs = append(exprs, m.Expression)
				}
			}
		}
	}
	if len(exprs) == 0 {
		t.Fatal("the template has no metric math")
	}
	for _, e := range exprs {
		if _, err := ParseMath(e); err != nil {
			t.Error(err)
		}
	}
}

// localScope names every queue of the template as make run's stack does.
func localScope() samtemplate.Scope {
	s := samtemplate.SymbolicScope("local", "us-east-1", samtemplate.LocalAccountID)
	s.Resource = func(id, attr string) (string, error) {
		if attr == "QueueName" {
			return "local-" + id, nil
		}
		return "", samtemplate.ErrUnresolvable
	}
	return s
}

// TestSummaryDeadLetterAlarms checks that the DLQ alarms of the template
// count among the alarms that would fire, and that the summary tells the
// intended sample from a message that should not be there.
func TestSummaryDeadLetterAlarms(t *testing.T) {
	tpl := loadTemplate(t)
	s := Summarize(NewEMFCollector(), tpl, time.Minute)
	counts := map[string]int{"IngressDeadLetterQueue": 1, "ResultsDeadLetterQueue": 0, "PostmanDeadLetterQueue": 2}
	for _, p := range registry.Names() {
		if id := strings.ToUpper(string(p)[:1]) + string(p)[1:] + "DeadLetterQueue"; id != "PostmanDeadLetterQueue" {
			counts[id] = 0
		}
	}
	s.AddDeadLetters(tpl, localScope(), counts, map[string]int{"IngressDeadLetterQueue": 1},
		map[string]string{"IngressDeadLetterQueue": "the unparseable sample of events/ingress-unparseable.json"})
	var out bytes.Buffer
	if err := s.Write(&out); err != nil {
		t.Fatal(err)
	}
	text := strings.Join(strings.Fields(out.String()), " ")
	for _, want := range []string{
		fmt.Sprintf("Dead-letter queue alarms in ALARM with these counts (they page on one message): 2 of %d", len(counts)),
		"SecretDetectionDeadLetterQueueNotEmpty (IngressDeadLetterQueue): 1 > 0, expected: the unparseable sample of events/ingress-unparseable.json",
		"SecretDetectionDeadLetterQueueNotEmpty (PostmanDeadLetterQueue): 2 > 0, not expected: look at the queue",
		"Alarms that would fire: 2 (0 partner, 2 dead-letter queue)",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(text, "(ResultsDeadLetterQueue)") {
		t.Errorf("an empty DLQ is listed as firing:\n%s", out.String())
	}
}

// TestSummaryExplainsFewerRequestsThanVerdicts: three Postman findings
// with one credential, verified together, make one request.
func TestSummaryExplainsFewerRequestsThanVerdicts(t *testing.T) {
	c := collect(t, 7, repeat(1, request{"postman", 200, 100 * time.Millisecond})...)
	s := Summarize(c, loadTemplate(t), time.Minute)
	var rs []finding.Result
	for _, cached := range []bool{false, false, false, true} {
		rs = append(rs, finding.Result{Partner: finding.PartnerPostman, Reason: finding.ReasonPartnerConfirmed, Status: finding.StatusActive, Cached: cached})
	}
	s.AddResults(rs)
	var out bytes.Buffer
	if err := s.Write(&out); err != nil {
		t.Fatal(err)
	}
	if want := "postman: 1 requests for 3 uncached verdicts: findings with the same credential in flight at once share one call"; !strings.Contains(out.String(), want) {
		t.Errorf("summary lacks %q:\n%s", want, out.String())
	}
	if strings.Contains(out.String(), "aws: ") {
		t.Errorf("a partner without the gap is explained:\n%s", out.String())
	}
}

func TestResultNotes(t *testing.T) {
	rs := []finding.Result{
		{ScanID: "s", FindingID: "b", Partner: finding.PartnerPostman, Status: finding.StatusUnknown, Reason: finding.ReasonPartnerError, Message: "partner answered 503 three times"},
		{ScanID: "s", FindingID: "a", Partner: finding.PartnerPostman, Status: finding.StatusActive, Reason: finding.ReasonPartnerConfirmed},
		{ScanID: "s", FindingID: "c", RuleID: "x", Status: finding.StatusUnknown, Reason: finding.ReasonUnsupportedTokenType},
	}
	notes := ResultNotes(rs, map[string]float64{"postman": 2, "aws": 0.5})
	want := []string{
		"MS is each finding's time from receipt to result (its outcome log's latency_ms); it includes the wait for its partner's rate limiter, " +
			"one function instance per partner here, so after the burst each call waits its turn: postman 2/s (0.5s between calls)",
		"unknown s b (partner_error): partner answered 503 three times",
		"unknown s c (unsupported_token_type): (no message)",
	}
	if !slices.Equal(notes, want) {
		t.Errorf("notes:\n%q\nwant\n%q", notes, want)
	}
}
