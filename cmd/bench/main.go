// Command bench measures the partner functions against their limits: it
// runs the real partner-function handler (pipeline.Worker.Handle with the
// real verifier wrapped as pipeline.PartnerWorkerFromEnv wraps it: verdictcache
// around throttle around the partner package) against cmd/partner-sandbox,
// started as a separate process with injected latency and a rate limit per
// partner, and prints in one run, for each partner and setting:
//
//   - verifications per second, and the ratio to the limit
//     min(rate, concurrency ÷ latency);
//   - the same workload one finding at a time (Concurrency 1), and the speed-up;
//   - the handler's overhead per verification (its time minus the partner's), p50 and p95;
//   - the 429s the sandbox sent;
//   - partner calls for 1000 findings of one token, without and with recheck;
//   - bootstrap sizes (linux/arm64 and this machine), cold-start init time
//     under the Lambda Runtime Interface Emulator, and peak memory at batch size 10.
//   - on the whole local pipeline (pipeline.go): what a finding costs — AWS
//     requests per finding by API, Lambda invocations and GB-seconds, dollars
//     per million findings — batched and unbatched (cost.go), and the time
//     from scan to verdict at a steady load with its breakdown (latency.go).
//
// `make bench` runs it after the Go benchmarks of shared/pipeline.
//
//	go run ./cmd/bench [-latency 100ms] [-jitter 20ms] [-samples 5] [-partners aws,gcp,postman] [-batch-size N] [-skip-lambda]
//	                   [-skip-cost] [-skip-latency] [-only-pipeline] [-cost-findings 2000] [-cost-backlog] [-cost-window0] [-latency-window0=false]
//
// A batch's records share the instance's Concurrency slots (sqsbatch.Run
// refills a slot as each call ends). The rate-bound rows take each
// partner's BatchSize from template.yaml; the concurrency-bound rows
// fastBatchPerSlot × Concurrency; -batch-size sets one size for every row.
package main

import (
	"context"
	"flag"
	"fmt"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/registry"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/samtemplate"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/pipeline"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/throttle"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout))
}

// options are the command-line flags.
type options struct {
	root            string
	latency, jitter time.Duration
	samples         int
	partners        []finding.Partner
	skipLambda      bool
	// batchSize, when above 0, is every row's batch size.
	batchSize int
	// onlyPipeline runs the whole-pipeline sections (cost, latency) alone.
	onlyPipeline bool
	pipeline     pipelineFlags
}

func run(args []string, stdout io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var o options
	fs.StringVar(&o.root, "root", "", "repository root (default: found from the working directory)")
	fs.DurationVar(&o.latency, "latency", 100*time.Millisecond, "partner latency the sandbox injects")
	fs.DurationVar(&o.jitter, "jitter", 20*time.Millisecond, "uniform jitter around -latency")
	fs.IntVar(&o.samples, "samples", 5, "cold starts per function")
	partners := fs.String("partners", "aws,gcp,postman", "partners to measure")
	fs.BoolVar(&o.skipLambda, "skip-lambda", false, "skip bootstrap sizes, cold starts and memory (with -skip-cost -skip-latency, no moto_server needed)")
	fs.IntVar(&o.batchSize, "batch-size", 0, "records per invocation in every row (default: rate-bound rows template.yaml's BatchSize of the partner, concurrency-bound rows 40 × concurrency)")
	fs.BoolVar(&o.pipeline.skipCost, "skip-cost", false, "skip what a finding costs (the whole local pipeline)")
	fs.BoolVar(&o.pipeline.skipLatency, "skip-latency", false, "skip the time from scan to verdict (the whole local pipeline)")
	fs.BoolVar(&o.onlyPipeline, "only-pipeline", false, "run the cost and latency sections only")
	fs.IntVar(&o.pipeline.costFindings, "cost-findings", 2000, "findings of the cost section's workload (each design)")
	fs.DurationVar(&o.pipeline.costTimeout, "cost-timeout", 4*time.Minute, "bound on each cost run")
	fs.Float64Var(&o.pipeline.latencyRate, "latency-rate", 20, "findings per second the latency section offers")
	fs.DurationVar(&o.pipeline.latencyDuration, "latency-duration", 60*time.Second, "how long the latency section offers its load")
	fs.IntVar(&o.pipeline.latencyScan, "latency-scan", 5, "findings per scan message in the latency section")
	fs.BoolVar(&o.pipeline.costBacklog, "cost-backlog", false, "also measure the cost with every scan sent at once (about 2½ minutes more on 2 cores)")
	fs.BoolVar(&o.pipeline.latencyWindowZero, "latency-window0", true, "also measure latency with the template's BatchingWindowInSeconds=0")
	fs.BoolVar(&o.pipeline.costWindowZero, "cost-window0", false, "also measure the paced cost with the template's BatchingWindowInSeconds=0 (about 30 s more)")
	fs.StringVar(&o.pipeline.log, "pipeline-log", "", "write every line the whole-pipeline stacks print to this file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.pipeline.costFindings < 1 || o.pipeline.latencyRate <= 0 || o.pipeline.latencyDuration <= latencyWarmup || o.pipeline.latencyScan < 1 {
		fmt.Fprintln(os.Stderr, "bench: want -cost-findings >= 1, -latency-rate > 0, -latency-duration > 5s, -latency-scan >= 1")
		return 2
	}
	for _, p := range strings.Split(*partners, ",") {
		switch fp := finding.Partner(strings.TrimSpace(p)); fp {
		case finding.PartnerAWS, finding.PartnerGCP, finding.PartnerPostman:
			o.partners = append(o.partners, fp)
		default:
			fmt.Fprintf(os.Stderr, "bench: -partners: unknown partner %q\n", p)
			return 2
		}
	}
	if o.latency <= 0 || o.jitter < 0 || o.jitter >= o.latency || o.samples < 1 || o.batchSize < 0 || o.batchSize > maxBatch {
		fmt.Fprintf(os.Stderr, "bench: want -latency > -jitter >= 0, -samples >= 1 and -batch-size from 0 to %d\n", maxBatch)
		return 2
	}
	if o.root == "" {
		root, err := samtemplate.FindRoot()
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 1
		}
		o.root = root
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := bench(ctx, o, stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	return 0
}

// maxBatch is the largest BatchSize of an SQS event source (standard queue).
const maxBatch = 10000

// fastBatchPerSlot sizes the concurrency-bound rows' batches: records per
// slot. The slots idle only while the last calls of a batch finish, so
// the loss is about E[slowest of the last calls] − E[call] over
// fastBatchPerSlot calls: at 100 ms ± 20 ms and 10 slots, a simulation
// gives 0.955 of the limit at 10 per slot, 0.977 at 20 and 0.988 at 40,
// before the handler's own time, against 0.859 for a batch of 10. The
// template's rule would allow a partner this fast far more
// (floor(100/s × 14 s) = 1400); 400 keeps four invocations in a run's
// window of 16 s.
const fastBatchPerSlot = 40

// setting is one configuration of partner rates and concurrency.
type setting struct {
	name string
	// rates are what the sandbox enforces and what this instance's limiter
	// is configured to (PARTNER_RATE_PER_SECOND); bursts the limiter's
	// burst (PARTNER_RATE_BURST), kept below the sandbox's (ClientBurst).
	rates       map[finding.Partner]float64
	bursts      map[finding.Partner]int
	concurrency int
	about       string
	// fromTemplate: each partner's batch is its BatchSize in template.yaml;
	// otherwise fastBatchPerSlot × concurrency.
	fromTemplate bool
}

// fastRate is the partner rate of the concurrency-bound setting.
const fastRate = 250

// settings: one where the partners' published rates bind, one where the
// partners are fast enough that concurrency ÷ latency binds.
func settings() []setting {
	published := setting{name: "rate-bound", rates: map[finding.Partner]float64{}, bursts: map[finding.Partner]int{}, concurrency: Concurrency,
		about: "the partners' default rates (partner.Definition.Rate), which the sandbox enforces", fromTemplate: true}
	fast := setting{name: "concurrency-bound", rates: map[finding.Partner]float64{}, bursts: map[finding.Partner]int{}, concurrency: Concurrency,
		about: "a partner rate far above concurrency ÷ latency, which the sandbox enforces"}
	for _, d := range registry.All() {
		p, r, b := d.Name, d.Rate.PerSecond, d.Rate.Burst
		published.rates[p], published.bursts[p] = r, ClientBurst(b, SandboxBurst(r))
		fast.rates[p], fast.bursts[p] = fastRate, ClientBurst(Concurrency, SandboxBurst(fastRate))
	}
	return []setting{published, fast}
}

// row is one partner in one setting.
type row struct {
	partner finding.Partner
	// batch is the records per invocation of the concurrent run, and
	// batchFrom where that size comes from.
	batch            int
	batchFrom        string
	limit            float64
	bound            Bound
	serialLimit      float64
	serialBound      Bound
	concurrent       loadResult
	serial           loadResult
	dedupe, recheck  *dedupeResult
	throughput       float64
	serialThroughput float64
}

func bench(ctx context.Context, o options, w io.Writer) error {
	started := time.Now()
	tmp, err := os.MkdirTemp("", "bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	fmt.Fprintln(w, "# make bench")
	printMachine(w)
	fmt.Fprintln(w)
	if o.onlyPipeline {
		pr, err := pipelineSections(ctx, o, tmp, w)
		if err != nil {
			return err
		}
		fmt.Fprintln(w, "## targets")
		printPipelineTargets(w, pr)
		fmt.Fprintf(w, "\ntotal time %s\n", time.Since(started).Round(time.Second))
		return nil
	}
	fmt.Fprintln(w, "building cmd/partner-sandbox and the function bootstraps ...")
	sandboxBin := filepath.Join(tmp, "partner-sandbox")
	build := exec.CommandContext(ctx, "go", "build", "-o", sandboxBin, "./cmd/partner-sandbox")
	build.Dir = o.root
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build partner-sandbox: %w\n%s", err, out)
	}
	var bl builds
	if !o.skipLambda {
		if bl, err = buildFunctions(ctx, o.root, filepath.Join(tmp, "build")); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "built in %s\n\n", time.Since(started).Round(100*time.Millisecond))
	batches, err := templateBatches(o.root)
	if err != nil {
		return err
	}
	printMethod(w, o)

	var all []settingRows
	var last *sandboxProc
	for i, s := range settings() {
		rates := map[string]float64{}
		for p, r := range s.rates {
			rates[string(p)] = r
		}
		sb, err := startSandbox(ctx, sandboxBin, o.latency, o.jitter, rates)
		if err != nil {
			return err
		}
		withDedupe := i == len(settings())-1
		rows, err := measureSetting(ctx, sb, s, o, batches, withDedupe)
		if err != nil {
			sb.stop()
			return err
		}
		all = append(all, settingRows{s, rows})
		printSetting(w, s, rows, o, sb)
		if withDedupe {
			last = sb
		} else {
			sb.stop()
		}
	}
	defer last.stop()
	printDedupe(w, all[len(all)-1].rows)

	var fns []functionFigures
	if !o.skipLambda {
		if fns, err = coldStarts(ctx, o.root, bl, last, o.samples, 3); err != nil {
			return err
		}
		printFunctions(w, fns, bl, o)
	}
	pr, err := pipelineSections(ctx, o, tmp, w)
	if err != nil {
		return err
	}
	printTargets(w, all, fns, o)
	printPipelineTargets(w, pr)
	fmt.Fprintf(w, "\ntotal time %s\n", time.Since(started).Round(time.Second))
	return nil
}

// settingRows are a setting's measurements.
type settingRows struct {
	s    setting
	rows []row
}

// measureSetting runs every partner concurrently and serially, and the
// dedupe runs when asked. Windows are long enough for about 200 (serial:
// 60) verifications, at most 20s: a slow partner's few verifications per
// second would otherwise leave a ratio at the mercy of one verification
// more or less.
func measureSetting(ctx context.Context, sb *sandboxProc, s setting, o options, tplBatches map[finding.Partner]int, withDedupe bool) ([]row, error) {
	var rows []row
	for _, p := range o.partners {
		r := row{partner: p}
		switch {
		case o.batchSize > 0:
			r.batch, r.batchFrom = o.batchSize, "-batch-size"
		case s.fromTemplate:
			r.batch, r.batchFrom = tplBatches[p], "template.yaml"
		default:
			r.batch, r.batchFrom = fastBatchPerSlot*s.concurrency, fmt.Sprintf("%d × concurrency", fastBatchPerSlot)
		}
		r.limit, r.bound = Limit(s.rates[p], s.concurrency, o.latency)
		r.serialLimit, r.serialBound = Limit(s.rates[p], 1, o.latency)
		lim := throttle.Options{RatePerSecond: s.rates[p], Burst: s.bursts[p]}
		refill := time.Duration(float64(SandboxBurst(s.rates[p])) / s.rates[p] * float64(time.Second))
		var err error
		r.concurrent, err = runLoad(ctx, sb, loadConfig{
			partner: p, concurrency: s.concurrency, batch: r.batch, limiter: lim, warm: time.Second,
			window: BatchWindow(r.limit, r.batch, 200, 4*time.Second, 20*time.Second), quiet: refill,
		}.sized(o.latency))
		if err != nil {
			return nil, err
		}
		r.serial, err = runLoad(ctx, sb, loadConfig{
			partner: p, concurrency: 1, batch: serialBatch, limiter: lim, warm: time.Second,
			window: Window(r.serialLimit, 60, 4*time.Second, 20*time.Second), quiet: refill,
		}.sized(o.latency))
		if err != nil {
			return nil, err
		}
		r.throughput, r.serialThroughput = Throughput(r.concurrent.spans), Throughput(r.serial.spans)
		if withDedupe {
			d, err := runDedupe(ctx, sb, p, lim, s.concurrency, r.batch, 1000, false)
			if err != nil {
				return nil, err
			}
			rc, err := runDedupe(ctx, sb, p, lim, s.concurrency, r.batch, 1000, true)
			if err != nil {
				return nil, err
			}
			r.dedupe, r.recheck = &d, &rc
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// sized gives the run a backlog no invocation can exhaust: at most
// concurrency records finish per fastest partner round trip.
func (c loadConfig) sized(latency time.Duration) loadConfig {
	fastest := latency / 2
	perSecond := float64(c.concurrency) / fastest.Seconds()
	// The last invocation started in the window runs a whole batch past it.
	c.backlog = int(perSecond*(c.warm+c.window).Seconds()) + 2*c.batch
	return c
}

// templateBatches are the partner functions' BatchSize in template.yaml.
func templateBatches(root string) (map[finding.Partner]int, error) {
	tpl, err := samtemplate.Load(filepath.Join(root, samtemplate.FileName))
	if err != nil {
		return nil, err
	}
	out := map[finding.Partner]int{}
	for _, d := range registry.All() {
		for _, f := range tpl.Functions {
			env, ok := f.Environment[pipeline.EnvPartner]
			if v, err := env.Text(); !ok || err != nil || v != string(d.Name) || len(f.SQSEvents) != 1 {
				continue
			}
			out[d.Name] = f.SQSEvents[0].BatchSize
		}
		if out[d.Name] < 1 {
			return nil, fmt.Errorf("template.yaml: no partner function with PARTNER=%s and one SQS event source", d.Name)
		}
	}
	return out, nil
}
