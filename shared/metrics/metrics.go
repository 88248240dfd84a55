// Package metrics aggregates the contract's partner metrics over one
// invocation and writes them as CloudWatch Embedded Metric Format records.
package metrics

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
)

// Namespace is the CloudWatch namespace of contract §5.
const Namespace = "SecretDetection/PartnerTokenVerification"

// Metric names of contract §5.
const (
	Requests      = "PartnerAPIRequests"
	Errors        = "PartnerAPIErrors"
	NetworkErrors = "PartnerAPINetworkErrors"
	RateLimitHits = "PartnerAPIRateLimitHits"
	Latency       = "PartnerAPILatency"
	Verifications = "Verifications"
)

// Dimension names of contract §5.
const (
	DimPartner = "Partner"
	DimStatus  = "Status"
)

// UnroutedPartner is the Partner dimension of verifications whose rule_id has
// no partner (unsupported_token_type, or a finding too broken to route).
const UnroutedPartner = "none"

// maxValuesPerRecord is EMF's limit of values in one metric's array.
const maxValuesPerRecord = 100

type partnerStats struct {
	requests, errors, network, limited int
	latencyMS                          []float64
}

// Recorder collects metrics for one invocation. Its methods are safe for
// concurrent use and do nothing on a nil *Recorder, so code paths without
// metrics (tools, some tests) need no special case.
type Recorder struct {
	mu       sync.Mutex
	partners map[string]*partnerStats
	verifs   map[[2]string]int
}

// New returns an empty recorder.
func New() *Recorder {
	return &Recorder{partners: map[string]*partnerStats{}, verifs: map[[2]string]int{}}
}

func (r *Recorder) stats(partner string) *partnerStats {
	s := r.partners[partner]
	if s == nil {
		s = &partnerStats{}
		r.partners[partner] = s
	}
	return s
}

// Request records one HTTP request to a partner: status is the HTTP status,
// 0 when no response arrived (a network error or timeout).
func (r *Recorder) Request(partner string, status int, latency time.Duration) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.stats(partner)
	s.requests++
	s.latencyMS = append(s.latencyMS, float64(latency.Microseconds())/1000)
	switch {
	case status == 0:
		s.errors++
		s.network++
	case status == 429:
		s.limited++
	case status >= 500:
		s.errors++
	}
}

// Unusable records a response that arrived but proved nothing (a garbled
// body, an HTML page from a proxy): it counts as a partner error.
func (r *Recorder) Unusable(partner string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stats(partner).errors++
}

// RateLimitHit records a partner's rate-limit answer that is not an HTTP
// 429 (STS throttles with 400 Throttling), which Request cannot recognise
// from the status alone; the contract counts it with partner 429s.
func (r *Recorder) RateLimitHit(partner string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stats(partner).limited++
}

// LimitedLocally records a request held back by this instance's rate
// limiter; the contract counts it with partner 429s.
func (r *Recorder) LimitedLocally(partner string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stats(partner).limited++
}

// Verification records one terminal result.
func (r *Recorder) Verification(partner string, status finding.Status) {
	if r == nil {
		return
	}
	if partner == "" {
		partner = UnroutedPartner
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.verifs[[2]string{partner, string(status)}]++
}

// Summary is a snapshot of one partner's figures, for tests and reports.
type Summary struct {
	Requests, Errors, NetworkErrors, RateLimitHits int
	LatencyMS                                      []float64
}

// Snapshot returns the figures recorded so far per partner.
func (r *Recorder) Snapshot() map[string]Summary {
	out := map[string]Summary{}
	if r == nil {
		return out
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for p, s := range r.partners {
		out[p] = Summary{s.requests, s.errors, s.network, s.limited, append([]float64(nil), s.latencyMS...)}
	}
	return out
}

type emfMetric struct {
	Name string `json:"Name"`
	Unit string `json:"Unit"`
}

type emfDirective struct {
	Namespace  string      `json:"Namespace"`
	Dimensions [][]string  `json:"Dimensions"`
	Metrics    []emfMetric `json:"Metrics"`
}

type emfMeta struct {
	Timestamp         int64          `json:"Timestamp"`
	CloudWatchMetrics []emfDirective `json:"CloudWatchMetrics"`
}

// Flush writes the invocation's metrics as EMF JSON lines (one record per
// dimension set, more only when a latency array exceeds EMF's 100 values)
// and resets the recorder. Records carry only counts, latencies and the
// dimension values: never a token or fingerprint.
func (r *Recorder) Flush(w io.Writer, now time.Time) error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	partners, verifs := r.partners, r.verifs
	r.partners, r.verifs = map[string]*partnerStats{}, map[[2]string]int{}
	r.mu.Unlock()

	ts := now.UnixMilli()
	var records []map[string]any
	names := make([]string, 0, len(partners))
	for p := range partners {
		names = append(names, p)
	}
	sort.Strings(names)
	for _, p := range names {
		s := partners[p]
		lat := s.latencyMS
		first := true
		for first || len(lat) > 0 {
			chunk := lat
			if len(chunk) > maxValuesPerRecord {
				chunk = chunk[:maxValuesPerRecord]
			}
			lat = lat[len(chunk):]
			rec := map[string]any{DimPartner: p}
			ms := []emfMetric{}
			if first {
				rec[Requests], rec[Errors], rec[NetworkErrors], rec[RateLimitHits] = s.requests, s.errors, s.network, s.limited
				ms = append(ms, emfMetric{Requests, "Count"}, emfMetric{Errors, "Count"}, emfMetric{NetworkErrors, "Count"}, emfMetric{RateLimitHits, "Count"})
			}
			if len(chunk) > 0 {
				rec[Latency] = chunk
				ms = append(ms, emfMetric{Latency, "Milliseconds"})
			}
			rec["_aws"] = emfMeta{ts, []emfDirective{{Namespace, [][]string{{DimPartner}}, ms}}}
			records = append(records, rec)
			first = false
		}
	}
	keys := make([][2]string, 0, len(verifs))
	for k := range verifs {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i][0]+keys[i][1] < keys[j][0]+keys[j][1] })
	for _, k := range keys {
		records = append(records, map[string]any{
			DimPartner: k[0], DimStatus: k[1], Verifications: verifs[k],
			"_aws": emfMeta{ts, []emfDirective{{Namespace, [][]string{{DimPartner, DimStatus}}, []emfMetric{{Verifications, "Count"}}}}},
		})
	}
	for _, rec := range records {
		line, err := json.Marshal(rec)
		if err != nil {
			return fmt.Errorf("metrics: encode EMF record: %w", err)
		}
		if _, err := w.Write(append(line, '\n')); err != nil {
			return fmt.Errorf("metrics: write EMF record: %w", err)
		}
	}
	return nil
}

type ctxKey struct{}

// NewContext returns a context carrying the invocation's recorder, so that
// the shared HTTP client built once per instance records into it.
func NewContext(ctx context.Context, r *Recorder) context.Context {
	return context.WithValue(ctx, ctxKey{}, r)
}

// FromContext returns the invocation's recorder, or nil (which records nothing).
func FromContext(ctx context.Context) *Recorder {
	r, _ := ctx.Value(ctxKey{}).(*Recorder)
	return r
}
