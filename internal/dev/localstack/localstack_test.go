package localstack_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/awstest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/localstack"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/samtemplate"
)

func TestMain(m *testing.M) { awstest.Main(m) }

// repoTemplate loads the repository's template.yaml (nested partner stacks included).
func repoTemplate(t *testing.T) *samtemplate.Template {
	t.Helper()
	root, err := samtemplate.FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := samtemplate.Load(filepath.Join(root, samtemplate.FileName))
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

// localTemplate loads template.yaml with a flag parameter name of its own,
// so tests sharing one moto do not see each other's flag.
func localTemplate(t *testing.T, name string) *samtemplate.Template {
	t.Helper()
	tpl := repoTemplate(t)
	if err := tpl.SetParameter("FeatureFlagParameterName", "/samtemplate-test/"+name+"/flag"); err != nil {
		t.Fatal(err)
	}
	return tpl
}

func TestApplyLocalCreatesQueuesFromTheTemplate(t *testing.T) {
	moto := awstest.Shared(t)
	cfg := moto.Config()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tpl := localTemplate(t, "queues")
	stack, err := localstack.Apply(ctx, tpl, cfg, "queues-")
	if err != nil {
		t.Fatal(err)
	}
	if len(stack.Queues) != len(tpl.Queues) {
		t.Fatalf("created %d queues, template has %d", len(stack.Queues), len(tpl.Queues))
	}
	c := sqs.NewFromConfig(cfg)
	for id, q := range tpl.Queues {
		t.Run(id, func(t *testing.T) {
			lq := stack.Queues[id]
			if lq.Name != "queues-"+id || lq.URL == "" || !strings.HasSuffix(lq.ARN, ":queues-"+id) {
				t.Fatalf("local queue = %+v", lq)
			}
			out, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(lq.URL),
				AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameAll}})
			if err != nil {
				t.Fatal(err)
			}
			a := out.Attributes
			for name, want := range map[string]int{"VisibilityTimeout": q.VisibilityTimeout, "MessageRetentionPeriod": q.MessageRetentionPeriod} {
				if a[name] != strconv.Itoa(want) {
					t.Errorf("%s = %q, want %d", name, a[name], want)
				}
			}
			if a["SqsManagedSseEnabled"] != "true" {
				t.Errorf("SqsManagedSseEnabled = %q", a["SqsManagedSseEnabled"])
			}
			if q.DeadLetterQueue == "" {
				if a["RedrivePolicy"] != "" {
					t.Errorf("dead-letter queue has a redrive policy %s", a["RedrivePolicy"])
				}
				return
			}
			var rp struct {
				Target string          `json:"deadLetterTargetArn"`
				Max    json.RawMessage `json:"maxReceiveCount"`
			}
			if err := json.Unmarshal([]byte(a["RedrivePolicy"]), &rp); err != nil {
				t.Fatalf("RedrivePolicy %q: %v", a["RedrivePolicy"], err)
			}
			if rp.Target != stack.Queues[q.DeadLetterQueue].ARN || strings.Trim(string(rp.Max), `"`) != strconv.Itoa(q.MaxReceiveCount) {
				t.Errorf("RedrivePolicy = %s, want %s after %d receives", a["RedrivePolicy"], stack.Queues[q.DeadLetterQueue].ARN, q.MaxReceiveCount)
			}
		})
	}
}

func TestApplyLocalRedrivesAfterMaxReceiveCount(t *testing.T) {
	moto := awstest.Shared(t)
	cfg := moto.Config()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tpl := localTemplate(t, "redrive")
	stack, err := localstack.Apply(ctx, tpl, cfg, "redrive-")
	if err != nil {
		t.Fatal(err)
	}
	c := sqs.NewFromConfig(cfg)
	src, dlq := stack.Queues["AwsQueue"], stack.Queues["AwsDeadLetterQueue"]
	if _, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(src.URL), MessageBody: aws.String(`{"version":1}`)}); err != nil {
		t.Fatal(err)
	}
	// receive takes what is visible and makes it visible again at once, as
	// a function that failed the record and reset its visibility would.
	receive := func(url string) int {
		out, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out.Messages {
			if _, err := c.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(url),
				ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0}); err != nil {
				t.Fatal(err)
			}
		}
		return len(out.Messages)
	}
	maxReceive := tpl.Queues["AwsQueue"].MaxReceiveCount
	for i := 1; i <= maxReceive; i++ {
		if n := receive(src.URL); n != 1 {
			t.Fatalf("receive %d of %d: %d messages", i, maxReceive, n)
		}
	}
	if n := receive(src.URL); n != 0 {
		t.Fatalf("after %d receives the message is still in the source queue", maxReceive)
	}
	if n := receive(dlq.URL); n != 1 {
		t.Fatalf("dead-letter queue holds %d messages, want 1", n)
	}
}

func TestApplyLocalIsIdempotentAndKeepsTheFlag(t *testing.T) {
	moto := awstest.Shared(t)
	cfg := moto.Config()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tpl := localTemplate(t, "idempotent")
	first, err := localstack.Apply(ctx, tpl, cfg, "idem-")
	if err != nil {
		t.Fatal(err)
	}
	name := first.Parameters["FeatureFlagParameter"]
	if name != "/samtemplate-test/idempotent/flag" {
		t.Fatalf("parameter name %q", name)
	}
	sc := ssm.NewFromConfig(cfg)
	got, err := sc.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := tpl.SSMParameters["FeatureFlagParameter"].Value.Text()
	if aws.ToString(got.Parameter.Value) != want {
		t.Fatalf("parameter value %q, want the template's %q", aws.ToString(got.Parameter.Value), want)
	}
	// An operator turns the flag on (the feature command's job); applying
	// the template again must not switch it back off.
	on := `{"enabled":true,"groups":[],"projects":[],"percentage_of_actors":0,"partners":{}}`
	if _, err := sc.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String(on), Overwrite: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	// Someone changed a queue by hand; applying again restores the template's value.
	c := sqs.NewFromConfig(cfg)
	if _, err := c.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: aws.String(first.Queues["GcpQueue"].URL),
		Attributes: map[string]string{"VisibilityTimeout": "5"}}); err != nil {
		t.Fatal(err)
	}
	second, err := localstack.Apply(ctx, tpl, cfg, "idem-")
	if err != nil {
		t.Fatalf("second ApplyLocal: %v", err)
	}
	for id, q := range first.Queues {
		if second.Queues[id] != q {
			t.Errorf("%s: %+v then %+v", id, q, second.Queues[id])
		}
	}
	got, err = sc.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(got.Parameter.Value) != on {
		t.Errorf("ApplyLocal overwrote the flag: %q", aws.ToString(got.Parameter.Value))
	}
	attrs, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(second.Queues["GcpQueue"].URL),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameVisibilityTimeout}})
	if err != nil {
		t.Fatal(err)
	}
	if v := attrs.Attributes["VisibilityTimeout"]; v != strconv.Itoa(tpl.Queues["GcpQueue"].VisibilityTimeout) {
		t.Errorf("VisibilityTimeout after re-apply = %s", v)
	}
}

func TestApplyLocalRejects(t *testing.T) {
	moto := awstest.Shared(t)
	ctx := context.Background()
	tests := []struct {
		name, prefix, extra, want string
	}{
		{"bad prefix", "no spaces ", "", "only letters"},
		{"name too long", strings.Repeat("p", 70), "", "longer than SQS's 80"},
		{"untranslated property", "untranslated-", "KmsMasterKeyId: alias/aws/sqs\n      ", "KmsMasterKeyId has no local translation"},
	}
	root, err := samtemplate.FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, samtemplate.FileName))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.Replace(string(data), "SqsManagedSseEnabled: true\n      VisibilityTimeout: 95", tc.extra+"SqsManagedSseEnabled: true\n      VisibilityTimeout: 95", 1)
			tpl, err := samtemplate.ParseFiles([]byte(src), samtemplate.DirReader(root))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := localstack.Apply(ctx, tpl, moto.Config(), tc.prefix); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Apply error = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestFunctionEnv(t *testing.T) {
	moto := awstest.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tpl := localTemplate(t, "env")
	if err := tpl.SetParameter("Environment", "local"); err != nil {
		t.Fatal(err)
	}
	stack, err := localstack.Apply(ctx, tpl, moto.Config(), "env-")
	if err != nil {
		t.Fatal(err)
	}
	for fid, f := range tpl.Functions {
		t.Run(fid, func(t *testing.T) {
			env, err := stack.FunctionEnv(fid, map[string]string{"AWS_ENDPOINT_URL": moto.Endpoint, "FEATURE_FLAG_CACHE_TTL": "1s"})
			if err != nil {
				t.Fatal(err)
			}
			if len(env) != len(f.Environment)+1 {
				t.Errorf("%d variables, want %d: %v", len(env), len(f.Environment)+1, env)
			}
			for name, v := range f.Environment {
				got, tg := env[name], v.Target()
				switch {
				case name == "FEATURE_FLAG_CACHE_TTL":
					if got != "1s" {
						t.Errorf("override of %s = %q", name, got)
					}
				case tg.Kind == samtemplate.TargetResource && tpl.Queues[tg.Name] != nil:
					if got != stack.Queues[tg.Name].URL {
						t.Errorf("%s = %q, want %s's local URL %q", name, got, tg.Name, stack.Queues[tg.Name].URL)
					}
				case tg.Kind == samtemplate.TargetResource:
					if got != stack.Parameters[tg.Name] {
						t.Errorf("%s = %q, want %q", name, got, stack.Parameters[tg.Name])
					}
				case tg.Kind == samtemplate.TargetParameter:
					if want, _ := tpl.ParameterValue(tg.Name); got != want {
						t.Errorf("%s = %q, want parameter %s = %q", name, got, tg.Name, want)
					}
				case tg.Kind == samtemplate.TargetLiteral:
					if got != tg.Literal {
						t.Errorf("%s = %q, want %q", name, got, tg.Literal)
					}
				}
			}
			if env["ENVIRONMENT"] != "local" || env["AWS_ENDPOINT_URL"] != moto.Endpoint {
				t.Errorf("ENVIRONMENT %q AWS_ENDPOINT_URL %q", env["ENVIRONMENT"], env["AWS_ENDPOINT_URL"])
			}
		})
	}
	if env := must(stack.FunctionEnv("PostmanFunction", nil)); env["PARTNER"] != "postman" || env["PARTNER_RATE_BURST"] != "1" || env["RESULTS_QUEUE_URL"] != stack.Queues["ResultsQueue"].URL {
		t.Errorf("PostmanFunction from its nested stack: %v", env)
	}
	if env := must(stack.FunctionEnv("AwsFunction", nil)); env["PARTNER"] != "aws" || env["PARTNER_RATE_BURST"] != "" {
		t.Errorf("AwsFunction from its nested stack: %v", env)
	}
	if _, err := stack.FunctionEnv("NoSuchFunction", nil); err == nil {
		t.Error("FunctionEnv of an unknown function succeeded")
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
