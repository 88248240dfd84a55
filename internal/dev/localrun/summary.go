package localrun

import (
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/aws/aws-sdk-go-v2/aws"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/samtemplate"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/metrics"
)

// Datum is one metric of one EMF record as CloudWatch Logs extracts it: the
// metric's namespace, name and unit, the values of one of its dimension
// sets, and its value or values.
type Datum struct {
	Namespace  string
	Name       string
	Unit       string
	Dimensions map[string]string
	Values     []float64
}

// EMF limits CloudWatch enforces on a record.
const (
	maxEMFValues     = 100
	maxEMFDimensions = 30
)

// DecodeEMF returns the metric data of one decoded EMF record: one Datum
// per metric and dimension set of each directive, as CloudWatch extracts
// them. An error says which rule of the EMF specification the record
// breaks, since CloudWatch would silently drop such a metric.
func DecodeEMF(rec map[string]any) ([]Datum, error) {
	meta, ok := rec["_aws"].(map[string]any)
	if !ok {
		return nil, errors.New("decode EMF: no _aws object")
	}
	if _, ok := meta["Timestamp"].(float64); !ok {
		return nil, errors.New("decode EMF: _aws.Timestamp is not a number")
	}
	dirs, ok := meta["CloudWatchMetrics"].([]any)
	if !ok || len(dirs) == 0 {
		return nil, errors.New("decode EMF: _aws.CloudWatchMetrics is not a non-empty list")
	}
	var out []Datum
	for i, d := range dirs {
		dir, _ := d.(map[string]any)
		ns, _ := dir["Namespace"].(string)
		if ns == "" {
			return nil, fmt.Errorf("decode EMF: directive %d: no Namespace", i)
		}
		sets, err := dimensionSets(rec, dir["Dimensions"])
		if err != nil {
			return nil, fmt.Errorf("decode EMF: directive %d: %w", i, err)
		}
		ms, _ := dir["Metrics"].([]any)
		if len(ms) == 0 {
			return nil, fmt.Errorf("decode EMF: directive %d: no Metrics", i)
		}
		for _, m := range ms {
			def, _ := m.(map[string]any)
			name, _ := def["Name"].(string)
			unit, _ := def["Unit"].(string)
			if name == "" {
				return nil, fmt.Errorf("decode EMF: directive %d: a metric without Name", i)
			}
			values, err := metricValues(rec[name])
			if err != nil {
				return nil, fmt.Errorf("decode EMF: metric %s: %w", name, err)
			}
			if unit == "" {
				unit = string(cwtypes.StandardUnitNone)
			}
			for _, dims := range sets {
				out = append(out, Datum{Namespace: ns, Name: name, Unit: unit, Dimensions: dims, Values: values})
			}
		}
	}
	return out, nil
}

// dimensionSets reads a directive's Dimensions: each set's values must be
// text members of the record.
func dimensionSets(rec map[string]any, raw any) ([]map[string]string, error) {
	list, ok := raw.([]any)
	if !ok {
		return nil, errors.New("the Dimensions member is not a list")
	}
	if len(list) == 0 {
		return []map[string]string{{}}, nil
	}
	var sets []map[string]string
	for _, s := range list {
		names, ok := s.([]any)
		if !ok {
			return nil, errors.New("a dimension set is not a list")
		}
		if len(names) > maxEMFDimensions {
			return nil, fmt.Errorf("a dimension set has %d dimensions, more than %d", len(names), maxEMFDimensions)
		}
		dims := map[string]string{}
		for _, n := range names {
			name, _ := n.(string)
			v, ok := rec[name].(string)
			if name == "" || !ok || v == "" {
				return nil, fmt.Errorf("dimension %q has no text value in the record", name)
			}
			dims[name] = v
		}
		sets = append(sets, dims)
	}
	return sets, nil
}

// metricValues reads a metric member: a number or a list of at most 100.
func metricValues(v any) ([]float64, error) {
	switch x := v.(type) {
	case float64:
		return []float64{x}, nil
	case []any:
		if len(x) == 0 || len(x) > maxEMFValues {
			return nil, fmt.Errorf("%d values, want 1 to %d", len(x), maxEMFValues)
		}
		out := make([]float64, len(x))
		for i, e := range x {
			f, ok := e.(float64)
			if !ok {
				return nil, fmt.Errorf("value %d is not a number", i)
			}
			out[i] = f
		}
		return out, nil
	}
	return nil, errors.New("no numeric value in the record")
}

// Statistic computes a CloudWatch statistic (Sum, SampleCount, Average,
// Minimum, Maximum or a percentile pNN / pNN.N, nearest rank) over values;
// NaN, CloudWatch's "no datapoint", when there are none.
func Statistic(values []float64, stat string) (float64, error) {
	if strings.HasPrefix(stat, "p") {
		p, err := strconv.ParseFloat(stat[1:], 64)
		if err != nil || p < 0 || p > 100 {
			return 0, fmt.Errorf("statistic %q: not a percentile", stat)
		}
		return Percentile(values, p), nil
	}
	switch stat {
	case "SampleCount":
		if len(values) == 0 {
			return math.NaN(), nil
		}
		return float64(len(values)), nil
	case "Sum", "Average", "Minimum", "Maximum":
	default:
		return 0, fmt.Errorf("statistic %q is not supported", stat)
	}
	if len(values) == 0 {
		return math.NaN(), nil
	}
	sum, lo, hi := 0.0, math.Inf(1), math.Inf(-1)
	for _, v := range values {
		sum += v
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	switch stat {
	case "Sum":
		return sum, nil
	case "Average":
		return sum / float64(len(values)), nil
	case "Minimum":
		return lo, nil
	}
	return hi, nil
}

// MatchMetric returns the values of the data that are the metric m exactly:
// same namespace, name and dimension set (CloudWatch treats every distinct
// dimension set as its own metric), and the same unit when m names one.
func MatchMetric(data []Datum, m cwtypes.Metric, unit cwtypes.StandardUnit) []float64 {
	want := map[string]string{}
	for _, d := range m.Dimensions {
		want[aws.ToString(d.Name)] = aws.ToString(d.Value)
	}
	var out []float64
	for _, d := range data {
		if d.Namespace != aws.ToString(m.Namespace) || d.Name != aws.ToString(m.MetricName) || len(d.Dimensions) != len(want) {
			continue
		}
		if unit != "" && d.Unit != string(unit) {
			continue
		}
		same := true
		for k, v := range want {
			if d.Dimensions[k] != v {
				same = false
				break
			}
		}
		if same {
			out = append(out, d.Values...)
		}
	}
	return out
}

// AlarmValue computes the value an alarm compares with its threshold in one
// period, from its GetMetricData queries (samtemplate's
// Alarm.MetricDataQueries): value gives each metric query's statistic in
// that period (NaN for no datapoint) and period its length in seconds, for
// PERIOD(). The returned query is a metric's value or a metric-math
// expression over the others; NaN means the alarm has no datapoint.
func AlarmValue(queries []cwtypes.MetricDataQuery, value func(q cwtypes.MetricDataQuery) (float64, error), period func(q cwtypes.MetricDataQuery) float64) (float64, error) {
	byID := map[string]cwtypes.MetricDataQuery{}
	var ret *cwtypes.MetricDataQuery
	for i, q := range queries {
		byID[aws.ToString(q.Id)] = q
		if aws.ToBool(q.ReturnData) {
			if ret != nil {
				return 0, errors.New("alarm value: more than one query returns data")
			}
			ret = &queries[i]
		}
	}
	if ret == nil {
		return 0, errors.New("alarm value: no query returns data")
	}
	if ret.Expression == nil {
		return value(*ret)
	}
	expr, err := ParseMath(aws.ToString(ret.Expression))
	if err != nil {
		return 0, err
	}
	env := MathEnv{
		Value: func(id string) (float64, error) {
			q, ok := byID[id]
			if !ok || q.MetricStat == nil {
				return 0, fmt.Errorf("metric math: %s is not a metric query of the alarm", id)
			}
			return value(q)
		},
		Period: func(id string) (float64, error) {
			q, ok := byID[id]
			if !ok || q.MetricStat == nil {
				return 0, fmt.Errorf("metric math: PERIOD(%s): not a metric query of the alarm", id)
			}
			return period(q), nil
		},
	}
	return expr.Eval(env)
}

// Summary is a run's partner metrics, read from the functions' EMF output,
// and the verdict of each partner alarm of the template on them: what
// `make run` prints at the end.
type Summary struct {
	Duration time.Duration
	// Partners are sorted by name; every partner an alarm watches is listed.
	Partners []PartnerSummary
	// Alarms are the template's partner alarms, by alert then partner.
	Alarms []AlarmVerdict
	// Problems are EMF records or alarms that could not be read.
	Problems []string
	// DeadLetters are the DLQs after the run and their alarms (AddDeadLetters).
	DeadLetters []DeadLetterVerdict

	// uncached counts each partner's verdicts reached without the cache (AddResults).
	uncached map[string]int
}

// PartnerSummary is one partner's figures over a run.
type PartnerSummary struct {
	Partner                                        string
	Requests, Errors, NetworkErrors, RateLimitHits int
	// ErrorRate is Errors / Requests in percent, 0 without requests.
	ErrorRate float64
	// P50 and P95 are latency percentiles in milliseconds, NaN without requests.
	P50, P95 float64
}

// AlarmVerdict is one partner alarm held against a run.
type AlarmVerdict struct {
	LogicalID string
	// Alert is the alert name the alarm's name begins with
	// (SecretDetectionPartnerAPIHighErrorRate, ...).
	Alert   string
	Partner string
	// Value is what the alarm compares with Threshold, computed over the
	// whole run as one period; NaN when the run gave it no data.
	Value              float64
	Threshold          float64
	ComparisonOperator string
	// InAlarm says the alarm would go to ALARM if the run's figures held
	// for its evaluation periods.
	InAlarm bool
}

// Summarize reads the EMF records c collected during a run that lasted
// duration and holds each partner alarm of tpl (an alarm whose metrics are
// all of the contract's namespace with a Partner dimension) against them,
// with the template's own statistics, expressions and thresholds: the run
// counts as one period of length duration, so rates are per second of the
// run and percentiles are over all of its requests.
func Summarize(c *EMFCollector, tpl *samtemplate.Template, duration time.Duration) Summary {
	s := Summary{Duration: duration}
	var data []Datum
	for i, rec := range c.Records() {
		ds, err := DecodeEMF(rec)
		if err != nil {
			s.Problems = append(s.Problems, fmt.Sprintf("EMF record %d: %v", i, err))
			continue
		}
		data = append(data, ds...)
	}
	figures := c.Partners()
	names := map[string]bool{}
	for p := range figures {
		names[p] = true
	}
	scope := samtemplate.SymbolicScope("local", "us-east-1", samtemplate.LocalAccountID)
	ids := make([]string, 0, len(tpl.Alarms))
	for id := range tpl.Alarms {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		a := tpl.Alarms[id]
		partner, ok := alarmPartner(a, scope)
		if !ok {
			continue
		}
		names[partner] = true
		v, err := runValue(a, scope, data, duration)
		if err != nil {
			s.Problems = append(s.Problems, fmt.Sprintf("alarm %s: %v", id, err))
			continue
		}
		alert := id
		if n, err := a.NameIn(scope); err == nil {
			alert, _, _ = strings.Cut(n, "-")
		}
		s.Alarms = append(s.Alarms, AlarmVerdict{
			LogicalID: id, Alert: alert, Partner: partner, Value: v,
			Threshold: a.Threshold, ComparisonOperator: a.ComparisonOperator,
			InAlarm: !math.IsNaN(v) && a.Exceeds(v),
		})
	}
	sort.SliceStable(s.Alarms, func(i, j int) bool {
		if s.Alarms[i].Alert != s.Alarms[j].Alert {
			return s.Alarms[i].Alert < s.Alarms[j].Alert
		}
		return s.Alarms[i].Partner < s.Alarms[j].Partner
	})
	for p := range names {
		f := figures[p]
		ps := PartnerSummary{
			Partner: p, Requests: count(f.Requests), Errors: count(f.Errors),
			NetworkErrors: count(f.NetworkErrors), RateLimitHits: count(f.RateLimitHits),
			P50: Percentile(f.LatencyMS, 50), P95: Percentile(f.LatencyMS, 95),
		}
		if f.Requests > 0 {
			ps.ErrorRate = f.Errors / f.Requests * 100
		}
		s.Partners = append(s.Partners, ps)
	}
	sort.Slice(s.Partners, func(i, j int) bool { return s.Partners[i].Partner < s.Partners[j].Partner })
	return s
}

func count(f float64) int { return int(math.Round(f)) }

// alarmPartner returns the partner a partner alarm watches; ok is false for
// any other alarm (queues, dead-letter queues).
func alarmPartner(a *samtemplate.Alarm, scope samtemplate.Scope) (string, bool) {
	ms := a.AllMetrics()
	partner := ""
	for _, m := range ms {
		if m.Namespace != metrics.Namespace {
			return "", false
		}
		found := false
		for _, d := range m.Dimensions {
			if d.Name != metrics.DimPartner {
				continue
			}
			v, err := d.Value.Resolve(scope)
			if err != nil || (partner != "" && v != partner) {
				return "", false
			}
			partner, found = v, true
		}
		if !found {
			return "", false
		}
	}
	return partner, len(ms) > 0
}

// runValue computes an alarm's value over a whole run taken as one period.
func runValue(a *samtemplate.Alarm, scope samtemplate.Scope, data []Datum, duration time.Duration) (float64, error) {
	qs, err := a.MetricDataQueries(scope)
	if err != nil {
		return 0, err
	}
	value := func(q cwtypes.MetricDataQuery) (float64, error) {
		ms := q.MetricStat
		return Statistic(MatchMetric(data, *ms.Metric, ms.Unit), aws.ToString(ms.Stat))
	}
	return AlarmValue(qs, value, func(cwtypes.MetricDataQuery) float64 { return duration.Seconds() })
}

// Write prints the summary: a table per partner, then the partner alarms
// that would be in ALARM.
func (s Summary) Write(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "Partner API metrics over %s (from the functions' EMF output)\n", s.Duration.Round(time.Second))
	fmt.Fprintln(tw, "PARTNER\tREQUESTS\tERRORS\tERROR %\tP50 MS\tP95 MS\tRATE-LIMIT HITS\tNETWORK ERRORS")
	for _, p := range s.Partners {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f\t%s\t%s\t%d\t%d\n", p.Partner, p.Requests, p.Errors, p.ErrorRate,
			ms(p.P50), ms(p.P95), p.RateLimitHits, p.NetworkErrors)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write summary: %w", err)
	}
	var firing []AlarmVerdict
	for _, a := range s.Alarms {
		if a.InAlarm {
			firing = append(firing, a)
		}
	}
	var b strings.Builder
	s.writeRequestNotes(&b)
	fmt.Fprintf(&b, "Partner alarms in ALARM if these figures held for their evaluation periods: %d of %d\n", len(firing), len(s.Alarms))
	for _, a := range firing {
		fmt.Fprintf(&b, "  %s (%s): %s %s %s\n", a.Alert, a.Partner, strconv.FormatFloat(a.Value, 'f', -1, 64), operatorSign(a.ComparisonOperator), strconv.FormatFloat(a.Threshold, 'f', -1, 64))
	}
	if len(s.DeadLetters) > 0 {
		s.writeDeadLetters(&b)
		dlq := 0
		for _, d := range s.DeadLetters {
			if d.InAlarm {
				dlq++
			}
		}
		fmt.Fprintf(&b, "Alarms that would fire: %d (%d partner, %d dead-letter queue)\n", len(firing)+dlq, len(firing), dlq)
	}
	for _, p := range s.Problems {
		fmt.Fprintf(&b, "  problem: %s\n", p)
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write summary: %w", err)
	}
	return nil
}

func ms(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	return strconv.FormatFloat(math.Round(v), 'f', 0, 64)
}

func operatorSign(op string) string {
	switch op {
	case "GreaterThanThreshold":
		return ">"
	case "GreaterThanOrEqualToThreshold":
		return ">="
	case "LessThanThreshold":
		return "<"
	case "LessThanOrEqualToThreshold":
		return "<="
	}
	return op
}

// MathEnv gives metric math the values it refers to: a query's value in
// the period being evaluated (NaN for no datapoint) and, for PERIOD(), the
// query's period in seconds.
type MathEnv struct {
	Value  func(id string) (float64, error)
	Period func(id string) (float64, error)
}

// MathExpr is a parsed CloudWatch metric-math expression of the subset the
// template's alarms and dashboard use: numbers, query ids, + - * /,
// comparisons (> >= < <= == !=), parentheses, IF(condition, then[, else])
// and PERIOD(id).
type MathExpr struct{ root mathNode }

// ParseMath parses a metric-math expression.
func ParseMath(s string) (MathExpr, error) {
	p := &mathParser{src: s}
	if err := p.lex(); err != nil {
		return MathExpr{}, err
	}
	n, err := p.comparison()
	if err != nil {
		return MathExpr{}, err
	}
	if p.pos != len(p.toks) {
		return MathExpr{}, fmt.Errorf("metric math %q: unexpected %q", s, p.toks[p.pos].text)
	}
	return MathExpr{n}, nil
}

// Eval evaluates the expression for one period. As CloudWatch does, a
// period in which a metric the expression reads has no datapoint has no
// result (NaN); so does a division by zero.
func (e MathExpr) Eval(env MathEnv) (float64, error) {
	if e.root == nil {
		return 0, errors.New("metric math: empty expression")
	}
	return e.root.eval(env)
}

type mathNode interface {
	eval(env MathEnv) (float64, error)
}

type (
	numNode  float64
	idNode   string
	periodOf string
	unaryNeg struct{ x mathNode }
	binNode  struct {
		op   string
		l, r mathNode
	}
	ifNode struct{ cond, then, els mathNode }
)

func (n numNode) eval(MathEnv) (float64, error) { return float64(n), nil }
func (n idNode) eval(env MathEnv) (float64, error) {
	return env.Value(string(n))
}
func (n periodOf) eval(env MathEnv) (float64, error) { return env.Period(string(n)) }
func (n unaryNeg) eval(env MathEnv) (float64, error) {
	v, err := n.x.eval(env)
	return -v, err
}

func (n binNode) eval(env MathEnv) (float64, error) {
	l, err := n.l.eval(env)
	if err != nil {
		return 0, err
	}
	r, err := n.r.eval(env)
	if err != nil {
		return 0, err
	}
	if math.IsNaN(l) || math.IsNaN(r) {
		return math.NaN(), nil
	}
	truth := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	switch n.op {
	case "+":
		return l + r, nil
	case "-":
		return l - r, nil
	case "*":
		return l * r, nil
	case "/":
		if r == 0 {
			return math.NaN(), nil
		}
		return l / r, nil
	case ">":
		return truth(l > r), nil
	case ">=":
		return truth(l >= r), nil
	case "<":
		return truth(l < r), nil
	case "<=":
		return truth(l <= r), nil
	case "==":
		return truth(l == r), nil
	case "!=":
		return truth(l != r), nil
	}
	return 0, fmt.Errorf("metric math: operator %q", n.op)
}

func (n ifNode) eval(env MathEnv) (float64, error) {
	c, err := n.cond.eval(env)
	if err != nil || math.IsNaN(c) {
		return math.NaN(), err
	}
	if c != 0 {
		return n.then.eval(env)
	}
	if n.els == nil {
		// IF without an else branch drops the datapoint.
		return math.NaN(), nil
	}
	return n.els.eval(env)
}

type mathToken struct {
	kind byte // 'n' number, 'i' identifier, 'o' operator or punctuation
	text string
}

type mathParser struct {
	src  string
	toks []mathToken
	pos  int
}

func (p *mathParser) lex() error {
	s := p.src
	for i := 0; i < len(s); {
		c := rune(s[i])
		switch {
		case unicode.IsSpace(c):
			i++
		case unicode.IsDigit(c) || c == '.':
			j := i
			for j < len(s) && (unicode.IsDigit(rune(s[j])) || s[j] == '.') {
				j++
			}
			p.toks = append(p.toks, mathToken{'n', s[i:j]})
			i = j
		case unicode.IsLetter(c) || c == '_':
			j := i
			for j < len(s) && (unicode.IsLetter(rune(s[j])) || unicode.IsDigit(rune(s[j])) || s[j] == '_') {
				j++
			}
			p.toks = append(p.toks, mathToken{'i', s[i:j]})
			i = j
		case strings.ContainsRune("><=!", c) && i+1 < len(s) && s[i+1] == '=':
			p.toks = append(p.toks, mathToken{'o', s[i : i+2]})
			i += 2
		case strings.ContainsRune("+-*/(),<>", c):
			p.toks = append(p.toks, mathToken{'o', string(c)})
			i++
		default:
			return fmt.Errorf("metric math %q: unexpected %q", s, string(c))
		}
	}
	return nil
}

func (p *mathParser) peek(text string) bool {
	return p.pos < len(p.toks) && p.toks[p.pos].kind == 'o' && p.toks[p.pos].text == text
}

func (p *mathParser) expect(text string) error {
	if !p.peek(text) {
		return fmt.Errorf("metric math %q: want %q", p.src, text)
	}
	p.pos++
	return nil
}

func (p *mathParser) comparison() (mathNode, error) {
	l, err := p.sum()
	if err != nil {
		return nil, err
	}
	for _, op := range []string{">=", "<=", "==", "!=", ">", "<"} {
		if p.peek(op) {
			p.pos++
			r, err := p.sum()
			if err != nil {
				return nil, err
			}
			return binNode{op, l, r}, nil
		}
	}
	return l, nil
}

func (p *mathParser) sum() (mathNode, error) {
	l, err := p.product()
	for err == nil && (p.peek("+") || p.peek("-")) {
		op := p.toks[p.pos].text
		p.pos++
		var r mathNode
		if r, err = p.product(); err == nil {
			l = binNode{op, l, r}
		}
	}
	return l, err
}

func (p *mathParser) product() (mathNode, error) {
	l, err := p.unary()
	for err == nil && (p.peek("*") || p.peek("/")) {
		op := p.toks[p.pos].text
		p.pos++
		var r mathNode
		if r, err = p.unary(); err == nil {
			l = binNode{op, l, r}
		}
	}
	return l, err
}

func (p *mathParser) unary() (mathNode, error) {
	if p.peek("-") {
		p.pos++
		x, err := p.unary()
		return unaryNeg{x}, err
	}
	return p.primary()
}

func (p *mathParser) primary() (mathNode, error) {
	if p.pos >= len(p.toks) {
		return nil, fmt.Errorf("metric math %q: unexpected end", p.src)
	}
	t := p.toks[p.pos]
	p.pos++
	switch {
	case t.kind == 'n':
		f, err := strconv.ParseFloat(t.text, 64)
		if err != nil {
			return nil, fmt.Errorf("metric math %q: bad number %q", p.src, t.text)
		}
		return numNode(f), nil
	case t.kind == 'i' && p.peek("("):
		return p.call(t.text)
	case t.kind == 'i':
		return idNode(t.text), nil
	case t.text == "(":
		n, err := p.comparison()
		if err != nil {
			return nil, err
		}
		return n, p.expect(")")
	}
	return nil, fmt.Errorf("metric math %q: unexpected %q", p.src, t.text)
}

func (p *mathParser) call(name string) (mathNode, error) {
	p.pos++ // "("
	var args []mathNode
	for !p.peek(")") {
		if len(args) > 0 {
			if err := p.expect(","); err != nil {
				return nil, err
			}
		}
		a, err := p.comparison()
		if err != nil {
			return nil, err
		}
		args = append(args, a)
	}
	p.pos++ // ")"
	switch {
	case name == "IF" && len(args) == 3:
		return ifNode{args[0], args[1], args[2]}, nil
	case name == "IF" && len(args) == 2:
		return ifNode{args[0], args[1], nil}, nil
	case name == "PERIOD" && len(args) == 1:
		id, ok := args[0].(idNode)
		if !ok {
			return nil, fmt.Errorf("metric math %q: PERIOD takes a query id", p.src)
		}
		return periodOf(id), nil
	}
	return nil, fmt.Errorf("metric math %q: function %s with %d arguments is not supported", p.src, name, len(args))
}
