package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/cmd/feature/rollout"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/awstest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/localstack"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/samtemplate"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/featureflag"
)

// localRig is the local AWS of `make run ARGS=--keep` (the rollout
// environments of localstack.ApplyRollout on a fresh moto) and a copy of
// the repository's samconfig.toml, rollout plan and flag definition.
type localRig struct {
	t    *testing.T
	moto *awstest.Moto
	repo string
}

func newLocalRig(t *testing.T) *localRig {
	t.Helper()
	m := awstest.Shared(t)
	if err := m.Reset(); err != nil {
		t.Fatal(err)
	}
	root, err := samtemplate.FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := samtemplate.Load(filepath.Join(root, samtemplate.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if err := localstack.ApplyRollout(context.Background(), tpl, m.Config()); err != nil {
		t.Fatal(err)
	}
	repo := t.TempDir()
	for _, rel := range []string{"samconfig.toml", rollout.PlanPath(ff), rollout.DefinitionPath(ff)} {
		raw, err := os.ReadFile(filepath.Join(root, rel))
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(repo, filepath.Dir(rel))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, dir, filepath.Base(rel), string(raw))
	}
	return &localRig{t: t, moto: m, repo: repo}
}

// run is `feature rollout ... --local --endpoint-url=<moto>`. The
// command's own clock fails the test: every date comes from --now.
func (r *localRig) run(args ...string) (out string, code int) {
	r.t.Helper()
	var stdout, stderr bytes.Buffer
	args = append([]string{"rollout"}, append(args, "--local", "--endpoint-url="+r.moto.Endpoint)...)
	if args[1] != "status" {
		args = append(args, "--by=tester")
	}
	env := map[string]string{"HOME": r.t.TempDir()}
	code = runRollout(context.Background(), args, &stdout, &stderr, func(k string) string { return env[k] }, r.repo, func() time.Time {
		r.t.Errorf("feature rollout %s read the real clock despite --now", strings.Join(args, " "))
		return time.Time{}
	})
	return stdout.String() + stderr.String(), code
}

func (r *localRig) expect(code int, want []string, args ...string) string {
	r.t.Helper()
	out, got := r.run(args...)
	if got != code {
		r.t.Fatalf("feature rollout %s: exit %d, want %d\n%s", strings.Join(args, " "), got, code, out)
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			r.t.Errorf("feature rollout %s: output lacks %q\n%s", strings.Join(args, " "), w, out)
		}
	}
	return out
}

func (r *localRig) config(env string) aws.Config {
	e, ok := localstack.RolloutEnvironmentNamed(env)
	if !ok {
		r.t.Fatalf("no local environment %s", env)
	}
	cfg := r.moto.Config()
	cfg.Region = e.Region
	return cfg
}

// value is the flag in a local environment; nil once its parameter is deleted.
func (r *localRig) value(env string) *featureflag.Value {
	r.t.Helper()
	st, err := featureflag.NewStore(ssm.NewFromConfig(r.config(env)), time.Now).Get(context.Background(), ff, featureflag.DefaultParameter(ff))
	if err != nil {
		r.t.Fatal(err)
	}
	if !st.Found {
		return nil
	}
	return &st.Value
}

// setAlarm sets an alarm's state as `aws cloudwatch set-alarm-state` does
// and returns when moto says it changed (moto stamps it with the real time).
func (r *localRig) setAlarm(env, name, state string) time.Time {
	r.t.Helper()
	cw := cloudwatch.NewFromConfig(r.config(env), rollout.LocalCloudWatchProtocol)
	ctx := context.Background()
	if _, err := cw.SetAlarmState(ctx, &cloudwatch.SetAlarmStateInput{AlarmName: aws.String(name), StateValue: cwtypes.StateValue(state), StateReason: aws.String("test")}); err != nil {
		r.t.Fatal(err)
	}
	out, err := cw.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{AlarmNames: []string{name}})
	if err != nil || len(out.MetricAlarms) != 1 {
		r.t.Fatalf("DescribeAlarms %s: %v", name, err)
	}
	return aws.ToTime(out.MetricAlarms[0].StateUpdatedTimestamp)
}

func day(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t
}

func latest(ts ...time.Time) time.Time {
	out := ts[0]
	for _, t := range ts[1:] {
		if t.After(out) {
			out = t
		}
	}
	return out
}

// TestRolloutLocalWalksThePlan walks the repository's rollout plan, with
// its real dates passed as --now, on the local environments: each stage
// waits for its date, a production alarm holds the next one back while it
// fires and for the soak after it, the code stages ask for their merge
// requests, and the removal deletes the flag in every environment. The
// local stack's own flag (the region of make run's functions) is never
// touched.
func TestRolloutLocalWalksThePlan(t *testing.T) {
	r := newLocalRig(t)
	r.expect(0, []string{"dev (stack local-dev, us-east-2, endpoint " + r.moto.Endpoint + ")", "May advance: no", "earliest date 2026-11-19 has not come"},
		"status", ff, "--now=2026-11-18")
	r.expect(exitHeld, []string{"Not advancing to stage 1/5 non-production"}, "advance", ff, "--now=2026-11-18")

	r.expect(0, []string{"Advancing to stage 1/5 non-production"}, "advance", ff, "--now=2026-11-19")
	for _, env := range []string{"dev", "pre", "staging", "staging-ref"} {
		if v := r.value(env); v == nil || !v.Enabled || v.UpdatedBy != "tester" || !v.UpdatedAt.Equal(day("2026-11-19")) {
			t.Errorf("stage 1 in %s: %+v", env, v)
		}
	}
	if v := r.value("production"); v == nil || v.Enabled {
		t.Errorf("stage 1 changed production: %+v", v)
	}

	r.expect(exitHeld, []string{"earliest date 2026-11-20 has not come"}, "advance", ff, "--now=2026-11-19T23:00:00Z")
	r.expect(0, []string{"Advancing to stage 2/5 production-gitlab"}, "advance", ff, "--now=2026-11-20")
	if v := r.value("production"); v == nil || v.Enabled || strings.Join(v.Groups, ",") != "gitlab-org,gitlab-com" {
		t.Errorf("stage 2 in production: %+v", v)
	}

	// A production alarm fires: stage 3 is held while it is in ALARM, and
	// for a whole soak after it is OK again.
	alarm := rollout.AlarmName("SecretDetectionPartnerAPIHighErrorRate", "local-production", "postman")
	r.setAlarm("production", alarm, rollout.StateAlarm)
	stage3 := latest(day("2026-12-01"), time.Now().UTC().Truncate(time.Second))
	r.expect(exitHeld, []string{"in ALARM now: production " + alarm}, "advance", ff, "--now="+stage3.Format(time.RFC3339))
	okAt := r.setAlarm("production", alarm, rollout.StateOK)
	stage3 = latest(day("2026-12-01"), okAt.Add(24*time.Hour+time.Minute)).Truncate(time.Second)
	r.expect(0, []string{"Advancing to stage 3/5 production-global"}, "advance", ff, "--now="+stage3.Format(time.RFC3339))
	if v := r.value("production"); v == nil || !v.Enabled || v.Reason != "rollout stage 3/5 production-global" {
		t.Errorf("stage 3 in production: %+v", v)
	}

	// The code stages: a merge request each, done once the checkout says so.
	stage4 := latest(day("2026-12-08"), stage3.Add(25*time.Hour))
	r.expect(0, []string{"is a code change; nothing was written", "default_enabled: true"}, "advance", ff, "--now="+stage4.Format(time.RFC3339))
	def := filepath.Join(r.repo, rollout.DefinitionPath(ff))
	raw, err := os.ReadFile(def)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Dir(def), filepath.Base(def), strings.Replace(string(raw), "default_enabled: false", "default_enabled: true", 1))
	stage5 := latest(day("2027-01-12"), stage4.Add(time.Hour))
	r.expect(0, []string{"delete " + rollout.DefinitionPath(ff)}, "advance", ff, "--now="+stage5.Format(time.RFC3339))
	if err := os.Remove(def); err != nil {
		t.Fatal(err)
	}
	r.expect(0, []string{"Advancing to stage 5/5 remove"}, "advance", ff, "--now="+stage5.Format(time.RFC3339))
	for _, e := range localstack.RolloutEnvironments {
		if v := r.value(e.Name); v != nil {
			t.Errorf("after the removal, %s still has the flag: %+v", e.Name, v)
		}
	}
	r.expect(0, []string{"The rollout is complete."}, "status", ff, "--now="+stage5.Format(time.RFC3339))

	cfg := r.moto.Config()
	if _, err := ssm.NewFromConfig(cfg).GetParameter(context.Background(), &ssm.GetParameterInput{Name: aws.String(featureflag.DefaultParameter(ff))}); err == nil {
		t.Errorf("the plan wrote the flag of the local stack's own region %s", cfg.Region)
	}
}

// TestRolloutLocalRollback turns the flag off in every local environment
// that stage 1 turned on, at the --now given.
func TestRolloutLocalRollback(t *testing.T) {
	r := newLocalRig(t)
	r.expect(0, nil, "advance", ff, "--now=2026-11-19")
	r.expect(0, []string{"Rollback of " + ff}, "rollback", ff, "--now=2026-11-19T12:00:00Z", "--reason=trying it")
	for _, env := range []string{"dev", "pre", "staging", "staging-ref"} {
		if v := r.value(env); v == nil || v.Enabled || !v.UpdatedAt.Equal(day("2026-11-19").Add(12*time.Hour)) {
			t.Errorf("after the rollback, %s: %+v", env, v)
		}
	}
	if v := r.value("production"); v == nil || v.Enabled {
		t.Errorf("after the rollback, production: %+v", v)
	}
}

func TestRolloutLocalUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"rollout", "status", ff, "--now=2026-11-19"}, "--now needs --local"},
		{[]string{"rollout", "status", ff, "--local", "--now=19 Nov"}, "want a day (2026-11-19) or an RFC 3339 time"},
		{[]string{"rollout", "status", ff, "--local"}, "--local needs the local AWS endpoint: start it with `make run ARGS=--keep`"},
	} {
		var out, errOut bytes.Buffer
		root, _ := samtemplate.FindRoot()
		code := runRollout(context.Background(), tc.args, &out, &errOut, func(string) string { return "" }, root, time.Now)
		if code != exitUsage || !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %q", tc.args, code, errOut.String(), tc.want)
		}
	}
}
