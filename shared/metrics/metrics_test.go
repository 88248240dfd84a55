package metrics

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
)

// emfRecord is one decoded EMF line.
type emfRecord struct {
	raw  map[string]any
	meta struct {
		Timestamp         int64 `json:"Timestamp"`
		CloudWatchMetrics []struct {
			Namespace  string     `json:"Namespace"`
			Dimensions [][]string `json:"Dimensions"`
			Metrics    []struct {
				Name string `json:"Name"`
				Unit string `json:"Unit"`
			} `json:"Metrics"`
		} `json:"CloudWatchMetrics"`
	}
}

func flushRecords(t *testing.T, r *Recorder, now time.Time) []emfRecord {
	t.Helper()
	var buf bytes.Buffer
	if err := r.Flush(&buf, now); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	var recs []emfRecord
	sc := bufio.NewScanner(&buf)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec emfRecord
		if err := json.Unmarshal(sc.Bytes(), &rec.raw); err != nil {
			t.Fatalf("line is not JSON: %v", err)
		}
		aws, err := json.Marshal(rec.raw["_aws"])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(aws, &rec.meta); err != nil {
			t.Fatalf("_aws: %v", err)
		}
		recs = append(recs, rec)
	}
	return recs
}

// checkEMF asserts what CloudWatch requires of every record: a millisecond
// timestamp, the namespace, dimension sets whose names are top-level keys,
// and a top-level value for every metric declared.
func checkEMF(t *testing.T, rec emfRecord, now time.Time) {
	t.Helper()
	if rec.meta.Timestamp != now.UnixMilli() {
		t.Errorf("Timestamp = %d, want %d", rec.meta.Timestamp, now.UnixMilli())
	}
	if len(rec.meta.CloudWatchMetrics) != 1 {
		t.Fatalf("CloudWatchMetrics = %+v", rec.meta.CloudWatchMetrics)
	}
	d := rec.meta.CloudWatchMetrics[0]
	if d.Namespace != "SecretDetection/PartnerTokenVerification" {
		t.Errorf("Namespace = %q", d.Namespace)
	}
	for _, set := range d.Dimensions {
		for _, dim := range set {
			if _, ok := rec.raw[dim].(string); !ok {
				t.Errorf("dimension %q has no string value", dim)
			}
		}
	}
	if len(d.Metrics) == 0 {
		t.Error("record declares no metrics")
	}
	for _, m := range d.Metrics {
		if _, ok := rec.raw[m.Name]; !ok {
			t.Errorf("metric %q declared without a value", m.Name)
		}
	}
}

func units(rec emfRecord) map[string]string {
	u := map[string]string{}
	for _, m := range rec.meta.CloudWatchMetrics[0].Metrics {
		u[m.Name] = m.Unit
	}
	return u
}

func TestFlushPartnerRecord(t *testing.T) {
	now := time.Date(2026, 11, 25, 18, 35, 16, 0, time.UTC)
	r := New()
	r.Request("postman", 200, 120*time.Millisecond)
	r.Request("postman", 401, 80*time.Millisecond)
	r.Request("postman", 429, 10*time.Millisecond)
	r.Request("postman", 503, 30*time.Millisecond)
	r.Request("postman", 0, 4*time.Second)
	r.Unusable("postman")
	r.LimitedLocally("postman")
	r.RateLimitHit("postman")
	r.Request("aws", 200, 1500*time.Microsecond)

	recs := flushRecords(t, r, now)
	if len(recs) != 2 {
		t.Fatalf("records = %d, want one per partner", len(recs))
	}
	// Partners come out sorted.
	aws, pm := recs[0], recs[1]
	for _, rec := range recs {
		checkEMF(t, rec, now)
		if got := rec.meta.CloudWatchMetrics[0].Dimensions; !reflect.DeepEqual(got, [][]string{{"Partner"}}) {
			t.Errorf("Dimensions = %v", got)
		}
		want := map[string]string{Requests: "Count", Errors: "Count", NetworkErrors: "Count", RateLimitHits: "Count", Latency: "Milliseconds"}
		if got := units(rec); !reflect.DeepEqual(got, want) {
			t.Errorf("units = %v, want %v", got, want)
		}
	}
	if aws.raw["Partner"] != "aws" || pm.raw["Partner"] != "postman" {
		t.Fatalf("partners = %v, %v", aws.raw["Partner"], pm.raw["Partner"])
	}
	wantCounts := map[string]float64{Requests: 5, Errors: 3, NetworkErrors: 1, RateLimitHits: 3}
	for k, v := range wantCounts {
		if pm.raw[k] != v {
			t.Errorf("postman %s = %v, want %v", k, pm.raw[k], v)
		}
	}
	if got, want := pm.raw[Latency], []any{120.0, 80.0, 10.0, 30.0, 4000.0}; !reflect.DeepEqual(got, want) {
		t.Errorf("postman latency = %v, want %v", got, want)
	}
	if got, want := aws.raw[Latency], []any{1.5}; !reflect.DeepEqual(got, want) {
		t.Errorf("aws latency = %v, want %v (milliseconds with fractions)", got, want)
	}
	if aws.raw[Errors] != 0.0 || aws.raw[Requests] != 1.0 {
		t.Errorf("aws counts = %v", aws.raw)
	}
}

func TestFlushWithoutLatency(t *testing.T) {
	r := New()
	r.LimitedLocally("gcp")
	recs := flushRecords(t, r, time.Unix(1, 0))
	if len(recs) != 1 {
		t.Fatalf("records = %d", len(recs))
	}
	checkEMF(t, recs[0], time.Unix(1, 0))
	if _, ok := recs[0].raw[Latency]; ok {
		t.Error("latency written with no requests")
	}
	if _, ok := units(recs[0])[Latency]; ok {
		t.Error("latency declared with no values")
	}
	if recs[0].raw[RateLimitHits] != 1.0 || recs[0].raw[Requests] != 0.0 {
		t.Errorf("counts = %v", recs[0].raw)
	}
}

func TestFlushSplitsLatencyAt100(t *testing.T) {
	tests := []struct {
		n         int
		wantSizes []int
	}{
		{1, []int{1}},
		{100, []int{100}},
		{101, []int{100, 1}},
		{250, []int{100, 100, 50}},
	}
	for _, tc := range tests {
		r := New()
		for i := range tc.n {
			r.Request("gcp", 200, time.Duration(i)*time.Millisecond)
		}
		now := time.Unix(1_800_000_000, 0)
		recs := flushRecords(t, r, now)
		if len(recs) != len(tc.wantSizes) {
			t.Fatalf("n=%d: records = %d, want %d", tc.n, len(recs), len(tc.wantSizes))
		}
		var all []any
		for i, rec := range recs {
			checkEMF(t, rec, now)
			lat, _ := rec.raw[Latency].([]any)
			if len(lat) != tc.wantSizes[i] {
				t.Errorf("n=%d record %d: %d latencies, want %d", tc.n, i, len(lat), tc.wantSizes[i])
			}
			all = append(all, lat...)
			_, hasCount := rec.raw[Requests]
			if hasCount != (i == 0) {
				t.Errorf("n=%d record %d: counts present = %v; counts go in the first record only, or they are summed twice", tc.n, i, hasCount)
			}
		}
		if recs[0].raw[Requests] != float64(tc.n) {
			t.Errorf("n=%d: Requests = %v", tc.n, recs[0].raw[Requests])
		}
		for i, v := range all {
			if v != float64(i) {
				t.Fatalf("n=%d: latency %d = %v; values lost or reordered across records", tc.n, i, v)
			}
		}
	}
}

func TestFlushVerifications(t *testing.T) {
	r := New()
	r.Verification("postman", finding.StatusActive)
	r.Verification("postman", finding.StatusActive)
	r.Verification("postman", finding.StatusUnknown)
	r.Verification("aws", finding.StatusInactive)
	r.Verification("", finding.StatusUnknown)
	now := time.Unix(1_800_000_000, 0)
	recs := flushRecords(t, r, now)
	type key struct{ partner, status string }
	got := map[key]float64{}
	for _, rec := range recs {
		checkEMF(t, rec, now)
		if d := rec.meta.CloudWatchMetrics[0].Dimensions; !reflect.DeepEqual(d, [][]string{{"Partner", "Status"}}) {
			t.Errorf("Dimensions = %v", d)
		}
		if u := units(rec); !reflect.DeepEqual(u, map[string]string{Verifications: "Count"}) {
			t.Errorf("units = %v", u)
		}
		got[key{rec.raw["Partner"].(string), rec.raw["Status"].(string)}] = rec.raw[Verifications].(float64)
	}
	want := map[key]float64{
		{"postman", "active"}: 2, {"postman", "unknown"}: 1, {"aws", "inactive"}: 1, {UnroutedPartner, "unknown"}: 1,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("verifications = %v, want %v", got, want)
	}
}

func TestFlushResets(t *testing.T) {
	r := New()
	r.Request("aws", 200, time.Millisecond)
	r.Verification("aws", finding.StatusActive)
	if recs := flushRecords(t, r, time.Unix(1, 0)); len(recs) != 2 {
		t.Fatalf("first flush: %d records", len(recs))
	}
	if recs := flushRecords(t, r, time.Unix(2, 0)); len(recs) != 0 {
		t.Errorf("second flush wrote %d records; figures were not reset", len(recs))
	}
	if s := r.Snapshot(); len(s) != 0 {
		t.Errorf("Snapshot after flush = %v", s)
	}
	r.Request("aws", 500, time.Millisecond)
	if s := r.Snapshot()["aws"]; s.Requests != 1 || s.Errors != 1 {
		t.Errorf("after reset, Snapshot = %+v", s)
	}
}

var errDiskFull = errors.New("disk full")

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errDiskFull }

func TestFlushWriteError(t *testing.T) {
	r := New()
	r.Request("aws", 200, time.Millisecond)
	err := r.Flush(failWriter{}, time.Now())
	if !errors.Is(err, errDiskFull) || err.Error() != "metrics: write EMF record: disk full" {
		t.Errorf("Flush error = %v", err)
	}
}

func TestNilRecorder(t *testing.T) {
	var r *Recorder
	r.Request("aws", 200, time.Millisecond)
	r.Unusable("aws")
	r.LimitedLocally("aws")
	r.RateLimitHit("aws")
	r.Verification("aws", finding.StatusActive)
	if s := r.Snapshot(); s == nil || len(s) != 0 {
		t.Errorf("nil Snapshot = %v", s)
	}
	var buf bytes.Buffer
	if err := r.Flush(&buf, time.Now()); err != nil || buf.Len() != 0 {
		t.Errorf("nil Flush = %v, %q", err, buf.String())
	}
	if got := FromContext(context.Background()); got != nil {
		t.Errorf("FromContext without recorder = %v", got)
	}
	FromContext(context.Background()).Request("aws", 0, 0) // must not panic
}

func TestContext(t *testing.T) {
	r := New()
	ctx := NewContext(context.Background(), r)
	if FromContext(ctx) != r {
		t.Fatal("FromContext does not return the recorder")
	}
	FromContext(ctx).Unusable("gcp")
	if s := r.Snapshot()["gcp"]; s.Errors != 1 || s.Requests != 0 {
		t.Errorf("Snapshot = %+v", s)
	}
}

func TestSnapshotIsACopy(t *testing.T) {
	r := New()
	r.Request("aws", 200, time.Millisecond)
	s := r.Snapshot()
	s["aws"].LatencyMS[0] = 99
	if got := r.Snapshot()["aws"].LatencyMS[0]; got != 1 {
		t.Errorf("Snapshot shares its latency slice: %v", got)
	}
}

func TestConcurrentRecording(t *testing.T) {
	r := New()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				r.Request("postman", 200, time.Millisecond)
				r.Verification("postman", finding.StatusActive)
			}
		})
	}
	wg.Wait()
	if s := r.Snapshot()["postman"]; s.Requests != 400 || len(s.LatencyMS) != 400 {
		t.Errorf("Snapshot = %d requests, %d latencies; want 400", s.Requests, len(s.LatencyMS))
	}
}
