// Command soak is `make soak`: the long run. It starts moto_server, brings
// the whole local stack up (real bootstraps under the Lambda emulator,
// emulated event source mappings, the partner doubles) and sends
// -findings findings spread over every partner of the registry while, at
// random, doubles answer with faults, a function process is killed
// (SIGKILL) every few seconds, scans are sent twice and the feature flag
// is turned off and on again. It prints the seed (pass it back with -seed
// to replay the schedule), the chaos suite's invariant table for the run,
// each function's memory and per-instance state against their caps, and
// as its last line
//
//	findings=N results=N missing=0 contradictions=0 leaked=0
//
// exiting 1 unless every invariant held and that line shows no loss.
//
//	soak [-findings 10000] [-seed N] [-kill-every 4s] [-timeout 10m] [-v]
package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/awstest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/chaos"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/samtemplate"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	findings := fs.Int("findings", 10000, "partner findings to send, spread over every partner of the registry")
	seed := fs.Uint64("seed", 0, "seed of every random choice (0: a fresh one, printed)")
	killEvery := fs.Duration("kill-every", 4*time.Second, "mean time between two kills of a random function process (0: none)")
	timeout := fs.Duration("timeout", 10*time.Minute, "bound on the whole run, build included")
	verbose := fs.Bool("v", false, "print every line the functions, the emulator and the event source mappings write")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *findings < 1 {
		fmt.Fprintln(stderr, "soak: -findings must be at least 1")
		return 2
	}
	if *seed == 0 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		*seed = binary.LittleEndian.Uint64(b[:]) | 1
	}
	fmt.Fprintf(stdout, "soak: seed %d (replay with -seed %d)\n", *seed, *seed)
	root, err := samtemplate.FindRoot()
	if err != nil {
		fmt.Fprintln(stderr, "soak:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	moto, err := awstest.Start(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "soak:", err)
		return 1
	}
	defer moto.Stop()
	progress := func(l string) { fmt.Fprintf(stderr, "%s %s\n", time.Now().Format("15:04:05"), l) }
	cfg := chaos.Config{Root: root, Endpoint: moto.Endpoint, Progress: progress}
	if *verbose {
		cfg.Output = func(src, l string) { fmt.Fprintln(stderr, src, l) }
	}
	start := time.Now()
	// The settle wait gets what the timeout leaves, less a minute to collect.
	settle := 4 * time.Minute
	if dl, ok := ctx.Deadline(); ok {
		settle = max(time.Until(dl)/2, time.Minute)
	}
	var stats chaos.SoakStats
	var obs *chaos.Observation
	sc := chaos.Soak(chaos.SoakOptions{Findings: *findings, Seed: *seed, KillEvery: *killEvery, Settle: settle, Progress: progress}, &stats)
	sc.Check = func(o *chaos.Observation) []string { obs = o; return nil }
	rep, err := chaos.Run(ctx, cfg, []chaos.Scenario{sc})
	if rep != nil && len(rep.Rows) > 0 {
		fmt.Fprintln(stdout)
		rep.Print(stdout)
	}
	if err != nil || obs == nil {
		fmt.Fprintln(stderr, "soak:", err)
		return 1
	}
	fmt.Fprintf(stdout, "\nsoak: %d scans (%d sent twice), %d faults pushed to the doubles, %d function processes killed, %s in all\n",
		stats.Scans, stats.Duplicates, stats.Faults, stats.Kills, time.Since(start).Round(time.Second))
	for _, m := range obs.Memory {
		failed := stats.FailedInvocations[m.Function]
		fmt.Fprintf(stdout, "  %-22s rss at end %4d MB, peak %4d MB of %d MB, %d processes (%d killed), %d invocations (failed: %d killed, %d timed out, %d other)\n",
			m.Function, stats.RSSKB[m.Function]/1024, m.PeakKB/1024, m.LimitMB, m.Processes, obs.Killed[m.Function], m.Invocations,
			failed["Runtime.ExitError"], failed["Sandbox.Timedout"], failed["other"])
	}
	for _, fn := range chaos.SortedFunctions(stats.Tokens) {
		fmt.Fprintf(stdout, "  %-22s verdict cache <= %d of %d entries (distinct credentials), completed-message record <= %d of %d ids\n",
			fn, stats.Tokens[fn], chaos.VerdictCacheCap, min(stats.MessageIDs[fn], chaos.CompletedCap), chaos.CompletedCap)
	}
	line := chaos.SoakLine(obs, rep.Rows[0])
	fmt.Fprintln(stdout, line)
	if !rep.OK() || !strings.HasSuffix(line, " missing=0 contradictions=0 leaked=0") || !strings.HasPrefix(line, fmt.Sprintf("findings=%d results=%d ", len(obs.Expect), len(obs.Expect))) {
		return 1
	}
	return 0
}
