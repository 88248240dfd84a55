package localrun

import (
	"context"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/schemas"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/smithy-go/transport/http/protocol/awsjson"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/awstest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/samtemplate"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/featureflag"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/registry"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/pipeline"
)

// cloudWatchClient returns a CloudWatch client for moto in one region.
//
// aws-sdk-go-v2's cloudwatch (v1.75) speaks smithy-rpc-v2-cbor by default.
// moto 5.2.1 dispatches a request on its Content-Type and parses only the
// JSON and query protocols (moto/core/request.py determine_request_protocol,
// moto/core/parse.py PROTOCOL_PARSERS has no CBOR parser), though botocore's
// model lists all three for CloudWatch. The client's Protocol option takes
// any smithy client protocol, so it is set to awsJson1_0 for the service's
// schema: requests then go out as POST / with
// X-Amz-Target: GraniteServiceVersion20100801.<Operation> and
// Content-Type: application/x-amz-json-1.0, which moto serves.
func cloudWatchClient(cfg aws.Config, region string) *cloudwatch.Client {
	return cloudwatch.NewFromConfig(cfg, func(o *cloudwatch.Options) {
		o.Protocol = awsjson.New10(schemas.GraniteServiceVersion20100801)
		o.Region = region
		o.DisableRequestCompression = true
	})
}

// alarmRegions keep the runs' data apart on the one moto of the test
// process (a region is its own CloudWatch); freshRegion takes one that has
// no data in the window yet, so the test can run again with -count.
var alarmRegions = []string{"us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2", "ap-northeast-1", "sa-east-1",
	"ca-central-1", "eu-north-1", "ap-south-1", "us-east-2", "eu-west-2", "eu-west-3"}

func freshRegion(t *testing.T, cfg aws.Config, used map[string]bool) string {
	t.Helper()
	for _, r := range alarmRegions {
		if used[r] {
			continue
		}
		out, err := cloudWatchClient(cfg, r).ListMetrics(context.Background(), &cloudwatch.ListMetricsInput{Namespace: aws.String("SecretDetection/PartnerTokenVerification")})
		if err != nil {
			t.Fatalf("list metrics in %s: %v", r, err)
		}
		used[r] = true
		if len(out.Metrics) == 0 {
			return r
		}
	}
	t.Fatal("every region of alarmRegions already holds metrics")
	return ""
}

// replay puts a run's EMF records into CloudWatch with PutMetricData as if
// the run had happened once in each of the minutes from start on: every
// value CloudWatch would extract from the records (DecodeEMF) becomes one
// datum of that minute. A metric's values get distinct seconds within the
// minute (0, 1, 2, ...), because moto computes no percentile: the alarm
// evaluation reads latency back one second at a time and computes p95
// itself (see periodSeries). Sums per minute are what the run produced.
func replay(t *testing.T, cw *cloudwatch.Client, records []map[string]any, start time.Time, minutes int) {
	t.Helper()
	byNamespace := map[string][]cwtypes.MetricDatum{}
	for m := range minutes {
		minute := start.Add(time.Duration(m) * time.Minute)
		second := map[string]int{}
		for i, rec := range records {
			ds, err := DecodeEMF(rec)
			if err != nil {
				t.Fatalf("record %d: %v", i, err)
			}
			for _, d := range ds {
				key := metricKey(d.Namespace, d.Name, d.Dimensions)
				var dims []cwtypes.Dimension
				for _, k := range slices.Sorted(maps.Keys(d.Dimensions)) {
					dims = append(dims, cwtypes.Dimension{Name: aws.String(k), Value: aws.String(d.Dimensions[k])})
				}
				for _, v := range d.Values {
					if second[key] >= 60 {
						t.Fatalf("%s: more than 60 values in one run; replay gives each its own second of a minute", key)
					}
					byNamespace[d.Namespace] = append(byNamespace[d.Namespace], cwtypes.MetricDatum{
						MetricName: aws.String(d.Name), Dimensions: dims, Unit: cwtypes.StandardUnit(d.Unit),
						Value: aws.Float64(v), Timestamp: aws.Time(minute.Add(time.Duration(second[key]) * time.Second)),
					})
					second[key]++
				}
			}
		}
	}
	for ns, data := range byNamespace {
		for chunk := range slices.Chunk(data, 500) {
			if _, err := cw.PutMetricData(context.Background(), &cloudwatch.PutMetricDataInput{Namespace: aws.String(ns), MetricData: chunk}); err != nil {
				t.Fatalf("put metric data: %v", err)
			}
		}
	}
}

// periodSeries asks CloudWatch (GetMetricData) for one metric query of an
// alarm over n periods from start and returns its value per period, NaN
// where there is no datapoint. A Sum, SampleCount, Average, Minimum or
// Maximum is CloudWatch's own; moto answers no percentile (its Statistics
// knows the five basic ones only), so for pNN the raw values are fetched
// at one-second resolution (SampleCount and Maximum per second; replay put
// one value per second) and the percentile is computed here with the same
// Statistic the run summary uses.
func periodSeries(t *testing.T, cw *cloudwatch.Client, q cwtypes.MetricDataQuery, start time.Time, n int) []float64 {
	t.Helper()
	ms := q.MetricStat
	period := time.Duration(aws.ToInt32(ms.Period)) * time.Second
	end := start.Add(time.Duration(n) * period)
	out := make([]float64, n)
	for i := range out {
		out[i] = math.NaN()
	}
	get := func(queries ...cwtypes.MetricDataQuery) map[string]map[time.Time]float64 {
		res, err := cw.GetMetricData(context.Background(), &cloudwatch.GetMetricDataInput{
			StartTime: aws.Time(start), EndTime: aws.Time(end), MetricDataQueries: queries,
		})
		if err != nil {
			t.Fatalf("get metric data: %v", err)
		}
		got := map[string]map[time.Time]float64{}
		for _, r := range res.MetricDataResults {
			m := map[time.Time]float64{}
			for i, ts := range r.Timestamps {
				m[ts.UTC()] = r.Values[i]
			}
			got[aws.ToString(r.Id)] = m
		}
		return got
	}
	stat := aws.ToString(ms.Stat)
	if _, err := Statistic(nil, stat); err != nil {
		t.Fatalf("query %s: %v", aws.ToString(q.Id), err)
	}
	if stat[0] != 'p' {
		got := get(cwtypes.MetricDataQuery{Id: aws.String("q"), MetricStat: ms, ReturnData: aws.Bool(true)})
		for ts, v := range got["q"] {
			if i := int(ts.Sub(start) / period); i >= 0 && i < n {
				out[i] = v
			}
		}
		return out
	}
	perSecond := func(s string) cwtypes.MetricDataQuery {
		return cwtypes.MetricDataQuery{Id: aws.String(s), ReturnData: aws.Bool(true),
			MetricStat: &cwtypes.MetricStat{Metric: ms.Metric, Period: aws.Int32(1), Stat: aws.String(map[string]string{"n": "SampleCount", "v": "Maximum"}[s]), Unit: ms.Unit}}
	}
	got := get(perSecond("n"), perSecond("v"))
	values := make([][]float64, n)
	for ts, count := range got["n"] {
		if count != 1 {
			t.Fatalf("%s: %v values in the second %s; replay puts one per second", aws.ToString(ms.Metric.MetricName), count, ts)
		}
		if i := int(ts.Sub(start) / period); i >= 0 && i < n {
			values[i] = append(values[i], got["v"][ts])
		}
	}
	for i, vs := range values {
		v, err := Statistic(vs, stat)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = v
	}
	return out
}

// evaluate holds one alarm's own definition from the template against the
// data in CloudWatch: its queries (samtemplate's MetricDataQueries) over
// its evaluation periods from start, its expression, threshold and
// DatapointsToAlarm (samtemplate's Breaches). moto's GetMetricData does no
// metric math (it returns a query whose expression is another query's id,
// nothing else), so an expression such as IF(requests > 0, errors /
// requests * 100, 0) or hits / PERIOD(hits) is evaluated here, per period,
// over the series CloudWatch returned for the alarm's metric queries.
func evaluate(t *testing.T, cw *cloudwatch.Client, a *samtemplate.Alarm, scope samtemplate.Scope, start time.Time) ([]float64, bool) {
	t.Helper()
	qs, err := a.MetricDataQueries(scope)
	if err != nil {
		t.Fatal(err)
	}
	n := a.EvaluationPeriods
	series := map[string][]float64{}
	for _, q := range qs {
		if q.MetricStat != nil {
			series[aws.ToString(q.Id)] = periodSeries(t, cw, q, start, n)
		}
	}
	datapoints := make([]float64, n)
	for i := range datapoints {
		v, err := AlarmValue(qs,
			func(q cwtypes.MetricDataQuery) (float64, error) { return series[aws.ToString(q.Id)][i], nil },
			func(q cwtypes.MetricDataQuery) float64 { return float64(aws.ToInt32(q.MetricStat.Period)) })
		if err != nil {
			t.Fatalf("alarm %s: %v", a.LogicalID, err)
		}
		datapoints[i] = v
	}
	return datapoints, a.Breaches(datapoints)
}

// TestAlarmsOnRealRuns records two real runs of the functions against the
// partner doubles — a healthy one, and one whose Postman answers every
// request after 6 s and one request in five with a 503 — replays each
// run's EMF output into moto's CloudWatch over the last five minutes, and
// evaluates every partner alarm of template.yaml on it.
//
// The functions run with PARTNER_TIMEOUT=10s. With the default partner
// timeout (partnerhttp.DefaultTimeout, 4 s) a 6 s answer is never
// measured: the request is abandoned at 4 s as a network error, so
// PartnerAPILatency stays near 4000 ms and the latency alarm (p95 > 5000 ms)
// cannot fire; the error-rate alarm pages instead. A deployment that wants
// the latency alarm must set PARTNER_TIMEOUT above its threshold.
//
// The queue alarms (dead-letter messages, backlog, oldest ingress message)
// read AWS/SQS metrics that CloudWatch publishes itself, not EMF, and are
// not part of this test.
func TestAlarmsOnRealRuns(t *testing.T) {
	h := newHarness(t, "alarms-", map[string]string{pipeline.EnvPartnerTimeout: "10s"})
	h.setFlag(t, featureflag.Change{Enable: true})
	var tokens []string
	collector := h.stack.Metrics

	from := settle(collector)
	h.run(t, "IngressQueue", eventBodies(t, "ingress-scan.json")...)
	mid := settle(collector)
	healthy := collector.Records()[from:mid]

	// Exactly one request in five fails: the sample scan's two Postman keys
	// and two random ones are four first requests, the one 503 adds a retry.
	postman := h.sandbox.Postman.Controls
	postman.SetLatency(6*time.Second, 0)
	postman.Push(partnertest.Fault503)
	var bodies []string
	for _, b := range eventBodies(t, "ingress-scan.json") {
		bodies = append(bodies, withRecheck(t, b))
	}
	bodies = append(bodies, scanBody(t, "alarms-postman", "Postman API token", 2, &tokens))
	beforeFigures := collector.Partners()["postman"]
	h.run(t, "IngressQueue", bodies...)
	end := settle(collector)
	postman.Reset()
	faulty := collector.Records()[mid:end]
	p := collector.Partners()["postman"]
	if req, errs := p.Requests-beforeFigures.Requests, p.Errors-beforeFigures.Errors; req != 5 || errs != 1 {
		t.Fatalf("the faulty run sent %v Postman requests with %v errors, want 5 with 1 (20%%)", req, errs)
	}

	moto := awstest.Shared(t)
	scope := h.stack.Local.Scope()
	tpl := h.stack.Template
	// The last five whole minutes: the alarms' 5 evaluation periods of 60 s.
	start := time.Now().UTC().Truncate(time.Minute).Add(-5 * time.Minute)
	used := map[string]bool{}
	tests := []struct {
		name    string
		records []map[string]any
		// want are the alarms in ALARM, as "alert/partner".
		want []string
	}{
		{name: "healthy run", records: healthy},
		{name: "postman: 20% 5xx and 6 s latency", records: faulty,
			want: []string{"SecretDetectionPartnerAPIHighErrorRate/postman", "SecretDetectionPartnerAPIHighLatency/postman"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.records) == 0 {
				t.Fatal("the run produced no EMF record")
			}
			region := freshRegion(t, moto.Config(), used)
			cw := cloudWatchClient(moto.Config(), region)
			replay(t, cw, tc.records, start, 5)
			var firing []string
			evaluated := 0
			for _, id := range slices.Sorted(maps.Keys(tpl.Alarms)) {
				a := tpl.Alarms[id]
				partner, ok := alarmPartner(a, scope)
				if !ok {
					continue
				}
				if a.EvaluationPeriodSeconds() != 60 || a.EvaluationPeriods > 5 {
					t.Fatalf("alarm %s: %d periods of %d s; the replay covers 5 of 60 s", id, a.EvaluationPeriods, a.EvaluationPeriodSeconds())
				}
				name, err := a.NameIn(scope)
				if err != nil {
					t.Fatal(err)
				}
				alert, _, _ := strings.Cut(name, "-")
				datapoints, breaches := evaluate(t, cw, a, scope, start)
				evaluated++
				t.Logf("%s %s: %v (threshold %v) breaches=%v", alert, partner, datapoints, a.Threshold, breaches)
				if breaches {
					firing = append(firing, alert+"/"+partner)
				}
			}
			if evaluated != 4*len(registry.Names()) {
				t.Errorf("%d partner alarms evaluated, want 4 alerts x %d partners", evaluated, len(registry.Names()))
			}
			want := slices.Sorted(slices.Values(tc.want))
			slices.Sort(firing)
			if !slices.Equal(firing, want) {
				t.Errorf("in ALARM: %v, want %v", firing, want)
			}
		})
	}
}
