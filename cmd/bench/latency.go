package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/localrun"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/samtemplate"
)

// targetLatencySlackMS is what the pipeline may add to the partner's p95.
const targetLatencySlackMS = 250.0

// latencyWarmup is left out of the measurement: the first invocations
// start every function's bootstrap (cold starts are the functions section's).
const latencyWarmup = 5 * time.Second

// latencyRun is one steady-load run.
type latencyRun struct {
	name, about              string
	rate                     float64
	duration                 time.Duration
	perScan                  int
	sent, measured, missing  int
	segs                     []LatencySegments
	partnerP95, lateSendsMax float64
	// measuredPartnerP95 is the p95 of the partner round trips the
	// functions measured (EMF PartnerAPILatency), NaN without any.
	measuredPartnerP95 float64
	// cost is what the run's findings cost at this load.
	cost CostFigures
	// statuses counts the results by status.
	statuses string
}

// partnerWindows lists the template's batching windows of the partner
// event sources (for the report).
func partnerWindows(t *samtemplate.Template) string {
	seen := map[int]bool{}
	for id, f := range t.Functions {
		if id == dispatcherID {
			continue
		}
		for _, e := range f.SQSEvents {
			seen[e.MaximumBatchingWindow] = true
		}
	}
	var out []string
	for w := range seen {
		out = append(out, fmt.Sprintf("%d s", w))
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// runLatency offers rate findings per second for duration, in scans of
// perScan findings sent at even intervals, and times each finding from the
// scanner's SendMessage to its result on the results queue; zero runs the
// stack with windowZero instead of the template's default window.
func runLatency(ctx context.Context, base pipeOptions, rate float64, duration time.Duration, perScan int, zero bool) (*latencyRun, error) {
	o := base
	o.prefix = "bench-lat-t-"
	r := &latencyRun{rate: rate, duration: duration, perScan: perScan}
	if zero {
		o.prefix, o.params = "bench-lat-w0-", windowZero
	}
	p, err := startPipe(ctx, o)
	if err != nil {
		return nil, err
	}
	defer p.stop()
	r.name = settingName(p.stack.Template)
	var ingressWindow int
	for _, e := range p.stack.Template.Functions[dispatcherID].SQSEvents {
		ingressWindow = e.MaximumBatchingWindow
	}
	lo, hi := 0, 0
	for id, f := range p.stack.Template.Functions {
		if id == dispatcherID {
			continue
		}
		for _, e := range f.SQSEvents {
			if lo == 0 || e.BatchSize < lo {
				lo = e.BatchSize
			}
			hi = max(hi, e.BatchSize)
		}
	}
	r.about = fmt.Sprintf("ingress window %d s, partner windows %s, partner BatchSize %d–%d", ingressWindow, partnerWindows(p.stack.Template), lo, hi)
	n := int(rate * duration.Seconds())
	msgs, err := workload(p.sb, o.prefix, n, perScan)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, duration+60*time.Second)
	defer cancel()
	done := p.consumeAsync(cctx, msgs)
	interval := duration / time.Duration(len(msgs))
	start := time.Now()
	for i, m := range msgs {
		at := start.Add(time.Duration(i) * interval)
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		} else {
			r.lateSendsMax = math.Max(r.lateSendsMax, float64(-d.Milliseconds()))
		}
		if err := p.send(cctx, m); err != nil {
			return nil, err
		}
	}
	out := <-done
	if out.err != nil {
		return nil, out.err
	}
	r.sent, r.missing = n, out.missing
	p.settle(ctx)
	p.runs.mu.Lock()
	r.cost = Cost(p.costInputLocked(n), ListPrices)
	r.measuredPartnerP95 = localrun.Percentile(p.runs.partnerMS, 95)
	r.statuses = p.tr.statuses()
	p.runs.mu.Unlock()
	p.tr.mu.Lock()
	defer p.tr.mu.Unlock()
	from := start.Add(latencyWarmup)
	for _, m := range msgs {
		sh := p.tr.scans[m.scanID]
		if sh == nil || sh.sent.Before(from) {
			continue
		}
		for _, k := range m.keys {
			h := p.tr.f[k]
			if h == nil || !h.done {
				continue
			}
			s, ok := Segments(ms(sh.sent), ms(sh.invoked), ms(h.forwarded), ms(h.polled), ms(h.invoked), ms(h.resultSend), ms(h.resultSent), h.arrivedMS)
			if ok {
				r.segs = append(r.segs, s)
			}
		}
	}
	r.measured = len(r.segs)
	r.partnerP95 = partnerP95(o.latency, o.jitter)
	return r, nil
}

// partnerP95 is the 95th percentile of the doubles' injected latency,
// uniform in [latency − jitter, latency + jitter].
func partnerP95(latency, jitter time.Duration) float64 {
	return float64((latency-jitter).Microseconds())/1000 + 0.95*float64((2*jitter).Microseconds())/1000
}

func ms(t time.Time) msTime {
	if t.IsZero() {
		return 0
	}
	return msTime(float64(t.UnixMicro()) / 1000)
}

// segment is one row of the breakdown.
type segment struct {
	name string
	get  func(LatencySegments) float64
}

var segments = []segment{
	{"total: scanner SendMessage → result on the results queue", func(s LatencySegments) float64 { return s.Total }},
	{"  ingress wait (send, queue, poll, until the dispatcher is invoked)", func(s LatencySegments) float64 { return s.IngressWait }},
	{"  dispatcher (invocation start → its send to the partner queue)", func(s LatencySegments) float64 { return s.Dispatcher }},
	{"  partner queue wait (send → the partner invocation starts)", func(s LatencySegments) float64 { return s.PartnerQueueWait }},
	{"    until a poller received it", func(s LatencySegments) float64 { return s.UntilPolled }},
	{"    batching window (received → invoked)", func(s LatencySegments) float64 { return s.BatchWindow }},
	{"  partner call (invoked → its result send begins)", func(s LatencySegments) float64 { return s.PartnerCall }},
	{"  result send (SendMessageBatch to the results queue)", func(s LatencySegments) float64 { return s.ResultSend }},
	{"check: result's SentTimestamp (moto, ms) − scanner send", func(s LatencySegments) float64 { return s.Arrival }},
}

func values(segs []LatencySegments, get func(LatencySegments) float64) []float64 {
	out := make([]float64, 0, len(segs))
	for _, s := range segs {
		if v := get(s); !math.IsNaN(v) {
			out = append(out, v)
		}
	}
	return out
}

func printLatency(w io.Writer, runs []*latencyRun, o options) {
	if len(runs) == 0 {
		return
	}
	r0 := runs[0]
	fmt.Fprintf(w, "## latency: time from scan to verdict (offered %.0f findings/s for %s, scans of %d, every partner)\n", r0.rate, r0.duration, r0.perScan)
	fmt.Fprintf(w, `method: the same stack and meter as the cost section; the doubles answer after %s ± %s (uniform: partner
  p95 %.0f ms). Each finding's hops are timed where they happen: the scanner's clock before SendMessage, the
  event source mappings' invocation starts, and the meter's view of the dispatcher's forward, the poller's
  receive and the partner function's result send (all one machine's clock). Findings of the first %s are left
  out (cold starts). Percentiles of the parts do not add up to the total's.

`, o.latency, o.jitter, r0.partnerP95, latencyWarmup)
	for _, r := range runs {
		fmt.Fprintf(w, "%s: %s; %d findings sent, %d measured, %d without a result (results %s);\n"+
			"  the scanner was at most %.0f ms behind its schedule; partner round trips as the functions measured them (EMF PartnerAPILatency): p95 %.0f ms\n",
			r.name, r.about, r.sent, r.measured, r.missing, r.statuses, r.lateSendsMax, r.measuredPartnerP95)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "ms\tp50\tp95\tp99\tmean\tshare of mean\t")
		total := mean(values(r.segs, segments[0].get))
		for i, s := range segments {
			v := values(r.segs, s.get)
			share := ""
			if i > 0 && i < len(segments)-1 && !strings.HasPrefix(s.name, "    ") {
				share = fmt.Sprintf("%.0f %%", 100*mean(v)/total)
			}
			fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%.0f\t%.0f\t%s\t\n", s.name, localrun.Percentile(v, 50), localrun.Percentile(v, 95),
				localrun.Percentile(v, 99), mean(v), share)
		}
		_ = tw.Flush()
		fmt.Fprintf(w, "at this load: %.3f SQS requests per finding (empty receives apart), %.0f invocations and %.2f GB-s per 1000 findings, $%.2f per million findings\n\n",
			r.cost.SQSRequests, r.cost.Invocations, r.cost.GBSeconds, r.cost.Total())
	}
}

// latencyTarget is the targets line of the latency section: met when a
// run of some batching window setting keeps within the target, naming it,
// with what each setting costs at this load; where a setting misses, the
// line says where its time goes.
func latencyTarget(w io.Writer, runs []*latencyRun) {
	if len(runs) == 0 {
		fmt.Fprintln(w, "scan-to-verdict p95 ≤ partner p95 + 250 ms: not measured (-skip-latency)")
		return
	}
	// The partner's p95 is what the functions measured, when they did.
	partner := runs[0].partnerP95
	if !math.IsNaN(runs[0].measuredPartnerP95) {
		partner = runs[0].measuredPartnerP95
	}
	limit := partner + targetLatencySlackMS
	p95 := func(r *latencyRun) float64 { return localrun.Percentile(values(r.segs, segments[0].get), 95) }
	within := func(r *latencyRun) bool { return p95(r) <= limit && r.missing == 0 }
	fmt.Fprintf(w, "scan-to-verdict p95 ≤ partner p95 (%.0f ms) + %.0f ms = %.0f ms: %s", partner, targetLatencySlackMS, limit, metOrMissed(slices.ContainsFunc(runs, within)))
	for i, r := range runs {
		sep := "; "
		if i == 0 {
			sep = ": "
		}
		fmt.Fprintf(w, "%swith %s: %.0f ms (%s, %.2f SQS requests per finding at this load)", sep, r.name, p95(r), metOrMissed(within(r)), r.cost.SQSRequests)
		if !within(r) {
			fmt.Fprintf(w, ", p95 of the parts: %s", largestParts(r.segs))
			if r.missing > 0 {
				fmt.Fprintf(w, ", %d findings got no result", r.missing)
			}
		}
	}
	fmt.Fprintln(w)
}

// largestParts names the breakdown's parts by their p95, largest first.
func largestParts(segs []LatencySegments) string {
	type item struct {
		name string
		v    float64
	}
	var items []item
	for i, s := range segments {
		if i == 0 || i == len(segments)-1 || strings.HasPrefix(s.name, "    ") {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSpace(s.name), " (")
		items = append(items, item{name, localrun.Percentile(values(segs, s.get), 95)})
	}
	sort.Slice(items, func(i, j int) bool { return items[i].v > items[j].v })
	var out []string
	for _, it := range items {
		out = append(out, fmt.Sprintf("%s %.0f", it.name, it.v))
	}
	return strings.Join(out, ", ")
}
