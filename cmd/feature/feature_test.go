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
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/awstest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/featureflag"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
)

// The integration tests build the real command and run it against
// moto_server. testdata/samconfig.toml puts each environment in its own
// region; --endpoint-url (the command's hidden option for tests) sends them
// all to moto; the profiles live in an AWS config file of the test's own.

var featureBin string

// testClockEnv pins the built command's clock (see clockEnv).
const testClockEnv = "FEATURE_TEST_NOW"

func TestMain(m *testing.M) {
	code := func() int {
		dir, err := os.MkdirTemp("", "feature-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		featureBin = filepath.Join(dir, "feature")
		if out, err := exec.Command("go", "build", "-ldflags=-X main.clockEnv="+testClockEnv, "-o", featureBin, ".").CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
			return 1
		}
		return m.Run()
	}()
	awstest.StopShared()
	os.Exit(code)
}

// regions of testdata/samconfig.toml.
var regions = map[string]string{"dev": "us-east-1", "pre": "ap-south-1", "staging": "eu-west-1", "production": "us-west-2"}

// params are the flag's parameters of testdata/samconfig.toml.
var params = map[string]string{
	"dev":        "/secret-detection/feature-flags/" + ff,
	"pre":        "/secret-detection/feature-flags/" + ff,
	"staging":    "/secret-detection/staging/feature-flags/" + ff,
	"production": "/secret-detection/feature-flags/" + ff,
}

// harness runs the command against a freshly reset moto.
type harness struct {
	t      *testing.T
	moto   *awstest.Moto
	env    []string
	fixSam string
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	m := awstest.Shared(t)
	if err := m.Reset(); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	awsConfig := writeFile(t, home, "aws-config", `[profile feature-test-dev]
aws_access_key_id = testing
aws_secret_access_key = testing
[profile feature-test-staging]
aws_access_key_id = testing
aws_secret_access_key = testing
[profile feature-test-production]
aws_access_key_id = testing
aws_secret_access_key = testing
`)
	sam, err := filepath.Abs(filepath.Join("testdata", "samconfig.toml"))
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, moto: m, fixSam: sam, env: []string{
		"HOME=" + home, "PATH=" + os.Getenv("PATH"), "USER=operator",
		"AWS_CONFIG_FILE=" + awsConfig, "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "none"),
		"AWS_EC2_METADATA_DISABLED=true", "AWS_MAX_ATTEMPTS=1",
	}}
}

// run executes the command with --config and --endpoint-url added.
func (h *harness) run(args ...string) (stdout, stderr string, code int) {
	h.t.Helper()
	return h.runRaw(nil, append(args, "--config="+h.fixSam, "--endpoint-url="+h.moto.Endpoint)...)
}

// runRaw executes the command with exactly args and extra environment.
func (h *harness) runRaw(extraEnv []string, args ...string) (stdout, stderr string, code int) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, featureBin, args...)
	cmd.Env = append(append([]string{}, h.env...), extraEnv...)
	cmd.Dir = h.t.TempDir()
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		h.t.Fatalf("run feature: %v", err)
	}
	return out.String(), errOut.String(), code
}

// mustRun runs the command and fails the test unless it exits 0.
func (h *harness) mustRun(args ...string) string {
	h.t.Helper()
	out, errOut, code := h.run(args...)
	if code != 0 {
		h.t.Fatalf("feature %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func (h *harness) ssm(env string) *ssm.Client {
	cfg := h.moto.Config()
	cfg.Region = regions[env]
	return ssm.NewFromConfig(cfg)
}

// stored is the parameter of an environment as SSM has it: its version and
// decoded value, or version 0 when it is absent.
func (h *harness) stored(env string) (int64, featureflag.Value) {
	h.t.Helper()
	out, err := h.ssm(env).GetParameter(context.Background(), &ssm.GetParameterInput{Name: aws.String(params[env])})
	var nf *types.ParameterNotFound
	if errors.As(err, &nf) {
		return 0, featureflag.Value{}
	}
	if err != nil {
		h.t.Fatalf("%s: GetParameter: %v", env, err)
	}
	v, err := featureflag.Decode(ff, []byte(aws.ToString(out.Parameter.Value)))
	if err != nil {
		h.t.Fatalf("%s: stored value %s: %v", env, aws.ToString(out.Parameter.Value), err)
	}
	return out.Parameter.Version, v
}

// expect checks every environment's parameter version and gates.
func (h *harness) expect(step string, want map[string]struct {
	version int64
	value   featureflag.Value
}) {
	h.t.Helper()
	for env, w := range want {
		version, got := h.stored(env)
		if version != w.version || !got.SameGates(w.value) {
			h.t.Errorf("%s: %s: version %d %s, want version %d %s", step, env, version, got.Describe(), w.version, w.value.Describe())
		}
	}
}

type stored = struct {
	version int64
	value   featureflag.Value
}

// TestRolloutPlanOnMoto runs the plan of the rollout issue stage by stage,
// including both rollbacks and the final delete, and checks every
// environment's parameter value and version after each command.
func TestRolloutPlanOnMoto(t *testing.T) {
	h := newHarness(t)
	on := featureflag.Value{Enabled: true}
	groups := featureflag.Value{Groups: []string{"gitlab-org", "gitlab-com"}}
	off := featureflag.Value{}

	// Non-production, everywhere.
	out := h.mustRun("set", ff, "true", "--dev", "--staging")
	for _, want := range []string{
		"dev (stack partner-token-verification-dev, us-east-1, profile feature-test-dev, endpoint http://",
		"staging (stack partner-token-verification-staging, eu-west-1",
		"before: absent, definition default: off",
		"after:  version 1, on globally (updated ",
		" by operator)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stage 1 output lacks %q:\n%s", want, out)
		}
	}
	h.expect("stage 1", map[string]stored{"dev": {1, on}, "staging": {1, on}, "production": {0, off}})

	// Production, for gitlab-org and gitlab-com (options before NAME, as in the plan).
	out = h.mustRun("set", "--group=gitlab-org,gitlab-com", ff, "true", "--production", "--by=atiwari71")
	if !strings.Contains(out, "after:  version 1, on for groups gitlab-org, gitlab-com") || !strings.Contains(out, "by atiwari71") {
		t.Errorf("stage 2 output:\n%s", out)
	}
	h.expect("stage 2", map[string]stored{"dev": {1, on}, "staging": {1, on}, "production": {1, groups}})
	_, prod := h.stored("production")
	if prod.UpdatedBy != "atiwari71" || time.Since(prod.UpdatedAt) > time.Minute {
		t.Errorf("production metadata %q %v", prod.UpdatedBy, prod.UpdatedAt)
	}

	// Production, for everyone.
	out = h.mustRun("set", ff, "true", "--production")
	if !strings.Contains(out, "before: version 1, on for groups gitlab-org, gitlab-com") ||
		!strings.Contains(out, "after:  version 2, on globally; groups gitlab-org, gitlab-com") {
		t.Errorf("stage 3 output:\n%s", out)
	}
	h.expect("stage 3", map[string]stored{"production": {2, featureflag.Value{Enabled: true, Groups: groups.Groups}}})

	// The same command again writes nothing.
	out = h.mustRun("set", ff, "true", "--production")
	if !strings.Contains(out, "unchanged, nothing written") {
		t.Errorf("repeat output:\n%s", out)
	}
	h.expect("repeat", map[string]stored{"production": {2, featureflag.Value{Enabled: true, Groups: groups.Groups}}})

	// get, for scripts.
	out = h.mustRun("get", ff, "--dev", "--staging", "--production", "--json")
	var got []result
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("get --json: %v\n%s", err, out)
	}
	if len(got) != 3 || got[2].Environment != "production" || got[2].State.Version != 2 || !got[2].State.Value.Enabled ||
		got[2].Region != "us-west-2" || got[2].Stack != "partner-token-verification-production" || got[0].State.Version != 1 {
		t.Errorf("get --json = %s", out)
	}
	out = h.mustRun("get", ff, "--production")
	if !strings.Contains(out, ff+": version 2, on globally; groups gitlab-org, gitlab-com (updated ") {
		t.Errorf("get output:\n%s", out)
	}

	// Rollback: production, then non-production.
	out = h.mustRun("set", ff, "false", "--production")
	if !strings.Contains(out, "after:  version 3, off") {
		t.Errorf("rollback output:\n%s", out)
	}
	h.mustRun("set", ff, "false", "--dev", "--staging")
	h.expect("rollback", map[string]stored{"dev": {2, off}, "staging": {2, off}, "production": {3, off}})

	// Remove the flag.
	out = h.mustRun("delete", ff, "--dev", "--staging", "--production")
	if strings.Count(out, "deleted version") != 3 || !strings.Contains(out, "default_enabled: false") {
		t.Errorf("delete output:\n%s", out)
	}
	h.expect("delete", map[string]stored{"dev": {0, off}, "staging": {0, off}, "production": {0, off}})
	out = h.mustRun("delete", ff, "--production")
	if !strings.Contains(out, "absent, nothing to delete") {
		t.Errorf("second delete output:\n%s", out)
	}
}

func TestDryRunWritesNothingOnMoto(t *testing.T) {
	h := newHarness(t)
	out := h.mustRun("set", ff, "true", "--dev", "--production", "--dry-run")
	if strings.Count(out, "on globally (dry run: nothing written)") != 2 {
		t.Errorf("dry-run output:\n%s", out)
	}
	h.expect("dry run on absent", map[string]stored{"dev": {0, featureflag.Value{}}, "production": {0, featureflag.Value{}}})

	h.mustRun("set", ff, "true", "--group=gitlab-org", "--dev")
	h.mustRun("set", ff, "false", "--dev", "--dry-run")
	h.mustRun("set", ff, "false", "--partner=aws", "--dev", "--dry-run")
	out = h.mustRun("delete", ff, "--dev", "--dry-run")
	if !strings.Contains(out, "would delete version 1, on for groups gitlab-org (dry run: nothing deleted)") {
		t.Errorf("delete dry-run output:\n%s", out)
	}
	h.expect("dry runs", map[string]stored{"dev": {1, featureflag.Value{Groups: []string{"gitlab-org"}}}})
}

func TestInvalidInputWritesNothingOnMoto(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		name    string
		args    []string
		extra   []string // environment
		raw     bool     // no --config/--endpoint-url added
		wantErr string
	}{
		{"unknown flag", []string{"set", "secret_detection_partner_token_verificatio", "true", "--dev"}, nil, false, "unknown feature flag"},
		{"unknown partner", []string{"set", ff, "false", "--partner=azure", "--dev", "--production"}, nil, false, `unknown partner "azure"`},
		{"percentage above 100", []string{"set", ff, "true", "--percentage-of-actors=101", "--dev"}, nil, false, "outside 0-100"},
		{"negative percentage", []string{"set", ff, "true", "--percentage-of-actors=-5", "--dev"}, nil, false, "outside 0-100"},
		{"fractional percentage", []string{"set", ff, "true", "--percentage-of-actors=2.5", "--dev"}, nil, false, "not a whole number"},
		{"malformed project", []string{"set", ff, "true", "--project=12,x", "--dev"}, nil, false, `"x" is not a project id`},
		{"no environment", []string{"set", ff, "false"}, nil, false, "no environment given"},
		{"misspelt environment", []string{"set", ff, "false", "--prod"}, nil, false, "unknown option --prod"},
		{"environment not in samconfig", []string{"set", ff, "true", "--staging-ref"}, nil, false, "has no [staging-ref] environment"},
		{"valid and invalid environment together", []string{"set", ff, "true", "--dev", "--staging-ref"}, nil, false, "has no [staging-ref]"},
		{"not true or false", []string{"set", ff, "yes", "--dev"}, nil, false, `"yes" is not true or false`},
		{"local AWS left in the shell", []string{"set", ff, "false", "--production", "--config=" + h.fixSam},
			[]string{"AWS_ENDPOINT_URL=" + h.moto.Endpoint}, true, "--production: AWS_ENDPOINT_URL is set"},
		{"local without endpoint", []string{"set", ff, "true", "--local"}, nil, true, "--local needs the local AWS endpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut string
			var code int
			if tt.raw {
				out, errOut, code = h.runRaw(tt.extra, tt.args...)
			} else {
				out, errOut, code = h.run(tt.args...)
			}
			if code != exitUsage || !strings.Contains(errOut, tt.wantErr) || out != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d and %q", code, out, errOut, exitUsage, tt.wantErr)
			}
		})
	}
	// Nothing reached any region.
	for env := range regions {
		list, err := h.ssm(env).DescribeParameters(context.Background(), &ssm.DescribeParametersInput{})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Parameters) != 0 {
			t.Errorf("%s holds %d parameters after invalid commands", env, len(list.Parameters))
		}
	}
	for _, region := range []string{"us-east-1", "us-west-2"} {
		cfg := h.moto.Config()
		cfg.Region = region
		if list, err := ssm.NewFromConfig(cfg).DescribeParameters(context.Background(), &ssm.DescribeParametersInput{}); err != nil || len(list.Parameters) != 0 {
			t.Errorf("%s: %v parameters, %v", region, list, err)
		}
	}
}

// TestOneFailingEnvironmentOnMoto: [pre] names a profile that does not
// exist; dev and production are still written and reported, and the exit
// status says that one failed.
func TestOneFailingEnvironmentOnMoto(t *testing.T) {
	h := newHarness(t)
	out, errOut, code := h.run("set", ff, "true", "--dev", "--pre", "--production")
	if code != exitEnvFailed {
		t.Fatalf("exit %d, want %d\n%s\n%s", code, exitEnvFailed, out, errOut)
	}
	if !strings.Contains(out, "pre (stack partner-token-verification-pre, ap-south-1, profile feature-test-missing") ||
		!strings.Contains(out, "FAILED: load AWS configuration for pre") || strings.Count(out, "after:  version 1, on globally") != 2 {
		t.Errorf("output:\n%s", out)
	}
	if !strings.Contains(errOut, "1 of 3 environments failed: pre") {
		t.Errorf("stderr %q", errOut)
	}
	h.expect("partial", map[string]stored{"dev": {1, featureflag.Value{Enabled: true}}, "production": {1, featureflag.Value{Enabled: true}}})

	out, errOut, code = h.run("get", ff, "--pre", "--production", "--json")
	var got []result
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != exitEnvFailed {
		t.Fatalf("get --json: exit %d, %v\n%s", code, err, out)
	}
	if len(got) != 2 || got[0].Error == "" || got[0].State != nil || got[1].Error != "" || got[1].State.Version != 1 {
		t.Errorf("get --json = %s", out)
	}
	if !strings.Contains(errOut, "feature: pre: load AWS configuration") {
		t.Errorf("stderr %q", errOut)
	}
}

func TestPartnerKillSwitchAndActorsOnMoto(t *testing.T) {
	h := newHarness(t)
	h.mustRun("set", ff, "true", "--staging")
	out := h.mustRun("set", ff, "false", "--partner=postman", "--staging")
	if !strings.Contains(out, "after:  version 2, on globally; switched off for partner postman") ||
		!strings.Contains(out, ff+" /secret-detection/staging/feature-flags/"+ff) {
		t.Errorf("kill switch output:\n%s", out)
	}
	_, v := h.stored("staging")
	p := finding.Project{ID: 5, FullPath: "a/b"}
	if v.EnabledFor(p, finding.PartnerPostman) || !v.EnabledFor(p, finding.PartnerAWS) {
		t.Errorf("after kill switch: %+v", v)
	}
	// The rollback keeps the kill switch; turning the flag on again does not undo it.
	h.mustRun("set", ff, "false", "--staging")
	h.mustRun("set", ff, "true", "--staging")
	if _, v = h.stored("staging"); v.EnabledFor(p, finding.PartnerPostman) {
		t.Errorf("kill switch lost: %+v", v)
	}
	h.mustRun("set", ff, "true", "--partner=postman", "--staging")
	if _, v = h.stored("staging"); !v.EnabledFor(p, finding.PartnerPostman) || v.Partners != nil {
		t.Errorf("partner back on: %+v", v)
	}
	h.mustRun("set", ff, "false", "--staging")
	h.mustRun("set", ff, "true", "--project=5,6", "--percentage-of-actors=10", "--staging", "--reason=canary")
	h.mustRun("set", ff, "false", "--project=6", "--staging")
	version, v := h.stored("staging")
	if version != 8 || v.Enabled || len(v.Projects) != 1 || v.Projects[0] != 5 || v.PercentageOfActors != 10 || v.Reason != "" {
		t.Errorf("version %d value %+v", version, v)
	}
}

func TestListAndLocalOnMoto(t *testing.T) {
	h := newHarness(t)
	local := []string{"AWS_ENDPOINT_URL=" + h.moto.Endpoint, "AWS_REGION=ca-central-1"}
	out, errOut, code := h.runRaw(local, "set", ff, "true", "--group=gitlab-org", "--local")
	if code != 0 || !strings.Contains(out, "local (ca-central-1, endpoint "+h.moto.Endpoint+")") {
		t.Fatalf("set --local: exit %d\n%s\n%s", code, out, errOut)
	}
	out, _, code = h.runRaw(local, "list", "--local", "--json")
	var got []result
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != 0 {
		t.Fatalf("list --json: exit %d %v\n%s", code, err, out)
	}
	if len(got) != 1 || got[0].Flag != ff || got[0].State.Version != 1 || got[0].State.Value.Groups[0] != "gitlab-org" {
		t.Errorf("list = %s", out)
	}
	out = h.mustRun("list", "--dev")
	if !strings.Contains(out, ff+": absent, definition default: off") {
		t.Errorf("list --dev:\n%s", out)
	}
}

// TestRollbackBoundOnMoto: a reader as a function instance holds it (TTL
// 100ms, clock under the test's control) sees the flag on, keeps it for the
// TTL after `feature set NAME false`, and says off once the TTL has passed.
func TestRollbackBoundOnMoto(t *testing.T) {
	h := newHarness(t)
	h.mustRun("set", ff, "true", "--production")
	const ttl = 100 * time.Millisecond
	now := time.Now()
	r, err := featureflag.NewReader(h.ssm("production"), ff, featureflag.ReaderOptions{TTL: ttl, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	p := finding.Project{ID: 278964, FullPath: "gitlab-org/gitlab"}
	check := func(step string, want bool) {
		t.Helper()
		on, err := r.EnabledFor(context.Background(), p, finding.PartnerAWS)
		if err != nil || on != want {
			t.Fatalf("%s: enabled = %v, %v; want %v", step, on, err, want)
		}
	}
	check("before rollback", true)
	h.mustRun("set", ff, "false", "--production")
	now = now.Add(ttl - time.Millisecond)
	check("within the TTL the cached value stands", true)
	now = now.Add(time.Millisecond)
	check("once the TTL has passed", false)
}
