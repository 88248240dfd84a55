package localstack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/schemas"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go/transport/http/protocol/awsjson"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/samtemplate"
)

// RolloutEnvironment is one environment of the rollout plan as the local
// AWS holds it: its own region, so its own parameter store, alarms and
// stacks on the one moto_server, as each real environment has its own
// account.
type RolloutEnvironment struct {
	Name   string
	Region string
	// Stack is the stack name its alarms are named after
	// (<alert>-<stack>-<partner>) and whose outputs it has.
	Stack string
}

// RolloutEnvironments are the environments of the rollout plan on the
// local AWS of `make run ARGS=--keep`, in the plan's order. None is in
// the region of the local stack itself (awstest.Region), so walking the
// plan never changes the flag the running functions read.
var RolloutEnvironments = []RolloutEnvironment{
	{Name: "dev", Region: "us-east-2", Stack: "local-dev"},
	{Name: "pre", Region: "ap-south-1", Stack: "local-pre"},
	{Name: "staging", Region: "eu-west-1", Stack: "local-staging"},
	{Name: "staging-ref", Region: "eu-central-1", Stack: "local-staging-ref"},
	{Name: "production", Region: "us-west-2", Stack: "local-production"},
}

// RolloutEnvironmentNamed returns the local stand-in of an environment.
func RolloutEnvironmentNamed(name string) (RolloutEnvironment, bool) {
	for _, e := range RolloutEnvironments {
		if e.Name == name {
			return e, true
		}
	}
	return RolloutEnvironment{}, false
}

// ApplyRollout creates, in each environment of RolloutEnvironments, what
// a deploy of t leaves there for the rollout to read: the template's SSM
// parameters with their initial values (the flag, everything off), every
// CloudWatch alarm under the name the template gives it in that stack, and
// a stack with the template's AutoRollbackEnabled output. cfg points at
// the local AWS; its region is replaced by each environment's.
//
// The alarms keep the template's names, thresholds and comparisons but
// watch one plain metric: nothing evaluates them locally, their state is
// set by hand (aws cloudwatch set-alarm-state), which is what the rollout
// reads.
func ApplyRollout(ctx context.Context, t *samtemplate.Template, cfg aws.Config) error {
	for _, e := range RolloutEnvironments {
		c := cfg.Copy()
		c.Region = e.Region
		if err := applyRolloutEnv(ctx, t, c, e); err != nil {
			return fmt.Errorf("apply local rollout environment %s: %w", e.Name, err)
		}
	}
	return nil
}

func applyRolloutEnv(ctx context.Context, t *samtemplate.Template, cfg aws.Config, e RolloutEnvironment) error {
	ls := &Stack{Template: t, StackName: e.Stack, Region: e.Region, Queues: map[string]Queue{}, Parameters: map[string]string{}, ssmValues: map[string]string{}}
	sc := ssm.NewFromConfig(cfg)
	for id := range t.SSMParameters {
		if err := putParameter(ctx, t, sc, ls, id); err != nil {
			return fmt.Errorf("parameter %s: %w", id, err)
		}
	}
	scope := samtemplate.SymbolicScope(e.Stack, e.Region, samtemplate.LocalAccountID)
	cw := cloudwatch.NewFromConfig(cfg, localCloudWatchProtocol)
	for id, a := range t.Alarms {
		name, err := a.NameIn(scope)
		if err != nil {
			return fmt.Errorf("alarm %s: %w", id, err)
		}
		ms := a.AllMetrics()
		if len(ms) == 0 {
			return fmt.Errorf("alarm %s: no metric", id)
		}
		_, err = cw.PutMetricAlarm(ctx, &cloudwatch.PutMetricAlarmInput{
			AlarmName: aws.String(name), Namespace: aws.String(ms[0].Namespace), MetricName: aws.String(ms[0].MetricName),
			Statistic: cwtypes.StatisticSum, Period: aws.Int32(60), EvaluationPeriods: aws.Int32(1),
			Threshold: aws.Float64(a.Threshold), ComparisonOperator: cwtypes.ComparisonOperator(a.ComparisonOperator),
		})
		if err != nil {
			return fmt.Errorf("alarm %s: %w", name, err)
		}
	}
	return createOutputStack(ctx, t, cloudformation.NewFromConfig(cfg), e, ls.Scope())
}

// autoRollbackOutput is the template output the rollout reads from each
// environment's stack.
const autoRollbackOutput = "AutoRollbackEnabled"

// createOutputStack creates a stack that has the template's
// AutoRollbackEnabled output, resolved with the template's parameters; a
// wait-condition handle is its only resource, since a stack needs one.
func createOutputStack(ctx context.Context, t *samtemplate.Template, cf *cloudformation.Client, e RolloutEnvironment, scope samtemplate.Scope) error {
	o, ok := t.Outputs[autoRollbackOutput]
	if !ok {
		return fmt.Errorf("template has no %s output", autoRollbackOutput)
	}
	v, err := t.EvalString(o.Value.Expr, scope)
	if err != nil {
		return fmt.Errorf("output %s: %w", autoRollbackOutput, err)
	}
	body, err := json.Marshal(map[string]any{
		"Resources": map[string]any{"Handle": map[string]any{"Type": "AWS::CloudFormation::WaitConditionHandle"}},
		"Outputs":   map[string]any{autoRollbackOutput: map[string]any{"Value": v}},
	})
	if err != nil {
		return err
	}
	_, err = cf.CreateStack(ctx, &cloudformation.CreateStackInput{StackName: aws.String(e.Stack), TemplateBody: aws.String(string(body))})
	var exists *cftypes.AlreadyExistsException
	if err != nil && !errors.As(err, &exists) && !strings.Contains(err.Error(), "AlreadyExists") {
		return fmt.Errorf("stack %s: %w", e.Stack, err)
	}
	return nil
}

// localCloudWatchProtocol makes a CloudWatch client speak AWS JSON 1.0,
// which moto_server answers, instead of the SDK's default RPC v2 CBOR,
// which it does not.
func localCloudWatchProtocol(o *cloudwatch.Options) {
	o.Protocol = awsjson.New10(schemas.GraniteServiceVersion20100801)
}
