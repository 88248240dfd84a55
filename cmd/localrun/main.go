// Command localrun is `make run`: the whole system on this machine, with
// nothing else started beforehand. It starts moto_server (the local AWS) and
// the partner doubles on free loopback ports, creates the queues, DLQs,
// redrive policies and flag parameter from template.yaml, runs the four
// functions' real bootstraps under the Lambda Runtime Interface Emulator fed
// by emulated SQS event source mappings, enables the flag for the
// gitlab-org and gitlab-com groups with the `feature` command, sends the
// scans of events/, and prints every result, the DLQ counts and a metrics
// summary. It exits 0 only if every finding got its result.
//
//	localrun [-keep] [-events DIR | -report FILE] [-timeout 2m]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/awstest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/localrun"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/localstack"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/sandbox"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/samtemplate"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
)

const flagName = "secret_detection_partner_token_verification"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// key identifies a finding across scans.
type key struct{ scan, finding string }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("localrun", flag.ContinueOnError)
	fs.SetOutput(stderr)
	keep := fs.Bool("keep", false, "leave the stack running after the run and print how to use it")
	eventsDir := fs.String("events", "events", "directory of SQS events whose bodies are sent to the ingress queue")
	report := fs.String("report", "", "a gitleaks JSON report or TruffleHog JSON lines to send instead of events/")
	timeout := fs.Duration("timeout", 2*time.Minute, "how long to wait for every finding to get its result")
	verbose := fs.Bool("v", false, "print every line the functions and the emulator print")
	overrides := fs.String("parameter-overrides", "", "template parameters as `sam deploy --parameter-overrides` takes them: Key=Value pairs, space separated (e.g. 'BatchingWindowInSeconds=0')")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "localrun: "+format+"\n", a...)
		return 1
	}
	root, err := samtemplate.FindRoot()
	if err != nil {
		return fail("%v", err)
	}
	params, err := parameterOverrides(filepath.Join(root, samtemplate.FileName), *overrides)
	if err != nil {
		fmt.Fprintf(stderr, "localrun: -parameter-overrides: %v\n", err)
		return 2
	}
	feature := filepath.Join(root, "bin", "feature")
	if _, err := os.Stat(feature); err != nil {
		return fail("%s missing: run `make install` (make run does)", feature)
	}
	bodies, expected, samples, err := loadEvents(filepath.Join(root, *eventsDir))
	source := *eventsDir + "/"
	if *report != "" {
		bodies, expected, err = loadReport(*report, stdout)
		samples, source = sampleSet{}, *report
	}
	if err != nil {
		return fail("%v", err)
	}

	start := time.Now()
	fmt.Fprintln(stdout, "starting moto_server (local AWS) and the partner doubles ...")
	moto, err := awstest.Start(ctx)
	if err != nil {
		return fail("%v", err)
	}
	defer moto.Stop()
	sb, err := sandbox.Start(sandbox.Addrs{})
	if err != nil {
		return fail("%v", err)
	}
	defer sb.Close()
	if err := sb.RegisterSamples(); err != nil {
		return fail("%v", err)
	}
	env := map[string]string{"FEATURE_FLAG_CACHE_TTL": "5s", "RETRY_BACKOFF_BASE": "2s"}
	for k, v := range sb.Env() {
		env[k] = v
	}
	outcomes := newOutcomeLog(*verbose, stdout)
	fmt.Fprintln(stdout, "creating the stack from template.yaml, building and starting the functions ...")
	stack, err := localrun.Start(ctx, localrun.Options{Root: root, Endpoint: moto.Endpoint, Prefix: "local-", Env: env, Output: outcomes.line, Parameters: params})
	if err != nil {
		return fail("%v", err)
	}
	defer stack.Stop()

	fmt.Fprintln(stdout, "enabling the flag for gitlab-org and gitlab-com with the feature command:")
	cmd := exec.CommandContext(ctx, feature, "set", "--group=gitlab-org,gitlab-com", flagName, "true", "--local", "--by=make-run")
	cmd.Env = append(os.Environ(), "AWS_ENDPOINT_URL="+moto.Endpoint)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Run(); err != nil {
		return fail("feature set: %v", err)
	}

	what := samples.describe(len(bodies), len(expected))
	if *report != "" {
		what = fmt.Sprintf("%d messages with %d findings", len(bodies), len(expected))
	}
	fmt.Fprintf(stdout, "sending %s from %s to the ingress queue ...\n", what, source)
	for _, b := range bodies {
		if err := stack.Send(ctx, "IngressQueue", b); err != nil {
			return fail("%v", err)
		}
	}
	results, err := collect(ctx, stack, expected, *timeout)
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fail("%v", err)
	}
	printResults(stdout, results, outcomes)
	resultList := make([]finding.Result, 0, len(results))
	for _, r := range results {
		resultList = append(resultList, r)
	}
	for _, n := range localrun.ResultNotes(resultList, partnerRates(stack.Env)) {
		fmt.Fprintf(stdout, "  %s\n", n)
	}
	dlq, err := stack.DeadLetterCounts(ctx)
	if err != nil {
		return fail("%v", err)
	}
	expectedDLQ, why := samples.deadLetters()
	printDLQ(stdout, dlq, expectedDLQ, why)
	fmt.Fprintln(stdout)
	summary := localrun.Summarize(stack.Metrics, stack.Template, time.Since(start))
	summary.AddResults(resultList)
	summary.AddDeadLetters(stack.Template, stack.Local.Scope(), dlq, expectedDLQ, why)
	if err := summary.Write(stdout); err != nil {
		return fail("%v", err)
	}

	missing := 0
	for k := range expected {
		if _, ok := results[k]; !ok {
			missing++
			fmt.Fprintf(stdout, "MISSING result: scan %s finding %s\n", k.scan, k.finding)
		}
	}
	fmt.Fprintf(stdout, "\n%d findings, %d results, %d missing, in %s\n", len(expected), len(results), missing, time.Since(start).Round(100*time.Millisecond))
	if *keep {
		envFile := filepath.Join(root, ".local", "env.json")
		if err := writeEnvVars(envFile, stack.Env); err != nil {
			return fail("%v", err)
		}
		if err := localstack.ApplyRollout(ctx, stack.Template, awstest.Config(moto.Endpoint)); err != nil {
			return fail("%v", err)
		}
		removeRecord, err := keepRecord(root, moto.Endpoint, stack)
		if err != nil {
			return fail("%v", err)
		}
		defer removeRecord()
		printKeep(stdout, keepCommands(moto.Endpoint, stack.Local, filepath.Join("bin", "feature")), envFile)
		fmt.Fprintf(stdout, "  bin/submit --local --report gitleaks-report.json   # a scanner report of yours to this stack (%s)\n", localrun.RecordFile)
		<-ctx.Done()
	}
	if missing > 0 {
		return 1
	}
	return 0
}

// sampleSet says what the messages of events/ are: the scans they carry
// and the bodies that do not parse, which the dispatcher moves to the
// ingress DLQ on purpose.
type sampleSet struct {
	scans map[string]bool
	// unparseable counts the bodies that do not parse, by file (relative name).
	unparseable map[string]int
}

// describe says how many messages, scans and findings the samples are.
func (s sampleSet) describe(messages, findings int) string {
	bad := 0
	for _, n := range s.unparseable {
		bad += n
	}
	return fmt.Sprintf("%d messages (%d scans, a scan's findings spread over one or more messages, and %d unparseable sample meant for the ingress DLQ) with %d findings",
		messages, len(s.scans), bad, findings)
}

// deadLetters are the DLQ counts the samples are meant to leave, and why.
func (s sampleSet) deadLetters() (map[string]int, map[string]string) {
	files := make([]string, 0, len(s.unparseable))
	n := 0
	for f, c := range s.unparseable {
		files = append(files, f)
		n += c
	}
	if n == 0 {
		return map[string]int{}, map[string]string{}
	}
	sort.Strings(files)
	return map[string]int{"IngressDeadLetterQueue": n},
		map[string]string{"IngressDeadLetterQueue": "the unparseable sample of " + strings.Join(files, ", ") + ", moved there by the dispatcher"}
}

// loadEvents reads every events/*.json and returns the message bodies,
// the findings each parseable body must produce a result for, and what
// the samples are.
func loadEvents(dir string) ([]string, map[key]bool, sampleSet, error) {
	samples := sampleSet{scans: map[string]bool{}, unparseable: map[string]int{}}
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		return nil, nil, samples, fmt.Errorf("no events in %s", dir)
	}
	sort.Strings(files)
	var bodies []string
	expected := map[key]bool{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, nil, samples, err
		}
		var ev events.SQSEvent
		if err := json.Unmarshal(raw, &ev); err != nil {
			return nil, nil, samples, fmt.Errorf("%s: %w", f, err)
		}
		for _, r := range ev.Records {
			bodies = append(bodies, r.Body)
			b, err := finding.Parse([]byte(r.Body))
			if err != nil {
				// The dead-letter sample: no finding to expect.
				samples.unparseable[filepath.Join(filepath.Base(dir), filepath.Base(f))]++
				continue
			}
			samples.scans[b.ScanID] = true
			for _, fd := range b.Findings {
				expected[key{b.ScanID, fd.ID}] = true
			}
		}
	}
	return bodies, expected, samples, nil
}

// partnerRates are the partner functions' limiter rates, by partner, from
// their environments.
func partnerRates(env map[string]map[string]string) map[string]float64 {
	out := map[string]float64{}
	for _, e := range env {
		if p := e["PARTNER"]; p != "" {
			if r, err := strconv.ParseFloat(e["PARTNER_RATE_PER_SECOND"], 64); err == nil {
				out[p] = r
			}
		}
	}
	return out
}

// collect drains results until every expected finding has one, the stack
// is idle, or the timeout passes.
func collect(ctx context.Context, stack *localrun.Stack, expected map[key]bool, timeout time.Duration) (map[key]finding.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	got := map[key]finding.Result{}
	for {
		rs, err := stack.Results(ctx)
		if err != nil {
			return got, err
		}
		for _, r := range rs {
			got[key{r.ScanID, r.FindingID}] = r
		}
		done := true
		for k := range expected {
			if _, ok := got[k]; !ok {
				done = false
				break
			}
		}
		if done {
			// Let the rest of the pipeline settle so DLQ counts are final.
			if err := stack.WaitIdle(ctx); err != nil {
				return got, err
			}
			return got, nil
		}
		select {
		case <-ctx.Done():
			return got, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// outcomeLog keeps the latency of each finding from the functions' JSON
// "finding outcome" lines.
type outcomeLog struct {
	mu      sync.Mutex
	latency map[key]int64
	verbose bool
	out     io.Writer
}

func newOutcomeLog(verbose bool, out io.Writer) *outcomeLog {
	return &outcomeLog{latency: map[key]int64{}, verbose: verbose, out: out}
}

func (o *outcomeLog) line(fn, l string) {
	if o.verbose {
		o.mu.Lock()
		fmt.Fprintf(o.out, "%-20s %s\n", fn, l)
		o.mu.Unlock()
	}
	if !strings.Contains(l, `"finding outcome"`) {
		return
	}
	var rec struct {
		ScanID    string `json:"scan_id"`
		FindingID string `json:"finding_id"`
		Latency   int64  `json:"latency_ms"`
	}
	if json.Unmarshal([]byte(l), &rec) != nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.latency[key{rec.ScanID, rec.FindingID}] = rec.Latency
}

func printResults(w io.Writer, results map[key]finding.Result, o *outcomeLog) {
	keys := make([]key, 0, len(results))
	for k := range results {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].scan != keys[j].scan {
			return keys[i].scan < keys[j].scan
		}
		return keys[i].finding < keys[j].finding
	})
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCAN\tFINDING\tPARTNER\tTOKEN TYPE\tSTATUS\tREASON\tCACHED\tMS")
	o.mu.Lock()
	for _, k := range keys {
		r := results[k]
		partner, tt := string(r.Partner), string(r.TokenType)
		if partner == "" {
			partner, tt = "-", "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%v\t%d\n", r.ScanID, r.FindingID, partner, tt, r.Status, r.Reason, r.Cached, o.latency[k])
	}
	o.mu.Unlock()
	tw.Flush()
}

func printDLQ(w io.Writer, counts, expected map[string]int, why map[string]string) {
	ids := make([]string, 0, len(counts))
	for id := range counts {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	fmt.Fprintln(w, "\ndead-letter queues (count, then what the samples put there on purpose):")
	for _, id := range ids {
		note := fmt.Sprintf("expected %d", expected[id])
		if why[id] != "" {
			note += ": " + why[id]
		}
		if counts[id] != expected[id] {
			note += "; UNEXPECTED"
		}
		fmt.Fprintf(w, "  %-28s %d  %s\n", id, counts[id], note)
	}
}

// writeEnvVars writes each function's environment in `sam local invoke
// --env-vars` format, for `make invoke` against the running stack.
func writeEnvVars(path string, env map[string]map[string]string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(env, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o600)
}

// parameterOverrides parses sam's Key=Value pairs and checks each against
// the template (a known parameter, within its constraints) before anything
// starts, so a typo stops the run at once instead of after the build.
func parameterOverrides(template, s string) (map[string]string, error) {
	out := map[string]string{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	tpl, err := samtemplate.Load(template)
	if err != nil {
		return nil, err
	}
	for _, kv := range strings.Fields(s) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not Key=Value", kv)
		}
		if err := tpl.SetParameter(k, v); err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, nil
}
