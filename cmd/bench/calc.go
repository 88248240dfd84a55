package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/localrun"
)

// Bound names the side of min(rate, concurrency ÷ latency) that limits a run.
type Bound string

// The two sides of the limit.
const (
	BoundRate        Bound = "rate"
	BoundConcurrency Bound = "concurrency"
)

// Limit is the most verifications per second one instance can do: each
// takes one partner round trip of latency, at most concurrency run at once,
// and the partner admits at most rate per second. A rate of 0 means none.
func Limit(rate float64, concurrency int, latency time.Duration) (float64, Bound) {
	if concurrency < 1 || latency <= 0 {
		return 0, BoundConcurrency
	}
	byConcurrency := float64(concurrency) / latency.Seconds()
	if rate > 0 && rate <= byConcurrency {
		return rate, BoundRate
	}
	return byConcurrency, BoundConcurrency
}

// SandboxBurst is the burst cmd/partner-sandbox enforces with a -rate: the
// whole number of requests per second, at least one.
func SandboxBurst(rate float64) int { return max(1, int(rate)) }

// ClientBurst is the limiter burst to configure against a partner whose
// token bucket holds partnerBurst: at most want, and one below the
// partner's. With equal buckets a request that reaches the partner a
// little earlier than its predecessor did (one that reuses a connection
// after one that dialled, a timer that fired late before) finds the
// partner's bucket a fraction of a token short and gets a 429; the spare
// token absorbs up to 1 ÷ rate of such jitter.
func ClientBurst(want, partnerBurst int) int { return max(1, min(want, partnerBurst-1)) }

// Ratio is a/b, or NaN when b is not positive (nothing to compare with).
func Ratio(a, b float64) float64 {
	if b <= 0 || math.IsNaN(a) || math.IsNaN(b) {
		return math.NaN()
	}
	return a / b
}

// Span is one invocation as the driver saw it: when it started and ended and
// how many verifications it concluded.
type Span struct {
	Start, End    time.Time
	Verifications int
}

// Throughput is the verifications per second of back-to-back invocations:
// their verifications over the time from the first start to the last end,
// so idle time between invocations counts against it. It is NaN for none.
func Throughput(spans []Span) float64 {
	if len(spans) == 0 {
		return math.NaN()
	}
	first, last := spans[0].Start, spans[0].End
	n := 0
	for _, s := range spans {
		if s.Start.Before(first) {
			first = s.Start
		}
		if s.End.After(last) {
			last = s.End
		}
		n += s.Verifications
	}
	d := last.Sub(first).Seconds()
	if d <= 0 {
		return math.NaN()
	}
	return float64(n) / d
}

// Quantiles are the p50 and p95 of a sample (nearest rank), NaN for none.
type Quantiles struct {
	P50, P95 float64
	N        int
}

// Summarize returns the p50 and p95 of values.
func Summarize(values []float64) Quantiles {
	return Quantiles{localrun.Percentile(values, 50), localrun.Percentile(values, 95), len(values)}
}

// Overheads splits one invocation that ran its records one at a time into
// the handler's own time per verification: the span of each verification
// (from the previous one's result, or the invocation's start, to its own
// result; the last one also owns the time after it until the handler
// returned) minus its partner call. resultsAt are the result times in order
// and partnerMS the partner calls' latencies in order, in milliseconds. The
// overheads add up to the handler's time minus the partner time. ok is false
// when the calls do not pair up one to one with results (a retried or held
// back record), and the invocation cannot be split.
func Overheads(start, end time.Time, resultsAt []time.Time, partnerMS []float64) (ms []float64, ok bool) {
	if len(resultsAt) == 0 || len(resultsAt) != len(partnerMS) {
		return nil, false
	}
	prev := start
	out := make([]float64, len(resultsAt))
	for i, at := range resultsAt {
		if at.Before(prev) || at.After(end) {
			return nil, false
		}
		stop := at
		if i == len(resultsAt)-1 {
			stop = end
		}
		out[i] = float64(stop.Sub(prev).Microseconds())/1000 - partnerMS[i]
		prev = at
	}
	return out, true
}

// Window picks how long a run is measured: long enough to see about
// wantEvents verifications at the expected rate, within [lo, hi].
func Window(expectedPerSecond float64, wantEvents int, lo, hi time.Duration) time.Duration {
	if expectedPerSecond <= 0 || math.IsNaN(expectedPerSecond) {
		return hi
	}
	d := time.Duration(float64(wantEvents) / expectedPerSecond * float64(time.Second))
	return min(max(d, lo), hi)
}

// BatchWindow is Window, lengthened to hold at least four invocations of
// batch records at the expected rate (and at most 40 s): a ratio measured
// over one or two invocations would be at the mercy of where the window
// cuts them.
func BatchWindow(expectedPerSecond float64, batch, wantEvents int, lo, hi time.Duration) time.Duration {
	d := Window(expectedPerSecond, wantEvents, lo, hi)
	if expectedPerSecond <= 0 || math.IsNaN(expectedPerSecond) || batch < 1 {
		return d
	}
	four := time.Duration(4 * float64(batch) / expectedPerSecond * float64(time.Second))
	return min(max(d, four), 40*time.Second)
}

// initReport is the emulator's line at the end of a function's init phase.
var initReport = regexp.MustCompile(`INIT REPORT\(durationMs: ([0-9.]+)\)`)

// ParseInitReport reads the init duration from one line of emulator output.
func ParseInitReport(line string) (time.Duration, bool) {
	m := initReport.FindStringSubmatch(line)
	if m == nil {
		return 0, false
	}
	ms, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, false
	}
	return time.Duration(ms * float64(time.Millisecond)), true
}

// ParseVmHWM reads the peak resident set size from /proc/<pid>/status, in bytes.
func ParseVmHWM(status io.Reader) (int64, error) {
	sc := bufio.NewScanner(status)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != "VmHWM" {
			continue
		}
		fields := strings.Fields(value)
		if len(fields) != 2 || fields[1] != "kB" {
			return 0, fmt.Errorf("parse VmHWM: unexpected value %q", strings.TrimSpace(value))
		}
		kb, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse VmHWM: %w", err)
		}
		return kb * 1024, nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("parse VmHWM: %w", err)
	}
	return 0, fmt.Errorf("parse VmHWM: no VmHWM line")
}

// MiB formats a byte count in mebibytes.
func MiB(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
