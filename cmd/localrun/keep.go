package main

import (
	"fmt"
	"io"
	"strings"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/cmd/feature/rollout"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/awstest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/localstack"
)

// keepCommand is one command `make run ARGS=--keep` prints, to be pasted
// as is into another shell at the repository root.
type keepCommand struct {
	// Comment says what the command shows.
	Comment string
	Line    string
}

// awsCLI starts every printed aws command: the endpoint and region as
// options, because aws-cli v1 ignores AWS_ENDPOINT_URL and needs a region,
// and moto's test credentials as a prefix, so that neither a profile nor
// exported variables of that shell are needed (or used).
func awsCLI(endpoint, region string) string {
	return fmt.Sprintf("AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing aws --endpoint-url %s --region %s", endpoint, region)
}

// keepCommands are the commands that try the kept stack: a scan through
// the pipeline, the DLQ, the flag, and the rollout plan on the local
// environments of localstack.ApplyRollout, alarms included.
func keepCommands(endpoint string, stack *localstack.Stack, feature string) []keepCommand {
	cli := awsCLI(endpoint, stack.Region)
	prod, _ := localstack.RolloutEnvironmentNamed("production")
	alarm := rollout.AlarmName("SecretDetectionPartnerAPIHighErrorRate", prod.Stack, "postman")
	local := "--local --endpoint-url=" + endpoint
	return []keepCommand{
		{"send a scan to the ingress queue", fmt.Sprintf(`%s sqs send-message --queue-url %s --message-body "$(jq -r '.Records[0].body' events/postman-api-key.json)"`,
			cli, stack.Queues["IngressQueue"].URL)},
		{"read its results (one JSON result a line)", fmt.Sprintf("%s sqs receive-message --queue-url %s --max-number-of-messages 10 --wait-time-seconds 10 --query 'Messages[].Body' --output text",
			cli, stack.Queues["ResultsQueue"].URL)},
		{"count the ingress DLQ (the unparseable sample is there)", fmt.Sprintf("%s sqs get-queue-attributes --queue-url %s --attribute-names ApproximateNumberOfMessages --query Attributes.ApproximateNumberOfMessages --output text",
			cli, stack.Queues["IngressDeadLetterQueue"].URL)},
		{"the flag the functions read", fmt.Sprintf("%s get %s %s", feature, flagName, local)},
		{"switch Postman off (calls stop within FEATURE_FLAG_CACHE_TTL, 5s here)", fmt.Sprintf("%s set %s false --partner=postman %s", feature, flagName, local)},
		{"the rollout plan on five local environments (one region each), at one of its dates", fmt.Sprintf("%s rollout status %s %s --now=2026-11-19", feature, flagName, local)},
		{"apply its next stage at that date", fmt.Sprintf("%s rollout advance %s %s --now=2026-11-19", feature, flagName, local)},
		{"fire a production alarm: the next advance is held back", fmt.Sprintf(`%s cloudwatch set-alarm-state --alarm-name %s --state-value ALARM --state-reason "trying the rollout"`,
			awsCLI(endpoint, prod.Region), alarm)},
	}
}

// printKeep prints how to use the kept stack.
func printKeep(w io.Writer, cmds []keepCommand, envFile string) {
	var b strings.Builder
	b.WriteString("\nThe stack keeps running (Ctrl-C stops it). In another shell, at the repository root:\n\n")
	for _, c := range cmds {
		fmt.Fprintf(&b, "  # %s\n  %s\n", c.Comment, c.Line)
	}
	fmt.Fprintf(&b, "  # one function under the emulator with the stack's environment (%s)\n", envFile)
	b.WriteString("  make invoke FUNCTION=PostmanFunction EVENT=events/postman-api-key.json\n")
	fmt.Fprintf(&b, "\nThe local stack is in region %s of the local AWS; the rollout's environments are other regions of it (docs/rollout.md, \"Trying the plan locally\").\n",
		awstest.Region)
	_, _ = io.WriteString(w, b.String())
}
