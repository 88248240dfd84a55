package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/samtemplate"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/pipeline"
)

// Cost targets (docs/benchmarks.md), reported, never asserted.
const targetSQSPerFinding = 1.0

// costScan is how many findings the batched design's scanner puts in one
// message (a scan's findings travel together).
const costScan = 40

// pollersPerQueue is how many pollers Lambda runs per SQS event source
// while idle (assumed: it starts with five).
const pollersPerQueue = 5

// costRun is one design's whole-pipeline run.
type costRun struct {
	name, about string
	fig         CostFigures
	rows        []APIRow
	in          CostInput
	missing     int
	elapsed     time.Duration
	mappings    int
	reports     int
	// statuses counts the results by status, e.g. "active=1500".
	statuses string
}

// costSection is the batched and the unbatched run, and the batched
// design again under a backlog and with windowZero (each when asked for).
type costSection struct {
	batched, unbatched, backlog, windowZero *costRun
}

// costDesign is what a cost run sends through what.
type costDesign int

const (
	// paced: the template, scans of costScan findings sent while fewer
	// than pacedScans wait or are in flight.
	paced costDesign = iota
	// backlog: the template, every scan sent at once.
	backlog
	// unbatched: BatchSize 1 everywhere, one finding per message.
	unbatched
	// pacedWindowZero: paced, with windowZero's parameter.
	pacedWindowZero
)

// pacedScans is how many scan messages the paced scanner lets wait or be
// in flight at once.
const pacedScans = 3

// batchSizeOne is the unbatched design: every event source takes one
// record per invocation.
func batchSizeOne(t *samtemplate.Template) error {
	for _, f := range t.Functions {
		for i := range f.SQSEvents {
			f.SQSEvents[i].BatchSize = 1
		}
	}
	return nil
}

// runCost sends n findings through a fresh stack and measures what they
// cost, in the design given.
func runCost(ctx context.Context, base pipeOptions, n int, design costDesign, timeout time.Duration) (*costRun, error) {
	o := base
	r := &costRun{name: "batched", about: fmt.Sprintf("template.yaml as it is, %d findings per scan message, fewer than %d scans waiting", costScan, pacedScans)}
	perScan := costScan
	o.prefix = "bench-cost-b-"
	// The paced scanner keeps the ingress queue short, as scans that
	// arrive over time do (fewer than limit waiting, checked every every
	// messages); the backlog is a scanner catching up, or many pipelines
	// finishing at once.
	limit, every := pacedScans, 1
	switch design {
	case backlog:
		r.name, r.about = "backlog", fmt.Sprintf("template.yaml as it is, %d findings per scan message, every scan sent at once", costScan)
		o.prefix = "bench-cost-l-"
		limit = n + 1
	case pacedWindowZero:
		r.name, r.about = "window 0", fmt.Sprintf("template.yaml with %s=0, %d findings per scan message, fewer than %d scans waiting", batchingWindowParam, costScan, pacedScans)
		o.prefix, o.params = "bench-cost-z-", windowZero
	case unbatched:
		r.name, r.about = "unbatched", "BatchSize 1 on every event source, 1 finding per scan message, SEND_LINGER=0"
		perScan, o.prefix, o.adjust = 1, "bench-cost-u-", batchSizeOne
		o.env = map[string]string{pipeline.EnvSendLinger: "0"}
		limit, every = 30, 10
	}
	p, err := startPipe(ctx, o)
	if err != nil {
		return nil, err
	}
	defer p.stop()
	msgs, err := workload(p.sb, o.prefix, n, perScan)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	done := p.consumeAsync(cctx, msgs)
	for i, m := range msgs {
		for i%every == 0 && p.backlog(cctx) >= limit && cctx.Err() == nil {
			time.Sleep(50 * time.Millisecond)
		}
		if err := p.send(cctx, m); err != nil {
			return nil, err
		}
	}
	out := <-done
	if out.err != nil {
		return nil, out.err
	}
	r.missing, r.elapsed = out.missing, time.Since(start)
	p.settle(ctx)
	p.runs.mu.Lock()
	r.in = p.costInputLocked(n)
	for _, k := range p.runs.reports {
		r.reports += k
	}
	p.runs.mu.Unlock()
	r.mappings = len(p.stack.Mappings)
	r.statuses = p.tr.statuses()

	r.fig = Cost(r.in, ListPrices)
	r.rows = APIRows(r.in.Counts, n)
	return r, nil
}

func copyMap[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func printCost(w io.Writer, cs costSection, o options) {
	b, u := cs.batched, cs.unbatched
	fmt.Fprintf(w, "## cost: what a finding costs (the whole local pipeline, %d findings, every partner)\n", b.fig.Findings)
	fmt.Fprintf(w, `workload: %s.
method: the make-run stack (moto_server, every function's bootstrap under the emulator, one instance per
  function, emulated event source mappings, the partner doubles at -latency %s -jitter %s); every AWS request of
  the scanner, the functions, the event source pollers and the results consumer goes through a counting proxy
  in front of moto_server (by X-Amz-Target). Partner functions run with PARTNER_RATE_PER_SECOND=%s (the doubles
  enforce no budget). Counts start once the stack is up and the flag is on; they end when the last result is
  read and the stack is idle. GB-s = the emulator's Billed Duration × the template's MemorySize.
  %s: %s; %s: %s (the dispatcher already forwards one message per
  finding; each forward and each result goes out in a SendMessageBatch of one).

`, workloadMix, o.latency, o.jitter, pipelineRate, b.name, b.about, u.name, u.about)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	callers := []string{callerScanner, callerPollers, callerDispatcher, callerPartners}
	fmt.Fprintf(tw, "requests per finding, by caller\t%s\t\t\t\t\t%s\t\t\t\t\t\n", b.name, u.name)
	fmt.Fprint(tw, "\t")
	for range 2 {
		fmt.Fprint(tw, "scanner\tpollers\tdispatcher\tpartners\t(empty)\t")
	}
	fmt.Fprintln(tw)
	for _, row := range mergeRows(b.rows, u.rows) {
		fmt.Fprintf(tw, "%s %s\t", row[0].Service, row[0].Operation)
		for _, r := range row {
			for _, c := range callers {
				fmt.Fprintf(tw, "%s\t", dash(r.ByCaller[c]))
			}
			fmt.Fprintf(tw, "%s\t", emptyNote(r.Empty))
		}
		fmt.Fprintln(tw)
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "per finding / per 1000 findings\t%s\t%s\tunbatched ÷ batched\t\n", b.name, u.name)
	line := func(name, format string, bv, uv float64) {
		fmt.Fprintf(tw, "%s\t"+format+"\t"+format+"\t%.1f\t\n", name, bv, uv, Ratio(uv, bv))
	}
	line("SQS requests per finding (pipeline, empty receives apart)", "%.3f", b.fig.SQSRequests, u.fig.SQSRequests)
	line("  billed as (64 KiB chunks)", "%.3f", b.fig.SQSUnits, u.fig.SQSUnits)
	line("  empty receives of the local pollers (not priced)", "%.3f", b.fig.Empty, u.fig.Empty)
	line("  results consumer's receives and deletes (not priced)", "%.3f", b.fig.Excluded, u.fig.Excluded)
	line("SSM requests per finding", "%.4f", b.fig.SSMRequests, u.fig.SSMRequests)
	line("other AWS requests per finding", "%.4f", b.fig.Other, u.fig.Other)
	line("Lambda invocations per 1000 findings", "%.1f", b.fig.Invocations, u.fig.Invocations)
	line("  of which the dispatcher", "%.1f", per1000(b.in.Invocations[dispatcherID], b.fig.Findings), per1000(u.in.Invocations[dispatcherID], u.fig.Findings))
	line("Lambda GB-seconds per 1000 findings", "%.3f", b.fig.GBSeconds, u.fig.GBSeconds)
	line("log bytes per finding (logs + EMF)", "%.0f", b.fig.LogBytes, u.fig.LogBytes)
	line("$ per million findings: SQS", "%.2f", b.fig.SQSCost, u.fig.SQSCost)
	line("  Lambda requests", "%.2f", b.fig.LambdaRequestCost, u.fig.LambdaRequestCost)
	line("  Lambda duration (arm64)", "%.2f", b.fig.LambdaDurationCost, u.fig.LambdaDurationCost)
	line("  CloudWatch Logs ingestion", "%.2f", b.fig.LogsCost, u.fig.LogsCost)
	line("  SSM GetParameter (standard)", "%.2f", b.fig.SSMCost, u.fig.SSMCost)
	line("  total", "%.2f", b.fig.Total(), u.fig.Total())
	_ = tw.Flush()
	runs := []*costRun{b, u}
	for _, l := range []*costRun{cs.backlog, cs.windowZero} {
		if l == nil {
			continue
		}
		fmt.Fprintf(w, "\n%s (%s): %.3f SQS requests per finding (%s), %.1f invocations (dispatcher %.1f) and %.3f GB-s per 1000 findings, $%.2f per million findings\n",
			l.name, l.about, l.fig.SQSRequests, topContributors(l.rows, 6), l.fig.Invocations,
			per1000(l.in.Invocations[dispatcherID], l.fig.Findings), l.fig.GBSeconds, l.fig.Total())
		runs = append(runs, l)
	}
	idle := IdleSQSRequests(b.mappings, pollersPerQueue)
	for _, r := range runs {
		fmt.Fprintf(w, "run %s: %s, %d findings without a result, results %s, %d invocations, %d REPORT lines\n",
			r.name, r.elapsed.Round(100*time.Millisecond), r.missing, r.statuses, sumInts(r.in.Invocations), r.reports)
	}
	fmt.Fprintf(w, "prices (us-east-1 list, read %s): SQS $%.2f/M requests, Lambda $%.2f/M requests and $%.10f/GB-s (arm64),\n"+
		"  CloudWatch Logs $%.2f/GB ingested, SSM standard GetParameter free; free tiers left out.\n",
		PricesDate, ListPrices.SQSPerMillion, ListPrices.LambdaRequestsPerMillion, ListPrices.LambdaGBSecond, ListPrices.LogsPerGB)
	fmt.Fprintf(w, "idle polling, a fixed cost apart from findings: %d event sources × %d pollers × one 20 s long poll = %.1fM requests, $%.2f a month.\n\n",
		b.mappings, pollersPerQueue, idle/1e6, idle/1e6*ListPrices.SQSPerMillion)
}

func per1000(n, findings int) float64 { return float64(n) / float64(max(findings, 1)) * 1000 }

func sumInts(m map[string]int) int {
	s := 0
	for _, v := range m {
		s += v
	}
	return s
}

func dash(v float64) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("%.3f", v)
}

func emptyNote(v float64) string {
	if v == 0 {
		return ""
	}
	return fmt.Sprintf("(%.3f)", v)
}

// mergeRows pairs the two runs' rows by operation (a missing one is empty).
func mergeRows(a, b []APIRow) [][2]APIRow {
	ops := map[[2]string][2]APIRow{}
	for _, r := range a {
		v := ops[[2]string{r.Service, r.Operation}]
		v[0] = r
		ops[[2]string{r.Service, r.Operation}] = v
	}
	for _, r := range b {
		v := ops[[2]string{r.Service, r.Operation}]
		v[1] = r
		ops[[2]string{r.Service, r.Operation}] = v
	}
	keys := make([][2]string, 0, len(ops))
	for k := range ops {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i][0]+keys[i][1] < keys[j][0]+keys[j][1] })
	out := make([][2]APIRow, 0, len(keys))
	for _, k := range keys {
		v := ops[k]
		for i := range v {
			v[i].Service, v[i].Operation = k[0], k[1]
		}
		out = append(out, v)
	}
	return out
}

// costTarget is the targets line of the cost section: met when the
// batched workloads measured (paced, and the backlog with -cost-backlog)
// keep within the target at the template's default window; the
// windowZero run (-cost-window0) is shown beside it.
func costTarget(w io.Writer, cs *costSection) {
	if cs == nil {
		fmt.Fprintln(w, "SQS requests per finding ≤ 1: not measured (-skip-cost)")
		return
	}
	b, l := cs.batched, cs.backlog
	within := func(r *costRun) bool { return r != nil && r.fig.SQSRequests <= targetSQSPerFinding && r.missing == 0 }
	fmt.Fprintf(w, "SQS requests per finding ≤ %.0f (scanner to results queue, empty receives apart): %s: paced %.3f (%s)",
		targetSQSPerFinding, metOrMissed(within(b) && (l == nil || within(l))), b.fig.SQSRequests, metOrMissed(within(b)))
	if l != nil {
		fmt.Fprintf(w, ", backlog %.3f (%s)", l.fig.SQSRequests, metOrMissed(within(l)))
	} else {
		fmt.Fprint(w, ", backlog not measured (-cost-backlog)")
	}
	fmt.Fprintf(w, ", unbatched %.3f", cs.unbatched.fig.SQSRequests)
	if z := cs.windowZero; z != nil {
		fmt.Fprintf(w, "; with %s=0 (the setting that serves latency, not this target) paced %.3f (%s)", batchingWindowParam, z.fig.SQSRequests, metOrMissed(within(z)))
	}
	for _, r := range []*costRun{b, l} {
		if r == nil || within(r) {
			continue
		}
		fmt.Fprintf(w, "; %s, where they go: %s", r.name, topContributors(r.rows, 3))
		if est, sends := resultsTogether(r); est < r.fig.SQSRequests*0.98 {
			fmt.Fprintf(w, "; the partner functions' result sends are %.3f per finding: one send per invocation would make it about %.2f (arithmetic, not measured)", sends, est)
		}
		if r.missing > 0 {
			fmt.Fprintf(w, "; %d findings got no result", r.missing)
		}
	}
	fmt.Fprintln(w)
}

// resultsTogether estimates the SQS requests per finding if each partner
// invocation sent all its results in one SendMessageBatch (a batch of at
// most 10 records has at most 10 results), from the measured run; sends is
// the partner functions' measured sends per finding.
func resultsTogether(r *costRun) (estimate, sends float64) {
	for _, row := range r.rows {
		if row.Service == "sqs" && (row.Operation == "SendMessageBatch" || row.Operation == "SendMessage") {
			sends += row.ByCaller[callerPartners]
		}
	}
	partnerInv := float64(sumInts(r.in.Invocations)-r.in.Invocations[dispatcherID]) / float64(max(r.fig.Findings, 1))
	return r.fig.SQSRequests - sends + partnerInv, sends
}

// topContributors names the largest requests per finding by operation and caller.
func topContributors(rows []APIRow, n int) string {
	type item struct {
		name string
		v    float64
	}
	var items []item
	for _, r := range rows {
		if r.Service != "sqs" {
			continue
		}
		for c, v := range r.ByCaller {
			if c == callerConsumer || v == 0 {
				continue
			}
			items = append(items, item{fmt.Sprintf("%s by the %s %.3f", r.Operation, c, v), v})
		}
	}
	sort.Slice(items, func(i, j int) bool { return items[i].v > items[j].v })
	var out []string
	for i := 0; i < len(items) && i < n; i++ {
		out = append(out, items[i].name)
	}
	return strings.Join(out, ", ")
}

// metOrMissed is a target's verdict.
func metOrMissed(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}
