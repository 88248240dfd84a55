// Command feature reads and changes feature flags in SSM Parameter Store, as
// `/chatops run feature …` does for GitLab: set, get, delete and list, per
// environment (dev, pre, staging, staging-ref, production from
// samconfig.toml, or the local AWS). See docs/feature-flags.md. `feature
// rollout` runs a flag's rollout plan (rollout.go, docs/rollout.md).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"os/user"
	"strings"
	"syscall"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/featureflag"
)

// Exit statuses.
const (
	exitOK        = 0
	exitEnvFailed = 1 // one or more environments failed; the others were done
	exitUsage     = 2 // invalid command line; nothing was read or written
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cwd, _ := os.Getwd()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv, cwd))
}

// run is the whole command, with its surroundings passed in for tests.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string, cwd string) int {
	if isRollout(args) {
		return runRollout(ctx, args, stdout, stderr, getenv, cwd, clock(getenv))
	}
	inv, err := parseArgs(args)
	if err == nil && inv.command == "help" {
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	if err == nil {
		err = prepare(&inv, getenv)
	}
	var targets []target
	if err == nil {
		targets, err = resolveTargets(inv, getenv, cwd)
	}
	if err != nil {
		fmt.Fprintf(stderr, "feature: %v\n", err)
		var ue *usageError
		if errors.As(err, &ue) {
			fmt.Fprintln(stderr, "run `feature --help` for usage")
		}
		return exitUsage
	}
	results := execute(ctx, inv, targets)
	if inv.json {
		if err := writeJSON(stdout, results); err != nil {
			fmt.Fprintf(stderr, "feature: %v\n", err)
			return exitEnvFailed
		}
	} else {
		writeText(stdout, inv, results)
	}
	var failed []string
	for _, r := range results {
		if r.Error != "" {
			failed = append(failed, r.Environment)
			if inv.json {
				fmt.Fprintf(stderr, "feature: %s: %s\n", r.Environment, r.Error)
			}
		}
	}
	if len(failed) > 0 {
		fmt.Fprintf(stderr, "feature: %d of %d environments failed: %s\n", len(failed), len(targets), strings.Join(uniq(failed), ", "))
		return exitEnvFailed
	}
	return exitOK
}

// clockEnv names the variable that holds the command's "now" (RFC 3339).
// It is empty in every build but the tests' (go build -ldflags
// "-X main.clockEnv=…"), so no variable can move a released binary's clock:
// the rollout's date checks of the built command are tested at pinned
// dates, not at whatever day the tests run.
var clockEnv string

// clock is time.Now, or the instant the test build's clockEnv pins.
func clock(getenv func(string) string) func() time.Time {
	if clockEnv == "" || getenv(clockEnv) == "" {
		return time.Now
	}
	t, err := time.Parse(time.RFC3339, getenv(clockEnv))
	if err != nil {
		panic(fmt.Sprintf("%s=%q: %v", clockEnv, getenv(clockEnv), err))
	}
	return func() time.Time { return t }
}

// prepare checks what the parser cannot: that the flag is defined and who
// is making the change.
func prepare(inv *invocation, getenv func(string) string) error {
	switch inv.command {
	case "set", "get":
		if err := checkDefined(inv.flag); err != nil {
			return err
		}
	case "delete":
		if err := checkFlagName(inv.flag); err != nil {
			return err
		}
	}
	if inv.command == "set" && inv.by == "" {
		inv.by = osUser(getenv)
		if inv.by == "" {
			return errNoUser
		}
	}
	if err := (featureflag.Value{UpdatedBy: inv.by, Reason: inv.reason}).Validate(); err != nil {
		return &usageError{"--by/--reason: " + err.Error()}
	}
	return nil
}

// osUser is the default of --by: the login name of the shell ($USER, as
// sudo and su set it), else the account of the process.
func osUser(getenv func(string) string) string {
	for _, v := range []string{"USER", "LOGNAME"} {
		if s := getenv(v); s != "" {
			return s
		}
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return ""
}

func uniq(ss []string) []string {
	var out []string
	for _, s := range ss {
		if len(out) == 0 || out[len(out)-1] != s {
			out = append(out, s)
		}
	}
	return out
}
