package samtemplate_test

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/samtemplate"
)

// mini wraps one property value in a minimal template.
func mini(t *testing.T, value string) *samtemplate.Template {
	t.Helper()
	src := `
Parameters:
  Stage: {Type: String, Default: dev, AllowedValues: [dev, prod]}
  Rate: {Type: Number, Default: 1.5, MinValue: 0.1, MaxValue: 10}
  Zones: {Type: CommaDelimitedList, Default: 'a, b'}
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
  NotProd: !Not [!Condition IsProd]
Resources:
  Q:
    Type: AWS::SQS::Queue
  Thing:
    Type: Custom::Thing
    Properties:
      V: ` + value + `
`
	tpl, err := samtemplate.Parse([]byte(src))
	if err != nil {
		t.Fatalf("Parse(%s): %v", value, err)
	}
	return tpl
}

func TestShortTags(t *testing.T) {
	tests := []struct {
		yaml string
		want any
	}{
		{"!Ref Q", map[string]any{"Ref": "Q"}},
		{"!GetAtt Q.Arn", map[string]any{"Fn::GetAtt": []any{"Q", "Arn"}}},
		{"!GetAtt [Q, Arn]", map[string]any{"Fn::GetAtt": []any{"Q", "Arn"}}},
		{"!Sub 'x-${Q}'", map[string]any{"Fn::Sub": "x-${Q}"}},
		{"!Sub ['${A}', {A: !Ref Stage}]", map[string]any{"Fn::Sub": []any{"${A}", map[string]any{"A": map[string]any{"Ref": "Stage"}}}}},
		{"!If [IsProd, a, !Ref AWS::NoValue]", map[string]any{"Fn::If": []any{"IsProd", "a", map[string]any{"Ref": "AWS::NoValue"}}}},
		{"!Join ['', [a, !Ref Stage]]", map[string]any{"Fn::Join": []any{"", []any{"a", map[string]any{"Ref": "Stage"}}}}},
		{"!Select [1, !Split [',', 'a,b']]", map[string]any{"Fn::Select": []any{"1", map[string]any{"Fn::Split": []any{",", "a,b"}}}}},
		{"{Ref: Q}", map[string]any{"Ref": "Q"}},
		{"1.50", "1.50"},
		{"true", "true"},
		{"'quoted'", "quoted"},
		{"~", nil},
	}
	for _, tc := range tests {
		t.Run(tc.yaml, func(t *testing.T) {
			got := mini(t, tc.yaml).Resources["Thing"].Properties["V"]
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"no resources", "Parameters: {}\n", "no Resources"},
		{"duplicate key", "Resources:\n  A: {Type: AWS::SQS::Queue}\n  A: {Type: AWS::SQS::Queue}\n", "duplicate key"},
		{"getatt without attribute", "Resources:\n  A: {Type: X, Properties: {V: !GetAtt A}}\n", "not Resource.Attribute"},
		{"resource without type", "Resources:\n  A: {Properties: {}}\n", "has no Type"},
		{"bad redrive", "Resources:\n  A: {Type: AWS::SQS::Queue, Properties: {RedrivePolicy: {deadLetterTargetArn: x}}}\n", "no maxReceiveCount"},
		{"not yaml", "Resources: [\n", "parse yaml"},
		{"alarm without metric", "Resources:\n  A: {Type: AWS::CloudWatch::Alarm, Properties: {Threshold: 1}}\n", "exactly one of MetricName or Metrics"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := samtemplate.Parse([]byte(tc.src))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse error = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestGlobalsMerge(t *testing.T) {
	src := `
Globals:
  Function:
    Runtime: provided.al2023
    Timeout: 10
    Layers: [a]
    Environment:
      Variables: {A: global, B: global}
    Tracing: !If [C, Active, PassThrough]
Resources:
  F:
    Type: AWS::Serverless::Function
    Properties:
      Timeout: 20
      Layers: [b]
      Environment:
        Variables: {B: local, C: local}
      Tracing: Active
  G:
    Type: AWS::Serverless::Function
    Properties: {}
`
	tpl, err := samtemplate.Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		fn, prop string
		want     any
	}{
		{"F", "Runtime", "provided.al2023"},
		{"F", "Timeout", "20"},
		{"F", "Layers", []any{"a", "b"}},
		{"F", "Environment", map[string]any{"Variables": map[string]any{"A": "global", "B": "local", "C": "local"}}},
		{"F", "Tracing", "Active"},
		{"G", "Timeout", "10"},
		{"G", "Layers", []any{"a"}},
	}
	for _, tc := range tests {
		t.Run(tc.fn+"."+tc.prop, func(t *testing.T) {
			if got := tpl.Resources[tc.fn].Properties[tc.prop]; !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %#v, want %#v", got, tc.want)
			}
		})
	}
	if f := tpl.Functions["G"]; f.Timeout != 10 || f.Runtime != "provided.al2023" || f.MemorySize != 128 {
		t.Errorf("G = timeout %d runtime %q memory %d", f.Timeout, f.Runtime, f.MemorySize)
	}
}

func TestEval(t *testing.T) {
	scope := samtemplate.Scope{
		Pseudo: samtemplate.Pseudo("st", "eu-west-1", "111122223333"),
		Resource: func(id, attr string) (string, error) {
			if attr == "" {
				return "url-of-" + id, nil
			}
			return attr + "-of-" + id, nil
		},
	}
	tests := []struct {
		yaml, want string
	}{
		{"!Ref Stage", "dev"},
		{"!Ref Rate", "1.5"},
		{"!Ref Q", "url-of-Q"},
		{"!GetAtt Q.Arn", "Arn-of-Q"},
		{"!Sub '${AWS::StackName}-${Stage}-${Q}-${Q.QueueName}-${!Literal}'", "st-dev-url-of-Q-QueueName-of-Q-${Literal}"},
		{"!Sub ['${A}/${AWS::Region}', {A: !Ref Stage}]", "dev/eu-west-1"},
		{"!Sub 'arn:${AWS::Partition}:x:${AWS::AccountId}'", "arn:aws:x:111122223333"},
		{"!Join ['-', [a, !Ref Stage, !If [IsProd, p, !Ref AWS::NoValue]]]", "a-dev"},
		{"!Select [1, !Split [',', 'a,b,c']]", "b"},
		{"!If [NotProd, yes, no]", "yes"},
		{"!Join ['+', !Ref Zones]", "a+b"},
	}
	for _, tc := range tests {
		t.Run(tc.yaml, func(t *testing.T) {
			tpl := mini(t, tc.yaml)
			got, err := tpl.Resources["Thing"].Prop("V").Resolve(scope)
			if err != nil || got != tc.want {
				t.Fatalf("Resolve = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	t.Run("parameter value changes the result", func(t *testing.T) {
		tpl := mini(t, "!If [IsProd, p, np]")
		if err := tpl.SetParameter("Stage", "prod"); err != nil {
			t.Fatal(err)
		}
		if got, err := tpl.Resources["Thing"].Prop("V").Text(); err != nil || got != "p" {
			t.Fatalf("Text = %q, %v", got, err)
		}
	})
	unresolvable := []string{"!Ref Q", "!GetAtt Q.Arn", "!Sub '${AWS::Region}'", "!Sub '${Q.Arn}'"}
	for _, y := range unresolvable {
		t.Run("without scope "+y, func(t *testing.T) {
			_, err := mini(t, y).Resources["Thing"].Prop("V").Text()
			if !errors.Is(err, samtemplate.ErrUnresolvable) {
				t.Fatalf("Text error = %v, want ErrUnresolvable", err)
			}
		})
	}
	for _, y := range []string{"!Ref Nope", "!Sub '${Nope}'", "!Select [5, [a]]", "!If [NoSuchCondition, a, b]", "!FindInMap [M, a, b]"} {
		t.Run("error "+y, func(t *testing.T) {
			if _, err := mini(t, y).Resources["Thing"].Prop("V").Resolve(scope); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func TestTargetAndReferences(t *testing.T) {
	tests := []struct {
		yaml string
		want samtemplate.Target
		refs []string
	}{
		{"plain", samtemplate.Target{Kind: samtemplate.TargetLiteral, Literal: "plain"}, []string{}},
		{"!Ref Stage", samtemplate.Target{Kind: samtemplate.TargetParameter, Name: "Stage"}, []string{"Stage"}},
		{"!Ref AWS::Region", samtemplate.Target{Kind: samtemplate.TargetPseudo, Name: "AWS::Region"}, []string{}},
		{"!Ref Q", samtemplate.Target{Kind: samtemplate.TargetResource, Name: "Q"}, []string{"Q"}},
		{"!GetAtt Q.Arn", samtemplate.Target{Kind: samtemplate.TargetResource, Name: "Q", Attribute: "Arn"}, []string{"Q"}},
		{"!Sub 'a${Q.Arn}${Stage}${AWS::Region}${!Not}'", samtemplate.Target{Kind: samtemplate.TargetExpression}, []string{"Q", "Stage"}},
		{"!Sub ['${X}', {X: !Ref Q}]", samtemplate.Target{Kind: samtemplate.TargetExpression}, []string{"Q"}},
		{"~", samtemplate.Target{Kind: samtemplate.TargetNone}, []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.yaml, func(t *testing.T) {
			v := mini(t, tc.yaml).Resources["Thing"].Prop("V")
			if got := v.Target(); got != tc.want {
				t.Errorf("Target = %+v, want %+v", got, tc.want)
			}
			if got := v.References(); !reflect.DeepEqual(got, tc.refs) {
				t.Errorf("References = %#v, want %#v", got, tc.refs)
			}
		})
	}
}

func TestParameterValidate(t *testing.T) {
	tpl, _ := repoTemplate(t)
	tests := []struct {
		param, value string
		ok           bool
	}{
		{"Environment", "staging-ref", true},
		{"Environment", "prod", false},
		{"PostmanMaxConcurrency", "2", true},
		{"PostmanMaxConcurrency", "1", false},
		{"PostmanMaxConcurrency", "two", false},
		{"PostmanRatePerSecond", "0.5", true},
		{"MaxAttempts", "7", true},
		{"MaxAttempts", "8", false},
		{"FeatureFlagCacheTtl", "1m30s", true},
		{"FeatureFlagCacheTtl", "30", false},
		{"FeatureFlagParameterName", "/a/b_c.d", true},
		{"FeatureFlagParameterName", "no-leading-slash", false},
		{"LogRetentionDays", "14", true},
		{"LogRetentionDays", "15", false},
		{"OnCallProtocol", "sms", false},
		{"AutoRollback", "yes", false},
	}
	for _, tc := range tests {
		t.Run(tc.param+"="+tc.value, func(t *testing.T) {
			err := tpl.Parameters[tc.param].Validate(tc.value)
			if (err == nil) != tc.ok {
				t.Fatalf("Validate = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestSetParameterRebuilds(t *testing.T) {
	tpl, _ := repoTemplate(t)
	if err := tpl.SetParameter("PostmanMaxConcurrency", "7"); err != nil {
		t.Fatal(err)
	}
	if got := tpl.Functions["PostmanFunction"].SQSEvents[0].MaximumConcurrency; got != 7 {
		t.Errorf("MaximumConcurrency = %d after SetParameter 7", got)
	}
	if err := tpl.SetParameter("LogRetentionDays", "14"); err != nil {
		t.Fatal(err)
	}
	if got := tpl.LogGroups["AwsLogGroup"].RetentionInDays; got != 14 {
		t.Errorf("RetentionInDays = %d after SetParameter 14", got)
	}
	if err := tpl.SetParameter("PostmanMaxConcurrency", "1"); err == nil {
		t.Fatal("SetParameter accepted a value below MinValue")
	}
	if got := tpl.Functions["PostmanFunction"].SQSEvents[0].MaximumConcurrency; got != 7 {
		t.Errorf("a rejected value changed the model: MaximumConcurrency = %d", got)
	}
	if err := tpl.SetParameter("NoSuchParameter", "x"); err == nil {
		t.Fatal("SetParameter accepted an unknown parameter")
	}
	if _, err := tpl.Condition("HasOnCallEndpoint"); err == nil {
		t.Fatal("HasOnCallEndpoint evaluated although the required OnCallEndpoint has no value")
	}
	if err := tpl.SetParameter("OnCallEndpoint", ""); err != nil {
		t.Fatal(err)
	}
	if on, err := tpl.Condition("HasOnCallEndpoint"); err != nil || on {
		t.Fatalf("HasOnCallEndpoint = %v, %v with an empty endpoint", on, err)
	}
	if err := tpl.SetParameter("OnCallEndpoint", "https://paging.example/hook"); err != nil {
		t.Fatal(err)
	}
	if on, err := tpl.Condition("HasOnCallEndpoint"); err != nil || !on {
		t.Fatalf("HasOnCallEndpoint = %v, %v with an endpoint", on, err)
	}
}

func TestAlarmBreaches(t *testing.T) {
	tpl, _ := repoTemplate(t)
	nan := math.NaN()
	tests := []struct {
		alarm  string
		points []float64
		want   bool
	}{
		{"AwsHighErrorRateAlarm", []float64{20, 20, 20, 20, 20}, true},
		{"AwsHighErrorRateAlarm", []float64{0, 20, 20, 20, 20, 20}, true},
		{"AwsHighErrorRateAlarm", []float64{20, 20, 20, 20, 5}, false},
		{"AwsHighErrorRateAlarm", []float64{10, 10, 10, 10, 10}, false},
		{"AwsHighErrorRateAlarm", []float64{20, 20, nan, 20, 20}, false},
		{"AwsHighErrorRateAlarm", []float64{20, 20, 20}, false},
		{"GcpHighLatencyAlarm", []float64{6000, 6000, 6000, 6000, 6000}, true},
		{"GcpHighLatencyAlarm", []float64{900, 800, 1000, 700, 1200}, false},
		{"PostmanRateLimitHitAlarm", []float64{0.2, 0.2, 0.2, 0.2, 0.2}, true},
		{"PostmanNetworkErrorsAlarm", []float64{0.4, 0.4, 0.4, 0.4, 0.4}, false},
		{"AwsDeadLetterQueueAlarm", []float64{1}, true},
		{"AwsDeadLetterQueueAlarm", []float64{0}, false},
		{"IngressMessageAgeAlarm", []float64{901, 950, 1000, 1100, 1200}, true},
	}
	for _, tc := range tests {
		a := tpl.Alarms[tc.alarm]
		if a == nil {
			t.Fatalf("no alarm %s", tc.alarm)
		}
		if got := a.Breaches(tc.points); got != tc.want {
			t.Errorf("%s.Breaches(%v) = %v, want %v", tc.alarm, tc.points, got, tc.want)
		}
	}
}

func TestAlarmMetricDataQueries(t *testing.T) {
	tpl, _ := repoTemplate(t)
	scope := samtemplate.SymbolicScope("st", "us-east-1", samtemplate.LocalAccountID)
	q, err := tpl.Alarms["GcpHighErrorRateAlarm"].MetricDataQueries(scope)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, x := range q {
		switch {
		case x.Expression != nil:
			got[aws.ToString(x.Id)] = aws.ToString(x.Expression)
		default:
			got[aws.ToString(x.Id)] = aws.ToString(x.MetricStat.Metric.MetricName) + "/" + aws.ToString(x.MetricStat.Stat) + "/" +
				aws.ToString(x.MetricStat.Metric.Dimensions[0].Value)
		}
		if (x.Expression != nil) != aws.ToBool(x.ReturnData) {
			t.Errorf("query %s: ReturnData %v", aws.ToString(x.Id), aws.ToBool(x.ReturnData))
		}
	}
	want := map[string]string{
		"error_rate": "IF(requests > 0, errors / requests * 100, 0)",
		"requests":   "PartnerAPIRequests/Sum/gcp",
		"errors":     "PartnerAPIErrors/Sum/gcp",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("queries = %v, want %v", got, want)
	}
	q, err = tpl.Alarms["PostmanQueueBacklogAlarm"].MetricDataQueries(scope)
	if err != nil {
		t.Fatal(err)
	}
	if len(q) != 1 || aws.ToString(q[0].MetricStat.Stat) != "Maximum" || aws.ToInt32(q[0].MetricStat.Period) != 60 ||
		aws.ToString(q[0].MetricStat.Metric.Dimensions[0].Value) != "${PostmanQueue.QueueName}" {
		t.Errorf("backlog queries = %+v", q)
	}
	if _, err := tpl.Alarms["PostmanQueueBacklogAlarm"].MetricDataQueries(samtemplate.Scope{}); !errors.Is(err, samtemplate.ErrUnresolvable) {
		t.Errorf("without a scope for the queue name: %v, want ErrUnresolvable", err)
	}
}

func TestDashboardShorthand(t *testing.T) {
	src := `
Resources:
  A:
    Type: AWS::SQS::Queue
  D:
    Type: AWS::CloudWatch::Dashboard
    Properties:
      DashboardBody: !Sub |
        {"widgets": [{"type": "metric", "properties": {"title": "t", "stat": "Sum", "metrics": [
          ["NS", "M", "Partner", "aws", {"id": "a"}],
          [".", ".", ".", "gcp", {"stat": "p95", "visible": false}],
          [{"expression": "a * 2", "id": "e"}]
        ]}}, {"type": "alarm", "properties": {"alarms": ["${A.Arn}"]}}]}
`
	tpl, err := samtemplate.Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	ws, err := tpl.Dashboards["D"].Widgets(samtemplate.SymbolicScope("st", "us-east-1", samtemplate.LocalAccountID))
	if err != nil {
		t.Fatal(err)
	}
	want := []samtemplate.Widget{
		{Type: "metric", Title: "t", Metrics: []samtemplate.WidgetMetric{
			{Namespace: "NS", MetricName: "M", Dimensions: map[string]string{"Partner": "aws"}, Stat: "Sum", ID: "a", Visible: true},
			{Namespace: "NS", MetricName: "M", Dimensions: map[string]string{"Partner": "gcp"}, Stat: "p95", Visible: false},
			{Stat: "Sum", ID: "e", Expression: "a * 2", Visible: true},
		}},
		{Type: "alarm", Alarms: []string{"${A.Arn}"}},
	}
	if !reflect.DeepEqual(ws, want) {
		t.Errorf("Widgets =\n%+v\nwant\n%+v", ws, want)
	}
}
