package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/localrun"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
)

// Performance targets (docs/benchmarks.md), reported, never asserted.
const (
	targetRatio     = 0.95 // of concurrency ÷ latency, where that binds
	targetRateRatio = 0.98 // of the rate, where that binds
	targetSpeedUp   = 8.0
	targetOverhead  = 1.0  // ms, p95
	targetInitMS    = 50.0 // ms
	targetPeakBytes = 64 << 20
)

func printMachine(w io.Writer) {
	fmt.Fprintf(w, "machine: nproc %d, %s, %s %s/%s, %s\n", runtime.NumCPU(), cpuModel(), runtime.Version(),
		runtime.GOOS, runtime.GOARCH, time.Now().UTC().Format(time.RFC3339))
}

// cpuModel is the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "cpu unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "cpu unknown"
}

func printMethod(w io.Writer, o options) {
	batch := fmt.Sprintf("the partner's BatchSize in template.yaml in the rate-bound\n  rows, %d × concurrency in the concurrency-bound rows", fastBatchPerSlot)
	if o.batchSize > 0 {
		batch = fmt.Sprintf("%d records in every row (-batch-size)", o.batchSize)
	}
	fmt.Fprintf(w, `method: one function instance = pipeline.Worker.Handle with verdictcache(throttle(partner verifier)),
  as pipeline.PartnerWorkerFromEnv builds it; invocations one after another, each a batch of records of one
  finding with its own generated token, registered as live in cmd/partner-sandbox (a separate process,
  -latency %s -jitter %s, -rate per partner as below). A batch's records share the instance's %d slots,
  each refilled as its call ends (sqsbatch.Run). Batch size: %s.
  Records the handler hands back come back when their visibility delay ends; a backlog keeps a batch
  ready. The first second of a run is not measured. verif/s = verifications ÷ (last end − first start)
  of the measured invocations; limit = min(rate, concurrency ÷ %s); serial = the same with Concurrency 1
  and batches of %d; overhead = handler time − partner time per verification, from the serial run
  (records one at a time, so each has its own span); slot use = partner time ÷ (concurrency × invocation
  time) of the measured invocations (1 when no slot ever waits).

`, o.latency, o.jitter, Concurrency, batch, o.latency, serialBatch)
}

func printSetting(w io.Writer, s setting, rows []row, o options, sb *sandboxProc) {
	rates := map[string]float64{}
	var bursts []string
	for p, r := range s.rates {
		rates[string(p)] = r
	}
	for _, p := range o.partners {
		bursts = append(bursts, fmt.Sprintf("%s=%d", p, s.bursts[p]))
	}
	fmt.Fprintf(w, "## setting %s: %s\n", s.name, s.about)
	fmt.Fprintf(w, "sandbox -latency %s -jitter %s -rate %s; limiter bursts %s; concurrency %d\n\n",
		o.latency, o.jitter, rateFlag(rates), strings.Join(bursts, " "), s.concurrency)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "partner\tbatch\tlimit/s\tbound\tverif/s\t÷ limit\tserial/s\tserial limit/s\tspeed-up\t429s\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%s\t%.1f\t%.3f\t%.2f\t%.1f\t%.2f\t%d\t\n", r.partner, r.batch, r.limit, r.bound, r.throughput,
			Ratio(r.throughput, r.limit), r.serialThroughput, r.serialLimit, Ratio(r.throughput, r.serialThroughput),
			r.concurrent.rateLimited+r.serial.rateLimited)
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "partner\toverhead p50 ms\tp95 ms\tn\tpartner p50 ms\tmean ms\t÷ concurrency÷mean\trecords/invocation\tslot use\tslowest call ms\terrors (network)\thanded back\tdeliveries/verif\tnot active\t")
	for _, r := range rows {
		oh := Summarize(r.serial.overheadMS)
		note := ""
		if r.serialBound == BoundRate {
			note = " (waits for the limiter)"
		}
		measured := "-"
		if r.bound == BoundConcurrency {
			measured = fmt.Sprintf("%.3f", measuredRatio(r))
		}
		fmt.Fprintf(tw, "%s\t%.3f\t%.3f%s\t%d\t%.1f\t%.1f\t%s\t%.1f\t%.3f\t%.1f\t%d (%d)\t%d\t%.2f\t%s\t\n", r.partner, oh.P50, oh.P95, note, oh.N,
			localrun.Percentile(r.concurrent.partnerMS, 50), mean(r.concurrent.partnerMS), measured, r.concurrent.records, r.concurrent.slotUse, max(r.concurrent.slowestMS, r.serial.slowestMS),
			r.concurrent.errors+r.serial.errors, r.concurrent.networkErrors+r.serial.networkErrors, r.concurrent.handedBack+r.serial.handedBack,
			Ratio(float64(r.concurrent.receives+r.serial.receives), float64(r.concurrent.verified+r.serial.verified)),
			others(r))
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
}

// others lists results that were not active, or "0".
func others(r row) string {
	m := map[finding.Reason]int{}
	for k, v := range r.concurrent.others {
		m[k] += v
	}
	for k, v := range r.serial.others {
		m[k] += v
	}
	if n := r.concurrent.undelayed + r.serial.undelayed; n > 0 {
		m["failed-undelayed"] += n
	}
	if len(m) == 0 {
		return "0"
	}
	var parts []string
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func mean(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

func printDedupe(w io.Writer, rows []row) {
	batch := 0
	for _, r := range rows {
		batch = r.batch
	}
	fmt.Fprintf(w, "## partner calls for 1000 findings of one token (batches of %d, concurrency %d, setting concurrency-bound)\n", batch, Concurrency)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "partner\tcalls\tcached\tshared in flight\tcalls with recheck\tshared in flight\tresults\t")
	for _, r := range rows {
		if r.dedupe == nil {
			continue
		}
		d, rc := r.dedupe, r.recheck
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d+%d\t\n", r.partner, d.calls, d.stats.Hits, d.stats.Joined,
			rc.calls, rc.stats.Joined, d.results, rc.results)
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "recheck bypasses the cache, and rechecks of one token in flight at once share one call: one call per %d in flight.\n", Concurrency)
	fmt.Fprintln(w)
}

func printFunctions(w io.Writer, fns []functionFigures, b builds, o options) {
	fmt.Fprintf(w, "## functions: bootstraps from the Makefile's build-<LogicalId> targets; %d cold starts each under bin/aws-lambda-rie\n", o.samples)
	fmt.Fprintf(w, "with template.yaml's environment (local AWS: moto_server; flag on) but PARTNER_CONCURRENCY=%d, PARTNER_RATE_PER_SECOND=%d,\n", coldBatch, fastRate)
	fmt.Fprintf(w, "PARTNER_RATE_BURST=%d (a whole batch in flight), each followed by 3 invocations of %d records of fresh live tokens;\n", coldBatch, coldBatch)
	fmt.Fprintln(w, "init = the emulator's INIT REPORT durationMs; peak RSS = the bootstrap's VmHWM after the invocations.")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "function\tlinux/arm64\tlinux/%s\tinit p50 ms\tinit max ms\tpeak RSS max\t\n", b.hostArch)
	for _, f := range fns {
		var peak int64
		for _, r := range f.peakRSS {
			peak = max(peak, r)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.1f\t%.1f\t%s\t\n", f.id, MiB(f.sizeArm64), MiB(f.sizeHost),
			localrun.Percentile(f.initMS, 50), maxOf(f.initMS), MiB(peak))
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
}

// orNone joins parts, or says none.
func orNone(parts []string) string {
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// measuredRatio is a row's throughput over concurrency ÷ the partner
// latency the handler measured, rather than the sandbox's -latency: on a
// loaded machine every call takes longer than the sandbox's sleep, and
// this ratio leaves that out.
func measuredRatio(r row) float64 {
	m := mean(r.concurrent.partnerMS)
	if math.IsNaN(m) || m <= 0 {
		return math.NaN()
	}
	return Ratio(r.throughput, float64(Concurrency)/(m/1000))
}

// missReason says what the figures show about a row that missed its
// throughput target.
func missReason(r row, o options) string {
	c := r.concurrent
	if c.handedBack > 0 || c.rateLimited > 0 || c.undelayed > 0 {
		return fmt.Sprintf("%d handed back, %d failed without a delay, %d 429s", c.handedBack, c.undelayed, c.rateLimited)
	}
	p50 := localrun.Percentile(c.partnerMS, 50)
	nominal := float64(o.latency.Microseconds()) / 1000
	why := "the handler's own time between calls"
	switch {
	case r.bound == BoundRate:
		why = "the limiter admitted fewer calls than the rate"
	case p50 > 1.03*nominal:
		why = "the partner answered slower than -latency: a loaded machine"
	case c.slotUse < 0.97:
		why = "slots idle at the ends of batches: a larger -batch-size would help"
	}
	return fmt.Sprintf("slot use %.3f, partner p50 %.1f ms for %.0f ms, %.3f of concurrency ÷ the measured mean latency: %s",
		c.slotUse, p50, nominal, measuredRatio(r), why)
}

// printTargets compares the figures with the performance targets.
func printTargets(w io.Writer, all []settingRows, fns []functionFigures, o options) {
	fmt.Fprintln(w, "## targets")
	mark := func(ok bool) string {
		if ok {
			return "met"
		}
		return "MISSED"
	}
	var ratioMet, ratioMissed, rateMet, rateMissed, speed, overhead, limited []string
	speedOK, overheadOK := true, true
	var total429 int64
	var overheadP50 []string
	slowest := 0.0
	for _, sr := range all {
		for _, r := range sr.rows {
			name := string(r.partner) + "/" + sr.s.name
			q := Ratio(r.throughput, r.limit)
			switch {
			case r.bound == BoundConcurrency && q >= targetRatio:
				ratioMet = append(ratioMet, fmt.Sprintf("%s %.3f (batch %d)", name, q, r.batch))
			case r.bound == BoundConcurrency:
				ratioMissed = append(ratioMissed, fmt.Sprintf("%s %.3f (batch %d; %s)", name, q, r.batch, missReason(r, o)))
			case q >= targetRateRatio:
				rateMet = append(rateMet, fmt.Sprintf("%s %.3f (batch %d)", name, q, r.batch))
			default:
				rateMissed = append(rateMissed, fmt.Sprintf("%s %.3f (batch %d; %s)", name, q, r.batch, missReason(r, o)))
			}
			total429 += r.concurrent.rateLimited + r.serial.rateLimited
			if r.bound == BoundConcurrency {
				s := Ratio(r.throughput, r.serialThroughput)
				speedOK = speedOK && s >= targetSpeedUp
				speed = append(speed, fmt.Sprintf("%s %.2f", name, s))
			} else {
				limited = append(limited, fmt.Sprintf("%s %.2f (limits: %.1f)", name, Ratio(r.throughput, r.serialThroughput), r.limit/r.serialLimit))
			}
			oh := Summarize(r.serial.overheadMS)
			if r.serialBound == BoundRate {
				continue
			}
			overheadOK = overheadOK && oh.P95 < targetOverhead
			overhead = append(overhead, fmt.Sprintf("%s %.3f", name, oh.P95))
			overheadP50 = append(overheadP50, fmt.Sprintf("%s %.3f", name, oh.P50))
			slowest = max(slowest, r.serial.slowestMS)
		}
	}
	fmt.Fprintf(w, "throughput ≥ %.2f × concurrency ÷ latency (concurrency-bound rows): %s: met by %s", targetRatio, mark(len(ratioMissed) == 0 && len(ratioMet) > 0), orNone(ratioMet))
	if len(ratioMissed) > 0 {
		fmt.Fprintf(w, "; missed by %s", strings.Join(ratioMissed, ", "))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "throughput ≥ %.2f × rate (rate-bound rows): %s: met by %s", targetRateRatio, mark(len(rateMissed) == 0 && len(rateMet) > 0), orNone(rateMet))
	if len(rateMissed) > 0 {
		fmt.Fprintf(w, "; missed by %s", strings.Join(rateMissed, ", "))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "429s from the sandbox = 0: %s: %d", mark(total429 == 0), total429)
	if total429 > 0 {
		fmt.Fprint(w, " (the limiter let more through than the sandbox's bucket held: see the rows' 429s and docs/benchmarks.md, Bursts)")
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "speed-up ≥ %.0f (concurrency-bound): %s: %s", targetSpeedUp, mark(speedOK), strings.Join(speed, ", "))
	if !speedOK {
		fmt.Fprint(w, " (the concurrent run's throughput is short of its limit: see its row)")
	}
	fmt.Fprintln(w)
	if len(limited) > 0 {
		fmt.Fprintf(w, "  (in rate-bound rows the speed-up is about limit ÷ serial limit: %s)\n", strings.Join(limited, ", "))
	}
	fmt.Fprintf(w, "overhead p95 < %.0f ms (rows whose serial run does not wait for the limiter): %s: %s", targetOverhead, mark(overheadOK), strings.Join(overhead, ", "))
	if !overheadOK {
		// The p95 of a sub-millisecond figure is the machine's scheduling
		// as much as the handler's work; the p50 and the slowest call say which.
		fmt.Fprintf(w, " (p50 %s; slowest serial partner call %.0f ms: a p95 far above a steady p50 is time the handler's goroutines waited for a CPU)",
			strings.Join(overheadP50, ", "), slowest)
	}
	fmt.Fprintln(w)
	for _, sr := range all {
		for _, r := range sr.rows {
			if r.dedupe == nil {
				continue
			}
			ok := r.dedupe.calls == 1 && r.recheck.calls == int64(r.recheck.findings/Concurrency)
			fmt.Fprintf(w, "1000 findings of one %s token: %d partner call(s) (%s); with recheck %d (one per %d in flight at once: %s)", r.partner,
				r.dedupe.calls, mark(r.dedupe.calls == 1), r.recheck.calls, Concurrency, mark(r.recheck.calls == int64(r.recheck.findings/Concurrency)))
			if !ok {
				fmt.Fprintf(w, " (cache hits %d, shared in flight %d and %d with recheck: see the calls table)", r.dedupe.stats.Hits, r.dedupe.stats.Joined, r.recheck.stats.Joined)
			}
			fmt.Fprintln(w)
		}
	}
	if len(fns) == 0 {
		return
	}
	initOK, rssOK := true, true
	var inits, rss []string
	for _, f := range fns {
		p50 := localrun.Percentile(f.initMS, 50)
		var peak int64
		for _, r := range f.peakRSS {
			peak = max(peak, r)
		}
		initOK = initOK && p50 < targetInitMS
		rssOK = rssOK && peak < targetPeakBytes
		inits = append(inits, fmt.Sprintf("%s %.1f", f.id, p50))
		rss = append(rss, fmt.Sprintf("%s %s", f.id, MiB(peak)))
	}
	fmt.Fprintf(w, "cold init p50 < %.0f ms: %s: %s", targetInitMS, mark(initOK), strings.Join(inits, ", "))
	if !initOK {
		fmt.Fprint(w, " (under the emulator on this machine: compare the init max in the functions table; a loaded machine delays the exec)")
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "peak RSS < %s: %s: %s", MiB(targetPeakBytes), mark(rssOK), strings.Join(rss, ", "))
	if !rssOK {
		fmt.Fprintf(w, " (VmHWM after %d invocations of %d records with all in flight)", 3, coldBatch)
	}
	fmt.Fprintln(w)
}
