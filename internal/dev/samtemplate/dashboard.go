package samtemplate

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Widget is one widget of a dashboard body.
type Widget struct {
	Type  string
	Title string
	// Metrics are the metric and expression lines of a metric widget.
	Metrics []WidgetMetric
	// Alarms are the alarm ARNs of an alarm widget, as resolved in the scope.
	Alarms []string
	// Markdown is the text of a text widget.
	Markdown string
}

// WidgetMetric is one line of a metric widget: a metric or an expression.
type WidgetMetric struct {
	Namespace  string
	MetricName string
	Dimensions map[string]string
	// Stat is the line's own stat, else the widget's.
	Stat       string
	ID         string
	Label      string
	Expression string
	// Visible is false for a helper line that only feeds an expression.
	Visible bool
	// Search is the parsed SEARCH of an expression line that is one, else nil.
	Search *MetricSearch
}

// MetricSearch is a CloudWatch SEARCH('{Namespace,Dim,...} MetricName="X"
// terms', 'stat', period): every metric of that schema and name, so a
// dashboard shows each partner (or queue) without listing it.
type MetricSearch struct {
	Namespace string
	// Dimensions are the schema's dimension names: a metric matches only
	// with exactly these dimensions.
	Dimensions []string
	MetricName string
	// Terms is the rest of the search text (e.g. a queue-name filter).
	Terms  string
	Stat   string
	Period int
}

var searchExpr = regexp.MustCompile(`^SEARCH\('\{([^}]*)\}\s*MetricName="([^"]+)"([^']*)',\s*'([^']+)',\s*([0-9]+)\)$`)

// ParseSearch reads a SEARCH expression of the form above (nil, false otherwise).
func ParseSearch(expr string) (*MetricSearch, bool) {
	m := searchExpr.FindStringSubmatch(strings.TrimSpace(expr))
	if m == nil {
		return nil, false
	}
	schema := strings.Split(m[1], ",")
	period, _ := strconv.Atoi(m[5])
	for i := range schema {
		schema[i] = strings.TrimSpace(schema[i])
	}
	return &MetricSearch{Namespace: schema[0], Dimensions: schema[1:], MetricName: m[2], Terms: strings.TrimSpace(m[3]), Stat: m[4], Period: period}, true
}

// Widgets evaluates the dashboard body in scope s (SymbolicScope reads it
// without a deployed stack) and parses its widgets.
func (d *Dashboard) Widgets(s Scope) ([]Widget, error) {
	body, err := d.Body.Resolve(s)
	if err != nil {
		return nil, fmt.Errorf("dashboard %s: body: %w", d.LogicalID, err)
	}
	var doc struct {
		Widgets []struct {
			Type       string `json:"type"`
			Properties struct {
				Title    string            `json:"title"`
				Markdown string            `json:"markdown"`
				Stat     string            `json:"stat"`
				Metrics  []json.RawMessage `json:"metrics"`
				Alarms   []string          `json:"alarms"`
			} `json:"properties"`
		} `json:"widgets"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		return nil, fmt.Errorf("dashboard %s: body is not valid JSON: %w", d.LogicalID, err)
	}
	out := make([]Widget, 0, len(doc.Widgets))
	for i, w := range doc.Widgets {
		wd := Widget{Type: w.Type, Title: w.Properties.Title, Alarms: w.Properties.Alarms, Markdown: w.Properties.Markdown}
		var prev []string
		for j, raw := range w.Properties.Metrics {
			m, cur, err := parseWidgetMetric(raw, prev, w.Properties.Stat)
			if err != nil {
				return nil, fmt.Errorf("dashboard %s: widget %d (%s) metric %d: %w", d.LogicalID, i, w.Properties.Title, j, err)
			}
			prev = cur
			wd.Metrics = append(wd.Metrics, m)
		}
		out = append(out, wd)
	}
	return out, nil
}

// parseWidgetMetric reads one metrics line: [namespace, name, dim, value,
// ..., {options}] where "." repeats the previous line's entry, or
// [{expression options}].
func parseWidgetMetric(raw json.RawMessage, prev []string, widgetStat string) (WidgetMetric, []string, error) {
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil || len(items) == 0 {
		return WidgetMetric{}, nil, fmt.Errorf("not a non-empty list")
	}
	var opts struct {
		Expression string `json:"expression"`
		ID         string `json:"id"`
		Label      string `json:"label"`
		Stat       string `json:"stat"`
		Visible    *bool  `json:"visible"`
	}
	last := items[len(items)-1]
	var parts []string
	if len(last) > 0 && last[0] == '{' {
		if err := json.Unmarshal(last, &opts); err != nil {
			return WidgetMetric{}, nil, fmt.Errorf("options: %w", err)
		}
		items = items[:len(items)-1]
	}
	for _, it := range items {
		var s string
		if err := json.Unmarshal(it, &s); err != nil {
			return WidgetMetric{}, nil, fmt.Errorf("entry is not text")
		}
		parts = append(parts, s)
	}
	m := WidgetMetric{ID: opts.ID, Label: opts.Label, Expression: opts.Expression, Stat: opts.Stat, Visible: opts.Visible == nil || *opts.Visible}
	if m.Stat == "" {
		m.Stat = widgetStat
	}
	if opts.Expression != "" {
		m.Search, _ = ParseSearch(opts.Expression)
		if len(parts) != 0 {
			return WidgetMetric{}, nil, fmt.Errorf("expression line with metric entries")
		}
		return m, prev, nil
	}
	if len(parts) < 2 || len(parts)%2 != 0 {
		return WidgetMetric{}, nil, fmt.Errorf("want namespace, name and dimension pairs, got %d entries", len(parts))
	}
	for i, p := range parts {
		if p == "." {
			if i >= len(prev) {
				return WidgetMetric{}, nil, fmt.Errorf("\".\" with no previous entry %d", i)
			}
			parts[i] = prev[i]
		}
	}
	m.Namespace, m.MetricName = parts[0], parts[1]
	m.Dimensions = map[string]string{}
	for i := 2; i+1 < len(parts); i += 2 {
		m.Dimensions[parts[i]] = parts[i+1]
	}
	return m, parts, nil
}
