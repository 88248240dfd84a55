package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/cmd/feature/rollout"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/featureflag"
)

const rolloutUsage = `usage:
  feature rollout status   NAME [--json] [--local [--now=TIME]] [--endpoint-url=URL]
  feature rollout advance  NAME [--reason=TEXT] [--force --reason=TEXT] [--by=WHO] [--dry-run] [--json] [--local [--now=TIME]] [--endpoint-url=URL]
  feature rollout rollback NAME [--reason=TEXT] [--by=WHO] [--dry-run] [--json] [--local [--now=TIME]] [--endpoint-url=URL]

Runs the flag's rollout plan, config/rollouts/NAME.yml (docs/rollout.md), in the environments
it names (sections of samconfig.toml).

status    each stage done, current or pending, read from the flag in every environment and
          from the definition file; for the next stage, every check that decides whether it may
          start: its earliest date, the current stage's soak time, the watched alarms that went to
          ALARM since the current stage's change, and the ones in ALARM now
advance   applies the next stage when every check passes; otherwise says which ones hold it back
          and exits 3. --force applies it anyway and needs --reason, which is written with the
          change. A code-change stage prints the exact edit (and, for the removal, every line that
          names the flag); once the removal is merged, advance deletes the flag's parameter
rollback  turns the flag off (every gate) in every environment the plan sets it in,
          production first; a partner's kill switch stays

--by defaults to the OS user; --dry-run writes nothing; --config=PATH names samconfig.toml (its
directory is the repository searched); --plan=PATH names another plan file.

--local runs the plan on the local AWS of "make run ARGS=--keep" (--endpoint-url, else
AWS_ENDPOINT_URL): each environment of the plan is a region of its own there, with its flag
parameter, alarms and stack (local-<environment>). --now=TIME (2026-11-19, or RFC 3339) is the
date the checks and the written updated_at use, to walk the plan's calendar; it needs --local.
--endpoint-url=URL alone sends every environment's requests to URL, with its samconfig.toml
profile and region.

Exit status: 0 done, 1 one or more environments failed, 2 invalid command line,
3 advance held back by a check.
`

// exitHeld is advance's exit status when a check holds the next stage back.
const exitHeld = 3

// rolloutTimeout bounds a whole rollout command; each environment's
// calls are bounded by the SDK's own timeouts and retries.
const rolloutTimeout = 5 * time.Minute

// rolloutValueOptions take a value.
var rolloutValueOptions = []string{"reason", "by", "config", "plan", "endpoint-url", "now"}

// rolloutOptionCommands says which rollout commands accept an option.
var rolloutOptionCommands = map[string][]string{
	"force":   {"advance"},
	"reason":  {"advance", "rollback"},
	"by":      {"advance", "rollback"},
	"dry-run": {"advance", "rollback"},
}

// isRollout reports whether the command line's first positional argument
// is "rollout"; options may come before it, as everywhere in the command.
func isRollout(args []string) bool {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return i+1 < len(args) && args[i+1] == "rollout"
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			return a == "rollout"
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !hasValue && (slices.Contains(valueOptions, name) || slices.Contains(rolloutValueOptions, name)) {
			i++
		}
	}
	return false
}

// rolloutInvocation is a parsed `feature rollout` command line.
type rolloutInvocation struct {
	command     string // status, advance, rollback, help
	flag        string
	force       bool
	reason      string
	by          string
	dryRun      bool
	json        bool
	config      string
	plan        string
	endpointURL string
	// local runs the plan on the local AWS; now, when set, is its clock.
	local bool
	now   time.Time
	seen  map[string]bool
}

func parseRolloutArgs(args []string) (rolloutInvocation, error) {
	inv := rolloutInvocation{seen: map[string]bool{}}
	// positional[0] is "rollout": help may follow it.
	positional, opts, help := splitArgs(args, rolloutValueOptions, 1)
	if help {
		inv.command = "help"
		return inv, nil
	}
	for _, o := range opts {
		name, value, hasValue := o.name, o.value, o.hasValue
		isValue := slices.Contains(rolloutValueOptions, name)
		switch {
		case slices.Contains(namedEnvironments, name):
			return inv, usagef("rollout takes no environment: the plan names them (--%s)", name)
		case !isValue && !slices.Contains([]string{"force", "dry-run", "json", local}, name):
			return inv, usagef("unknown option --%s", name)
		case isValue && !hasValue:
			return inv, usagef("--%s needs a value", name)
		case !isValue && hasValue:
			return inv, usagef("--%s takes no value", name)
		}
		if isValue && value == "" {
			return inv, usagef("--%s needs a value", name)
		}
		if inv.seen[name] {
			return inv, usagef("--%s given twice", name)
		}
		inv.seen[name] = true
		switch name {
		case "force":
			inv.force = true
		case "dry-run":
			inv.dryRun = true
		case "json":
			inv.json = true
		case local:
			inv.local = true
		case "now":
			t, err := parseNow(value)
			if err != nil {
				return inv, err
			}
			inv.now = t
		case "reason":
			inv.reason = value
		case "by":
			inv.by = value
		case "config":
			inv.config = value
		case "plan":
			inv.plan = value
		case "endpoint-url":
			inv.endpointURL = value
		}
	}
	// positional[0] is "rollout".
	if len(positional) > 0 && positional[0] == "rollout" {
		positional = positional[1:]
	}
	if len(positional) == 0 {
		return inv, usagef("rollout needs status, advance or rollback")
	}
	inv.command, positional = positional[0], positional[1:]
	if !slices.Contains([]string{"status", "advance", "rollback"}, inv.command) {
		return inv, usagef("unknown rollout command %q: want status, advance or rollback", inv.command)
	}
	switch {
	case len(positional) == 0:
		return inv, usagef("rollout %s needs the flag's NAME", inv.command)
	case len(positional) > 1:
		return inv, usagef("rollout %s: unexpected argument %q", inv.command, positional[1])
	}
	inv.flag = positional[0]
	for opt := range inv.seen {
		if cmds, ok := rolloutOptionCommands[opt]; ok && !slices.Contains(cmds, inv.command) {
			return inv, usagef("--%s does not apply to rollout %s", opt, inv.command)
		}
	}
	if inv.force && strings.TrimSpace(inv.reason) == "" {
		return inv, &usageError{"--force needs --reason: " + rollout.ErrForceNeedsReason.Error()}
	}
	if !inv.now.IsZero() && !inv.local {
		// A deployed environment's checks run on the real date, always.
		return inv, usagef("--now needs --local: only the local plan can be walked at another date")
	}
	return inv, nil
}

// parseNow reads --now: a UTC day (the plan's dates are days) or an RFC 3339 instant.
func parseNow(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, usagef("--now=%s: want a day (2026-11-19) or an RFC 3339 time (2026-11-19T10:00:00Z)", s)
	}
	return t, nil
}

// runRollout is `feature rollout ...`, with its surroundings and clock
// passed in for tests.
func runRollout(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string, cwd string, now func() time.Time) int {
	inv, err := parseRolloutArgs(args)
	if err == nil && inv.command == "help" {
		fmt.Fprint(stdout, rolloutUsage)
		return exitOK
	}
	if !inv.now.IsZero() {
		now = func() time.Time { return inv.now }
	}
	var runner *rollout.Runner
	var targets map[string]target
	if err == nil {
		runner, targets, err = prepareRollout(ctx, &inv, getenv, cwd, now)
	}
	if err != nil {
		fmt.Fprintf(stderr, "feature: %v\n", err)
		var ue *usageError
		if errors.As(err, &ue) {
			fmt.Fprintln(stderr, "run `feature rollout --help` for usage")
		}
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(ctx, rolloutTimeout)
	defer cancel()
	var code int
	switch inv.command {
	case "status":
		code = rolloutStatus(ctx, inv, runner, targets, stdout, stderr)
	case "advance":
		code = rolloutAdvance(ctx, inv, runner, targets, stdout, stderr)
	default:
		code = rolloutRollback(ctx, inv, runner, targets, stdout, stderr)
	}
	return code
}

// prepareRollout finds the plan and the environments, and builds a runner
// over clients for each; nothing is read from AWS yet.
func prepareRollout(ctx context.Context, inv *rolloutInvocation, getenv func(string) string, cwd string, now func() time.Time) (*rollout.Runner, map[string]target, error) {
	if err := checkFlagName(inv.flag); err != nil {
		return nil, nil, err
	}
	if inv.command != "status" && inv.by == "" {
		if inv.by = osUser(getenv); inv.by == "" {
			return nil, nil, errNoUser
		}
	}
	if err := (featureflag.Value{UpdatedBy: inv.by, Reason: inv.reason}).Validate(); err != nil {
		return nil, nil, &usageError{"--by/--reason: " + err.Error()}
	}
	if inv.endpointURL != "" {
		if err := checkEndpoint(inv.endpointURL); err != nil {
			return nil, nil, fmt.Errorf("--endpoint-url: %w", err)
		}
	}
	config := inv.config
	if config == "" {
		var err error
		if config, err = findSAMConfig(cwd); err != nil {
			return nil, nil, err
		}
	}
	if !filepath.IsAbs(config) {
		config = filepath.Join(cwd, config)
	}
	root := filepath.Dir(config)
	planPath := inv.plan
	switch {
	case planPath == "":
		planPath = filepath.Join(root, filepath.FromSlash(rollout.PlanPath(inv.flag)))
	case !filepath.IsAbs(planPath):
		planPath = filepath.Join(cwd, planPath)
	}
	plan, err := rollout.Load(planPath)
	if err != nil {
		return nil, nil, err
	}
	if rel, err := filepath.Rel(root, planPath); err == nil && !strings.HasPrefix(rel, "..") {
		plan.Path = filepath.ToSlash(rel)
	}
	if plan.Flag != inv.flag {
		return nil, nil, fmt.Errorf("%s is the plan of %s, not %s", planPath, plan.Flag, inv.flag)
	}
	var list []target
	if inv.local {
		list, err = localRolloutTargets(plan.Environments(), inv.endpointURL, getenv)
	} else {
		list, err = resolveTargets(invocation{envs: plan.Environments(), config: config, endpointURL: inv.endpointURL}, getenv, cwd)
	}
	if err != nil {
		return nil, nil, err
	}
	r := &rollout.Runner{Plan: plan, Root: root, Now: now, Envs: map[string]*rollout.Environment{}}
	targets := map[string]target{}
	for _, t := range list {
		targets[t.name] = t
		env := &rollout.Environment{Name: t.name, Stack: t.stack, Parameter: t.parameterFor(inv.flag)}
		// One configuration, so one HTTP connection pool, per service: an
		// error response of one service (a missing stack, an alarm history
		// moto does not serve) then never shares a connection with the
		// flag's reads and writes.
		var cfgs [3]aws.Config
		for i := range cfgs {
			if cfgs[i], err = awsConfig(ctx, t); err != nil {
				break
			}
		}
		if err != nil {
			// The environment is still part of the plan: every operation on
			// it fails with this error and is reported, the others go on.
			u := unavailable{err}
			env.SSM, env.CloudWatch, env.CloudFormation = u, u, u
		} else {
			var cwOpts []func(*cloudwatch.Options)
			if t.endpoint != "" {
				cwOpts = append(cwOpts, rollout.LocalCloudWatchProtocol)
			}
			env.SSM, env.CloudWatch, env.CloudFormation = ssm.NewFromConfig(cfgs[0]), cloudwatch.NewFromConfig(cfgs[1], cwOpts...), cloudformation.NewFromConfig(cfgs[2])
		}
		r.Envs[t.name] = env
	}
	return r, targets, nil
}

// unavailable is an environment whose AWS configuration could not be
// loaded: every call fails with that error.
type unavailable struct{ err error }

func (u unavailable) GetParameter(context.Context, *ssm.GetParameterInput, ...func(*ssm.Options)) (*ssm.GetParameterOutput, error) {
	return nil, u.err
}

func (u unavailable) PutParameter(context.Context, *ssm.PutParameterInput, ...func(*ssm.Options)) (*ssm.PutParameterOutput, error) {
	return nil, u.err
}

func (u unavailable) DeleteParameter(context.Context, *ssm.DeleteParameterInput, ...func(*ssm.Options)) (*ssm.DeleteParameterOutput, error) {
	return nil, u.err
}

func (u unavailable) DescribeAlarms(context.Context, *cloudwatch.DescribeAlarmsInput, ...func(*cloudwatch.Options)) (*cloudwatch.DescribeAlarmsOutput, error) {
	return nil, u.err
}

func (u unavailable) DescribeAlarmHistory(context.Context, *cloudwatch.DescribeAlarmHistoryInput, ...func(*cloudwatch.Options)) (*cloudwatch.DescribeAlarmHistoryOutput, error) {
	return nil, u.err
}

func (u unavailable) DescribeStacks(context.Context, *cloudformation.DescribeStacksInput, ...func(*cloudformation.Options)) (*cloudformation.DescribeStacksOutput, error) {
	return nil, u.err
}

func rolloutStatus(ctx context.Context, inv rolloutInvocation, r *rollout.Runner, targets map[string]target, stdout, stderr io.Writer) int {
	st, err := r.Status(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "feature: rollout status: %v\n", err)
		return exitEnvFailed
	}
	if inv.json {
		if err := writeJSONValue(stdout, st); err != nil {
			fmt.Fprintf(stderr, "feature: %v\n", err)
			return exitEnvFailed
		}
	} else {
		writeStatus(stdout, st, targets)
	}
	if bad := st.Unreadable(); len(bad) > 0 {
		fmt.Fprintf(stderr, "feature: the flag could not be read in %s\n", strings.Join(bad, ", "))
		return exitEnvFailed
	}
	return exitOK
}

func rolloutAdvance(ctx context.Context, inv rolloutInvocation, r *rollout.Runner, targets map[string]target, stdout, stderr io.Writer) int {
	res, err := r.Advance(ctx, rollout.AdvanceOptions{By: inv.by, Reason: inv.reason, Force: inv.force, DryRun: inv.dryRun})
	if err != nil && (res == nil || res.Status == nil) {
		fmt.Fprintf(stderr, "feature: rollout advance: %v\n", err)
		return exitEnvFailed
	}
	if inv.json {
		if err := writeJSONValue(stdout, res); err != nil {
			fmt.Fprintf(stderr, "feature: %v\n", err)
			return exitEnvFailed
		}
	} else {
		writeAdvance(stdout, r.Plan, res, targets, inv.dryRun)
	}
	switch {
	case err != nil:
		fmt.Fprintf(stderr, "feature: rollout advance: %v\n", err)
		return exitEnvFailed
	case res.Held:
		var names []string
		for _, c := range res.Status.Held() {
			names = append(names, c.Name)
		}
		fmt.Fprintf(stderr, "feature: stage %d held back by: %s\n", res.Stage, strings.Join(names, ", "))
		return exitHeld
	}
	if failed := res.Failed(); len(failed) > 0 {
		fmt.Fprintf(stderr, "feature: stage %d failed in %s; run advance again once fixed (the others are done)\n", res.Stage, strings.Join(failed, ", "))
		return exitEnvFailed
	}
	return exitOK
}

func rolloutRollback(ctx context.Context, inv rolloutInvocation, r *rollout.Runner, targets map[string]target, stdout, stderr io.Writer) int {
	updates, err := r.Rollback(ctx, inv.by, inv.reason, inv.dryRun)
	if err != nil {
		fmt.Fprintf(stderr, "feature: rollout rollback: %v\n", err)
		return exitEnvFailed
	}
	if inv.json {
		if err := writeJSONValue(stdout, updates); err != nil {
			fmt.Fprintf(stderr, "feature: %v\n", err)
			return exitEnvFailed
		}
	} else {
		fmt.Fprintf(stdout, "Rollback of %s: off in every environment of %s, production first\n", r.Plan.Flag, r.Plan.Path)
		for _, u := range updates {
			writeEnvUpdate(stdout, targets[u.Environment], r.Plan.Flag, u, inv.dryRun)
		}
	}
	var failed []string
	for _, u := range updates {
		if u.Error != "" {
			failed = append(failed, u.Environment)
		}
	}
	if len(failed) > 0 {
		fmt.Fprintf(stderr, "feature: rollback failed in %d of %d environments: %s\n", len(failed), len(updates), strings.Join(failed, ", "))
		return exitEnvFailed
	}
	return exitOK
}

func writeJSONValue(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func writeStatus(w io.Writer, st *rollout.Status, targets map[string]target) {
	fmt.Fprintf(w, "Rollout of %s (%s), at %s\n\nEnvironments\n", st.Flag, st.Plan, stamp(st.Now))
	for _, e := range st.Environments {
		line := "  " + targets[e.Environment].String() + "\n    " + e.Describe()
		if e.Error == "" {
			line += updated(e.Value)
		}
		switch {
		case e.AutoRollback == "true":
			line += "\n    auto-rollback: on"
		case e.AutoRollback == "false":
			line += "\n    auto-rollback: off"
		default:
			line += "\n    auto-rollback: unknown (" + e.AutoRollbackNote + ")"
		}
		fmt.Fprintln(w, line)
	}
	fmt.Fprintf(w, "\nStages (definition %s: %s)\n", st.Code.Definition, codeState(st.Code))
	for _, s := range st.Stages {
		fmt.Fprintf(w, "  %d. %-8s %s, from %s", s.Number, s.State, s.Name, s.Stage.Earliest)
		if s.Stage.Soak > 0 {
			fmt.Fprintf(w, ", soak %s", rollout.Human(time.Duration(s.Stage.Soak)))
		}
		fmt.Fprintf(w, "\n       %s\n       %s", s.Command, s.Detail)
		if s.State == rollout.Current && !s.ChangedAt.IsZero() {
			fmt.Fprintf(w, "; changed %s, %s ago", stamp(s.ChangedAt), rollout.Human(st.Now.Sub(s.ChangedAt)))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
	if st.Complete {
		fmt.Fprintln(w, "The rollout is complete.")
	} else {
		next := st.Stages[st.Next-1]
		verdict := "yes"
		if !st.MayAdvance {
			verdict = "no"
		}
		fmt.Fprintf(w, "Next: stage %d (%s). May advance: %s\n", next.Number, next.Name, verdict)
		writeChecks(w, st.Checks)
	}
	writeNotes(w, st)
}

func codeState(c rollout.Code) string {
	switch {
	case !c.Present:
		return "removed"
	case c.DefaultEnabled:
		return "default_enabled: true"
	}
	return "default_enabled: false"
}

func writeChecks(w io.Writer, checks []rollout.Check) {
	for _, c := range checks {
		mark := "[ok]  "
		if !c.OK {
			mark = "[held]"
		}
		fmt.Fprintf(w, "  %s %s: %s\n", mark, c.Name, c.Detail)
	}
}

func writeNotes(w io.Writer, st *rollout.Status) {
	for _, n := range st.AlarmNotes {
		fmt.Fprintf(w, "Note: %s\n", n)
	}
	for _, n := range st.Warnings {
		fmt.Fprintf(w, "Warning: %s\n", n)
	}
}

func writeAdvance(w io.Writer, plan *rollout.Plan, res *rollout.AdvanceResult, targets map[string]target, dryRun bool) {
	st := res.Status
	if st.Complete {
		fmt.Fprintf(w, "The rollout of %s is complete: nothing to advance.\n", plan.Flag)
		return
	}
	if res.Stage == 0 {
		return
	}
	stage := plan.Stages[res.Stage-1]
	head := fmt.Sprintf("stage %d/%d %s", res.Stage, len(plan.Stages), stage.Name)
	title := fmt.Sprintf("Stage %d/%d %s", res.Stage, len(plan.Stages), stage.Name)
	if res.Held {
		fmt.Fprintf(w, "Not advancing to %s (%s):\n", head, stage.Command(plan.Flag))
		writeChecks(w, st.Checks)
		fmt.Fprintln(w, "Nothing was changed. Run `feature rollout status "+plan.Flag+"` to follow it; --force --reason=... overrides.")
		writeNotes(w, st)
		return
	}
	for _, c := range res.Forced {
		fmt.Fprintf(w, "FORCED past %s: %s\n", c.Name, c.Detail)
	}
	switch {
	case stage.IsFlag():
		fmt.Fprintf(w, "Advancing to %s: %s\n", head, stage.Command(plan.Flag))
		for _, u := range res.Updates {
			writeEnvUpdate(w, targets[u.Environment], plan.Flag, u, dryRun)
		}
	case stage.CodeChange == rollout.CodeDefaultEnabled:
		e := res.Edit
		fmt.Fprintf(w, "%s is a code change; nothing was written. Make this merge request:\n", title)
		if e.Line > 0 {
			fmt.Fprintf(w, "  %s, line %d:\n  - %s\n  + %s\n", e.Path, e.Line, e.Old, e.New)
		} else {
			fmt.Fprintf(w, "  %s: add the line\n  + %s\n", e.Path, e.New)
		}
		fmt.Fprintf(w, "Once it is merged (and deployed), `feature rollout status %s` shows the stage done.\n", plan.Flag)
	case res.DeleteFile:
		fmt.Fprintf(w, "%s is a code change; nothing was written. Make this merge request:\n", title)
		fmt.Fprintf(w, "  delete %s\n  and remove every reference to the flag (%d lines):\n", res.Edit.Path, len(res.References))
		writeReferences(w, res.References)
		fmt.Fprintf(w, "Once it is merged and deployed, run `feature rollout advance %s` again from the merged checkout:\n", plan.Flag)
		fmt.Fprintf(w, "it deletes the flag's parameter in %s (%s).\n", strings.Join(stage.Environments, ", "), deleteCommand(plan.Flag, stage))
	default:
		fmt.Fprintf(w, "Advancing to %s: %s\n", head, deleteCommand(plan.Flag, stage))
		for _, d := range res.Deletions {
			r := result{Environment: d.Environment, Flag: plan.Flag, DryRun: dryRun, Deletion: d.Deletion, Error: d.Error}
			if t, ok := targets[d.Environment]; ok {
				r.Parameter = t.parameterFor(plan.Flag)
				fmt.Fprintln(w, t)
			}
			writeDelete(w, r)
		}
		if len(res.References) > 0 {
			fmt.Fprintf(w, "Lines that still name the flag (%d):\n", len(res.References))
			writeReferences(w, res.References)
		}
	}
}

func deleteCommand(flag string, s rollout.Stage) string {
	cmd := "feature delete " + flag
	for _, e := range s.Environments {
		cmd += " --" + e
	}
	return cmd
}

func writeReferences(w io.Writer, refs []rollout.Reference) {
	for _, r := range refs {
		via := ""
		if r.Via != "" {
			via = "  (uses " + r.Via + ")"
		}
		fmt.Fprintf(w, "    %s:%d: %s%s\n", r.Path, r.Line, r.Text, via)
	}
}

func writeEnvUpdate(w io.Writer, t target, flag string, u rollout.EnvUpdate, dryRun bool) {
	fmt.Fprintln(w, t)
	r := result{Environment: u.Environment, Flag: flag, Parameter: t.parameterFor(flag), DryRun: dryRun, Update: u.Update, Error: u.Error}
	writeSet(w, r)
}
