package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/cmd/feature/rollout"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/awstest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/samtemplate"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/featureflag"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/registry"
)

// rolloutRegions are the regions of testdata/rollout/samconfig.toml.
var rolloutRegions = []struct{ env, region string }{
	{"dev", "us-east-1"}, {"pre", "ap-south-1"}, {"staging", "eu-west-1"},
	{"staging-ref", "eu-central-1"}, {"production", "us-west-2"},
}

// rolloutRig is a repository of the test's own (samconfig.toml, the plan,
// the flag's definition, code naming the flag) over a fresh moto with the
// template's partner alarms in every environment.
type rolloutRig struct {
	t     *testing.T
	moto  *awstest.Moto
	repo  string
	env   map[string]string
	clock time.Time
}

// newRolloutRig builds the repository with plan as its rollout plan;
// profiles are the environments the AWS config file has a profile for.
func newRolloutRig(t *testing.T, plan string, profiles ...string) *rolloutRig {
	t.Helper()
	m := awstest.Shared(t)
	if err := m.Reset(); err != nil {
		t.Fatal(err)
	}
	root, err := samtemplate.FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	def, err := os.ReadFile(filepath.Join(root, rollout.DefinitionPath(ff)))
	if err != nil {
		t.Fatal(err)
	}
	sam, err := os.ReadFile(filepath.Join("testdata", "rollout", "samconfig.toml"))
	if err != nil {
		t.Fatal(err)
	}
	repo := t.TempDir()
	for rel, content := range map[string]string{
		"samconfig.toml":              string(sam),
		rollout.PlanPath(ff):          plan,
		rollout.DefinitionPath(ff):    string(def),
		"config/feature_flags/ff.go":  "package featureflags\n\n// PartnerTokenVerification gates partner calls.\nconst PartnerTokenVerification = \"" + ff + "\"\n",
		"shared/pipeline/dispatch.go": "package pipeline\n\nvar gate = featureflags.PartnerTokenVerification\n",
	} {
		dir := filepath.Join(repo, filepath.Dir(rel))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, dir, filepath.Base(rel), content)
	}
	var cfg strings.Builder
	for _, p := range profiles {
		fmt.Fprintf(&cfg, "[profile rollout-test-%s]\naws_access_key_id = testing\naws_secret_access_key = testing\n", p)
	}
	home := t.TempDir()
	r := &rolloutRig{t: t, moto: m, repo: repo, env: map[string]string{
		"HOME": home, "PATH": os.Getenv("PATH"), "USER": "operator",
		"AWS_CONFIG_FILE":             writeFile(t, home, "aws-config", cfg.String()),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(home, "none"),
		"AWS_EC2_METADATA_DISABLED":   "true",
		// One retry: moto_server, loaded, sometimes resets a connection
		// (the SDK retries that); DescribeAlarmHistory, which moto does not
		// implement, then costs one backoff of at most 2s.
		"AWS_MAX_ATTEMPTS": "2",
	}}
	r.createAlarms(root)
	return r
}

// createAlarms creates the template's partner alarms in every environment,
// under the names the template gives them in that environment's stack.
func (r *rolloutRig) createAlarms(root string) {
	tpl, err := samtemplate.Load(filepath.Join(root, samtemplate.FileName))
	if err != nil {
		r.t.Fatal(err)
	}
	for _, e := range rolloutRegions {
		for _, a := range tpl.Alarms {
			name, err := a.NameIn(samtemplate.SymbolicScope("partner-token-verification-"+e.env, e.region, samtemplate.LocalAccountID))
			if err != nil {
				r.t.Fatal(err)
			}
			if !strings.HasPrefix(name, "SecretDetectionPartnerAPI") {
				continue
			}
			if _, err := r.cloudWatch(e.env).PutMetricAlarm(context.Background(), &cloudwatch.PutMetricAlarmInput{
				AlarmName: aws.String(name), Namespace: aws.String("SecretDetection/PartnerTokenVerification"), MetricName: aws.String("PartnerAPIErrors"),
				Statistic: cwtypes.StatisticSum, Period: aws.Int32(60), EvaluationPeriods: aws.Int32(5), Threshold: aws.Float64(a.Threshold),
				ComparisonOperator: cwtypes.ComparisonOperatorGreaterThanThreshold,
			}); err != nil {
				r.t.Fatalf("PutMetricAlarm %s: %v", name, err)
			}
		}
	}
}

func regionOf(env string) string {
	for _, e := range rolloutRegions {
		if e.env == env {
			return e.region
		}
	}
	panic("no region for " + env)
}

func (r *rolloutRig) cloudWatch(env string) *cloudwatch.Client {
	cfg := awstest.FastRetries(r.moto.Config())
	cfg.Region = regionOf(env)
	return cloudwatch.NewFromConfig(cfg, rollout.LocalCloudWatchProtocol)
}

// value is the flag in an environment as SSM holds it; nil when absent.
func (r *rolloutRig) value(env string) *featureflag.Value {
	r.t.Helper()
	cfg := awstest.FastRetries(r.moto.Config())
	cfg.Region = regionOf(env)
	st, err := featureflag.NewStore(ssm.NewFromConfig(cfg), time.Now).Get(context.Background(), ff, featureflag.DefaultParameter(ff))
	switch {
	case err != nil:
		r.t.Fatal(err)
	case st.Invalid != "":
		r.t.Fatalf("stored flag value is invalid: %s", st.Invalid)
	case !st.Found:
		return nil
	}
	return &st.Value
}

// rollout runs `feature rollout ...` in process, at the rig's clock, in
// the repository, against moto.
func (r *rolloutRig) rollout(args ...string) (stdout, stderr string, code int) {
	r.t.Helper()
	for k, v := range r.env {
		r.t.Setenv(k, v)
	}
	var out, errOut bytes.Buffer
	args = append([]string{"rollout"}, append(args, "--endpoint-url="+r.moto.Endpoint)...)
	code = runRollout(context.Background(), args, &out, &errOut, func(k string) string { return r.env[k] }, r.repo,
		func() time.Time { return r.clock })
	return out.String(), errOut.String(), code
}

// expect runs a rollout command and checks its exit status and output.
func (r *rolloutRig) expect(wantCode int, want []string, args ...string) string {
	r.t.Helper()
	out, errOut, code := r.rollout(args...)
	if code != wantCode {
		r.t.Fatalf("feature rollout %s at %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.clock.Format(time.RFC3339), code, wantCode, out, errOut)
	}
	for _, w := range want {
		if !strings.Contains(out+errOut, w) {
			r.t.Errorf("feature rollout %s at %s: output lacks %q\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.clock.Format(time.RFC3339), w, out, errOut)
		}
	}
	return out
}

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func repositoryPlan(t *testing.T) string {
	t.Helper()
	root, err := samtemplate.FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, rollout.PlanPath(ff)))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

var allEnvs = []string{"dev", "pre", "staging", "staging-ref", "production"}

// TestRolloutOfTheRepositoryPlanOnMoto runs the repository's plan from
// start to end with the command, the clock set to the plan's dates:
// each stage refused before its date or soak, then applied; the code
// stages printed; the flag deleted everywhere at the end.
func TestRolloutOfTheRepositoryPlanOnMoto(t *testing.T) {
	r := newRolloutRig(t, repositoryPlan(t), allEnvs...)
	nonProd := []string{"dev", "pre", "staging", "staging-ref"}

	r.clock = at("2026-11-18T12:00:00Z")
	r.expect(0, []string{
		"Rollout of " + ff,
		"production (stack partner-token-verification-production, us-west-2, profile rollout-test-production, endpoint http://",
		"absent, definition default: off",
		"auto-rollback: unknown (describe stack partner-token-verification-production",
		"1. pending  non-production, from 2026-11-19\n       feature set " + ff + " true --dev --pre --staging --staging-ref",
		"2. pending  production-gitlab, from 2026-11-20, soak 1d\n       feature set " + ff + " true --group=gitlab-org,gitlab-com --production",
		"4. pending  default-enabled, from 2026-12-08\n       merge request: default_enabled: true in config/feature_flags/" + ff + ".yml",
		"Next: stage 1 (non-production). May advance: no",
		"[held] earliest date: earliest date 2026-11-19 has not come: 12h to go",
		fmt.Sprintf("[ok]   alarms now: none of the %d watched alarms is in ALARM", 4*2*len(registry.Names())),
	}, "status", ff)
	r.expect(exitHeld, []string{"Not advancing to stage 1/5 non-production", "feature: stage 1 held back by: earliest date"}, "advance", ff)
	for _, env := range allEnvs {
		if v := r.value(env); v != nil {
			t.Fatalf("a held advance wrote %s: %+v", env, v)
		}
	}

	r.clock = at("2026-11-19T09:00:00Z")
	out := r.expect(0, []string{"Advancing to stage 1/5 non-production: feature set " + ff + " true --dev --pre --staging --staging-ref"}, "advance", ff, "--by=atiwari71")
	if strings.Count(out, "after:  version 1, on globally (updated 2026-11-19T09:00:00Z by atiwari71: rollout stage 1/5 non-production)") != 4 {
		t.Errorf("stage 1 output:\n%s", out)
	}
	for _, env := range nonProd {
		if v := r.value(env); v == nil || !v.Enabled {
			t.Errorf("stage 1: %s = %+v", env, v)
		}
	}

	r.clock = at("2026-11-19T15:00:00Z")
	r.expect(exitHeld, []string{"[held] earliest date: earliest date 2026-11-20 has not come: 9h to go"}, "advance", ff)

	r.clock = at("2026-11-20T09:30:00Z")
	r.expect(0, []string{"Advancing to stage 2/5 production-gitlab",
		"after:  version 1, on for groups gitlab-org, gitlab-com (updated 2026-11-20T09:30:00Z by operator: rollout stage 2/5 production-gitlab: GitLab.org verified in staging-canary)"},
		"advance", ff, "--reason=GitLab.org verified in staging-canary")

	r.clock = at("2026-11-20T20:00:00Z")
	r.expect(0, []string{
		"1. done     non-production",
		"2. current  production-gitlab, from 2026-11-20, soak 1d",
		"in effect in production; changed 2026-11-20T09:30:00Z, 10h 30m ago",
		"Next: stage 3 (production-global). May advance: no",
		"[held] earliest date: earliest date 2026-12-01 has not come",
		"[held] soak: stage 2 (production-gitlab) changed 2026-11-20T09:30:00Z, 10h 30m ago; soak 1d: 13h 30m to go",
		"[ok]   alarms during the soak: no watched alarm went to ALARM since 2026-11-20T09:30:00Z",
		fmt.Sprintf("[ok]   alarms now: none of the %d watched alarms is in ALARM", 2*len(registry.Names())),
		"Note: the alarm history of production could not be read",
	}, "status", ff)
	r.expect(exitHeld, []string{"feature: stage 3 held back by: earliest date, soak"}, "advance", ff)

	r.clock = at("2026-12-01T10:00:00Z")
	r.expect(0, []string{"Advancing to stage 3/5 production-global: feature set " + ff + " true --production",
		"before: version 1, on for groups gitlab-org, gitlab-com", "after:  version 2, on globally; groups gitlab-org, gitlab-com"}, "advance", ff)

	r.clock = at("2026-12-08T10:00:00Z")
	defFile := filepath.Join(r.repo, rollout.DefinitionPath(ff))
	def, _ := os.ReadFile(defFile)
	line := slices.Index(strings.Split(string(def), "\n"), "default_enabled: false") + 1
	r.expect(0, []string{"Stage 4/5 default-enabled is a code change; nothing was written. Make this merge request:",
		fmt.Sprintf("  config/feature_flags/%s.yml, line %d:\n  - default_enabled: false\n  + default_enabled: true", ff, line)}, "advance", ff)
	if err := os.WriteFile(defFile, []byte(strings.Replace(string(def), "default_enabled: false", "default_enabled: true", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	r.expect(0, []string{"Stages (definition config/feature_flags/" + ff + ".yml: default_enabled: true)",
		"3. done     production-global", "4. current  default-enabled", "Next: stage 5 (remove). May advance: no",
		"[held] earliest date: earliest date 2027-01-12 has not come", fmt.Sprintf("[ok]   alarms now: none of the %d watched alarms is in ALARM", 5*2*len(registry.Names()))}, "status", ff)

	r.clock = at("2027-01-12T10:00:00Z")
	r.expect(0, []string{"Stage 5/5 remove is a code change; nothing was written.",
		"  delete config/feature_flags/" + ff + ".yml",
		"    config/feature_flags/ff.go:3: // PartnerTokenVerification gates partner calls.  (uses PartnerTokenVerification)",
		"    config/feature_flags/ff.go:4: const PartnerTokenVerification = \"" + ff + "\"",
		"    config/rollouts/" + ff + ".yml:",
		"    shared/pipeline/dispatch.go:3: var gate = featureflags.PartnerTokenVerification  (uses PartnerTokenVerification)",
		"it deletes the flag's parameter in dev, pre, staging, staging-ref, production (feature delete " + ff + " --dev --pre --staging --staging-ref --production)",
	}, "advance", ff)
	for _, env := range allEnvs {
		if r.value(env) == nil && env != "production" && !slices.Contains(nonProd, env) {
			t.Errorf("%s deleted before the merge", env)
		}
	}
	if err := os.Remove(defFile); err != nil {
		t.Fatal(err)
	}
	out = r.expect(0, []string{"Advancing to stage 5/5 remove: feature delete " + ff + " --dev --pre --staging --staging-ref --production"}, "advance", ff)
	if strings.Count(out, ": deleted version") != 5 {
		t.Errorf("removal output:\n%s", out)
	}
	for _, env := range allEnvs {
		if v := r.value(env); v != nil {
			t.Errorf("%s still holds %+v", env, v)
		}
	}
	r.expect(0, []string{"5. done     remove", "definition removed and no parameter left", "The rollout is complete."}, "status", ff)
	r.expect(0, []string{"The rollout of " + ff + " is complete: nothing to advance."}, "advance", ff)
}

// TestRolloutRollbackOnMoto: rollback turns the flag off in every
// environment, production first, and reports each; an environment that
// cannot be reached is reported and the others are still done. advance,
// which must judge every environment, refuses to act without one.
func TestRolloutRollbackOnMoto(t *testing.T) {
	r := newRolloutRig(t, repositoryPlan(t), allEnvs...)
	r.clock = at("2026-11-19T10:00:00Z")
	r.expect(0, []string{"Advancing to stage 1/5"}, "advance", ff)
	r.clock = at("2026-11-20T10:00:00Z")
	r.expect(0, []string{"Advancing to stage 2/5"}, "advance", ff)

	// staging-ref's profile disappears from the operator's AWS config.
	var cfg strings.Builder
	for _, env := range []string{"dev", "pre", "staging", "production"} {
		fmt.Fprintf(&cfg, "[profile rollout-test-%s]\naws_access_key_id = testing\naws_secret_access_key = testing\n", env)
	}
	writeFile(t, filepath.Dir(r.env["AWS_CONFIG_FILE"]), filepath.Base(r.env["AWS_CONFIG_FILE"]), cfg.String())
	r.clock = at("2026-11-20T11:00:00Z")
	r.expect(exitEnvFailed, []string{"the flag could not be read (staging-ref: get feature flag parameter", "load AWS configuration for staging-ref", "nothing was changed"},
		"advance", ff, "--force", "--reason=staging-ref is down")
	var st rollout.Status
	out := r.expect(exitEnvFailed, []string{"feature: the flag could not be read in staging-ref"}, "status", ff, "--json")
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	if st.Current != 2 || st.Next != 3 || st.Env("staging-ref").Error == "" || !st.Env("production").Value.SameGates(featureflag.Value{Groups: []string{"gitlab-org", "gitlab-com"}}) {
		t.Errorf("status --json: current %d next %d envs %+v", st.Current, st.Next, st.Environments)
	}

	out = r.expect(exitEnvFailed, []string{"Rollback of " + ff, "FAILED: get feature flag parameter", "load AWS configuration for staging-ref",
		"feature: rollback failed in 1 of 5 environments: staging-ref"}, "rollback", ff, "--reason=p95 latency over 5s", "--by=oncall")
	if i, j := strings.Index(out, "production (stack"), strings.Index(out, "dev (stack"); i < 0 || j < i {
		t.Errorf("production is not rolled back first:\n%s", out)
	}
	if strings.Count(out, ", off (updated 2026-11-20T11:00:00Z by oncall: rollout rollback: p95 latency over 5s)") != 4 {
		t.Errorf("rollback output:\n%s", out)
	}
	for _, env := range []string{"dev", "pre", "staging", "production"} {
		if v := r.value(env); v == nil || !v.Off() || v.UpdatedBy != "oncall" {
			t.Errorf("%s after rollback: %+v", env, v)
		}
	}
	if v := r.value("staging-ref"); v == nil || !v.Enabled {
		t.Errorf("staging-ref, which could not be reached, changed: %+v", v)
	}
	out = r.expect(exitEnvFailed, nil, "rollback", ff, "--dry-run")
	if strings.Count(out, "unchanged, nothing written") != 4 {
		t.Errorf("second rollback:\n%s", out)
	}
}

func TestRolloutCommandLine(t *testing.T) {
	r := newRolloutRig(t, repositoryPlan(t), allEnvs...)
	r.clock = at("2026-11-20T10:00:00Z")
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"no command", []string{}, "rollout needs status, advance or rollback"},
		{"unknown command", []string{"start", ff}, `unknown rollout command "start"`},
		{"no name", []string{"status"}, "rollout status needs the flag's NAME"},
		{"two names", []string{"status", ff, "other"}, `unexpected argument "other"`},
		{"force without reason", []string{"advance", ff, "--force"}, "--force needs --reason"},
		{"environment given", []string{"advance", ff, "--production"}, "rollout takes no environment: the plan names them (--production)"},
		{"option of another command", []string{"status", ff, "--force"}, "--force does not apply to rollout status"},
		{"unknown option", []string{"status", ff, "--soak=1h"}, "unknown option --soak"},
		{"not a flag name", []string{"status", "../x"}, `"../x" is not a feature flag name`},
		{"no plan", []string{"status", "some_other_flag"}, "read rollout plan"},
		{"reason too long", []string{"rollback", ff, "--reason=" + strings.Repeat("x", 600)}, "--by/--reason: reason is 600 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := r.rollout(tt.args...)
			if code != exitUsage || out != "" || !strings.Contains(errOut, tt.wantErr) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d and %q", code, out, errOut, exitUsage, tt.wantErr)
			}
		})
	}
	for _, env := range allEnvs {
		if v := r.value(env); v != nil {
			t.Errorf("an invalid command line wrote %s", env)
		}
	}
	r.env["AWS_ENDPOINT_URL"] = r.moto.Endpoint
	var out, errOut bytes.Buffer
	if code := runRollout(context.Background(), []string{"rollout", "rollback", ff}, &out, &errOut, func(k string) string { return r.env[k] }, r.repo, time.Now); code != exitUsage ||
		!strings.Contains(errOut.String(), "AWS_ENDPOINT_URL is set") {
		t.Errorf("local endpoint left in the shell: exit %d %s", code, errOut.String())
	}
	help, _, code := r.rollout("--help")
	if code != 0 || !strings.Contains(help, "feature rollout advance  NAME") {
		t.Errorf("help: %d %s", code, help)
	}
}

func TestIsRollout(t *testing.T) {
	tests := []struct {
		args []string
		want bool
	}{
		{[]string{"rollout", "status", ff}, true},
		{[]string{"--by", "ci", "rollout", "advance", ff}, true},
		{[]string{"--reason", "x", "--json", "rollout", "status", ff}, true},
		{[]string{"--", "rollout", "status"}, true},
		{[]string{"set", ff, "true", "--dev"}, false},
		{[]string{"--reason=rollout", "set", ff, "false", "--dev"}, false},
		{[]string{"--by", "rollout", "set"}, false},
		{[]string{}, false},
	}
	for _, tt := range tests {
		if got := isRollout(tt.args); got != tt.want {
			t.Errorf("isRollout(%q) = %v, want %v", tt.args, got, tt.want)
		}
	}
}

// TestRolloutBinaryOnMoto runs the built command on the repository's plan
// with its clock pinned at dates around the plan (never the day the test
// runs): options before "rollout"; before the plan every advance is held by
// its date; from mid-plan on, stage 1 applies, an advance is refused while
// a watched alarm of the next stage is in ALARM and allowed once it clears,
// and stage 3 is then held (by its date mid-plan, by stage 2's soak later);
// the rollback turns everything off at every date.
func TestRolloutBinaryOnMoto(t *testing.T) {
	alarm := "SecretDetectionPartnerAPIHighLatency-partner-token-verification-production-gcp"
	for _, tc := range []struct {
		name, now string
		started   bool   // the plan's first two dates have come
		held3     string // what holds stage 3 back
	}{
		{name: "before the plan", now: "2026-11-01T10:00:00Z"},
		{name: "mid-plan", now: "2026-11-21T10:00:00Z", started: true, held3: "earliest date, soak"},
		{name: "after the removal date", now: "2027-02-01T10:00:00Z", started: true, held3: "soak"},
		{name: "2030", now: "2030-06-15T10:00:00Z", started: true, held3: "soak"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRolloutRig(t, repositoryPlan(t), allEnvs...)
			runBin := func(args ...string) (string, string, int) {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				defer cancel()
				cmd := exec.CommandContext(ctx, featureBin, append(args, "--endpoint-url="+r.moto.Endpoint)...)
				cmd.Env = []string{testClockEnv + "=" + tc.now}
				for k, v := range r.env {
					cmd.Env = append(cmd.Env, k+"="+v)
				}
				cmd.Dir = filepath.Join(r.repo, "shared") // the repository is found upwards, by samconfig.toml
				var out, errOut bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &errOut
				err := cmd.Run()
				var ee *exec.ExitError
				if err != nil && !errors.As(err, &ee) {
					t.Fatalf("run feature: %v", err)
				}
				return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
			}
			if !tc.started {
				if out, errOut, code := runBin("rollout", "status", ff); code != 0 || !strings.Contains(out, "Next: stage 1 (non-production). May advance: no") ||
					!strings.Contains(out, "[held] earliest date: earliest date 2026-11-19 has not come: 17d 14h to go") {
					t.Fatalf("status: exit %d\n%s\n%s", code, out, errOut)
				}
				if out, errOut, code := runBin("--by", "ci", "rollout", "advance", ff); code != exitHeld || !strings.Contains(errOut, "held back by: earliest date") {
					t.Fatalf("advance before the plan: exit %d\n%s\n%s", code, out, errOut)
				}
				for _, env := range allEnvs {
					if v := r.value(env); v != nil {
						t.Fatalf("a held advance wrote %s: %+v", env, v)
					}
				}
			} else {
				if out, errOut, code := runBin("rollout", "status", ff); code != 0 || !strings.Contains(out, "Next: stage 1 (non-production). May advance: yes") {
					t.Fatalf("status: exit %d\n%s\n%s", code, out, errOut)
				}
				if out, errOut, code := runBin("--by", "ci", "rollout", "advance", ff); code != 0 || strings.Count(out, "by ci: rollout stage 1/5 non-production)") != 4 {
					t.Fatalf("advance: exit %d\n%s\n%s", code, out, errOut)
				}
				setState := func(state cwtypes.StateValue) {
					if _, err := r.cloudWatch("production").SetAlarmState(context.Background(), &cloudwatch.SetAlarmStateInput{
						AlarmName: aws.String(alarm), StateValue: state, StateReason: aws.String("test")}); err != nil {
						t.Fatal(err)
					}
				}
				setState(cwtypes.StateValueAlarm)
				out, errOut, code := runBin("rollout", "advance", ff)
				if code != exitHeld || !strings.Contains(out, "[held] alarms now: in ALARM now: production "+alarm) || !strings.Contains(errOut, "held back by: alarms now") {
					t.Fatalf("advance during an alarm: exit %d\n%s\n%s", code, out, errOut)
				}
				if v := r.value("production"); v != nil {
					t.Fatalf("a held advance wrote production: %+v", v)
				}
				setState(cwtypes.StateValueOk)
				if out, errOut, code := runBin("rollout", "advance", ff); code != 0 || !strings.Contains(out, "on for groups gitlab-org, gitlab-com") {
					t.Fatalf("advance after the alarm: exit %d\n%s\n%s", code, out, errOut)
				}
				// Whether moto's alarm stamps (the real time) fall within
				// the pinned soak depends on the day the test runs, so
				// only the checks that follow from the pinned date are
				// asserted.
				out, errOut, code = runBin("rollout", "advance", ff)
				if code != exitHeld {
					t.Fatalf("advance to stage 3: exit %d, want held\n%s\n%s", code, out, errOut)
				}
				for _, check := range []string{"earliest date", "soak"} {
					if held := strings.Contains(out, "[held] "+check+":"); held != strings.Contains(tc.held3, check) {
						t.Errorf("advance to stage 3: held by %s = %v, want it only for %q\n%s", check, held, tc.held3, out)
					}
				}
			}
			// The rollback writes "off" where the flag was set and
			// nothing where it is absent (off by its definition).
			want := "after:  unchanged, nothing written"
			if tc.started {
				want = "off (updated"
			}
			if out, errOut, code := runBin("rollout", "rollback", ff, "--reason=test over"); code != 0 || strings.Count(out, want) != 5 {
				t.Fatalf("rollback: exit %d, want %q 5 times\n%s\n%s", code, want, out, errOut)
			}
			for _, env := range allEnvs {
				if v := r.value(env); (v == nil) == tc.started || (v != nil && !v.Off()) {
					t.Errorf("%s after rollback: %+v", env, v)
				}
			}
		})
	}
}
