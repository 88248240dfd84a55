package samtemplate_test

// The template review: each check returns the
// problems it finds in a template, TestTemplateReview requires none in
// template.yaml, and TestReviewCatchesDefects breaks the template one way
// at a time and requires the matching check to object, so no check here
// can pass whatever the template says.

import (
	"encoding/json"
	"fmt"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/registry"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/samtemplate"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/metrics"
	anthropicpartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/anthropic"
	stripepartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/stripe"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/pipeline"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/sqsbatch"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/throttle"
)

// Contract §4 and §6 values the template must carry.
const (
	flagParameterName = "/secret-detection/feature-flags/secret_detection_partner_token_verification"
	dlqRetention      = 1209600 // 14 days
)

// partnerIDs are the logical-id stems of the registry's partners: AwsQueue,
// AwsFunction, AwsMaxConcurrency... Every partner of the code must have its
// resources, so the review follows the registry rather than a list of its own.
var partnerIDs = func() map[finding.Partner]string {
	ids := map[finding.Partner]string{}
	for _, d := range registry.All() {
		ids[d.Name] = samtemplate.PartnerStem(string(d.Name))
	}
	return ids
}()

// templateBursts are the RateBurst values the root template passes to the
// partners' applications; the others leave it to the registry's default.
// Postman's is 1 where the code's default is 3: one request at a time on
// its 3-per-second budget shared by every instance.
var templateBursts = map[finding.Partner]string{
	"postman": "1", "heroku": "1", "openai": "1", "github": "4", "anthropic": "1",
	"sendgrid": "1", "npm": "1", "slack": "1", "gitlab": "1",
}

// envKind says what an environment variable must point at.
type envKind int

const (
	envQueueURL envKind = iota // !Ref <queue>
	envParam                   // !Ref <template parameter>
	envResource                // !Ref <resource>
	envLiteral                 // a fixed value
	envPseudo                  // !Ref <pseudo parameter>
)

func (k envKind) String() string {
	return [...]string{"queue URL of", "parameter", "resource", "literal", "pseudo parameter"}[k]
}

type envWant struct {
	kind envKind
	name string // queue, parameter or resource logical id; the literal value
}

// expectedEnv is every variable each function's code reads (contract §6,
// plus LOG_LEVEL read by shared/logging), and where it must point.
func expectedEnv() map[string]map[string]envWant {
	common := func(ownDLQ string) map[string]envWant {
		return map[string]envWant{
			"RESULTS_QUEUE_URL":      {envQueueURL, "ResultsQueue"},
			"FEATURE_FLAG_PARAMETER": {envResource, "FeatureFlagParameter"},
			"FEATURE_FLAG_CACHE_TTL": {envParam, "FeatureFlagCacheTtl"},
			"MAX_ATTEMPTS":           {envParam, "MaxAttempts"},
			"DEAD_LETTER_QUEUE_URL":  {envQueueURL, ownDLQ},
			"ENVIRONMENT":            {envParam, "Environment"},
			"LOG_LEVEL":              {envParam, "LogLevel"},
		}
	}
	autoRollback := common("")
	delete(autoRollback, "DEAD_LETTER_QUEUE_URL")
	with := func(m map[string]envWant, extra map[string]envWant) map[string]envWant {
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	want := map[string]map[string]envWant{
		// It reads FEATURE_FLAG_PARAMETER, ENVIRONMENT, LOG_LEVEL and STACK_NAME; Globals give it
		// the others too, and it has no source queue of its own.
		"AutoRollbackFunction": with(autoRollback, map[string]envWant{
			"STACK_NAME": {envPseudo, "AWS::StackName"},
		}),
	}
	dispatcher := common("IngressDeadLetterQueue")
	want["DispatcherFunction"] = dispatcher
	// Partner functions run one binary: PARTNER picks the partner. Endpoints are the
	// contract's defaults in code; PARTNER_ENDPOINT_* exist for local doubles only.
	for p, stem := range partnerIDs {
		dispatcher["PARTNER_QUEUE_URL_"+strings.ToUpper(string(p))] = envWant{envQueueURL, stem + "Queue"}
		fn := with(common(stem+"DeadLetterQueue"), map[string]envWant{
			"PARTNER":                 {envLiteral, string(p)},
			"PARTNER_TIMEOUT":         {envParam, "PartnerTimeout"},
			"PARTNER_RATE_PER_SECOND": {envParam, stem + "RatePerSecond"},
			"PARTNER_CONCURRENCY":     {envLiteral, ""},
		})
		if b, ok := templateBursts[p]; ok {
			fn["PARTNER_RATE_BURST"] = envWant{envLiteral, b}
		}
		want[stem+"Function"] = fn
	}
	// Every partner function gets the one root parameter of per-project
	// caps and its own MaximumConcurrency, which divides its cap.
	for id, src := range functionSources {
		if id == "DispatcherFunction" {
			continue
		}
		want[id]["PROJECT_RATE_CAPS"] = envWant{envParam, "ProjectRateCaps"}
		want[id]["PARTNER_MAX_CONCURRENCY"] = envWant{envParam, src.maxConcurrency}
	}
	return want
}

// functionSources maps each function to the queue it consumes and the
// parameter that caps its concurrency.
var functionSources = func() map[string]struct{ queue, maxConcurrency string } {
	src := map[string]struct{ queue, maxConcurrency string }{"DispatcherFunction": {"IngressQueue", "DispatcherMaxConcurrency"}}
	for _, stem := range partnerIDs {
		src[stem+"Function"] = struct{ queue, maxConcurrency string }{stem + "Queue", stem + "MaxConcurrency"}
	}
	return src
}()

// snsFunctions are the functions the on-call topic triggers instead of a
// queue, with the condition they are deployed under (off by default).
var snsFunctions = map[string]string{"AutoRollbackFunction": "AutoRollbackOn"}

var queueStems = func() []string {
	stems := []string{"Ingress", "Results"}
	for _, stem := range partnerIDs {
		stems = append(stems, stem)
	}
	return stems
}()

var consumeActions = []string{"sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:ReceiveMessage"}

// expectedReach is, per function, every queue its role may touch and how:
// each function consumes only its own queue and sends only where the
// pipeline needs it; no function reaches another partner's queue.
func expectedReach() map[string]map[string][]string {
	send := []string{"sqs:SendMessage"}
	reach := map[string]map[string][]string{
		"DispatcherFunction": {
			"IngressQueue": consumeActions, "IngressDeadLetterQueue": send, "ResultsQueue": send,
		},
		"AutoRollbackFunction": {},
	}
	for _, stem := range partnerIDs {
		reach["DispatcherFunction"][stem+"Queue"] = send
		reach[stem+"Function"] = map[string][]string{
			stem + "Queue": consumeActions, stem + "DeadLetterQueue": send, "ResultsQueue": send,
		}
	}
	return reach
}

// reportServices are the services a function may use besides logs, xray,
// sqs and ssm: the auto-rollback reports to the on-call topic.
var reportServices = map[string][]string{"AutoRollbackFunction": {"sns", "kms"}}

// flagActions are the ssm actions a function may use on the flag's
// parameter: only the auto-rollback writes it (a partner's kill switch).
func flagActions(fid string) []string {
	if fid == "AutoRollbackFunction" {
		return []string{"ssm:GetParameter", "ssm:PutParameter"}
	}
	return []string{"ssm:GetParameter"}
}

type check struct {
	name string
	fn   func(*samtemplate.Template) []string
}

var reviewChecks = []check{
	{"parameters", checkParameters},
	{"queues", checkQueues},
	{"functions", checkFunctions},
	{"environment", checkEnvironment},
	{"iam", checkIAM},
	{"flag parameter", checkFlagParameter},
	{"on-call topic", checkOnCall},
	{"partner alarms", checkPartnerAlarms},
	{"queue alarms", checkQueueAlarms},
	{"dashboard", checkDashboard},
	{"outputs", checkOutputs},
	{"integration", checkIntegration},
	{"batch sizing", checkBatchSizing},
}

// partnerStackFile is the nested template every partner application uses.
const partnerStackFile = "partner-stack.yaml"

// repoTemplate loads template.yaml and returns it with the text of both
// template sources, by file name.
func repoTemplate(t testing.TB) (*samtemplate.Template, map[string]string) {
	t.Helper()
	root, err := samtemplate.FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	srcs := map[string]string{}
	for _, name := range []string{samtemplate.FileName, partnerStackFile} {
		data, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		srcs[name] = string(data)
	}
	tpl, err := samtemplate.Load(filepath.Join(root, samtemplate.FileName))
	if err != nil {
		t.Fatal(err)
	}
	return tpl, srcs
}

// parseSources parses template.yaml's text with its nested templates taken from srcs.
func parseSources(srcs map[string]string) (*samtemplate.Template, error) {
	return samtemplate.ParseFiles([]byte(srcs[samtemplate.FileName]), func(name string) ([]byte, error) {
		s, ok := srcs[name]
		if !ok {
			return nil, fmt.Errorf("no template %s", name)
		}
		return []byte(s), nil
	})
}

func TestTemplateReview(t *testing.T) {
	tpl, _ := repoTemplate(t)
	for _, c := range reviewChecks {
		t.Run(c.name, func(t *testing.T) {
			for _, p := range c.fn(tpl) {
				t.Error(p)
			}
		})
	}
}

func TestReviewCatchesDefects(t *testing.T) {
	_, srcs := repoTemplate(t)
	const root, child = samtemplate.FileName, partnerStackFile
	tests := []struct {
		name, file, old, new string
		check                string
	}{
		{"queue without SSE", root, "SqsManagedSseEnabled: true\n      VisibilityTimeout: 180", "SqsManagedSseEnabled: false\n      VisibilityTimeout: 180", "queues"},
		{"partner queue without SSE", child, "SqsManagedSseEnabled: true\n      VisibilityTimeout: 185", "SqsManagedSseEnabled: false\n      VisibilityTimeout: 185", "queues"},
		{"DLQ kept 4 days", root, "MessageRetentionPeriod: 1209600", "MessageRetentionPeriod: 345600", "queues"},
		{"partner DLQ kept 4 days", child, "MessageRetentionPeriod: 1209600", "MessageRetentionPeriod: 345600", "queues"},
		{"redrive before the last attempt", root, "maxReceiveCount: 8", "maxReceiveCount: 5", "queues"},
		{"partner redrive before the last attempt", child, "maxReceiveCount: 8", "maxReceiveCount: 5", "queues"},
		{"visibility below 6 x timeout", root, "VisibilityTimeout: 95", "VisibilityTimeout: 60", "queues"},
		{"ingress visibility without the batching window", root, "VisibilityTimeout: 95", "VisibilityTimeout: 90", "batch sizing"},
		{"partner visibility below 6 x timeout", child, "VisibilityTimeout: 185", "VisibilityTimeout: 120", "queues"},
		{"partner visibility without the batching window", child, "VisibilityTimeout: 185", "VisibilityTimeout: 180", "batch sizing"},
		{"postman batch too long for its rate", root, "BatchSize: !If [NoBatchingWindow, 10, 14]\n        MaximumBatchingWindowInSeconds: !Ref BatchingWindowInSeconds\n        # One request at once per instance: PostmanMaxConcurrency", "BatchSize: !If [NoBatchingWindow, 10, 50]\n        MaximumBatchingWindowInSeconds: !Ref BatchingWindowInSeconds\n        # One request at once per instance: PostmanMaxConcurrency", "batch sizing"},
		{"aws batch too long for the dev rate", root, "BatchSize: !If [NoBatchingWindow, 10, 28]\n        MaximumBatchingWindowInSeconds: !Ref BatchingWindowInSeconds\n        StackName", "BatchSize: !If [NoBatchingWindow, 10, 40]\n        MaximumBatchingWindowInSeconds: !Ref BatchingWindowInSeconds\n        StackName", "batch sizing"},
		{"batch below the concurrency", root, "BatchSize: 4\n", "BatchSize: 1\n", "batch sizing"},
		{"large batch without a window", root, "BatchSize: !If [NoBatchingWindow, 10, 28]\n        MaximumBatchingWindowInSeconds: !Ref BatchingWindowInSeconds\n", "BatchSize: !If [NoBatchingWindow, 10, 28]\n        MaximumBatchingWindowInSeconds: 0\n", "batch sizing"},
		{"large batch kept when the window is 0", root, "BatchSize: !If [NoBatchingWindow, 10, 28]\n", "BatchSize: 28\n", "batch sizing"},
		{"ingress batch above 10", root, "            BatchSize: 10\n            MaximumBatchingWindowInSeconds: !Ref BatchingWindowInSeconds\n", "            BatchSize: 20\n            MaximumBatchingWindowInSeconds: !Ref BatchingWindowInSeconds\n", "batch sizing"},
		{"github batch beyond its burst", root, "BatchSize: 4\n", "BatchSize: 5\n", "batch sizing"},
		{"heroku slots waiting past the limiter's MaxWait", root, "Heroku publishes (shared/partner/heroku, Rate).\n        RateBurst: 1\n        PartnerConcurrency: 2", "Heroku publishes (shared/partner/heroku, Rate).\n        RateBurst: 1\n        PartnerConcurrency: 4", "batch sizing"},
		{"x86 function", root, "Architectures: [arm64]", "Architectures: [x86_64]", "functions"},
		{"x86 partner function", child, "Architectures: [arm64]", "Architectures: [x86_64]", "functions"},
		{"tracing off", root, "Tracing: Active", "Tracing: PassThrough", "functions"},
		{"partner tracing off", child, "Tracing: Active", "Tracing: PassThrough", "functions"},
		{"partner built from elsewhere", child, "    CodeUri: .\n", "    CodeUri: functions/partner\n", "functions"},
		{"no partial batch failures", root, "FunctionResponseTypes: [ReportBatchItemFailures]", "FunctionResponseTypes: []", "functions"},
		{"partner without partial batch failures", child, "FunctionResponseTypes: [ReportBatchItemFailures]", "FunctionResponseTypes: []", "functions"},
		{"log group kept forever", root, "RetentionInDays: !Ref LogRetentionDays\n", "\n", "functions"},
		{"partner log group kept forever", child, "RetentionInDays: !Ref LogRetentionDays\n", "\n", "functions"},
		{"partner concurrency not passed on", root, "MaximumConcurrency: !Ref GcpMaxConcurrency", "MaximumConcurrency: !Ref PostmanMaxConcurrency", "functions"},
		{"postman above its global rate", root, "Default: 1.5", "Default: 3", "functions"},
		{"anthropic above its global rate", root, "Default: 0.4", "Default: 1", "functions"},
		{"missing env var", root, "          PARTNER_QUEUE_URL_GCP: !GetAtt Gcp.Outputs.QueueUrl\n", "", "environment"},
		{"env var pointing at the wrong queue", child, "DEAD_LETTER_QUEUE_URL: !Ref DeadLetterQueue", "DEAD_LETTER_QUEUE_URL: !Ref Queue", "environment"},
		{"dispatcher sending gcp findings to aws", root, "PARTNER_QUEUE_URL_GCP: !GetAtt Gcp.Outputs.QueueUrl", "PARTNER_QUEUE_URL_GCP: !GetAtt Aws.Outputs.QueueUrl", "environment"},
		{"unexpected env var", root, "LOG_LEVEL: !Ref LogLevel", "LOG_LEVEL: !Ref LogLevel\n        DEBUG_TOKENS: 'true'", "environment"},
		{"unexpected partner env var", child, "LOG_LEVEL: !Ref LogLevel", "LOG_LEVEL: !Ref LogLevel\n          DEBUG_TOKENS: 'true'", "environment"},
		{"wrong partner name", child, "PARTNER: !Ref Partner", "PARTNER: aws", "environment"},
		{"postman burst dropped", root, "        RateBurst: 1\n", "", "environment"},
		{"wildcard action", root, "Action: [logs:CreateLogStream, logs:PutLogEvents]", "Action: ['logs:*']", "iam"},
		{"partner wildcard action", child, "Action: [logs:CreateLogStream, logs:PutLogEvents]", "Action: ['logs:*']", "iam"},
		{"wildcard resource", root, "Resource: !GetAtt IngressQueue.Arn\n              - Sid: SendTo", "Resource: '*'\n              - Sid: SendTo", "iam"},
		{"partner wildcard resource", child, "Resource: !GetAtt Queue.Arn\n", "Resource: '*'\n", "iam"},
		{"function reaches another partner's queue", root, "ResultsQueueArn: !GetAtt ResultsQueue.Arn", "ResultsQueueArn: !GetAtt Gcp.Outputs.QueueArn", "iam"},
		{"partner reads another parameter", root, "FeatureFlagParameterArn: !Sub arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${FeatureFlagParameter}", "FeatureFlagParameterArn: !Sub arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/*", "iam"},
		{"SAM generated role", child, "      Role: !GetAtt FunctionRole.Arn\n", "", "iam"},
		{"flag on by default", root, `'{"enabled":false,`, `'{"enabled":true,`, "flag parameter"},
		{"topic on the AWS managed key", root, "KmsMasterKeyId: !Ref OnCallTopicKey", "KmsMasterKeyId: alias/aws/sns", "on-call topic"},
		{"error rate threshold", child, "Threshold: 10\n", "Threshold: 20\n", "partner alarms"},
		{"latency p99", child, "ExtendedStatistic: p95", "ExtendedStatistic: p99", "partner alarms"},
		{"alarm without OK action", child, "OKActions: [!Ref OnCallTopicArn]", "OKActions: []", "partner alarms"},
		{"partner alarms paging elsewhere", root, "OnCallTopicArn: !Ref OnCallTopic", "OnCallTopicArn: !GetAtt IngressQueue.Arn", "partner alarms"},
		{"alarm treating missing data as breaching", child, "TreatMissingData: notBreaching", "TreatMissingData: breaching", "partner alarms"},
		{"alarm name without partner", child, "SecretDetectionPartnerAPINetworkErrors-${StackName}-${Partner}", "SecretDetectionPartnerAPINetworkErrors-${StackName}", "partner alarms"},
		{"alarm name with a nested stack's name", root, "StackName: !Ref AWS::StackName", "StackName: !Sub ${AWS::StackName}-Aws", "partner alarms"},
		{"backlog threshold", child, "Threshold: 50000", "Threshold: 500000", "queue alarms"},
		{"shared queue alarm without OK action", root, "OKActions: [!Ref OnCallTopic]", "OKActions: []", "queue alarms"},
		{"dashboard without a latency percentile", root, "'p99', 60)", "'p90', 60)", "dashboard"},
		{"dashboard listing a partner by hand", root, `["AWS/SQS", "ApproximateAgeOfOldestMessage"`, `["SecretDetection/PartnerTokenVerification", "PartnerAPIRequests", "Partner", "aws"], ["AWS/SQS", "ApproximateAgeOfOldestMessage"`, "dashboard"},
		{"dashboard without dead-letter queues", root, `\" DeadLetterQueue'`, `\" ResultsDeadLetterQueue'`, "dashboard"},
		{"output missing", root, "  GcpDeadLetterQueueUrl:", "  GcpDeadLetterQueueLink:", "outputs"},
		{"auto-rollback may delete the flag", root, "Action: [ssm:GetParameter, ssm:PutParameter]", "Action: [ssm:GetParameter, ssm:PutParameter, ssm:DeleteParameter]", "iam"},
		{"auto-rollback publishes anywhere", root, "Action: sns:Publish\n                Resource: !Ref OnCallTopic", "Action: sns:Publish\n                Resource: '*'", "iam"},
		{"auto-rollback uses any key", root, "Resource: !GetAtt OnCallTopicKey.Arn", "Resource: '*'", "iam"},
		{"auto-rollback on by default", root, "Default: 'false'", "Default: 'true'", "functions"},
		{"auto-rollback without its condition", root, "    Condition: AutoRollbackOn\n    Metadata:", "    Metadata:", "functions"},
		{"auto-rollback on another topic", root, "Topic: !Ref OnCallTopic", "Topic: !Ref IngressQueue", "functions"},
		{"ingress queue takes 1 MiB", root, "MaximumMessageSize: 262144", "MaximumMessageSize: 1048576", "integration"},
		{"results queue at the SQS default", root, "      MaximumMessageSize: 262144\n      RedrivePolicy:\n        deadLetterTargetArn: !GetAtt ResultsDeadLetterQueue.Arn", "      RedrivePolicy:\n        deadLetterTargetArn: !GetAtt ResultsDeadLetterQueue.Arn", "integration"},
		{"partner queue takes 1 MiB", child, "MaximumMessageSize: 262144", "MaximumMessageSize: 1048576", "integration"},
		{"dead-letter queue too small for a body and its reason", root, "      SqsManagedSseEnabled: true\n      MessageRetentionPeriod: 1209600", "      SqsManagedSseEnabled: true\n      MaximumMessageSize: 262144\n      MessageRetentionPeriod: 1209600", "integration"},
		{"scanner may also receive", root, "Action: sqs:SendMessage\n            Resource: !GetAtt IngressQueue.Arn", "Action: [sqs:SendMessage, sqs:ReceiveMessage]\n            Resource: !GetAtt IngressQueue.Arn", "integration"},
		{"consumer may purge", root, "sqs:ChangeMessageVisibility, sqs:GetQueueAttributes]\n            Resource: !GetAtt ResultsQueue.Arn", "sqs:ChangeMessageVisibility, sqs:GetQueueAttributes, sqs:PurgeQueue]\n            Resource: !GetAtt ResultsQueue.Arn", "integration"},
		{"consumer reads the ingress queue", root, "Queues: [!Ref ResultsQueue]", "Queues: [!Ref IngressQueue]", "integration"},
		{"scanner policy without its condition", root, "    Condition: HasScannerPrincipal\n", "", "integration"},
		{"consumer policy even without a principal", root, "HasResultsConsumerPrincipal: !Not [!Equals [!Ref ResultsConsumerPrincipalArn, '']]", "HasResultsConsumerPrincipal: !Equals [!Ref ResultsConsumerPrincipalArn, '']", "integration"},
		{"any principal accepted", root, "AllowedPattern: '^$|^arn:aws[a-z-]*:iam::[0-9]{12}:(root|role/.+|user/.+)$'", "AllowedPattern: '.*'", "integration"},
		{"export not scoped to the stack", root, "Name: !Sub ${AWS::StackName}-ResultsQueueArn", "Name: ResultsQueueArn", "integration"},
		{"ingress URL not exported", root, "    Export:\n      Name: !Sub ${AWS::StackName}-IngressQueueUrl\n", "", "integration"},
		{"on-call address as a default", root, "    ConstraintDescription: an https:// URL, an e-mail address, or '' for no subscription\n", "    ConstraintDescription: an https:// URL, an e-mail address, or '' for no subscription\n    Default: oncall@example.com\n", "integration"},
		{"on-call endpoint takes anything", root, "AllowedPattern: '^$|^https://[^\\s]+$|^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$'", "AllowedPattern: '.*'", "integration"},
		{"auto-rollback without its stack name", root, "          STACK_NAME: !Ref AWS::StackName\n", "          STACK_NAME: partner-token-verification\n", "environment"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(srcs[tc.file], tc.old) {
				t.Fatalf("%s no longer contains %q: update this case", tc.file, tc.old)
			}
			broken := maps.Clone(srcs)
			broken[tc.file] = strings.Replace(srcs[tc.file], tc.old, tc.new, 1)
			tpl, err := parseSources(broken)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			idx := slices.IndexFunc(reviewChecks, func(c check) bool { return c.name == tc.check })
			if idx < 0 {
				t.Fatalf("no check %q", tc.check)
			}
			problems := reviewChecks[idx].fn(tpl)
			if len(problems) == 0 {
				t.Errorf("check %q found nothing wrong", tc.check)
			}
			t.Logf("%s: %v", tc.check, problems)
		})
	}
}

// TestPartnerStackRejectsItsOwnStackName: names built from a nested stack's
// own AWS::StackName would not carry the root stack's name, so the model
// refuses such a child outright.
func TestPartnerStackRejectsItsOwnStackName(t *testing.T) {
	_, srcs := repoTemplate(t)
	broken := maps.Clone(srcs)
	broken[partnerStackFile] = strings.Replace(srcs[partnerStackFile], "/aws/lambda/${StackName}-", "/aws/lambda/${AWS::StackName}-", 1)
	if _, err := parseSources(broken); err == nil || !strings.Contains(err.Error(), "AWS::StackName") {
		t.Fatalf("Parse error = %v, want one naming AWS::StackName", err)
	}
}

// knownPartners is the partner list the code knows; the one place to switch
// (shared/partner/registry).
func knownPartners() []string {
	var out []string
	for _, p := range registry.Names() {
		out = append(out, string(p))
	}
	slices.Sort(out)
	return out
}

// TestPartnerApplicationsMatchTheCode: every partner the code routes to has
// exactly one nested application (logical id: its name TitleCased, Partner:
// its name, Location: the partner stack), and there is no other.
func TestPartnerApplicationsMatchTheCode(t *testing.T) {
	tpl, _ := repoTemplate(t)
	var got []string
	for id, app := range tpl.Applications {
		if app.Location != partnerStackFile {
			t.Errorf("application %s: Location %s, want %s", id, app.Location, partnerStackFile)
		}
		name, err := app.Parameters["Partner"].Text()
		if err != nil {
			t.Errorf("application %s: Partner: %v", id, err)
			continue
		}
		if want := samtemplate.PartnerStem(name); id != want {
			t.Errorf("application for partner %s has logical id %s, want %s", name, id, want)
		}
		got = append(got, name)
	}
	slices.Sort(got)
	if want := knownPartners(); !slices.Equal(got, want) {
		t.Errorf("partner applications %v, partners the code knows %v", got, want)
	}
}

// TestEachAlarmWrittenOnce: every alarm of contract §5 (and the queue
// alarms) is defined in exactly one place across template.yaml and
// partner-stack.yaml, however many partners there are.
func TestEachAlarmWrittenOnce(t *testing.T) {
	_, srcs := repoTemplate(t)
	alarmName := regexp.MustCompile(`AlarmName: !Sub (SecretDetection[A-Za-z]+)-\$\{[A-Za-z:]+\}-([^\s]+)`)
	count := map[string]int{}
	for file, src := range srcs {
		for _, m := range alarmName.FindAllStringSubmatch(src, -1) {
			count[m[1]+" "+m[2]]++
			if file == samtemplate.FileName && strings.HasPrefix(m[1], "SecretDetectionPartner") {
				t.Errorf("%s defines partner alarm %s: it belongs in %s", file, m[1], partnerStackFile)
			}
		}
	}
	for _, al := range alerts {
		if n := count[al.name+" ${Partner}"]; n != 1 {
			t.Errorf("%s is defined %d times, want once", al.name, n)
		}
	}
	for _, name := range []string{"SecretDetectionDeadLetterQueueNotEmpty ${Partner}", "SecretDetectionPartnerQueueBacklog ${Partner}",
		"SecretDetectionDeadLetterQueueNotEmpty ingress", "SecretDetectionDeadLetterQueueNotEmpty results", "SecretDetectionIngressMessageAge ingress"} {
		if n := count[name]; n != 1 {
			t.Errorf("%s is defined %d times, want once", name, n)
		}
	}
	if len(count) != len(alerts)+5 {
		t.Errorf("alarm definitions %v, want the %d alerts of the contract and 5 queue alarms", count, len(alerts))
	}
}

func checkParameters(tpl *samtemplate.Template) []string {
	var p []string
	want := map[string]string{
		"FeatureFlagCacheTtl": "30s", "FeatureFlagParameterName": flagParameterName, "MaxAttempts": "5",
		"AutoRollback": "false", "LogRetentionDays": "30", "OnCallProtocol": "https",
		"ScannerPrincipalArn": "", "ResultsConsumerPrincipalArn": "",
	}
	want["Environment"] = "" // present, any default
	for _, stem := range partnerIDs {
		want[stem+"RatePerSecond"], want[stem+"MaxConcurrency"] = "", ""
	}
	for name, def := range want {
		par, ok := tpl.Parameters[name]
		switch {
		case !ok:
			p = append(p, "parameter "+name+" is missing")
		case !par.HasDefault:
			p = append(p, "parameter "+name+" has no default")
		case (name == "ScannerPrincipalArn" || name == "ResultsConsumerPrincipalArn") && par.Default != "":
			p = append(p, fmt.Sprintf("parameter %s defaults to %q: a principal is granted only when given", name, par.Default))
		case def != "" && par.Default != def:
			p = append(p, fmt.Sprintf("parameter %s defaults to %q, want %q", name, par.Default, def))
		}
	}
	for _, par := range tpl.Parameters {
		if par.HasDefault {
			if err := par.Validate(par.Default); err != nil {
				p = append(p, "default breaks its own constraints: "+err.Error())
			}
		}
	}
	if env := tpl.Parameters["Environment"]; env != nil {
		got := slices.Sorted(slices.Values(env.AllowedValues))
		if want := []string{"dev", "local", "pre", "production", "staging", "staging-ref"}; !slices.Equal(got, want) {
			p = append(p, fmt.Sprintf("Environment allows %v, want %v", got, want))
		}
	}
	if proto := tpl.Parameters["OnCallProtocol"]; proto != nil && !slices.Equal(slices.Sorted(slices.Values(proto.AllowedValues)), []string{"email", "https"}) {
		p = append(p, fmt.Sprintf("OnCallProtocol allows %v, want email and https", proto.AllowedValues))
	}
	if ttl := tpl.Parameters["FeatureFlagCacheTtl"]; ttl != nil {
		if _, err := time.ParseDuration(ttl.Default); err != nil {
			p = append(p, "FeatureFlagCacheTtl default is not a Go duration: "+err.Error())
		}
	}
	return p
}

func intParam(tpl *samtemplate.Template, name string) (float64, error) {
	par, ok := tpl.Parameters[name]
	if !ok {
		return 0, fmt.Errorf("parameter %s is missing", name)
	}
	v, err := tpl.ParameterValue(name)
	if err != nil {
		return 0, err
	}
	var f float64
	if _, err := fmt.Sscan(v, &f); err != nil {
		return 0, fmt.Errorf("parameter %s = %q is not a number", par.Name, v)
	}
	return f, nil
}

func checkQueues(tpl *samtemplate.Template) []string {
	var p []string
	var want []string
	for _, s := range queueStems {
		want = append(want, s+"Queue", s+"DeadLetterQueue")
	}
	sort.Strings(want)
	if got := tpl.ResourcesOfType(samtemplate.TypeQueue); !slices.Equal(got, want) {
		p = append(p, fmt.Sprintf("queues = %v, want %v", got, want))
	}
	maxAttempts, err := intParam(tpl, "MaxAttempts")
	if err != nil {
		return append(p, err.Error())
	}
	maxAttemptsCap := maxAttempts
	if par := tpl.Parameters["MaxAttempts"]; par != nil && par.MaxValue != nil {
		maxAttemptsCap = *par.MaxValue
	} else {
		p = append(p, "MaxAttempts has no MaxValue: a deploy could set it at or above maxReceiveCount")
	}
	for id, q := range tpl.Queues {
		if !q.SqsManagedSSE {
			p = append(p, id+": SqsManagedSseEnabled is not true")
		}
		if strings.HasSuffix(id, "DeadLetterQueue") {
			if q.MessageRetentionPeriod != dlqRetention {
				p = append(p, fmt.Sprintf("%s: retention %d s, want %d (14 days)", id, q.MessageRetentionPeriod, dlqRetention))
			}
			if q.DeadLetterTarget.IsSet() {
				p = append(p, id+": a dead-letter queue must not redrive further")
			}
			continue
		}
		wantDLQ := strings.TrimSuffix(id, "Queue") + "DeadLetterQueue"
		if q.DeadLetterQueue != wantDLQ {
			p = append(p, fmt.Sprintf("%s: redrives to %q, want its own %s", id, q.DeadLetterQueue, wantDLQ))
			continue
		}
		if float64(q.MaxReceiveCount) <= maxAttemptsCap || float64(q.MaxReceiveCount) <= maxAttempts {
			p = append(p, fmt.Sprintf("%s: maxReceiveCount %d is not above MaxAttempts (default %v, at most %v): SQS would redrive before the terminal result", id, q.MaxReceiveCount, maxAttempts, maxAttemptsCap))
		}
		if dlq := tpl.Queues[wantDLQ]; dlq != nil && dlq.MessageRetentionPeriod < q.MessageRetentionPeriod {
			p = append(p, fmt.Sprintf("%s: keeps messages %d s, longer than its DLQ (%d s); a redriven message would expire early", id, q.MessageRetentionPeriod, dlq.MessageRetentionPeriod))
		}
	}
	for fid, f := range tpl.Functions {
		for _, e := range f.SQSEvents {
			q := tpl.Queues[e.Queue]
			if q == nil {
				p = append(p, fmt.Sprintf("%s: event %s reads unknown queue %s", fid, e.Name, e.Queue))
				continue
			}
			if q.VisibilityTimeout < 6*f.Timeout {
				p = append(p, fmt.Sprintf("%s: visibility timeout %d s is below 6 x %s timeout (%d s)", e.Queue, q.VisibilityTimeout, fid, f.Timeout))
			}
		}
	}
	return p
}

func makefileFunctions() (string, error) {
	root, err := samtemplate.FindRoot()
	if err != nil {
		return "", err
	}
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		return "", err
	}
	m := regexp.MustCompile(`(?m)^FUNCTIONS\s*:=(.*)$`).FindSubmatch(mk)
	if m == nil {
		return "", fmt.Errorf("the Makefile has no FUNCTIONS := line")
	}
	return string(m[1]), nil
}

func checkFunctions(tpl *samtemplate.Template) []string {
	var p []string
	want := slices.Sorted(func(yield func(string) bool) {
		for id := range functionSources {
			if !yield(id) {
				return
			}
		}
		for id := range snsFunctions {
			if !yield(id) {
				return
			}
		}
	})
	if got := tpl.ResourcesOfType(samtemplate.TypeFunction); !slices.Equal(got, want) {
		p = append(p, fmt.Sprintf("functions = %v, want %v", got, want))
	}
	mkFunctions, err := makefileFunctions()
	if err != nil {
		p = append(p, err.Error())
	}
	for id, f := range tpl.Functions {
		if f.Runtime != "provided.al2023" {
			p = append(p, id+": runtime "+f.Runtime)
		}
		if !slices.Equal(f.Architectures, []string{"arm64"}) {
			p = append(p, fmt.Sprintf("%s: architectures %v, want [arm64]", id, f.Architectures))
		}
		if f.Handler != "bootstrap" {
			p = append(p, id+": handler "+f.Handler)
		}
		if f.CodeURI != "." || f.BuildMethod != "makefile" {
			p = append(p, fmt.Sprintf("%s: CodeUri %q BuildMethod %q, want . and makefile", id, f.CodeURI, f.BuildMethod))
		}
		target := strings.TrimPrefix(f.BuildTarget, "build-")
		if mkFunctions != "" && !strings.Contains(mkFunctions, " "+target+":") && !strings.HasPrefix(strings.TrimSpace(mkFunctions), target+":") {
			p = append(p, id+": the Makefile's FUNCTIONS has no "+f.BuildTarget+" target")
		}
		if f.Application != "" && (f.BuildTarget != "build-Function" || f.MemorySize < 128) {
			p = append(p, fmt.Sprintf("%s: partner function built by %s, want the shared build-Function", id, f.BuildTarget))
		}
		if f.Tracing != "Active" {
			p = append(p, id+": Tracing is "+f.Tracing)
		}
		if f.Timeout < 1 || f.Timeout > 60 {
			p = append(p, fmt.Sprintf("%s: timeout %d s", id, f.Timeout))
		}
		if f.MemorySize != 128 && f.MemorySize != 256 {
			p = append(p, fmt.Sprintf("%s: memory %d MB, want 128 or 256", id, f.MemorySize))
		}
		lg := tpl.LogGroups[f.LogGroup]
		if lg == nil {
			p = append(p, id+": no log group of its own")
		} else if retention, err := intParam(tpl, "LogRetentionDays"); err != nil || lg.RetentionInDays != int(retention) || lg.RetentionInDays == 0 {
			p = append(p, fmt.Sprintf("%s: log group %s keeps logs %d days, want LogRetentionDays", id, f.LogGroup, lg.RetentionInDays))
		}
		if cond, ok := snsFunctions[id]; ok {
			p = append(p, checkSNSFunction(tpl, id, cond)...)
			continue
		}
		if len(f.OtherEvents) > 0 {
			p = append(p, fmt.Sprintf("%s: unexpected events %v", id, f.OtherEvents))
		}
		src := functionSources[id]
		if len(f.SQSEvents) != 1 {
			p = append(p, fmt.Sprintf("%s: %d SQS events, want 1", id, len(f.SQSEvents)))
			continue
		}
		e := f.SQSEvents[0]
		if e.Queue != src.queue {
			p = append(p, fmt.Sprintf("%s: reads %s, want %s", id, e.Queue, src.queue))
		}
		if !slices.Equal(e.FunctionResponseTypes, []string{"ReportBatchItemFailures"}) {
			p = append(p, fmt.Sprintf("%s: FunctionResponseTypes %v", id, e.FunctionResponseTypes))
		}
		// Partner functions' batches are sized per partner ("batch sizing").
		if (f.Application == "" && e.BatchSize != 10) || e.MaximumBatchingWindow < 0 || e.MaximumBatchingWindow > 5 || !e.Enabled {
			p = append(p, fmt.Sprintf("%s: batch size %d, window %d s, enabled %v", id, e.BatchSize, e.MaximumBatchingWindow, e.Enabled))
		}
		if mc, err := intParam(tpl, src.maxConcurrency); err != nil || e.MaximumConcurrency != int(mc) || e.MaximumConcurrency < 2 {
			p = append(p, fmt.Sprintf("%s: MaximumConcurrency %d, want parameter %s (at least 2)", id, e.MaximumConcurrency, src.maxConcurrency))
		}
	}
	// The global partner rate is MaximumConcurrency x per-instance rate;
	// Postman allows about 3 requests per second in all.
	rate, err1 := intParam(tpl, "PostmanRatePerSecond")
	conc, err2 := intParam(tpl, "PostmanMaxConcurrency")
	if err1 != nil || err2 != nil || rate*conc > 3 {
		p = append(p, fmt.Sprintf("Postman global rate %v x %v exceeds 3 req/s (%v %v)", conc, rate, err1, err2))
	}
	// OpenAI: our own ceiling of 5 requests per second (shared/partner/openai).
	rate, err1 = intParam(tpl, "OpenaiRatePerSecond")
	conc, err2 = intParam(tpl, "OpenaiMaxConcurrency")
	if err1 != nil || err2 != nil || rate*conc > 5 {
		p = append(p, fmt.Sprintf("OpenAI global rate %v x %v exceeds 5 req/s (%v %v)", conc, rate, err1, err2))
	}
	// Stripe: the template's defaults stay within the Definition's ceiling.
	rate, err1 = intParam(tpl, "StripeRatePerSecond")
	conc, err2 = intParam(tpl, "StripeMaxConcurrency")
	if limit := stripepartner.Definition.Rate.Limit; err1 != nil || err2 != nil || rate*conc > limit {
		p = append(p, fmt.Sprintf("Stripe global rate %v x %v exceeds %v req/s (%v %v)", conc, rate, limit, err1, err2))
	}
	// Anthropic's smallest organizations get 50 requests a minute (Rate.Limit).
	rate, err1 = intParam(tpl, "AnthropicRatePerSecond")
	conc, err2 = intParam(tpl, "AnthropicMaxConcurrency")
	if err1 != nil || err2 != nil || rate*conc > anthropicpartner.Definition.Rate.Limit {
		p = append(p, fmt.Sprintf("Anthropic global rate %v x %v exceeds %.2f req/s (%v %v)", conc, rate, anthropicpartner.Definition.Rate.Limit, err1, err2))
	}
	return p
}

// checkSNSFunction: subscribed to the on-call topic only, and deployed only
// under its condition, which is false with the template's defaults.
func checkSNSFunction(tpl *samtemplate.Template, id, cond string) []string {
	var p []string
	f := tpl.Functions[id]
	events, _ := tpl.Resources[id].Properties["Events"].(map[string]any)
	if len(f.SQSEvents) > 0 || len(f.OtherEvents) != 1 || len(events) != 1 {
		p = append(p, fmt.Sprintf("%s: events %v %v, want one SNS event", id, f.SQSEvents, f.OtherEvents))
	}
	for name, ev := range events {
		m, _ := ev.(map[string]any)
		props, _ := m["Properties"].(map[string]any)
		if m["Type"] != "SNS" || (samtemplate.Value{Expr: props["Topic"]}).Target() != (samtemplate.Target{Kind: samtemplate.TargetResource, Name: "OnCallTopic"}) {
			p = append(p, fmt.Sprintf("%s: event %s is not the SNS subscription to !Ref OnCallTopic", id, name))
		}
	}
	if got := tpl.Resources[id].Condition; got != cond {
		p = append(p, fmt.Sprintf("%s: condition %q, want %s", id, got, cond))
	} else if on, err := tpl.Condition(cond); err != nil || on {
		p = append(p, fmt.Sprintf("%s: condition %s is %v (%v) with the defaults, want false", id, cond, on, err))
	}
	return p
}

func checkEnvironment(tpl *samtemplate.Template) []string {
	var p []string
	for fid, want := range expectedEnv() {
		f := tpl.Functions[fid]
		if f == nil {
			p = append(p, "no function "+fid)
			continue
		}
		for name := range f.Environment {
			if _, ok := want[name]; !ok {
				p = append(p, fmt.Sprintf("%s: unexpected variable %s (no code reads it)", fid, name))
			}
		}
		for name, w := range want {
			v, ok := f.Environment[name]
			if !ok {
				p = append(p, fmt.Sprintf("%s: %s is not set", fid, name))
				continue
			}
			tg := v.Target()
			var good bool
			switch w.kind {
			case envQueueURL:
				good = tg.Kind == samtemplate.TargetResource && tg.Name == w.name && (tg.Attribute == "" || tg.Attribute == "QueueUrl") && tpl.Queues[w.name] != nil
			case envParam:
				good = tg.Kind == samtemplate.TargetParameter && tg.Name == w.name
			case envResource:
				good = tg.Kind == samtemplate.TargetResource && tg.Name == w.name && tg.Attribute == ""
			case envLiteral:
				good = tg.Kind == samtemplate.TargetLiteral && (w.name == "" && tg.Literal != "" || tg.Literal == w.name)
			case envPseudo:
				good = tg.Kind == samtemplate.TargetPseudo && tg.Name == w.name
			}
			if !good {
				p = append(p, fmt.Sprintf("%s: %s = %v, want %v %q", fid, name, v.Expr, w.kind, w.name))
			}
		}
		if v, ok := f.Environment["PARTNER_CONCURRENCY"]; ok {
			if n, err := v.Int(); err != nil || n < 1 {
				p = append(p, fmt.Sprintf("%s: PARTNER_CONCURRENCY %v is not a positive integer", fid, v.Expr))
			}
		}
	}
	return p
}

// testScope resolves references the way a deployed stack would, with the
// SSM parameter resolving to its name, so IAM resources can be compared
// as ARNs.
func testScope(tpl *samtemplate.Template) samtemplate.Scope {
	s := samtemplate.SymbolicScope("teststack", "us-east-1", "123456789012")
	symbolic := s.Resource
	s.Resource = func(id, attr string) (string, error) {
		if par := tpl.SSMParameters[id]; par != nil && attr == "" {
			return par.Name.Text()
		}
		return symbolic(id, attr)
	}
	return s
}

func checkIAM(tpl *samtemplate.Template) []string {
	var p []string
	scope := testScope(tpl)
	for fid, wantReach := range expectedReach() {
		f := tpl.Functions[fid]
		if f == nil {
			p = append(p, "no function "+fid)
			continue
		}
		if f.Role == "" {
			p = append(p, fid+": no role of its own; SAM's generated role carries AWSLambdaSQSQueueExecutionRole (sqs on every queue)")
			continue
		}
		if got := tpl.Roles[f.Role].TrustedServices; !slices.Equal(got, []string{"lambda.amazonaws.com"}) {
			p = append(p, fmt.Sprintf("%s: role trusts %v", fid, got))
		}
		if len(f.ManagedPolicies) > 0 || len(f.PolicyTemplates) > 0 {
			p = append(p, fmt.Sprintf("%s: managed policies %v / policy templates %v cannot be reviewed here", fid, f.ManagedPolicies, f.PolicyTemplates))
		}
		reach := map[string][]string{}
		for i, st := range f.Statements {
			where := fmt.Sprintf("%s statement %d (%s)", fid, i, st.Sid)
			if st.Effect != "Allow" || st.NotAction || st.NotResource {
				p = append(p, where+": only plain Allow statements are expected")
			}
			xray := len(st.Actions) > 0
			for _, a := range st.Actions {
				if strings.Contains(a, "*") {
					p = append(p, where+": wildcard action "+a)
				}
				if !strings.HasPrefix(a, "xray:") {
					xray = false
				}
				if svc, _, _ := strings.Cut(a, ":"); !slices.Contains(slices.Concat([]string{"logs", "xray", "sqs", "ssm"}, reportServices[fid]), svc) {
					p = append(p, where+": action outside logs, xray, sqs, ssm: "+a)
				}
			}
			for _, r := range st.Resources {
				tg := r.Target()
				if tg.Kind == samtemplate.TargetLiteral {
					// X-Ray's trace APIs have no resource-level permissions: AWS requires "*".
					if !(xray && tg.Literal == "*") {
						p = append(p, where+": literal resource "+tg.Literal)
					}
					continue
				}
				arn, err := r.Resolve(scope)
				if err != nil {
					p = append(p, where+": resource: "+err.Error())
				} else if strings.Contains(arn, "*") {
					p = append(p, where+": wildcard resource "+arn)
				}
				if tg.Kind == samtemplate.TargetResource {
					if tpl.Queues[tg.Name] != nil {
						if tg.Attribute != "Arn" {
							p = append(p, where+": queue "+tg.Name+" not named by its ARN")
						}
						reach[tg.Name] = append(reach[tg.Name], st.Actions...)
					} else if lg := tpl.LogGroups[tg.Name]; lg != nil && tg.Name != f.LogGroup {
						p = append(p, where+": another function's log group "+tg.Name)
					}
				}
			}
			for _, a := range st.Actions {
				switch {
				case strings.HasPrefix(a, "ssm:"):
					want := "arn:aws:ssm:us-east-1:123456789012:parameter" + flagParameterName
					if !slices.Contains(flagActions(fid), a) || len(st.Resources) != 1 {
						p = append(p, fmt.Sprintf("%s: ssm access beyond %v on the flag: %s", where, flagActions(fid), a))
					} else if got, _ := st.Resources[0].Resolve(scope); got != want {
						p = append(p, fmt.Sprintf("%s: %s on %s, want %s", where, a, got, want))
					}
				case strings.HasPrefix(a, "sns:"), strings.HasPrefix(a, "kms:"):
					// Only to report to on-call: publish to its topic, with its key.
					want := map[string]samtemplate.Target{
						"sns:Publish":         {Kind: samtemplate.TargetResource, Name: "OnCallTopic"},
						"kms:GenerateDataKey": {Kind: samtemplate.TargetResource, Name: "OnCallTopicKey", Attribute: "Arn"},
						"kms:Decrypt":         {Kind: samtemplate.TargetResource, Name: "OnCallTopicKey", Attribute: "Arn"},
					}
					tg, ok := want[a]
					if !ok || len(st.Resources) != 1 || st.Resources[0].Target() != tg {
						p = append(p, fmt.Sprintf("%s: %s beyond publishing to OnCallTopic: %v", where, a, st.Resources))
					}
				case strings.HasPrefix(a, "sqs:"):
					for _, r := range st.Resources {
						if tg := r.Target(); tg.Kind != samtemplate.TargetResource || tpl.Queues[tg.Name] == nil {
							p = append(p, fmt.Sprintf("%s: %s on something that is not one of the template's queues: %v", where, a, r.Expr))
						}
					}
				case strings.HasPrefix(a, "logs:"):
					for _, r := range st.Resources {
						if tg := r.Target(); tg.Name != f.LogGroup || tg.Attribute != "Arn" {
							p = append(p, fmt.Sprintf("%s: %s beyond its own log group: %v", where, a, r.Expr))
						}
					}
				}
			}
		}
		for q := range reach {
			slices.Sort(reach[q])
			reach[q] = slices.Compact(reach[q])
		}
		for q, acts := range reach {
			if _, ok := wantReach[q]; !ok {
				p = append(p, fmt.Sprintf("%s can reach %s (%v), which it must not", fid, q, acts))
			}
		}
		for q, acts := range wantReach {
			if got := reach[q]; !slices.Equal(got, acts) {
				p = append(p, fmt.Sprintf("%s: on %s has %v, want %v", fid, q, got, acts))
			}
		}
		for other, stem := range partnerIDs {
			if fid == stem+"Function" || fid == "DispatcherFunction" {
				continue
			}
			for _, q := range []string{stem + "Queue", stem + "DeadLetterQueue"} {
				if _, ok := reach[q]; ok {
					p = append(p, fmt.Sprintf("%s reaches %s, a queue of partner %s", fid, q, other))
				}
			}
		}
	}
	for id, k := range tpl.KMSKeys {
		if !k.EnableKeyRotation {
			p = append(p, id+": key rotation off")
		}
		for i, st := range k.Statements {
			for _, a := range st.Actions {
				if strings.Contains(a, "*") {
					p = append(p, fmt.Sprintf("%s statement %d: wildcard action %s", id, i, a))
				}
			}
			// A key policy's Resource "*" means the key itself: AWS requires it there.
			for _, r := range st.Resources {
				if tg := r.Target(); tg.Kind != samtemplate.TargetLiteral || tg.Literal != "*" {
					p = append(p, fmt.Sprintf("%s statement %d: key policy resource %v", id, i, r.Expr))
				}
			}
		}
	}
	return p
}

func checkFlagParameter(tpl *samtemplate.Template) []string {
	var p []string
	if len(tpl.SSMParameters) != 1 || tpl.SSMParameters["FeatureFlagParameter"] == nil {
		return []string{fmt.Sprintf("want exactly FeatureFlagParameter, have %d SSM parameters", len(tpl.SSMParameters))}
	}
	par := tpl.SSMParameters["FeatureFlagParameter"]
	if tg := par.Name.Target(); tg.Kind != samtemplate.TargetParameter || tg.Name != "FeatureFlagParameterName" {
		p = append(p, fmt.Sprintf("FeatureFlagParameter name is %v, want !Ref FeatureFlagParameterName", par.Name.Expr))
	}
	if name, err := par.Name.Text(); err != nil || name != flagParameterName {
		p = append(p, fmt.Sprintf("FeatureFlagParameter name %q (%v), want %s", name, err, flagParameterName))
	}
	if par.Type != "String" {
		p = append(p, "FeatureFlagParameter type "+par.Type)
	}
	value, err := par.Value.Text()
	if err != nil {
		return append(p, "FeatureFlagParameter value: "+err.Error())
	}
	var flag struct {
		Enabled    *bool           `json:"enabled"`
		Groups     []string        `json:"groups"`
		Projects   []int64         `json:"projects"`
		Percentage *float64        `json:"percentage_of_actors"`
		Partners   map[string]bool `json:"partners"`
	}
	dec := json.NewDecoder(strings.NewReader(value))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&flag); err != nil {
		return append(p, "FeatureFlagParameter value is not the contract's flag JSON: "+err.Error())
	}
	if flag.Enabled == nil || *flag.Enabled || len(flag.Groups) > 0 || len(flag.Projects) > 0 || flag.Percentage == nil || *flag.Percentage != 0 {
		p = append(p, "FeatureFlagParameter must start with everything off: "+value)
	}
	for partner, on := range flag.Partners {
		if on {
			p = append(p, "FeatureFlagParameter switches partner "+partner+" on explicitly")
		}
	}
	return p
}

func checkOnCall(tpl *samtemplate.Template) []string {
	var p []string
	topic := tpl.Topics["OnCallTopic"]
	if topic == nil {
		return []string{"no OnCallTopic"}
	}
	// CloudWatch alarms cannot publish to a topic on the AWS managed key alias/aws/sns.
	tg := topic.KMSKey.Target()
	if tg.Kind != samtemplate.TargetResource || tpl.KMSKeys[tg.Name] == nil {
		p = append(p, fmt.Sprintf("OnCallTopic key %v: want a customer managed key of this template", topic.KMSKey.Expr))
	} else {
		granted := false
		for _, st := range tpl.KMSKeys[tg.Name].Statements {
			pm, _ := st.Principal.Expr.(map[string]any)
			if pm["Service"] == "cloudwatch.amazonaws.com" && slices.Contains(st.Actions, "kms:GenerateDataKey") && slices.Contains(st.Actions, "kms:Decrypt") {
				granted = true
			}
		}
		if !granted {
			p = append(p, "OnCallTopic key does not let cloudwatch.amazonaws.com GenerateDataKey and Decrypt: alarms could not publish")
		}
	}
	var subs []*samtemplate.Subscription
	for _, s := range tpl.Subscriptions {
		if s.Topic == "OnCallTopic" {
			subs = append(subs, s)
		}
	}
	if len(subs) != 1 {
		return append(p, fmt.Sprintf("OnCallTopic has %d subscriptions, want 1", len(subs)))
	}
	s := subs[0]
	if tg := s.Endpoint.Target(); tg.Kind != samtemplate.TargetParameter || tg.Name != "OnCallEndpoint" {
		p = append(p, "subscription endpoint is not !Ref OnCallEndpoint")
	}
	if tg := s.Protocol.Target(); tg.Kind != samtemplate.TargetParameter || tg.Name != "OnCallProtocol" {
		p = append(p, "subscription protocol is not !Ref OnCallProtocol")
	}
	if s.Condition == "" {
		return append(p, "subscription has no condition: an empty OnCallEndpoint would fail the deploy")
	}
	// OnCallEndpoint is required: a stack without paging passes '' on purpose.
	if ep, err := tpl.ParameterValue("OnCallEndpoint"); err != nil || ep == "" {
		if err := tpl.SetParameter("OnCallEndpoint", ""); err != nil {
			return append(p, "OnCallEndpoint refuses '', the value of a stack without paging: "+err.Error())
		}
		if on, err := tpl.Condition(s.Condition); err != nil || on {
			p = append(p, fmt.Sprintf("subscription condition %s is %v (%v) with an empty endpoint", s.Condition, on, err))
		}
	}
	return p
}

// alertSpec is one alert of contract §5, as the alarm must implement it.
type alertSpec struct {
	name      string
	metric    string
	threshold float64
	// expression is the metric math; empty for the p95 statistic alarm.
	expression string
}

var alerts = []alertSpec{
	{"SecretDetectionPartnerAPIHighErrorRate", metrics.Errors, 10, "IF(requests > 0, errors / requests * 100, 0)"},
	{"SecretDetectionPartnerAPIHighLatency", metrics.Latency, 5000, ""},
	{"SecretDetectionPartnerAPIRateLimitHit", metrics.RateLimitHits, 0.1, "hits / PERIOD(hits)"},
	{"SecretDetectionPartnerAPINetworkErrors", metrics.NetworkErrors, 0.5, "hits / PERIOD(hits)"},
}

func alarmNames(tpl *samtemplate.Template) (map[string]*samtemplate.Alarm, []string) {
	byName := map[string]*samtemplate.Alarm{}
	var p []string
	scope := samtemplate.SymbolicScope("teststack", "us-east-1", "123456789012")
	for id, a := range tpl.Alarms {
		n, err := a.NameIn(scope)
		if err != nil {
			p = append(p, id+": "+err.Error())
			continue
		}
		byName[n] = a
	}
	return byName, p
}

func dimsAre(m samtemplate.Metric, want map[string]string) bool {
	if len(m.Dimensions) != len(want) {
		return false
	}
	for _, d := range m.Dimensions {
		v, err := d.Value.Text()
		if err != nil || want[d.Name] != v {
			return false
		}
	}
	return true
}

func checkActions(a *samtemplate.Alarm) []string {
	var p []string
	onCall := func(vs []samtemplate.Value) bool {
		return len(vs) == 1 && vs[0].Target() == samtemplate.Target{Kind: samtemplate.TargetResource, Name: "OnCallTopic"}
	}
	if !onCall(a.AlarmActions) || !onCall(a.OKActions) {
		p = append(p, a.LogicalID+": AlarmActions and OKActions must be [!Ref OnCallTopic]")
	}
	if a.TreatMissingData != "notBreaching" {
		p = append(p, a.LogicalID+": TreatMissingData "+a.TreatMissingData)
	}
	return p
}

func checkPartnerAlarms(tpl *samtemplate.Template) []string {
	byName, p := alarmNames(tpl)
	count := 0
	for name := range byName {
		if strings.HasPrefix(name, "SecretDetectionPartnerAPI") {
			count++
		}
	}
	if count != len(alerts)*len(registry.Names()) {
		p = append(p, fmt.Sprintf("%d partner API alarms, want %d (4 alerts x 3 partners)", count, len(alerts)*len(registry.Names())))
	}
	for _, al := range alerts {
		for _, partner := range registry.Names() {
			var a *samtemplate.Alarm
			for name, x := range byName {
				if strings.HasPrefix(name, al.name+"-") && strings.HasSuffix(name, "-"+string(partner)) {
					if a != nil {
						p = append(p, fmt.Sprintf("two alarms for %s / %s", al.name, partner))
					}
					a = x
					// <alert>-<root stack>-<partner>: a nested stack's own name must not leak in.
					if want := al.name + "-teststack-" + string(partner); name != want {
						p = append(p, fmt.Sprintf("alarm %s, want %s", name, want))
					}
				}
			}
			where := al.name + " " + string(partner)
			if a == nil {
				p = append(p, "no alarm named "+al.name+"-...-"+string(partner))
				continue
			}
			p = append(p, checkActions(a)...)
			if a.ComparisonOperator != "GreaterThanThreshold" || a.Threshold != al.threshold {
				p = append(p, fmt.Sprintf("%s: %s %v, want GreaterThanThreshold %v", where, a.ComparisonOperator, a.Threshold, al.threshold))
			}
			// "for 5 consecutive minutes": five one-minute periods, all breaching.
			if a.EvaluationPeriodSeconds() != 60 || a.EvaluationPeriods != 5 || a.DatapointsToAlarm != 5 {
				p = append(p, fmt.Sprintf("%s: %d of %d periods of %d s, want 5 of 5 of 60 s", where, a.DatapointsToAlarm, a.EvaluationPeriods, a.EvaluationPeriodSeconds()))
			}
			dims := map[string]string{metrics.DimPartner: string(partner)}
			if al.expression == "" {
				if a.Metric == nil || a.Metric.Namespace != metrics.Namespace || a.Metric.MetricName != al.metric || !dimsAre(*a.Metric, dims) || a.ExtendedStatistic != "p95" || a.Statistic != "" {
					p = append(p, fmt.Sprintf("%s: want %s p95 of %s with Partner=%s", where, metrics.Namespace, al.metric, partner))
				}
				continue
			}
			var returned []samtemplate.MetricQuery
			ids := map[string]samtemplate.MetricQuery{}
			for _, q := range a.Metrics {
				ids[q.ID] = q
				if q.ReturnData {
					returned = append(returned, q)
				}
			}
			if len(returned) != 1 || returned[0].Expression != al.expression {
				p = append(p, fmt.Sprintf("%s: want one returned expression %q", where, al.expression))
			}
			inputs := map[string]string{"hits": al.metric}
			if al.metric == metrics.Errors {
				inputs = map[string]string{"errors": metrics.Errors, "requests": metrics.Requests}
			}
			for id, name := range inputs {
				q, ok := ids[id]
				if !ok || q.Metric == nil || q.ReturnData || q.Metric.Namespace != metrics.Namespace || q.Metric.MetricName != name || q.Stat != "Sum" || q.Period != 60 || !dimsAre(*q.Metric, dims) {
					p = append(p, fmt.Sprintf("%s: %s must be the hidden Sum of %s with Partner=%s over 60 s", where, id, name, partner))
				}
			}
			if len(ids) != len(inputs)+1 {
				p = append(p, fmt.Sprintf("%s: %d queries, want %d", where, len(ids), len(inputs)+1))
			}
		}
	}
	return p
}

func checkQueueAlarms(tpl *samtemplate.Template) []string {
	byName, p := alarmNames(tpl)
	type want struct {
		queue, metric string
		threshold     float64
	}
	wants := map[string]want{}
	for _, s := range queueStems {
		wants["SecretDetectionDeadLetterQueueNotEmpty-teststack-"+strings.ToLower(s)] = want{s + "DeadLetterQueue", "ApproximateNumberOfMessagesVisible", 0}
	}
	for partner, stem := range partnerIDs {
		wants["SecretDetectionPartnerQueueBacklog-teststack-"+string(partner)] = want{stem + "Queue", "ApproximateNumberOfMessagesVisible", 50000}
	}
	wants["SecretDetectionIngressMessageAge-teststack-ingress"] = want{"IngressQueue", "ApproximateAgeOfOldestMessage", 900}
	for name, w := range wants {
		a := byName[name]
		if a == nil {
			p = append(p, "no alarm "+name)
			continue
		}
		p = append(p, checkActions(a)...)
		ok := a.Metric != nil && a.Metric.Namespace == "AWS/SQS" && a.Metric.MetricName == w.metric &&
			a.Statistic == "Maximum" && a.ComparisonOperator == "GreaterThanThreshold" && a.Threshold == w.threshold
		if ok {
			ok = len(a.Metric.Dimensions) == 1 && a.Metric.Dimensions[0].Name == "QueueName" &&
				a.Metric.Dimensions[0].Value.Target() == samtemplate.Target{Kind: samtemplate.TargetResource, Name: w.queue, Attribute: "QueueName"}
		}
		if !ok {
			p = append(p, fmt.Sprintf("%s: want Maximum of AWS/SQS %s of %s > %v", name, w.metric, w.queue, w.threshold))
		}
	}
	if len(byName) != len(wants)+len(alerts)*len(registry.Names()) {
		p = append(p, fmt.Sprintf("%d alarms, want %d", len(byName), len(wants)+len(alerts)*len(registry.Names())))
	}
	return p
}

// exprIdent finds the metric ids an expression uses (lowercase words; the
// math functions are upper case); quoted text (SEARCH terms) is left out.
var (
	exprIdent  = regexp.MustCompile(`\b[a-z][a-z0-9_]*\b`)
	exprQuoted = regexp.MustCompile(`'[^']*'|"[^"]*"`)
	// searchExpr is a SEARCH over one schema for one metric name, with its statistic.
	searchExpr = regexp.MustCompile(`^SEARCH\('\{([^}]*)\} MetricName="([A-Za-z]+)"([^']*)', '([A-Za-z0-9]+)', 60\)$`)
)

// checkDashboard: every partner metric is found by SEARCH over the Partner
// dimension (no partner is listed by hand, so a new partner shows up by
// itself), the queue depths by the stack's name, and the alarm widgets
// cover the root's alarms and link to every alarm of the stack.
func checkDashboard(tpl *samtemplate.Template) []string {
	var p []string
	d := tpl.Dashboards["Dashboard"]
	if d == nil || len(tpl.Dashboards) != 1 {
		return []string{"want one dashboard, logical id Dashboard"}
	}
	widgets, err := d.Widgets(samtemplate.SymbolicScope("teststack", "us-east-1", "123456789012"))
	if err != nil {
		return []string{err.Error()}
	}
	type key struct{ schema, metric, stat string }
	have := map[key]bool{}
	var queueSearches []string
	var alarms []string
	var markdown string
	for _, w := range widgets {
		alarms = append(alarms, w.Alarms...)
		markdown += w.Markdown
		ids := map[string]bool{}
		for _, m := range w.Metrics {
			if m.ID != "" {
				ids[m.ID] = true
			}
		}
		for _, m := range w.Metrics {
			if m.Expression == "" {
				if m.Namespace == metrics.Namespace || (m.Namespace == "AWS/SQS" && m.MetricName != "ApproximateAgeOfOldestMessage") {
					p = append(p, fmt.Sprintf("widget %q lists %s %s %v by hand: use SEARCH", w.Title, m.Namespace, m.MetricName, m.Dimensions))
				}
				continue
			}
			if sm := searchExpr.FindStringSubmatch(m.Expression); sm != nil {
				have[key{sm[1], sm[2], sm[4]}] = true
				if strings.HasPrefix(sm[1], "AWS/SQS,") {
					queueSearches = append(queueSearches, strings.TrimSpace(sm[3]))
				}
				continue
			}
			if strings.Contains(m.Expression, "SEARCH(") {
				p = append(p, fmt.Sprintf("widget %q: unexpected search %q", w.Title, m.Expression))
				continue
			}
			for _, id := range exprIdent.FindAllString(exprQuoted.ReplaceAllString(m.Expression, ""), -1) {
				if !ids[id] {
					p = append(p, fmt.Sprintf("widget %q: expression %q uses unknown id %s", w.Title, m.Expression, id))
				}
			}
		}
	}
	byPartner := metrics.Namespace + "," + metrics.DimPartner
	for _, name := range []string{metrics.Requests, metrics.Errors, metrics.NetworkErrors, metrics.RateLimitHits} {
		if !have[key{byPartner, name, "Sum"}] {
			p = append(p, fmt.Sprintf("dashboard has no SEARCH for the Sum of %s by partner", name))
		}
	}
	for _, stat := range []string{"p50", "p95", "p99"} {
		if !have[key{byPartner, metrics.Latency, stat}] {
			p = append(p, fmt.Sprintf("dashboard has no SEARCH for the %s latency by partner", stat))
		}
	}
	if !have[key{byPartner + "," + metrics.DimStatus, metrics.Verifications, "Sum"}] {
		p = append(p, "dashboard has no SEARCH for Verifications by partner and status")
	}
	for _, want := range []string{`"teststack" NOT DeadLetterQueue`, `"teststack" DeadLetterQueue`} {
		if !slices.Contains(queueSearches, want) {
			p = append(p, fmt.Sprintf("dashboard has no queue depth SEARCH %s (has %q)", want, queueSearches))
		}
	}
	for id := range tpl.Alarms {
		if tpl.Resources[id].Application == "" && !slices.Contains(alarms, "${"+id+".Arn}") {
			p = append(p, "alarm status widget does not list "+id)
		}
	}
	if !strings.Contains(markdown, "#alarmsV2:?search=teststack)") {
		p = append(p, "no link to every alarm of the stack (the partner stacks' alarms are not listed by hand)")
	}
	return p
}

func checkOutputs(tpl *samtemplate.Template) []string {
	var p []string
	want := map[string]samtemplate.Target{
		"OnCallTopicArn":           {Kind: samtemplate.TargetResource, Name: "OnCallTopic"},
		"FeatureFlagParameterName": {Kind: samtemplate.TargetResource, Name: "FeatureFlagParameter"},
	}
	for id := range tpl.Queues {
		want[id+"Url"] = samtemplate.Target{Kind: samtemplate.TargetResource, Name: id}
		want[id+"Arn"] = samtemplate.Target{Kind: samtemplate.TargetResource, Name: id, Attribute: "Arn"}
	}
	for id := range tpl.Functions {
		want[strings.TrimSuffix(id, "Function")+"FunctionName"] = samtemplate.Target{Kind: samtemplate.TargetResource, Name: id}
	}
	for name, tg := range want {
		o := tpl.Outputs[name]
		if o == nil {
			p = append(p, "no output "+name)
		} else if got := o.Value.Target(); got != tg {
			p = append(p, fmt.Sprintf("output %s = %v, want %+v", name, o.Value.Expr, tg))
		}
	}
	return p
}

// contractMaxMessageBytes is the contract's message size limit (§2).
const contractMaxMessageBytes = finding.MaxBodyBytes

// checkIntegration: what a real account's integrators rely on. The working
// queues refuse what the functions would only dead-letter (SQS itself now
// takes 1 MiB) while dead-letter queues keep room for a full body and its
// reason; the scanner's and the results consumer's principals get exactly
// their side of the contract, and only when given; the queues they need are
// exported under the stack's name; the on-call address has no default.
func checkIntegration(tpl *samtemplate.Template) []string {
	var p []string
	for id, q := range tpl.Queues {
		size := tpl.Resources[id].Prop("MaximumMessageSize")
		switch {
		case strings.HasSuffix(id, "DeadLetterQueue"):
			if size.IsSet() && q.MaximumMessageSize <= contractMaxMessageBytes {
				p = append(p, fmt.Sprintf("%s: MaximumMessageSize %d leaves no room for a %d-byte body and its dead-letter attributes", id, q.MaximumMessageSize, contractMaxMessageBytes))
			}
		case !size.IsSet() || q.MaximumMessageSize != contractMaxMessageBytes:
			p = append(p, fmt.Sprintf("%s: MaximumMessageSize %v, want %d written out (the contract's limit; SQS defaults to 1 MiB)", id, size.Expr, contractMaxMessageBytes))
		}
	}
	p = append(p, checkQueuePolicy(tpl, "IngressQueueScannerPolicy", "HasScannerPrincipal", "ScannerPrincipalArn", "IngressQueue",
		[]string{"sqs:SendMessage"})...)
	p = append(p, checkQueuePolicy(tpl, "ResultsQueueConsumerPolicy", "HasResultsConsumerPrincipal", "ResultsConsumerPrincipalArn", "ResultsQueue",
		[]string{"sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"})...)
	if got := tpl.ResourcesOfType("AWS::SQS::QueuePolicy"); len(got) != 2 {
		p = append(p, fmt.Sprintf("queue policies %v, want the scanner's and the consumer's only", got))
	}
	for _, name := range []string{"IngressQueueUrl", "IngressQueueArn", "ResultsQueueUrl", "ResultsQueueArn"} {
		o := tpl.Outputs[name]
		if o == nil {
			p = append(p, "no output "+name)
			continue
		}
		if sub, _ := o.Export.Expr.(map[string]any); sub["Fn::Sub"] != "${AWS::StackName}-"+name {
			p = append(p, fmt.Sprintf("output %s exports %v, want !Sub ${AWS::StackName}-%s (two stacks in one region must not collide)", name, o.Export.Expr, name))
		}
	}
	ep := tpl.Parameters["OnCallEndpoint"]
	switch {
	case ep == nil:
		p = append(p, "no OnCallEndpoint parameter")
	case ep.HasDefault:
		p = append(p, fmt.Sprintf("OnCallEndpoint defaults to %q: every deploy must say where alarms page", ep.Default))
	default:
		for v, ok := range map[string]bool{"": true, "https://paging.example/hook": true, "oncall@example.com": true,
			samconfigPlaceholder: false, "http://paging.example/hook": false, "not an address": false} {
			if err := ep.Validate(v); (err == nil) != ok {
				p = append(p, fmt.Sprintf("OnCallEndpoint accepts %q: %v, want %v", v, err == nil, ok))
			}
		}
	}
	return p
}

// samconfigPlaceholder is how samconfig.toml marks the on-call address to set.
const samconfigPlaceholder = "SET-ME-oncall-address"

// checkQueuePolicy: the policy exists only under its condition, which is
// false for an empty principal and true for a given one; it is on the one
// queue, for the one principal, with exactly the actions given. The
// principal parameter refuses a wildcard.
func checkQueuePolicy(tpl *samtemplate.Template, id, cond, param, queue string, actions []string) []string {
	var p []string
	r := tpl.Resources[id]
	if r == nil {
		return []string{"no " + id}
	}
	if r.Condition != cond {
		p = append(p, fmt.Sprintf("%s: condition %q, want %s", id, r.Condition, cond))
	}
	par := tpl.Parameters[param]
	if par == nil {
		return append(p, "no parameter "+param)
	}
	for v, ok := range map[string]bool{"": true, "arn:aws:iam::123456789012:role/scanner": true, "arn:aws:iam::123456789012:root": true,
		"*": false, "arn:aws:iam::*:root": false, "123456789012": false} {
		if err := par.Validate(v); (err == nil) != ok {
			p = append(p, fmt.Sprintf("%s accepts %q: %v, want %v", param, v, err == nil, ok))
		}
	}
	// Try both values, then leave the parameter at its default for the
	// checks that follow.
	for _, v := range []string{"arn:aws:iam::123456789012:role/x", par.Default} {
		if err := tpl.SetParameter(param, v); err != nil {
			return append(p, err.Error())
		}
		if on, err := tpl.Condition(cond); err != nil || on != (v != "") {
			p = append(p, fmt.Sprintf("%s with %s=%q is %v (%v), want %v", cond, param, v, on, err, v != ""))
		}
	}
	if qs, _ := r.Properties["Queues"].([]any); len(qs) != 1 || !isRef(qs[0], queue) {
		p = append(p, fmt.Sprintf("%s: Queues %v, want [!Ref %s]", id, r.Properties["Queues"], queue))
	}
	doc, _ := r.Properties["PolicyDocument"].(map[string]any)
	sts, _ := doc["Statement"].([]any)
	if len(sts) != 1 {
		return append(p, fmt.Sprintf("%s: %d statements, want 1", id, len(sts)))
	}
	st, _ := sts[0].(map[string]any)
	principal, _ := st["Principal"].(map[string]any)
	if st["Effect"] != "Allow" || len(principal) != 1 || !isRef(principal["AWS"], param) {
		p = append(p, fmt.Sprintf("%s: statement %v, want Allow for the principal !Ref %s only", id, st, param))
	}
	var got []string
	switch a := st["Action"].(type) {
	case string:
		got = []string{a}
	case []any:
		for _, x := range a {
			s, _ := x.(string)
			got = append(got, s)
		}
	}
	if slices.Sort(got); !slices.Equal(got, actions) {
		p = append(p, fmt.Sprintf("%s: actions %v, want exactly %v", id, got, actions))
	}
	if ga, _ := st["Resource"].(map[string]any); !slices.Equal(asStrings(ga["Fn::GetAtt"]), []string{queue, "Arn"}) {
		p = append(p, fmt.Sprintf("%s: Resource %v, want !GetAtt %s.Arn", id, st["Resource"], queue))
	}
	return p
}

func isRef(v any, name string) bool {
	m, _ := v.(map[string]any)
	return len(m) == 1 && m["Ref"] == name
}

func asStrings(v any) []string {
	l, _ := v.([]any)
	out := make([]string, len(l))
	for i, x := range l {
		out[i], _ = x.(string)
	}
	return out
}

// TestSamconfigOnCallPlaceholders: samconfig.toml names no organisation's
// on-call address; every environment's deploy carries the placeholder, which
// the template refuses, so `sam deploy` stops until the address is set.
func TestSamconfigOnCallPlaceholders(t *testing.T) {
	tpl, _ := repoTemplate(t)
	root, err := samtemplate.FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(root, "samconfig.toml"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	deploys := strings.Count(text, ".deploy.parameters]")
	values := regexp.MustCompile(`OnCallEndpoint=("[^"]*"|\S*?)[\s"]`).FindAllStringSubmatch(text, -1)
	if deploys == 0 || len(values) != deploys {
		t.Fatalf("%d deploy sections, %d OnCallEndpoint overrides: want one per environment", deploys, len(values))
	}
	for _, m := range values {
		v := m[1]
		if v != samconfigPlaceholder {
			t.Errorf("samconfig.toml sets OnCallEndpoint=%s, want the placeholder %s (an address belongs to whoever deploys)", v, samconfigPlaceholder)
		}
		if err := tpl.Parameters["OnCallEndpoint"].Validate(v); err == nil {
			t.Errorf("the template accepts OnCallEndpoint=%s: a deploy with the placeholder would not stop", v)
		}
	}
}

// TestREADMECountsTheFunctions: README's count of binaries and functions
// is the Makefile's and the template's.
func TestREADMECountsTheFunctions(t *testing.T) {
	tpl, _ := repoTemplate(t)
	root, err := samtemplate.FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(strings.Fields(string(readme)), " ")
	words := map[string]int{"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}
	m := regexp.MustCompile(`(\w+) binaries \(` + "`make build`" + `\), one Lambda function per partner plus (\w+)\.`).FindStringSubmatch(text)
	if m == nil {
		t.Fatal("README no longer says how many binaries and functions the template deploys: update this test")
	}
	mk, err := makefileFunctions()
	if err != nil {
		t.Fatal(err)
	}
	if got := len(strings.Fields(mk)); words[m[1]] != got {
		t.Errorf("README says %s binaries, the Makefile builds %d", m[1], got)
	}
	partners, others := 0, 0
	for _, f := range tpl.Functions {
		if f.Application != "" {
			partners++
		} else {
			others++
		}
	}
	if partners != len(tpl.Applications) || words[m[2]] != others {
		t.Errorf("README says one function per partner plus %s; the template has %d partner functions for %d partners, plus %d",
			m[2], partners, len(tpl.Applications), others)
	}
}

// samconfigOverrides are the parameter overrides of every environment of
// samconfig.toml, one map per deploy section.
func samconfigOverrides() ([]map[string]string, error) {
	root, err := samtemplate.FindRoot()
	if err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(filepath.Join(root, "samconfig.toml"))
	if err != nil {
		return nil, err
	}
	var out []map[string]string
	for _, m := range regexp.MustCompile(`(?m)^parameter_overrides\s*=\s*"(.*)"\s*$`).FindAllStringSubmatch(string(raw), -1) {
		env := map[string]string{}
		for _, kv := range strings.Fields(m[1]) {
			if k, v, ok := strings.Cut(kv, "="); ok {
				env[k] = strings.Trim(v, `"'`)
			}
		}
		out = append(out, env)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("samconfig.toml has no parameter_overrides")
	}
	return out, nil
}

// checkBatchSizing: each partner function's batch fills its concurrency,
// fits its invocation at the partner's rate with room to spare in every
// environment, and its queue's visibility covers the batching window.
//
// The records of a batch share PARTNER_CONCURRENCY slots and are started
// only while more than sqsbatch.DefaultDeadlineMargin is left; a batch
// must pass through the rate limiter in half that time (rate x (Timeout -
// margin) / 2 records, or the limiter's burst where that is more), so
// that it still fits when the partner slows down or a 429 halves the
// limiter's rate. Records left unstarted go back to SQS and spend one of
// their receives on our own sizing.
//
// Every rule holds at each value BatchingWindowInSeconds may take, since
// the window decides how large a batch SQS allows and how long a queue's
// visibility must last.
func checkBatchSizing(tpl *samtemplate.Template) []string {
	envs, err := samconfigOverrides()
	if err != nil {
		return []string{err.Error()}
	}
	param, ok := tpl.Parameters[batchingWindowParam]
	if !ok || param.MinValue == nil || param.MaxValue == nil {
		return []string{"parameter " + batchingWindowParam + ": missing, or without MinValue and MaxValue"}
	}
	was, err := tpl.ParameterValue(batchingWindowParam)
	if err != nil {
		return []string{err.Error()}
	}
	var p []string
	for w := int(*param.MinValue); w <= int(*param.MaxValue); w++ {
		if err := tpl.SetParameter(batchingWindowParam, strconv.Itoa(w)); err != nil {
			return append(p, err.Error())
		}
		for _, problem := range batchSizingAt(tpl, envs) {
			p = append(p, fmt.Sprintf("%s=%d: %s", batchingWindowParam, w, problem))
		}
	}
	if err := tpl.SetParameter(batchingWindowParam, was); err != nil {
		p = append(p, err.Error())
	}
	return p
}

// batchingWindowParam is the template parameter every event source takes
// its batching window from.
const batchingWindowParam = "BatchingWindowInSeconds"

// batchSizingAt is checkBatchSizing at the template's current parameters.
func batchSizingAt(tpl *samtemplate.Template, envs []map[string]string) []string {
	var p []string
	for _, id := range slices.Sorted(maps.Keys(tpl.Functions)) {
		f := tpl.Functions[id]
		if len(f.SQSEvents) != 1 {
			continue
		}
		e := f.SQSEvents[0]
		switch {
		case e.BatchSize < 1 || e.BatchSize > 10000:
			p = append(p, fmt.Sprintf("%s: BatchSize %d, want 1 to 10000 (SQS's bounds for a standard queue)", id, e.BatchSize))
		case e.BatchSize > 10 && e.MaximumBatchingWindow < 1:
			p = append(p, fmt.Sprintf("%s: BatchSize %d with a batching window of %d s: SQS takes more than 10 records only with MaximumBatchingWindowInSeconds of at least 1", id, e.BatchSize, e.MaximumBatchingWindow))
		}
		if q := tpl.Queues[e.Queue]; q != nil && q.VisibilityTimeout < 6*f.Timeout+e.MaximumBatchingWindow {
			p = append(p, fmt.Sprintf("%s: visibility timeout %d s is below 6 x %s's timeout (%d s) plus its batching window (%d s)", e.Queue, q.VisibilityTimeout, id, f.Timeout, e.MaximumBatchingWindow))
		}
		if f.Application == "" {
			continue
		}
		conc, err := f.Environment[pipeline.EnvConcurrency].Int()
		if err != nil {
			p = append(p, fmt.Sprintf("%s: %s: %v", id, pipeline.EnvConcurrency, err))
			continue
		}
		if e.BatchSize < conc {
			p = append(p, fmt.Sprintf("%s: BatchSize %d is below PARTNER_CONCURRENCY %d: slots would stay empty in every invocation", id, e.BatchSize, conc))
		}
		burst := 0
		if app := tpl.Applications[f.Application]; app != nil {
			if v, ok := app.Parameters["RateBurst"]; ok {
				burst, _ = v.Int()
			}
		}
		if def, ok := registry.Lookup(strings.ToLower(f.Application)); ok && burst == 0 {
			burst = def.Rate.Burst
		}
		rateParam := f.Environment[pipeline.EnvRatePerSecond].Target()
		if rateParam.Kind != samtemplate.TargetParameter {
			p = append(p, fmt.Sprintf("%s: %s is not a template parameter", id, pipeline.EnvRatePerSecond))
			continue
		}
		def, err := tpl.ParameterValue(rateParam.Name)
		if err != nil {
			p = append(p, err.Error())
			continue
		}
		rates := map[string]string{"the default": def}
		for i, env := range envs {
			if v, ok := env[rateParam.Name]; ok {
				rates[fmt.Sprintf("samconfig environment %d (%s)", i+1, env["Environment"])] = v
			}
		}
		budget := (time.Duration(f.Timeout)*time.Second - sqsbatch.DefaultDeadlineMargin).Seconds()
		for _, where := range slices.Sorted(maps.Keys(rates)) {
			var rate float64
			if _, err := fmt.Sscan(rates[where], &rate); err != nil || rate <= 0 {
				p = append(p, fmt.Sprintf("%s: %s=%q in %s is not a rate", id, rateParam.Name, rates[where], where))
				continue
			}
			// Each slot's record waits in the limiter for its token; the
			// last of PARTNER_CONCURRENCY waits concurrency ÷ rate, and a
			// wait above the limiter's MaxWait sends the record back.
			if waits := int(rate * throttle.DefaultMaxWait.Seconds()); conc > max(burst, waits) {
				p = append(p, fmt.Sprintf("%s: PARTNER_CONCURRENCY %d at %s=%v (%s): the last slot would wait %.1f s for a token, beyond the limiter's %s, and go back to SQS: at most %d",
					id, conc, rateParam.Name, rate, where, float64(conc)/rate, throttle.DefaultMaxWait, max(burst, waits)))
			}
			if most := max(burst, int(rate*budget/2)); e.BatchSize > most {
				p = append(p, fmt.Sprintf("%s: BatchSize %d takes %.0f s at %s=%v (%s), more than half of the %.0f s the %d s timeout leaves to start records: at most %d",
					id, e.BatchSize, float64(e.BatchSize)/rate, rateParam.Name, rate, where, budget, f.Timeout, most))
			}
		}
	}
	return p
}
