package main

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestLimit(t *testing.T) {
	tests := []struct {
		name        string
		rate        float64
		concurrency int
		latency     time.Duration
		want        float64
		bound       Bound
	}{
		{"rate below concurrency ÷ latency", 3, 10, 100 * time.Millisecond, 3, BoundRate},
		{"rate above concurrency ÷ latency", 250, 10, 100 * time.Millisecond, 100, BoundConcurrency},
		{"serial", 50, 1, 100 * time.Millisecond, 10, BoundConcurrency},
		{"equal sides count as rate", 100, 10, 100 * time.Millisecond, 100, BoundRate},
		{"no rate limit", 0, 4, 200 * time.Millisecond, 20, BoundConcurrency},
		{"no concurrency", 10, 0, 100 * time.Millisecond, 0, BoundConcurrency},
		{"no latency", 10, 10, 0, 0, BoundConcurrency},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, bound := Limit(tt.rate, tt.concurrency, tt.latency)
			if math.Abs(got-tt.want) > 1e-9 || bound != tt.bound {
				t.Errorf("Limit(%v, %d, %s) = %v, %s; want %v, %s", tt.rate, tt.concurrency, tt.latency, got, bound, tt.want, tt.bound)
			}
		})
	}
}

func TestRatio(t *testing.T) {
	tests := []struct {
		a, b float64
		want float64 // NaN: no ratio
	}{
		{95, 100, 0.95},
		{83.2, 9.6, 83.2 / 9.6},
		{1, 0, math.NaN()},
		{1, -2, math.NaN()},
		{math.NaN(), 3, math.NaN()},
	}
	for _, tt := range tests {
		got := Ratio(tt.a, tt.b)
		if math.IsNaN(tt.want) != math.IsNaN(got) || (!math.IsNaN(got) && math.Abs(got-tt.want) > 1e-12) {
			t.Errorf("Ratio(%v, %v) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestBursts(t *testing.T) {
	tests := []struct {
		rate               float64
		want, wantSandbox  int
		wantClientFromWant int
	}{
		{rate: 3, want: 3, wantSandbox: 3, wantClientFromWant: 2},
		{rate: 50, want: 10, wantSandbox: 50, wantClientFromWant: 10},
		{rate: 20, want: 10, wantSandbox: 20, wantClientFromWant: 10},
		{rate: 1.5, want: 3, wantSandbox: 1, wantClientFromWant: 1},
		{rate: 0.5, want: 1, wantSandbox: 1, wantClientFromWant: 1},
	}
	for _, tt := range tests {
		sb := SandboxBurst(tt.rate)
		if sb != tt.wantSandbox {
			t.Errorf("SandboxBurst(%v) = %d, want %d", tt.rate, sb, tt.wantSandbox)
		}
		if got := ClientBurst(tt.want, sb); got != tt.wantClientFromWant {
			t.Errorf("ClientBurst(%d, %d) = %d, want %d", tt.want, sb, got, tt.wantClientFromWant)
		}
	}
}

func TestThroughput(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	tests := []struct {
		name  string
		spans []Span
		want  float64
	}{
		{"back to back", []Span{{at(0), at(100), 10}, {at(100), at(200), 10}}, 100},
		{"idle time counts", []Span{{at(0), at(100), 10}, {at(400), at(500), 10}}, 40},
		{"out of order", []Span{{at(500), at(1000), 5}, {at(0), at(500), 5}}, 10},
		{"nothing verified", []Span{{at(0), at(250), 0}}, 0},
		{"no spans", nil, math.NaN()},
		{"no time", []Span{{at(0), at(0), 3}}, math.NaN()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Throughput(tt.spans)
			if math.IsNaN(tt.want) != math.IsNaN(got) || (!math.IsNaN(got) && math.Abs(got-tt.want) > 1e-9) {
				t.Errorf("Throughput = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	hundred := make([]float64, 100)
	for i := range hundred {
		hundred[i] = float64(100 - i) // 100 .. 1, unsorted
	}
	tests := []struct {
		name     string
		values   []float64
		p50, p95 float64
	}{
		{"1..100", hundred, 50, 95},
		{"one value", []float64{0.4}, 0.4, 0.4},
		{"nearest rank rounds up", []float64{1, 2, 3}, 2, 3},
		{"none", nil, math.NaN(), math.NaN()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := Summarize(tt.values)
			same := func(a, b float64) bool { return (math.IsNaN(a) && math.IsNaN(b)) || a == b }
			if !same(q.P50, tt.p50) || !same(q.P95, tt.p95) || q.N != len(tt.values) {
				t.Errorf("Summarize = %+v, want p50 %v p95 %v n %d", q, tt.p50, tt.p95, len(tt.values))
			}
		})
	}
}

func TestOverheads(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	at := func(us int) time.Time { return t0.Add(time.Duration(us) * time.Microsecond) }
	tests := []struct {
		name      string
		end       time.Time
		results   []time.Time
		partnerMS []float64
		want      []float64
		ok        bool
	}{
		{
			name: "three records one at a time", end: at(300900),
			results:   []time.Time{at(100500), at(200800), at(300600)},
			partnerMS: []float64{100, 100, 99.5},
			// 100.5-100, (200.8-100.5)-100, (300.9-200.8)-99.5
			want: []float64{0.5, 0.3, 0.6}, ok: true,
		},
		{name: "a record without a call", end: at(200000), results: []time.Time{at(100000), at(100100)}, partnerMS: []float64{99}, ok: false},
		{name: "no results", end: at(1000), ok: false},
		{name: "result after the end", end: at(1000), results: []time.Time{at(2000)}, partnerMS: []float64{1}, ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Overheads(t0, tt.end, tt.results, tt.partnerMS)
			if ok != tt.ok || len(got) != len(tt.want) {
				t.Fatalf("Overheads = %v, %v; want %v, %v", got, ok, tt.want, tt.ok)
			}
			sum, wantSum := 0.0, 0.0
			for i := range got {
				if math.Abs(got[i]-tt.want[i]) > 1e-9 {
					t.Errorf("overhead %d = %v, want %v", i, got[i], tt.want[i])
				}
				sum += got[i]
				wantSum += tt.partnerMS[i]
			}
			// The parts add up to the handler's time minus the partner's.
			if ok && math.Abs(sum-(float64(tt.end.Sub(t0).Microseconds())/1000-wantSum)) > 1e-9 {
				t.Errorf("overheads add up to %v ms", sum)
			}
		})
	}
}

func TestWindow(t *testing.T) {
	tests := []struct {
		rate float64
		want time.Duration
	}{
		{100, 4 * time.Second}, // 200 events take 2s: at least lo
		{20, 10 * time.Second}, // 200 events take 10s
		{3, 12 * time.Second},  // at most hi
		{0, 12 * time.Second},  // unknown rate: hi
		{math.NaN(), 12 * time.Second},
	}
	for _, tt := range tests {
		if got := Window(tt.rate, 200, 4*time.Second, 12*time.Second); got != tt.want {
			t.Errorf("Window(%v) = %s, want %s", tt.rate, got, tt.want)
		}
	}
}

func TestParseInitReport(t *testing.T) {
	tests := []struct {
		line string
		want time.Duration
		ok   bool
	}{
		{"25 Nov 2026 20:11:36,118 [INFO] (rapid) INIT REPORT(durationMs: 29.752000)", 29752 * time.Microsecond, true},
		{"INIT REPORT(durationMs: 7)", 7 * time.Millisecond, true},
		{"REPORT RequestId: x\tInit Duration: 0.08 ms\tDuration: 31.59 ms", 0, false},
		{"INIT START(type: on-demand, phase: init)", 0, false},
	}
	for _, tt := range tests {
		got, ok := ParseInitReport(tt.line)
		if ok != tt.ok || got != tt.want {
			t.Errorf("ParseInitReport(%q) = %s, %v; want %s, %v", tt.line, got, ok, tt.want, tt.ok)
		}
	}
}

func TestParseVmHWM(t *testing.T) {
	tests := []struct {
		name    string
		status  string
		want    int64
		wantErr bool
	}{
		{"status file", "Name:\tbootstrap\nVmPeak:\t 1260000 kB\nVmHWM:\t   17412 kB\nVmRSS:\t   17000 kB\n", 17412 * 1024, false},
		{"no line", "Name:\tbootstrap\nVmRSS:\t 100 kB\n", 0, true},
		{"other unit", "VmHWM:\t 17 MB\n", 0, true},
		{"not a number", "VmHWM:\t x kB\n", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseVmHWM(strings.NewReader(tt.status))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("ParseVmHWM = %d, %v; want %d, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestBatchWindow(t *testing.T) {
	tests := []struct {
		name  string
		rate  float64
		batch int
		want  time.Duration
	}{
		{"small batches keep Window's choice", 100, 10, 4 * time.Second},
		{"four invocations of a large batch", 100, 400, 16 * time.Second},
		{"a slow rate's window stays Window's", 3, 14, 20 * time.Second},
		{"at most 40 s", 3, 100, 40 * time.Second},
		{"no rate", 0, 400, 20 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := BatchWindow(tt.rate, tt.batch, 200, 4*time.Second, 20*time.Second); got != tt.want {
				t.Errorf("BatchWindow(%v, %d) = %s, want %s", tt.rate, tt.batch, got, tt.want)
			}
		})
	}
}
