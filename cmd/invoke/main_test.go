package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
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

// invokeWith runs `make invoke`'s code on PostmanFunction with an env-vars file.
func invokeWith(t *testing.T, envFile string, extra ...string) (code int, stdout, stderr string) {
	t.Helper()
	root, _ := samtemplate.FindRoot()
	var out, errb bytes.Buffer
	args := append([]string{"-function", "PostmanFunction", "-event", filepath.Join(root, "events", "postman-api-key.json"), "-env-vars", envFile}, extra...)
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func writeEnvFile(t *testing.T, vars map[string]string) string {
	t.Helper()
	raw, _ := json.Marshal(map[string]map[string]string{"PostmanFunction": vars})
	path := filepath.Join(t.TempDir(), "env.json")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestInvokeWithoutStack is make invoke with the shipped env.json and no
// stack: one line names the missing stack and what to run, the function's
// init failure comes out as Lambda's Runtime.ExitError payload, the exit
// status is 1, and the emulator's own log shows only with -debug.
func TestInvokeWithoutStack(t *testing.T) {
	root, _ := samtemplate.FindRoot()
	code, stdout, stderr := invokeWith(t, filepath.Join(root, "env.json"))
	if code != 1 {
		t.Fatalf("exit %d, want 1\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	var payload struct{ ErrorType, ErrorMessage string }
	// The bootstrap ends with status 1 (logging.Exit), but the emulator's
	// supervisor now and then reports that end as a success and says
	// "Runtime exited without providing a reason" instead of "exit status 1"
	// (seen once in a CI run on this machine): both are its
	// Runtime.ExitError for a bootstrap that ended in init.
	if err := json.Unmarshal([]byte(stdout), &payload); err != nil || payload.ErrorType != "Runtime.ExitError" ||
		!strings.HasPrefix(payload.ErrorMessage, "RequestId: ") ||
		!(strings.Contains(payload.ErrorMessage, "exit status 1") || strings.Contains(payload.ErrorMessage, "Runtime exited without providing a reason")) {
		t.Errorf("stdout %q: want the Runtime.ExitError payload (%v)", stdout, err)
	}
	var ours []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "invoke: ") {
			ours = append(ours, l)
		}
	}
	if len(ours) != 1 || !strings.Contains(ours[0], "no local stack") || !strings.Contains(ours[0], "make run ARGS=--keep") ||
		!strings.Contains(ours[0], "RESULTS_QUEUE_URL") || strings.Contains(ours[0], "FEATURE_FLAG_PARAMETER") {
		t.Errorf("invoke's own lines %q: want one naming the missing stack, its queue variables and `make run ARGS=--keep`", ours)
	}
	if !strings.Contains(stderr, "RESULTS_QUEUE_URL is not set") {
		t.Errorf("the function's init error is not shown:\n%s", stderr)
	}
	if strings.Contains(stderr, "(rapid)") {
		t.Errorf("emulator debug lines without -debug:\n%s", stderr)
	}
	if _, _, stderr := invokeWith(t, filepath.Join(root, "env.json"), "-debug"); !strings.Contains(stderr, "(rapid)") {
		t.Errorf("-debug shows no emulator line:\n%s", stderr)
	}
}

// TestInvokeStaleStack is a .local/env.json left by a stopped stack: its
// local AWS no longer answers, or answers without the stack's queues. One
// line says so and what to run; nothing is invoked.
func TestInvokeStaleStack(t *testing.T) {
	port, err := awstest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	moto := awstest.Shared(t)
	for name, endpoint := range map[string]string{
		"nothing listening":         fmt.Sprintf("http://127.0.0.1:%d", port),
		"another stack's local AWS": moto.Endpoint,
	} {
		t.Run(name, func(t *testing.T) {
			env := writeEnvFile(t, map[string]string{
				"AWS_ENDPOINT_URL": endpoint, "RESULTS_QUEUE_URL": endpoint + "/000000000000/local-ResultsQueue",
				"DEAD_LETTER_QUEUE_URL": endpoint + "/000000000000/local-PostmanDeadLetterQueue",
			})
			code, stdout, stderr := invokeWith(t, env)
			if code != 1 || stdout != "" {
				t.Fatalf("exit %d, stdout %q; want 1 and nothing", code, stdout)
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], "is gone") || !strings.Contains(lines[0], "make run ARGS=--keep") || !strings.Contains(lines[0], endpoint) {
				t.Errorf("stderr %q: want one line naming the gone stack and `make run ARGS=--keep`", stderr)
			}
		})
	}
}

func TestAllRecordsFailed(t *testing.T) {
	event := `{"Records":[{"messageId":"a"},{"messageId":"b"}]}`
	for _, tc := range []struct {
		name, event, response string
		all                   bool
	}{
		{"none failed", event, `{"batchItemFailures":[]}`, false},
		{"one of two", event, `{"batchItemFailures":[{"itemIdentifier":"a"}]}`, false},
		{"both", event, `{"batchItemFailures":[{"itemIdentifier":"b"},{"itemIdentifier":"a"}]}`, true},
		{"no records", `{"Records":[]}`, `{"batchItemFailures":[]}`, false},
		{"not an SQS response", event, `"ok"`, false},
	} {
		if _, all := allRecordsFailed([]byte(tc.event), []byte(tc.response)); all != tc.all {
			t.Errorf("%s: all = %v, want %v", tc.name, all, tc.all)
		}
	}
}

// TestInvokeEveryRecordFailed is an invocation that succeeds while every
// record fails: SSM does not answer and no flag value was ever read, so
// each record is handed back to SQS. The exit status is 1, with a line
// that says so.
func TestInvokeEveryRecordFailed(t *testing.T) {
	moto := awstest.Shared(t)
	c := sqs.NewFromConfig(moto.Config())
	q, err := c.CreateQueue(context.Background(), &sqs.CreateQueueInput{QueueName: aws.String("invoke-all-failed-results")})
	if err != nil {
		t.Fatal(err)
	}
	port, err := awstest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	env := writeEnvFile(t, map[string]string{
		"RESULTS_QUEUE_URL": *q.QueueUrl, "DEAD_LETTER_QUEUE_URL": *q.QueueUrl, "AWS_ENDPOINT_URL": moto.Endpoint,
		"AWS_ENDPOINT_URL_SSM": fmt.Sprintf("http://127.0.0.1:%d", port), "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
	})
	code, stdout, stderr := invokeWith(t, env)
	var resp struct {
		BatchItemFailures []any `json:"batchItemFailures"`
	}
	if err := json.Unmarshal([]byte(stdout), &resp); err != nil || len(resp.BatchItemFailures) != 2 {
		t.Fatalf("response %q (%v): want both records as batch item failures\nstderr: %s", stdout, err, stderr)
	}
	if code != 1 || !strings.Contains(stderr, "invoke: the function reported all 2 records of the event as batch item failures") {
		t.Errorf("exit %d, stderr:\n%s\nwant 1 and a line saying every record failed", code, stderr)
	}
}
