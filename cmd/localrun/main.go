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
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/awstest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/localrun"
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
	feature := filepath.Join(root, "bin", "feature")
	if _, err := os.Stat(feature); err != nil {
		return fail("%s missing: run `make install` (make run does)", feature)
	}
	bodies, expected, err := loadEvents(filepath.Join(root, *eventsDir))
	source := *eventsDir + "/"
	if *report != "" {
		bodies, expected, err = loadReport(*report, stdout)
		source = *report
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
	stack, err := localrun.Start(ctx, localrun.Options{Root: root, Endpoint: moto.Endpoint, Prefix: "local-", Env: env, Output: outcomes.line})
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

	fmt.Fprintf(stdout, "sending %d scans from %s to the ingress queue ...\n", len(bodies), source)
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
	dlq, err := stack.DeadLetterCounts(ctx)
	if err != nil {
		return fail("%v", err)
	}
	printDLQ(stdout, dlq)
	fmt.Fprintln(stdout)
	if err := localrun.Summarize(stack.Metrics, stack.Template, time.Since(start)).Write(stdout); err != nil {
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
		printKeep(stdout, moto.Endpoint, stack)
		removeRecord, err := keepRecord(root, moto.Endpoint, stack)
		if err != nil {
			return fail("%v", err)
		}
		defer removeRecord()
		fmt.Fprintf(stdout, "  bin/submit --local --report gitleaks-report.json   # a scanner report to this stack (%s)\n", localrun.RecordFile)
		fmt.Fprintf(stdout, "  make invoke FUNCTION=PostmanFunction EVENT=events/postman-api-key.json   # uses %s\n", envFile)
		<-ctx.Done()
	}
	if missing > 0 {
		return 1
	}
	return 0
}

// loadEvents reads every events/*.json and returns the message bodies and
// the findings each parseable body must produce a result for.
func loadEvents(dir string) ([]string, map[key]bool, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		return nil, nil, fmt.Errorf("no events in %s", dir)
	}
	sort.Strings(files)
	var bodies []string
	expected := map[key]bool{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, nil, err
		}
		var ev events.SQSEvent
		if err := json.Unmarshal(raw, &ev); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", f, err)
		}
		for _, r := range ev.Records {
			bodies = append(bodies, r.Body)
			b, err := finding.Parse([]byte(r.Body))
			if err != nil {
				continue // the dead-letter sample: no finding to expect
			}
			for _, fd := range b.Findings {
				expected[key{b.ScanID, fd.ID}] = true
			}
		}
	}
	return bodies, expected, nil
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

func printDLQ(w io.Writer, counts map[string]int) {
	ids := make([]string, 0, len(counts))
	for id := range counts {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	fmt.Fprintln(w, "\ndead-letter queues:")
	for _, id := range ids {
		fmt.Fprintf(w, "  %-28s %d\n", id, counts[id])
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

func printKeep(w io.Writer, endpoint string, stack *localrun.Stack) {
	ingress, _ := stack.Queue("IngressQueue")
	results, _ := stack.Queue("ResultsQueue")
	fmt.Fprintf(w, `
The stack keeps running (Ctrl-C stops it). In another shell:

  export AWS_ENDPOINT_URL=%s AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
  aws sqs send-message --queue-url %s --message-body "$(jq -r '.Records[0].body' events/postman-api-key.json)"
  aws sqs receive-message --queue-url %s --max-number-of-messages 10
  bin/feature get %s --local
  bin/feature set %s false --partner=postman --local
`, endpoint, ingress.URL, results.URL, flagName, flagName)
}
