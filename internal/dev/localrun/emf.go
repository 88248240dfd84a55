package localrun

import (
	"encoding/json"
	"math"
	"sort"
	"strings"
	"sync"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/metrics"
)

// EMFCollector reads the EMF records functions print and adds them up per
// partner, for the run's metrics summary.
type EMFCollector struct {
	mu       sync.Mutex
	partners map[string]*PartnerFigures
	verifs   map[[2]string]float64
	records  []map[string]any
}

// PartnerFigures are one partner's figures over a run.
type PartnerFigures struct {
	Requests, Errors, NetworkErrors, RateLimitHits float64
	LatencyMS                                      []float64
}

// NewEMFCollector returns an empty collector.
func NewEMFCollector() *EMFCollector {
	return &EMFCollector{partners: map[string]*PartnerFigures{}, verifs: map[[2]string]float64{}}
}

// Line takes one line of function output; lines that are not EMF records
// of our namespace are ignored.
func (c *EMFCollector) Line(line string) {
	if !strings.Contains(line, `"_aws"`) {
		return
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(line), &rec); err != nil {
		return
	}
	meta, _ := rec["_aws"].(map[string]any)
	dirs, _ := meta["CloudWatchMetrics"].([]any)
	ours := false
	for _, d := range dirs {
		if dm, _ := d.(map[string]any); dm["Namespace"] == metrics.Namespace {
			ours = true
		}
	}
	if !ours {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.records = append(c.records, rec)
	partner, _ := rec[metrics.DimPartner].(string)
	if status, ok := rec[metrics.DimStatus].(string); ok {
		c.verifs[[2]string{partner, status}] += num(rec[metrics.Verifications])
		return
	}
	f := c.partners[partner]
	if f == nil {
		f = &PartnerFigures{}
		c.partners[partner] = f
	}
	f.Requests += num(rec[metrics.Requests])
	f.Errors += num(rec[metrics.Errors])
	f.NetworkErrors += num(rec[metrics.NetworkErrors])
	f.RateLimitHits += num(rec[metrics.RateLimitHits])
	switch v := rec[metrics.Latency].(type) {
	case []any:
		for _, x := range v {
			f.LatencyMS = append(f.LatencyMS, num(x))
		}
	case float64:
		f.LatencyMS = append(f.LatencyMS, v)
	}
}

func num(v any) float64 {
	f, _ := v.(float64)
	return f
}

// Records returns every EMF record seen, decoded.
func (c *EMFCollector) Records() []map[string]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]map[string]any(nil), c.records...)
}

// Partners returns a copy of the per-partner figures.
func (c *EMFCollector) Partners() map[string]PartnerFigures {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]PartnerFigures{}
	for p, f := range c.partners {
		cp := *f
		cp.LatencyMS = append([]float64(nil), f.LatencyMS...)
		out[p] = cp
	}
	return out
}

// Verifications returns the terminal results counted per partner and status.
func (c *EMFCollector) Verifications() map[[2]string]float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[[2]string]float64{}
	for k, v := range c.verifs {
		out[k] = v
	}
	return out
}

// Percentile is the nearest-rank percentile p (0..100) of values, NaN for none.
func Percentile(values []float64, p float64) float64 {
	if len(values) == 0 {
		return math.NaN()
	}
	v := append([]float64(nil), values...)
	sort.Float64s(v)
	rank := int(math.Ceil(p / 100 * float64(len(v))))
	return v[min(max(rank, 1), len(v))-1]
}
