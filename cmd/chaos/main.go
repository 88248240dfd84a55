// Command chaos is `make chaos`: the fault-injection suite. It
// starts moto_server, runs every scenario of internal/dev/chaos on the whole
// local system (real bootstraps under the Lambda emulator, emulated event
// source mappings, the partner doubles), prints the scenario × invariant
// table and exits 1 if any cell failed.
//
//	chaos [-short] [-run name,name] [-v] [-timeout 30m]
package main

import (
	"context"
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
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	short := fs.Bool("short", false, "run only the short form (the scenarios `make test` runs)")
	names := fs.String("run", "", "comma-separated scenario names to run instead of all")
	list := fs.Bool("list", false, "list the scenarios and exit")
	verbose := fs.Bool("v", false, "print every line the functions, the emulator and the event source mappings write")
	timeout := fs.Duration("timeout", 30*time.Minute, "bound on the whole run")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	scenarios := chaos.Scenarios()
	switch {
	case *list:
		for _, s := range scenarios {
			form := ""
			if s.Short {
				form = " (short form)"
			}
			fmt.Fprintf(stdout, "%-24s %s%s\n", s.Name, s.Fault, form)
		}
		return 0
	case *names != "":
		var err error
		if scenarios, err = chaos.ByName(strings.Split(*names, ",")...); err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
	case *short:
		scenarios = chaos.Short()
	}
	root, err := samtemplate.FindRoot()
	if err != nil {
		fmt.Fprintln(stderr, "chaos:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	moto, err := awstest.Start(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "chaos:", err)
		return 1
	}
	defer moto.Stop()
	cfg := chaos.Config{Root: root, Endpoint: moto.Endpoint,
		Progress: func(l string) { fmt.Fprintf(stderr, "%s %s\n", time.Now().Format("15:04:05"), l) }}
	if *verbose {
		cfg.Output = func(src, l string) { fmt.Fprintln(stderr, src, l) }
	}
	rep, err := chaos.Run(ctx, cfg, scenarios)
	if rep != nil && len(rep.Rows) > 0 {
		fmt.Fprintln(stdout)
		rep.Print(stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "chaos:", err)
		return 1
	}
	if !rep.OK() {
		fmt.Fprintln(stderr, "chaos: an invariant failed")
		return 1
	}
	fmt.Fprintf(stdout, "\nchaos: all %d scenarios kept every invariant\n", len(rep.Rows))
	return 0
}
