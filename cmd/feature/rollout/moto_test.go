package rollout

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	featureflags "gitlab.com/gitlab-org/secret-detection/partner-token-verification/config/feature_flags"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/awstest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/samtemplate"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/featureflag"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/registry"
)

func TestMain(m *testing.M) { awstest.Main(m) }

const flag = featureflags.PartnerTokenVerification

// motoEnvs puts each environment in its own region of one moto_server, so
// each has its own parameter store and alarms, as each has its own account.
var motoEnvs = []struct{ name, region string }{
	{"dev", "us-east-1"}, {"pre", "ap-south-1"}, {"staging", "eu-west-1"},
	{"staging-ref", "eu-central-1"}, {"production", "us-west-2"},
}

func stackOf(env string) string { return "partner-token-verification-" + env }

// clock is the injectable clock of the tests.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// motoRig is a runner over moto with a repository of its own.
type motoRig struct {
	t      *testing.T
	moto   *awstest.Moto
	root   string
	clock  *clock
	runner *Runner
}

// testPlan is the repository's plan with dates around base and a
// one-hour soak on the first stage, so every check is exercised.
func testPlan(base time.Time) string {
	d := func(days int) string { return base.AddDate(0, 0, days).Format(dateLayout) }
	return fmt.Sprintf(`flag: %[1]s
stages:
  - name: non-production
    environments: [dev, pre, staging, staging-ref]
    set: {value: true}
    earliest: %[2]s
    soak: 1h
    alarms: [SecretDetectionPartnerAPIHighErrorRate, SecretDetectionPartnerAPIHighLatency]
  - name: production-gitlab
    environments: [production]
    set: {value: true, groups: [gitlab-org, gitlab-com]}
    earliest: %[3]s
    soak: 24h
    alarms: [SecretDetectionPartnerAPIHighErrorRate, SecretDetectionPartnerAPIHighLatency]
  - name: production-global
    environments: [production]
    set: {value: true}
    earliest: %[4]s
    soak: 24h
    alarms: [SecretDetectionPartnerAPIHighErrorRate, SecretDetectionPartnerAPIHighLatency]
  - name: default-enabled
    code_change: default_enabled
    earliest: %[5]s
  - name: remove
    code_change: remove
    environments: [dev, pre, staging, staging-ref, production]
    earliest: %[6]s
    alarms: [SecretDetectionPartnerAPIHighErrorRate, SecretDetectionPartnerAPIHighLatency]
`, flag, d(-2), d(-1), d(3), d(5), d(6))
}

// motoBase is where the test clock of the moto rig starts: a fixed date, so
// no test of the plan depends on the day it runs.
var motoBase = time.Date(2026, 11, 18, 9, 0, 0, 0, time.UTC)

func newMotoRig(t *testing.T) *motoRig { return newMotoRigAt(t, motoBase) }

// newMotoRigAt is newMotoRig with the test clock starting at base.
func newMotoRigAt(t *testing.T, base time.Time) *motoRig {
	t.Helper()
	m := awstest.Shared(t)
	if err := m.Reset(); err != nil {
		t.Fatal(err)
	}
	def, err := os.ReadFile(filepath.Join(repoRoot(t), DefinitionPath(flag)))
	if err != nil {
		t.Fatal(err)
	}
	r := &motoRig{t: t, moto: m, clock: &clock{}}
	r.runner = &Runner{Now: r.clock.now, Envs: map[string]*Environment{}}
	// The test's clock starts two hours before moto's present, so a stage
	// can have soaked by the time an alarm goes off; moto's times are
	// moved onto the test's timeline (shiftedCloudWatch), so the plan's
	// dates are the same whatever the day the test runs.
	r.clock.t = base
	offset := time.Until(base.Add(2 * time.Hour))
	for _, e := range motoEnvs {
		cfg := awstest.FastRetries(m.Config())
		cfg.Region = e.region
		r.runner.Envs[e.name] = &Environment{
			Name: e.name, Stack: stackOf(e.name), Parameter: featureflag.DefaultParameter(flag),
			SSM:            ssm.NewFromConfig(cfg),
			CloudWatch:     shiftedCloudWatch{Client: cloudwatch.NewFromConfig(cfg, LocalCloudWatchProtocol), offset: offset},
			CloudFormation: cloudformation.NewFromConfig(cfg),
		}
	}
	r.createAlarms()
	r.root = writeTree(t, map[string]string{
		DefinitionPath(flag):        string(def),
		PlanPath(flag):              testPlan(base),
		"config/feature_flags/f.go": "package featureflags\n\nconst PartnerTokenVerification = \"" + flag + "\"\n",
		"shared/pipeline/gate.go":   "package pipeline\n\nvar name = featureflags.PartnerTokenVerification\n",
	})
	plan, err := Load(filepath.Join(r.root, PlanPath(flag)))
	if err != nil {
		t.Fatal(err)
	}
	r.runner.Plan, r.runner.Root = plan, r.root
	return r
}

// createAlarms creates every partner alarm of template.yaml in every
// environment, named as the template names them in that stack.
func (r *motoRig) createAlarms() {
	tpl, err := samtemplate.Load(filepath.Join(repoRoot(r.t), samtemplate.FileName))
	if err != nil {
		r.t.Fatal(err)
	}
	for _, e := range motoEnvs {
		for _, a := range tpl.Alarms {
			name, err := a.NameIn(samtemplate.SymbolicScope(stackOf(e.name), e.region, samtemplate.LocalAccountID))
			if err != nil {
				r.t.Fatal(err)
			}
			if !strings.HasPrefix(name, "SecretDetectionPartnerAPI") {
				continue
			}
			_, err = r.cw(e.name).PutMetricAlarm(context.Background(), &cloudwatch.PutMetricAlarmInput{
				AlarmName: aws.String(name), Namespace: aws.String("SecretDetection/PartnerTokenVerification"),
				MetricName: aws.String("PartnerAPIErrors"), Statistic: cwtypes.StatisticSum, Period: aws.Int32(60),
				EvaluationPeriods: aws.Int32(5), Threshold: aws.Float64(a.Threshold),
				ComparisonOperator: cwtypes.ComparisonOperatorGreaterThanThreshold,
			})
			if err != nil {
				r.t.Fatalf("PutMetricAlarm %s: %v", name, err)
			}
		}
	}
}

func (r *motoRig) cw(env string) *cloudwatch.Client {
	return r.runner.Envs[env].CloudWatch.(shiftedCloudWatch).Client
}

// shiftedCloudWatch puts moto's alarm times on the test's timeline: moto
// stamps alarm changes with the real time, the test runs at fixed dates, so
// times read are moved by offset and the times asked for are moved back.
type shiftedCloudWatch struct {
	*cloudwatch.Client
	offset time.Duration
}

func (s shiftedCloudWatch) DescribeAlarms(ctx context.Context, in *cloudwatch.DescribeAlarmsInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.DescribeAlarmsOutput, error) {
	out, err := s.Client.DescribeAlarms(ctx, in, optFns...)
	if err != nil {
		return out, err
	}
	for i, a := range out.MetricAlarms {
		out.MetricAlarms[i].StateUpdatedTimestamp = s.shift(a.StateUpdatedTimestamp, s.offset)
		out.MetricAlarms[i].AlarmConfigurationUpdatedTimestamp = s.shift(a.AlarmConfigurationUpdatedTimestamp, s.offset)
		out.MetricAlarms[i].StateTransitionedTimestamp = s.shift(a.StateTransitionedTimestamp, s.offset)
	}
	return out, nil
}

func (s shiftedCloudWatch) DescribeAlarmHistory(ctx context.Context, in *cloudwatch.DescribeAlarmHistoryInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.DescribeAlarmHistoryOutput, error) {
	moved := *in
	moved.StartDate, moved.EndDate = s.shift(in.StartDate, -s.offset), s.shift(in.EndDate, -s.offset)
	out, err := s.Client.DescribeAlarmHistory(ctx, &moved, optFns...)
	if err != nil {
		return out, err
	}
	for i, h := range out.AlarmHistoryItems {
		out.AlarmHistoryItems[i].Timestamp = s.shift(h.Timestamp, s.offset)
	}
	return out, nil
}

func (shiftedCloudWatch) shift(t *time.Time, d time.Duration) *time.Time {
	if t == nil {
		return nil
	}
	return aws.Time(t.Add(d))
}

// setAlarm changes an alarm's state as CloudWatch would, and moves the
// test clock to the moment it happened.
func (r *motoRig) setAlarm(env, name, state string) {
	r.t.Helper()
	_, err := r.cw(env).SetAlarmState(context.Background(), &cloudwatch.SetAlarmStateInput{
		AlarmName: aws.String(name), StateValue: cwtypes.StateValue(state), StateReason: aws.String("test")})
	if err != nil {
		r.t.Fatalf("SetAlarmState %s %s: %v", name, state, err)
	}
	if ts := r.latestChange(env, name); ts.After(r.clock.t) {
		r.clock.t = ts.Add(time.Second)
	}
}

// latestChange is when moto says the alarm last changed state.
func (r *motoRig) latestChange(env, name string) time.Time {
	r.t.Helper()
	out, err := r.runner.Envs[env].CloudWatch.DescribeAlarms(context.Background(), &cloudwatch.DescribeAlarmsInput{AlarmNames: []string{name}})
	if err != nil || len(out.MetricAlarms) != 1 {
		r.t.Fatalf("DescribeAlarms %s: %v", name, err)
	}
	return aws.ToTime(out.MetricAlarms[0].StateUpdatedTimestamp)
}

// value is the flag's parameter in an environment, read through
// featureflag.Store: nil when absent; an invalid stored value fails the test.
func (r *motoRig) value(env string) *featureflag.Value {
	r.t.Helper()
	st, err := featureflag.NewStore(r.runner.Envs[env].SSM, r.clock.now).Get(context.Background(), flag, featureflag.DefaultParameter(flag))
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

func (r *motoRig) advance(o AdvanceOptions) *AdvanceResult {
	r.t.Helper()
	if o.By == "" {
		o.By = "operator"
	}
	res, err := r.runner.Advance(context.Background(), o)
	if err != nil {
		r.t.Fatalf("advance: %v", err)
	}
	return res
}

// expectHeld checks that an advance is refused by exactly the named checks.
func (r *motoRig) expectHeld(step string, want map[string]string) {
	r.t.Helper()
	res := r.advance(AdvanceOptions{})
	if !res.Held || len(res.Updates)+len(res.Deletions) > 0 || res.Edit != nil {
		r.t.Fatalf("%s: advance not held: %+v", step, res)
	}
	held := res.Status.Held()
	var names []string
	for _, c := range held {
		names = append(names, c.Name)
		if w, ok := want[c.Name]; !ok || !strings.Contains(c.Detail, w) {
			r.t.Errorf("%s: check %q held with %q, want %q", step, c.Name, c.Detail, w)
		}
	}
	if len(held) != len(want) {
		r.t.Errorf("%s: held by %v, want %d checks %v", step, names, len(want), want)
	}
}

func (r *motoRig) expectStages(step string, want ...string) {
	r.t.Helper()
	st, err := r.runner.Status(context.Background())
	if err != nil {
		r.t.Fatal(err)
	}
	var got []string
	for _, s := range st.Stages {
		got = append(got, s.State)
	}
	if !slices.Equal(got, want) {
		r.t.Errorf("%s: stages %v, want %v", step, got, want)
	}
	if len(st.Warnings) > 0 {
		r.t.Errorf("%s: warnings %v", step, st.Warnings)
	}
}

// TestPlanOnMoto runs the whole plan on moto with the test's clock:
// each stage is refused while a check fails, during and right after an
// alarm, and applied once the soak has passed quietly.
// It runs at two dates years apart: every date it reads is the test
// clock's, so both must pass alike.
func TestPlanOnMoto(t *testing.T) {
	for _, base := range []time.Time{motoBase, time.Date(2030, 6, 15, 23, 30, 0, 0, time.UTC)} {
		t.Run(base.Format(dateLayout), func(t *testing.T) { planOnMoto(t, newMotoRigAt(t, base)) })
	}
}

func planOnMoto(t *testing.T, r *motoRig) {
	base := r.clock.t
	nonProd := []string{"dev", "pre", "staging", "staging-ref"}

	// Nothing applied: stage 1 may start (its date has come, nothing is in ALARM).
	st, err := r.runner.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Current != 0 || st.Next != 1 || !st.MayAdvance || len(st.Alarms) != 4*2*len(registry.Names()) {
		t.Fatalf("initial status: current %d next %d may %v, %d alarms, checks %+v", st.Current, st.Next, st.MayAdvance, len(st.Alarms), st.Checks)
	}
	r.expectStages("initial", Pending, Pending, Pending, Pending, Pending)

	res := r.advance(AdvanceOptions{By: "atiwari71"})
	if res.Held || res.Stage != 1 || len(res.Updates) != 4 || len(res.Failed()) != 0 {
		t.Fatalf("stage 1: %+v", res)
	}
	for _, env := range nonProd {
		v := r.value(env)
		if v == nil || !v.Enabled || v.UpdatedBy != "atiwari71" || !v.UpdatedAt.Equal(base) || v.Reason != "rollout stage 1/5 non-production" {
			t.Errorf("stage 1 in %s: %+v", env, v)
		}
	}
	if r.value("production") != nil {
		t.Error("stage 1 wrote production")
	}
	r.expectStages("stage 1", Current, Pending, Pending, Pending, Pending)

	// Right after the change: the 1h soak holds stage 2 back.
	r.clock.t = base.Add(time.Minute)
	r.expectHeld("soak", map[string]string{CheckSoak: "1m ago; soak 1h: 59m to go"})

	// An alarm in staging after the soak time: refused while it is in ALARM...
	alarm := AlarmName("SecretDetectionPartnerAPIHighErrorRate", stackOf("staging"), finding.PartnerPostman)
	r.setAlarm("staging", alarm, StateAlarm)
	if r.clock.t.Sub(base) < time.Hour {
		t.Fatalf("test timeline: the alarm came %v after the change, within the soak", r.clock.t.Sub(base))
	}
	r.expectHeld("in ALARM", map[string]string{
		CheckAlarmsNow:    "in ALARM now: staging " + alarm,
		CheckAlarmsInSoak: "staging " + alarm + ": in ALARM since",
	})
	// ... and right after it went back to OK: the soak starts again.
	r.setAlarm("staging", alarm, StateOK)
	okAt := r.latestChange("staging", alarm)
	r.expectHeld("right after the alarm", map[string]string{CheckAlarmsInSoak: "staging " + alarm + ": changed state to OK at"})
	r.clock.t = okAt.Add(time.Hour - time.Second)
	r.expectHeld("almost quiet for the soak", map[string]string{CheckAlarmsInSoak: "59m of the 1h soak: 1s to go"})

	// Quiet for a whole soak: stage 2 is applied in production only.
	r.clock.t = okAt.Add(time.Hour)
	stage2At := r.clock.t
	res = r.advance(AdvanceOptions{Reason: "GitLab.org projects verified"})
	if res.Held || res.Stage != 2 || len(res.Updates) != 1 || res.Updates[0].Environment != "production" {
		t.Fatalf("stage 2: %+v", res)
	}
	if v := r.value("production"); v == nil || v.Enabled || !slices.Equal(v.Groups, []string{"gitlab-org", "gitlab-com"}) ||
		v.Reason != "rollout stage 2/5 production-gitlab: GitLab.org projects verified" {
		t.Errorf("stage 2 in production: %+v", v)
	}
	r.expectStages("stage 2", Done, Current, Pending, Pending, Pending)

	// The 24h soak has passed, but stage 3's date has not come.
	r.clock.t = stage2At.Add(25 * time.Hour)
	r.expectHeld("before the date", map[string]string{CheckEarliest: "earliest date " + base.AddDate(0, 0, 3).Format(dateLayout) + " has not come"})

	// --force needs a reason; with one, the overridden check is written with the change.
	if _, err := r.runner.Advance(context.Background(), AdvanceOptions{By: "operator", Force: true}); !errors.Is(err, ErrForceNeedsReason) {
		t.Fatalf("force without reason: %v", err)
	}
	res = r.advance(AdvanceOptions{Force: true, Reason: "incident review done early"})
	if res.Held || res.Stage != 3 || len(res.Forced) != 1 || res.Forced[0].Name != CheckEarliest {
		t.Fatalf("forced stage 3: %+v", res)
	}
	stage3At := r.clock.t
	if v := r.value("production"); v == nil || !v.Enabled ||
		v.Reason != "rollout stage 3/5 production-global: incident review done early (forced past: earliest date)" {
		t.Errorf("stage 3 in production: %+v", v)
	}
	r.expectStages("stage 3", Done, Done, Current, Pending, Pending)

	// Stage 4 is a code change: the exact edit, nothing written.
	r.clock.t = base.AddDate(0, 0, 5).Add(time.Hour)
	if r.clock.t.Sub(stage3At) < 24*time.Hour {
		t.Fatalf("test timeline: stage 3 soak not over at stage 4's date")
	}
	defPath := filepath.Join(r.root, DefinitionPath(flag))
	def, _ := os.ReadFile(defPath)
	line := slices.Index(strings.Split(string(def), "\n"), "default_enabled: false") + 1
	res = r.advance(AdvanceOptions{})
	if res.Held || res.Stage != 4 || res.Edit == nil || len(res.Updates) != 0 || line == 0 ||
		*res.Edit != (Edit{Path: DefinitionPath(flag), Line: line, Old: "default_enabled: false", New: "default_enabled: true"}) {
		t.Fatalf("stage 4: %+v %+v", res, res.Edit)
	}
	r.expectStages("stage 4 printed", Done, Done, Current, Pending, Pending)
	if err := os.WriteFile(defPath, []byte(strings.Replace(string(def), "default_enabled: false", "default_enabled: true", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	r.expectStages("stage 4 merged", Done, Done, Done, Current, Pending)

	// Stage 5, before the merge: the removal edit and every reference.
	r.clock.t = base.AddDate(0, 0, 6).Add(time.Hour)
	res = r.advance(AdvanceOptions{})
	if res.Held || res.Stage != 5 || !res.DeleteFile || res.Edit.Path != DefinitionPath(flag) || len(res.Deletions) != 0 {
		t.Fatalf("stage 5 edit: %+v", res)
	}
	var refs []string
	for _, ref := range res.References {
		refs = append(refs, fmt.Sprintf("%s:%d", ref.Path, ref.Line))
	}
	if want := []string{"config/feature_flags/f.go:3", DefinitionPath(flag) + ":2", PlanPath(flag) + ":1", "shared/pipeline/gate.go:3"}; !slices.Equal(refs, want) {
		t.Errorf("references %v, want %v", refs, want)
	}
	// After the merge: the parameter is deleted in every environment.
	if err := os.Remove(defPath); err != nil {
		t.Fatal(err)
	}
	res = r.advance(AdvanceOptions{})
	if res.Held || res.Stage != 5 || len(res.Deletions) != 5 || len(res.Failed()) != 0 {
		t.Fatalf("stage 5 delete: %+v", res)
	}
	for _, e := range motoEnvs {
		if v := r.value(e.name); v != nil {
			t.Errorf("%s still has %+v", e.name, v)
		}
	}
	st, err = r.runner.Status(context.Background())
	if err != nil || !st.Complete || st.Next != 0 || len(st.Checks) != 0 {
		t.Fatalf("final status: %+v %v", st, err)
	}
	r.expectStages("complete", Done, Done, Done, Done, Done)
	if res := r.advance(AdvanceOptions{}); res.Stage != 0 || res.Held {
		t.Errorf("advance after completion: %+v", res)
	}
}

// TestRollbackOnMoto: the plan's rollback turns the flag off in every
// environment any stage sets it in, production first, keeps a partner's
// kill switch, and the plan then starts again from stage 1.
func TestRollbackOnMoto(t *testing.T) {
	r := newMotoRig(t)
	r.advance(AdvanceOptions{})
	r.advance(AdvanceOptions{Force: true, Reason: "test"})
	store := featureflag.NewStore(r.runner.Envs["production"].SSM, nil)
	if _, err := store.Set(context.Background(), flag, featureflag.DefaultParameter(flag),
		featureflag.Change{Partners: []finding.Partner{finding.PartnerPostman}}, featureflag.Meta{By: "auto-rollback x"}, false); err != nil {
		t.Fatal(err)
	}
	updates, err := r.runner.Rollback(context.Background(), "oncall", "error rate", false)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, u := range updates {
		order = append(order, u.Environment)
		if u.Error != "" || u.Update == nil || !u.Update.Written || !u.Update.After.Value.Off() {
			t.Errorf("%s: %+v", u.Environment, u)
		}
	}
	if !slices.Equal(order, []string{"production", "dev", "pre", "staging", "staging-ref"}) {
		t.Errorf("rollback order %v", order)
	}
	for _, e := range motoEnvs {
		v := r.value(e.name)
		if v == nil || !v.Off() || v.UpdatedBy != "oncall" || v.Reason != "rollout rollback: error rate" {
			t.Errorf("%s after rollback: %+v", e.name, v)
		}
	}
	if v := r.value("production"); v.PartnerEnabled(finding.PartnerPostman) {
		t.Error("rollback dropped the postman kill switch")
	}
	st, err := r.runner.Status(context.Background())
	if err != nil || st.Current != 0 || st.Next != 1 {
		t.Fatalf("status after rollback: current %d next %d %v", st.Current, st.Next, err)
	}
	if !slices.ContainsFunc(st.Warnings, func(w string) bool { return strings.Contains(w, "production: partner postman is switched off") }) {
		t.Errorf("warnings %v", st.Warnings)
	}
	// A second rollback writes nothing.
	updates, err = r.runner.Rollback(context.Background(), "oncall", "", false)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range updates {
		if u.Update == nil || u.Update.Changed || u.Update.Written {
			t.Errorf("second rollback in %s: %+v", u.Environment, u)
		}
	}
}

// TestStatusReadsAutoRollbackOutputOnMoto: the stack's AutoRollbackEnabled
// output is reported per environment; a missing stack is said to be so.
func TestStatusReadsAutoRollbackOutputOnMoto(t *testing.T) {
	r := newMotoRig(t)
	cfn := r.runner.Envs["production"].CloudFormation.(*cloudformation.Client)
	_, err := cfn.CreateStack(context.Background(), &cloudformation.CreateStackInput{
		StackName:    aws.String(stackOf("production")),
		TemplateBody: aws.String(`{"Resources":{"OnCallTopic":{"Type":"AWS::SNS::Topic"}},"Outputs":{"AutoRollbackEnabled":{"Value":"true"}}}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	st, err := r.runner.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if e := st.Env("production"); e.AutoRollback != "true" || e.AutoRollbackNote != "" {
		t.Errorf("production: %+v", e)
	}
	if e := st.Env("dev"); e.AutoRollback != "" || !strings.Contains(e.AutoRollbackNote, "describe stack partner-token-verification-dev") {
		t.Errorf("dev: %+v", e)
	}
}

// TestRollbackOfAbsentParametersOnMoto: an absent parameter is off while
// the definition's default is off, and is left absent; once the default
// is on, the rollback writes "off" there.
func TestRollbackOfAbsentParametersOnMoto(t *testing.T) {
	r := newMotoRig(t)
	tests := []struct {
		name        string
		defaultOn   bool
		wantWritten bool
	}{
		{"default off", false, false},
		{"default on", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.defaultOn {
				defPath := filepath.Join(r.root, DefinitionPath(flag))
				def, _ := os.ReadFile(defPath)
				if err := os.WriteFile(defPath, []byte(strings.Replace(string(def), "default_enabled: false", "default_enabled: true", 1)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			updates, err := r.runner.Rollback(context.Background(), "oncall", "", false)
			if err != nil || len(updates) != 5 {
				t.Fatalf("rollback: %v %+v", err, updates)
			}
			for _, u := range updates {
				if u.Error != "" || u.Update.Written != tt.wantWritten {
					t.Errorf("%s: %+v", u.Environment, u.Update)
				}
				v := r.value(u.Environment)
				if tt.wantWritten != (v != nil) || v != nil && !v.Off() {
					t.Errorf("%s holds %+v", u.Environment, v)
				}
			}
		})
	}
}
