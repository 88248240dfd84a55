package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/cmd/feature/rollout"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/awstest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/localstack"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/samtemplate"
)

func TestMain(m *testing.M) { awstest.Main(m) }

// TestKeepCommandsWorkAsPrinted runs every command `make run ARGS=--keep`
// prints, as printed, with the installed aws CLI and the feature command,
// in a shell whose environment has no AWS variable (aws-cli v1 ignores
// AWS_ENDPOINT_URL anyway), against a kept stack's queues, flag and
// rollout environments on moto, and checks what each one shows.
func TestKeepCommandsWorkAsPrinted(t *testing.T) {
	if _, err := exec.LookPath("aws"); err != nil {
		t.Skip("the aws CLI is not installed (pip install awscli): the printed commands cannot be run")
	}
	root, err := samtemplate.FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	moto := awstest.Shared(t)
	ctx := context.Background()
	tpl, err := samtemplate.Load(filepath.Join(root, samtemplate.FileName))
	if err != nil {
		t.Fatal(err)
	}
	local, err := localstack.Apply(ctx, tpl, moto.Config(), "local-")
	if err != nil {
		t.Fatal(err)
	}
	if err := localstack.ApplyRollout(ctx, tpl, moto.Config()); err != nil {
		t.Fatal(err)
	}
	feature := filepath.Join(t.TempDir(), "feature")
	if out, err := exec.Command("go", "build", "-o", feature, filepath.Join(root, "cmd", "feature")).CombinedOutput(); err != nil {
		t.Fatalf("build feature: %v\n%s", err, out)
	}
	// A result waiting on the results queue, as the functions would leave it.
	sqsc := sqs.NewFromConfig(moto.Config())
	if _, err := sqsc.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(local.Queues["ResultsQueue"].URL), MessageBody: aws.String(`{"finding_id":"postman-active"}`)}); err != nil {
		t.Fatal(err)
	}

	cmds := keepCommands(moto.Endpoint, local, feature)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	env = append(env, "HOME="+t.TempDir(), "USER=tester") // no ~/.aws of the machine's user
	want := []string{
		`"MessageId"`,                      // send-message
		`{"finding_id":"postman-active"}`,  // receive-message: the body, as is
		"0",                                // the DLQ count
		"version 1, off",                   // feature get: the template's initial flag
		"switched off for partner postman", // feature set --partner=postman
		"Next: stage 1 (non-production). May advance: yes", // rollout status at 2026-11-19 ...
		"Advancing to stage 1/5 non-production",            // ... and advance
		"",                                                 // set-alarm-state prints nothing
	}
	if len(cmds) != len(want) {
		t.Fatalf("%d commands printed, the test knows %d", len(cmds), len(want))
	}
	for i, c := range cmds {
		if !strings.HasPrefix(c.Line, feature) && !strings.Contains(c.Line, "aws --endpoint-url "+moto.Endpoint+" --region ") {
			t.Errorf("%q: an aws command without --endpoint-url and --region", c.Line)
		}
		sh := exec.Command("sh", "-c", c.Line)
		sh.Dir, sh.Env = root, env
		var stdout, stderr bytes.Buffer
		sh.Stdout, sh.Stderr = &stdout, &stderr
		if err := sh.Run(); err != nil {
			t.Errorf("%s\n  failed: %v\n%s%s", c.Line, err, stdout.String(), stderr.String())
			continue
		}
		if !strings.Contains(stdout.String(), want[i]) {
			t.Errorf("%s\n  printed %q, want %q", c.Line, stdout.String(), want[i])
		}
	}

	// The last command put production's alarm in ALARM.
	cfg := moto.Config()
	prod, _ := localstack.RolloutEnvironmentNamed("production")
	cfg.Region = prod.Region
	name := rollout.AlarmName("SecretDetectionPartnerAPIHighErrorRate", prod.Stack, "postman")
	out, err := cloudwatch.NewFromConfig(cfg, rollout.LocalCloudWatchProtocol).DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{AlarmNames: []string{name}})
	if err != nil || len(out.MetricAlarms) != 1 || out.MetricAlarms[0].StateValue != "ALARM" {
		t.Errorf("alarm %s after set-alarm-state: %+v, %v", name, out, err)
	}
}
