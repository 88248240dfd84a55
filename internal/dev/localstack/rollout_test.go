package localstack_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/schemas"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go/transport/http/protocol/awsjson"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/awstest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/localstack"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/featureflag"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/registry"
)

// TestApplyRolloutEnvironments checks that each environment of the plan
// gets, in its own region, the flag parameter a deploy creates, every
// alarm of the template under its stack's name, and the stack's
// AutoRollbackEnabled output; and that applying twice changes nothing.
func TestApplyRolloutEnvironments(t *testing.T) {
	moto := awstest.Shared(t)
	tpl := repoTemplate(t)
	ctx := context.Background()
	for range 2 {
		if err := localstack.ApplyRollout(ctx, tpl, moto.Config()); err != nil {
			t.Fatal(err)
		}
	}
	flagName := "secret_detection_partner_token_verification"
	regions := map[string]bool{}
	for _, e := range localstack.RolloutEnvironments {
		if regions[e.Region] || e.Region == awstest.Region {
			t.Fatalf("%s: region %s is shared with another environment or the local stack", e.Name, e.Region)
		}
		regions[e.Region] = true
		cfg := moto.Config()
		cfg.Region = e.Region
		p, err := ssm.NewFromConfig(cfg).GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(featureflag.DefaultParameter(flagName))})
		if err != nil || aws.ToString(p.Parameter.Value) != `{"enabled":false,"groups":[],"projects":[],"percentage_of_actors":0,"partners":{}}` {
			t.Errorf("%s: flag parameter %v, %v; want the template's initial value", e.Name, p, err)
		}
		cw := cloudwatch.NewFromConfig(cfg, func(o *cloudwatch.Options) { o.Protocol = awsjson.New10(schemas.GraniteServiceVersion20100801) })
		out, err := cw.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{AlarmNamePrefix: aws.String("SecretDetectionPartnerAPI")})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.MetricAlarms) != 4*len(registry.Names()) {
			t.Errorf("%s: %d partner alarms, want 4 per partner", e.Name, len(out.MetricAlarms))
		}
		want := "SecretDetectionPartnerAPIHighErrorRate-" + e.Stack + "-postman"
		found := false
		for _, a := range out.MetricAlarms {
			found = found || aws.ToString(a.AlarmName) == want
		}
		if !found {
			t.Errorf("%s: no alarm %s", e.Name, want)
		}
		st, err := cloudformation.NewFromConfig(cfg).DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(e.Stack)})
		if err != nil || len(st.Stacks) != 1 || len(st.Stacks[0].Outputs) != 1 ||
			aws.ToString(st.Stacks[0].Outputs[0].OutputKey) != "AutoRollbackEnabled" || aws.ToString(st.Stacks[0].Outputs[0].OutputValue) != "false" {
			t.Errorf("%s: stack %s: %+v, %v; want the AutoRollbackEnabled output false", e.Name, e.Stack, st, err)
		}
	}
}
