package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/cmd/feature/rollout"
	featureflags "gitlab.com/gitlab-org/secret-detection/partner-token-verification/config/feature_flags"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/featureflag"
)

// envTimeout bounds the work in one environment, so that one that hangs
// cannot keep the others from being reported.
const envTimeout = time.Minute

// result is the outcome of a command for one flag in one environment.
type result struct {
	Environment string              `json:"environment"`
	Region      string              `json:"region"`
	Profile     string              `json:"profile,omitempty"`
	Stack       string              `json:"stack,omitempty"`
	Flag        string              `json:"flag"`
	Parameter   string              `json:"parameter"`
	DryRun      bool                `json:"dry_run,omitempty"`
	State       *featureflag.State  `json:"state,omitempty"`
	Update      *featureflag.Update `json:"update,omitempty"`
	Deletion    *rollout.Deletion   `json:"deletion,omitempty"`
	Error       string              `json:"error,omitempty"`

	target target
}

func checkDefined(flag string) error {
	if _, ok := featureflags.Lookup(flag); !ok {
		return fmt.Errorf("unknown feature flag %q: it has no definition in config/feature_flags (defined: %s)", flag, definedNames())
	}
	return nil
}

func checkFlagName(flag string) error {
	if !featureflags.ValidName(flag) {
		return fmt.Errorf("%q is not a feature flag name (snake case)", flag)
	}
	return nil
}

func definedNames() string {
	var s string
	for i, d := range featureflags.All() {
		if i > 0 {
			s += ", "
		}
		s += d.Name
	}
	return s
}

// execute runs the command in each environment in turn; a failure in one
// is recorded in its result and does not stop the next.
func execute(ctx context.Context, inv invocation, targets []target) []result {
	var results []result
	for _, t := range targets {
		results = append(results, executeIn(ctx, inv, t)...)
	}
	return results
}

func executeIn(ctx context.Context, inv invocation, t target) []result {
	ctx, cancel := context.WithTimeout(ctx, envTimeout)
	defer cancel()
	flags := []string{inv.flag}
	if inv.command == "list" {
		flags = flags[:0]
		for _, d := range featureflags.All() {
			flags = append(flags, d.Name)
		}
	}
	results := make([]result, len(flags))
	for i, f := range flags {
		results[i] = result{Environment: t.name, Region: t.region, Profile: t.profile, Stack: t.stack,
			Flag: f, Parameter: t.parameterFor(f), DryRun: inv.dryRun, target: t}
	}
	cfg, err := awsConfig(ctx, t)
	if err != nil {
		for i := range results {
			results[i].Error = err.Error()
		}
		return results
	}
	api := ssm.NewFromConfig(cfg)
	store := featureflag.NewStore(api, nil)
	for i := range results {
		r := &results[i]
		switch inv.command {
		case "get", "list":
			st, err := store.Get(ctx, r.Flag, r.Parameter)
			if err != nil {
				r.Error = err.Error()
				continue
			}
			r.State = &st
		case "set":
			u, err := store.Set(ctx, r.Flag, r.Parameter, inv.change, featureflag.Meta{By: inv.by, Reason: inv.reason}, inv.dryRun)
			if err != nil {
				r.Error = err.Error()
				if u.Before.Parameter != "" {
					r.Update = &u
				}
				continue
			}
			r.Update = &u
		case "delete":
			d, err := rollout.Delete(ctx, api, r.Flag, r.Parameter, inv.dryRun)
			if err != nil {
				r.Error = err.Error()
				continue
			}
			r.Deletion = &d
		}
	}
	return results
}

func writeJSON(w io.Writer, results []result) error {
	if results == nil {
		results = []result{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(results); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}

// writeText prints the results for a person: a header per environment,
// then what the command found or did there.
func writeText(w io.Writer, inv invocation, results []result) {
	last := ""
	for _, r := range results {
		if r.Environment != last {
			fmt.Fprintln(w, r.target)
			last = r.Environment
		}
		switch {
		case inv.command == "set":
			writeSet(w, r)
		case inv.command == "delete":
			writeDelete(w, r)
		default:
			writeState(w, r)
		}
	}
}

// describe is a state in words, with its version when it has one.
func describe(st featureflag.State) string {
	if !st.Found {
		return rollout.DescribeState(st)
	}
	return fmt.Sprintf("version %d, %s", st.Version, rollout.DescribeState(st))
}

func updated(v featureflag.Value) string {
	if v.UpdatedAt.IsZero() && v.UpdatedBy == "" {
		return ""
	}
	s := " (updated"
	if !v.UpdatedAt.IsZero() {
		s += " " + v.UpdatedAt.UTC().Format(time.RFC3339)
	}
	if v.UpdatedBy != "" {
		s += " by " + v.UpdatedBy
	}
	if v.Reason != "" {
		s += ": " + v.Reason
	}
	return s + ")"
}

func writeState(w io.Writer, r result) {
	if r.Error != "" {
		fmt.Fprintf(w, "  %s: FAILED: %s\n", r.Flag, r.Error)
		return
	}
	fmt.Fprintf(w, "  %s: %s%s\n", r.Flag, describe(*r.State), updated(r.State.Value))
}

func writeSet(w io.Writer, r result) {
	fmt.Fprintf(w, "  %s %s\n", r.Flag, r.Parameter)
	if u := r.Update; u != nil {
		fmt.Fprintf(w, "    before: %s\n", describe(u.Before))
		switch {
		case r.Error != "":
		case !u.Changed:
			fmt.Fprintf(w, "    after:  unchanged, nothing written\n")
		case r.DryRun:
			fmt.Fprintf(w, "    after:  %s (dry run: nothing written)\n", rollout.DescribeState(u.After))
		default:
			fmt.Fprintf(w, "    after:  %s%s\n", describe(u.After), updated(u.After.Value))
		}
		if u.Concurrent {
			fmt.Fprintf(w, "    WARNING: the version before this write was %d, so another write happened in between and was replaced; check with `feature get`\n", u.Before.Version)
		}
	}
	if r.Error != "" {
		fmt.Fprintf(w, "    FAILED: %s\n", r.Error)
	}
}

func writeDelete(w io.Writer, r result) {
	if r.Error != "" {
		fmt.Fprintf(w, "  %s %s: FAILED: %s\n", r.Flag, r.Parameter, r.Error)
		return
	}
	d := r.Deletion
	if !d.Before.Found {
		fmt.Fprintf(w, "  %s %s: absent, nothing to delete\n", r.Flag, r.Parameter)
		return
	}
	def := "the definition's default applies"
	if dd, ok := featureflags.Lookup(r.Flag); ok {
		def += fmt.Sprintf(" (default_enabled: %v)", dd.DefaultEnabled)
	} else {
		def = "the flag has no definition any more"
	}
	if r.DryRun {
		fmt.Fprintf(w, "  %s %s: would delete %s (dry run: nothing deleted)\n", r.Flag, r.Parameter, describe(d.Before))
		return
	}
	fmt.Fprintf(w, "  %s %s: deleted %s; %s\n", r.Flag, r.Parameter, describe(d.Before), def)
}
