package samtemplate

import (
	"fmt"
	"math"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
)

// LocalAccountID is the account id a local AWS (moto) reports.
const LocalAccountID = "123456789012"

// Pseudo returns the pseudo parameters of a stack, for Scope.Pseudo.
func Pseudo(stackName, region, accountID string) map[string]string {
	partition, suffix := "aws", "amazonaws.com"
	switch {
	case strings.HasPrefix(region, "cn-"):
		partition, suffix = "aws-cn", "amazonaws.com.cn"
	case strings.HasPrefix(region, "us-gov-"):
		partition = "aws-us-gov"
	}
	return map[string]string{
		"AWS::StackName": stackName,
		"AWS::StackId":   fmt.Sprintf("arn:%s:cloudformation:%s:%s:stack/%s/local", partition, region, accountID, stackName),
		"AWS::Region":    region,
		"AWS::AccountId": accountID,
		"AWS::Partition": partition,
		"AWS::URLSuffix": suffix,
	}
}

// SymbolicScope resolves pseudo parameters for a stack and writes every
// resource reference as ${LogicalId} or ${LogicalId.Attribute}, so a value
// that names resources (a dashboard body, an alarm's queue dimension) can
// be read without a deployed stack and still say which resource it means.
func SymbolicScope(stackName, region, accountID string) Scope {
	return Scope{
		Pseudo: Pseudo(stackName, region, accountID),
		Resource: func(id, attr string) (string, error) {
			if attr == "" {
				return "${" + id + "}", nil
			}
			return "${" + id + "." + attr + "}", nil
		},
	}
}

// NameIn resolves the alarm's name in scope s (its pseudo parameters are
// enough for names built from the stack name).
func (a *Alarm) NameIn(s Scope) (string, error) {
	if !a.Name.IsSet() {
		return "", fmt.Errorf("alarm %s: no AlarmName", a.LogicalID)
	}
	n, err := a.Name.Resolve(s)
	if err != nil {
		return "", fmt.Errorf("alarm %s: AlarmName: %w", a.LogicalID, err)
	}
	return n, nil
}

// AllMetrics lists every metric the alarm reads.
func (a *Alarm) AllMetrics() []Metric {
	if a.Metric != nil {
		return []Metric{*a.Metric}
	}
	var out []Metric
	for _, q := range a.Metrics {
		if q.Metric != nil {
			out = append(out, *q.Metric)
		}
	}
	return out
}

// MetricDataQueries turns the alarm's definition into GetMetricData
// queries, dimension values resolved in scope s: one query for a
// single-metric alarm (id "m0", its statistic and period), the alarm's own
// queries for metric math. The query with ReturnData is the value the alarm
// compares with its threshold.
func (a *Alarm) MetricDataQueries(s Scope) ([]cwtypes.MetricDataQuery, error) {
	if a.Metric != nil {
		stat := a.Statistic
		if stat == "" {
			stat = a.ExtendedStatistic
		}
		m, err := a.sdkMetric(*a.Metric, s)
		if err != nil {
			return nil, err
		}
		return []cwtypes.MetricDataQuery{{
			Id:         aws.String("m0"),
			MetricStat: &cwtypes.MetricStat{Metric: m, Period: aws.Int32(int32(a.Period)), Stat: aws.String(stat)},
			ReturnData: aws.Bool(true),
		}}, nil
	}
	out := make([]cwtypes.MetricDataQuery, 0, len(a.Metrics))
	for _, q := range a.Metrics {
		dq := cwtypes.MetricDataQuery{Id: aws.String(q.ID), ReturnData: aws.Bool(q.ReturnData)}
		if q.Label != "" {
			dq.Label = aws.String(q.Label)
		}
		if q.Expression != "" {
			dq.Expression = aws.String(q.Expression)
		} else {
			m, err := a.sdkMetric(*q.Metric, s)
			if err != nil {
				return nil, err
			}
			dq.MetricStat = &cwtypes.MetricStat{Metric: m, Period: aws.Int32(int32(q.Period)), Stat: aws.String(q.Stat)}
			if q.Unit != "" {
				dq.MetricStat.Unit = cwtypes.StandardUnit(q.Unit)
			}
		}
		out = append(out, dq)
	}
	return out, nil
}

func (a *Alarm) sdkMetric(m Metric, s Scope) (*cwtypes.Metric, error) {
	out := &cwtypes.Metric{Namespace: aws.String(m.Namespace), MetricName: aws.String(m.MetricName)}
	for _, d := range m.Dimensions {
		v, err := d.Value.Resolve(s)
		if err != nil {
			return nil, fmt.Errorf("alarm %s: dimension %s: %w", a.LogicalID, d.Name, err)
		}
		out.Dimensions = append(out.Dimensions, cwtypes.Dimension{Name: aws.String(d.Name), Value: aws.String(v)})
	}
	return out, nil
}

// EvaluationPeriodSeconds is the length of one evaluation period: Period,
// or for metric math the period of the alarm's metrics.
func (a *Alarm) EvaluationPeriodSeconds() int {
	if a.Metric != nil {
		return a.Period
	}
	for _, q := range a.Metrics {
		if q.Metric != nil && q.Period > 0 {
			return q.Period
		}
	}
	return 0
}

// Exceeds reports whether one datapoint is on the breaching side of the
// threshold.
func (a *Alarm) Exceeds(v float64) bool {
	switch a.ComparisonOperator {
	case "GreaterThanThreshold":
		return v > a.Threshold
	case "GreaterThanOrEqualToThreshold":
		return v >= a.Threshold
	case "LessThanThreshold":
		return v < a.Threshold
	case "LessThanOrEqualToThreshold":
		return v <= a.Threshold
	}
	return false
}

// Breaches evaluates the alarm over datapoints, one per period, oldest
// first, NaN for a period without data: it looks at the last
// EvaluationPeriods periods and alarms when DatapointsToAlarm of them
// breach. Missing data counts as TreatMissingData says: breaching,
// notBreaching, or (ignore, missing) left out of the count.
func (a *Alarm) Breaches(datapoints []float64) bool {
	n := a.EvaluationPeriods
	window := make([]float64, n)
	for i := range window {
		window[i] = math.NaN()
	}
	for i := 0; i < n && i < len(datapoints); i++ {
		window[n-1-i] = datapoints[len(datapoints)-1-i]
	}
	breaching := 0
	for _, v := range window {
		switch {
		case math.IsNaN(v):
			if a.TreatMissingData == "breaching" {
				breaching++
			}
		case a.Exceeds(v):
			breaching++
		}
	}
	need := a.DatapointsToAlarm
	if need == 0 {
		need = n
	}
	return n > 0 && breaching >= need
}
