package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/awstest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/sandbox"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/samtemplate"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
)

func TestMain(m *testing.M) { awstest.Main(m) }

func TestEnvironmentFromTemplate(t *testing.T) {
	root, err := samtemplate.FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := samtemplate.Load(filepath.Join(root, samtemplate.FileName))
	if err != nil {
		t.Fatal(err)
	}
	env, unset, err := Environment(tpl, "PostmanFunction")
	if err != nil {
		t.Fatal(err)
	}
	// PostmanFunction comes from its nested partner stack: PARTNER and the burst are its parameters.
	if env["PARTNER"] != "postman" || env["PARTNER_RATE_BURST"] != "1" || env["MAX_ATTEMPTS"] != "5" {
		t.Errorf("literal and parameter values not resolved: %v", env)
	}
	if !strings.Contains(strings.Join(unset, ","), "RESULTS_QUEUE_URL") {
		t.Errorf("unset = %v, want the queue URLs that only a stack can give", unset)
	}
}

func TestReadEnvVarsFunctionSectionWins(t *testing.T) {
	path := filepath.Join(t.TempDir(), "env.json")
	_ = os.WriteFile(path, []byte(`{"Parameters":{"A":"1","B":"1"},"PostmanFunction":{"B":"2"},"AwsFunction":{"C":"3"}}`), 0o600)
	got, err := ReadEnvVars(path, "PostmanFunction")
	if err != nil {
		t.Fatal(err)
	}
	if got["A"] != "1" || got["B"] != "2" || got["C"] != "" {
		t.Fatalf("env = %v", got)
	}
	_ = os.WriteFile(path, []byte(`{"Parameters":{"A":1}}`), 0o600)
	if _, err := ReadEnvVars(path, "PostmanFunction"); err == nil {
		t.Fatal("a number value was accepted")
	}
}

// TestInvokePostmanFunction runs `make invoke`'s code on the real
// PostmanFunction bootstrap: with the flag parameter absent (default off),
// both sample findings get a feature_disabled result on the results queue.
func TestInvokePostmanFunction(t *testing.T) {
	root, _ := samtemplate.FindRoot()
	moto := awstest.Shared(t)
	sb, err := sandbox.Start(sandbox.Addrs{})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	c := sqs.NewFromConfig(moto.Config())
	q, err := c.CreateQueue(context.Background(), &sqs.CreateQueueInput{QueueName: aws.String("invoke-results")})
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{
		"RESULTS_QUEUE_URL": *q.QueueUrl, "AWS_ENDPOINT_URL": moto.Endpoint, "AWS_ACCESS_KEY_ID": "testing",
		"AWS_SECRET_ACCESS_KEY": "testing", "FEATURE_FLAG_PARAMETER": "/invoke-test/absent",
	}
	for k, v := range sb.Env() {
		vars[k] = v
	}
	raw, _ := json.Marshal(map[string]map[string]string{"PostmanFunction": vars})
	envFile := filepath.Join(t.TempDir(), "env.json")
	_ = os.WriteFile(envFile, raw, 0o600)
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"-function", "PostmanFunction", "-event", filepath.Join(root, "events", "postman-api-key.json"), "-env-vars", envFile}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout.String(), stderr.String())
	}
	var resp struct {
		BatchItemFailures []any `json:"batchItemFailures"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &resp); err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("response %q: %v", stdout.String(), err)
	}
	out, err := c.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, MaxNumberOfMessages: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Messages) != 2 {
		t.Fatalf("%d results, want 2", len(out.Messages))
	}
	for _, m := range out.Messages {
		var r finding.Result
		if err := json.Unmarshal([]byte(*m.Body), &r); err != nil || r.Reason != finding.ReasonFeatureDisabled {
			t.Errorf("result %s: %v", *m.Body, err)
		}
	}
	if sb.Requests()["postman"] != 0 {
		t.Error("the flag is off, yet Postman was called")
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{}, {"-function", "NoSuchFunction", "-event", "x.json"}} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), args, &out, &errb); code != 2 {
			t.Errorf("run(%v) = %d, want 2 (%s)", args, code, errb.String())
		}
	}
}
