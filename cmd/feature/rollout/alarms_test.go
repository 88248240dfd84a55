package rollout

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
)

// fakeCloudWatch serves alarms and their history the way CloudWatch does:
// DescribeAlarms by name, DescribeAlarmHistory newest first, in pages.
type fakeCloudWatch struct {
	alarms     map[string]cwtypes.MetricAlarm
	history    map[string][]cwtypes.AlarmHistoryItem
	historyErr error
	pageSize   int
	calls      int
}

func (f *fakeCloudWatch) DescribeAlarms(_ context.Context, in *cloudwatch.DescribeAlarmsInput, _ ...func(*cloudwatch.Options)) (*cloudwatch.DescribeAlarmsOutput, error) {
	out := &cloudwatch.DescribeAlarmsOutput{}
	for _, n := range in.AlarmNames {
		if a, ok := f.alarms[n]; ok {
			out.MetricAlarms = append(out.MetricAlarms, a)
		}
	}
	return out, nil
}

func (f *fakeCloudWatch) DescribeAlarmHistory(_ context.Context, in *cloudwatch.DescribeAlarmHistoryInput, _ ...func(*cloudwatch.Options)) (*cloudwatch.DescribeAlarmHistoryOutput, error) {
	f.calls++
	if f.historyErr != nil {
		return nil, f.historyErr
	}
	var items []cwtypes.AlarmHistoryItem
	for _, it := range f.history[aws.ToString(in.AlarmName)] {
		if !aws.ToTime(it.Timestamp).Before(aws.ToTime(in.StartDate)) {
			items = append(items, it)
		}
	}
	start := 0
	if in.NextToken != nil {
		fmt.Sscan(*in.NextToken, &start)
	}
	end := min(len(items), start+f.pageSize)
	out := &cloudwatch.DescribeAlarmHistoryOutput{AlarmHistoryItems: items[start:end]}
	if end < len(items) {
		out.NextToken = aws.String(fmt.Sprint(end))
	}
	return out, nil
}

var t0 = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func metricAlarm(name, state string, updated time.Time) cwtypes.MetricAlarm {
	return cwtypes.MetricAlarm{AlarmName: aws.String(name), StateValue: cwtypes.StateValue(state), StateUpdatedTimestamp: aws.Time(updated)}
}

// update is a StateUpdate history item as CloudWatch writes it.
func update(name, from, to string, ts time.Time) cwtypes.AlarmHistoryItem {
	return cwtypes.AlarmHistoryItem{
		AlarmName: aws.String(name), HistoryItemType: cwtypes.HistoryItemTypeStateUpdate, Timestamp: aws.Time(ts),
		HistorySummary: aws.String("Alarm updated from " + from + " to " + to),
		HistoryData: aws.String(`{"version":"1.0","oldState":{"stateValue":"` + from + `","stateReason":"x"},` +
			`"newState":{"stateValue":"` + to + `","stateReason":"Threshold Crossed","stateReasonData":{"version":"1.0"}}}`),
	}
}

func TestReadAlarmsFromHistory(t *testing.T) {
	const a, b, missing = "SecretDetectionPartnerAPIHighErrorRate-s-aws", "SecretDetectionPartnerAPIHighLatency-s-gcp", "SecretDetectionPartnerAPIHighLatency-s-postman"
	cw := &fakeCloudWatch{pageSize: 2,
		alarms: map[string]cwtypes.MetricAlarm{a: metricAlarm(a, StateOK, at(3*time.Hour)), b: metricAlarm(b, StateOK, at(-time.Hour))},
		history: map[string][]cwtypes.AlarmHistoryItem{
			a: { // newest first, as CloudWatch returns it
				update(a, "INSUFFICIENT_DATA", "OK", at(4*time.Hour)),
				update(a, "ALARM", "OK", at(3*time.Hour)),
				{AlarmName: aws.String(a), Timestamp: aws.Time(at(2*time.Hour + 30*time.Minute)), HistorySummary: aws.String("Alarm updated from OK to ALARM")},
				update(a, "OK", "ALARM", at(2*time.Hour)),
				update(a, "OK", "INSUFFICIENT_DATA", at(time.Hour)),
				update(a, "OK", "ALARM", at(-2*time.Hour)),
			},
			b: {update(b, "ALARM", "OK", at(-time.Hour))},
		}}
	alarms, note, err := readAlarms(context.Background(), cw, "production", []string{a, b, missing}, t0)
	if err != nil || note != "" {
		t.Fatalf("readAlarms: %v %q", err, note)
	}
	want := []AlarmEvent{
		{Time: at(2 * time.Hour), From: StateOK, To: StateAlarm},
		{Time: at(2*time.Hour + 30*time.Minute), From: StateOK, To: StateAlarm},
		{Time: at(3 * time.Hour), From: StateAlarm, To: StateOK},
	}
	if len(alarms) != 3 || fmt.Sprint(alarms[0].Events) != fmt.Sprint(want) || alarms[0].Inferred {
		t.Fatalf("events of %s = %v, want %v", a, alarms[0].Events, want)
	}
	if len(alarms[1].Events) != 0 || alarms[2].Found || !alarms[1].Found {
		t.Errorf("alarms %+v", alarms)
	}

	// The soak restarts at the last change out of ALARM (3h): not quiet for
	// 24h at 26h, quiet at 27h. An INSUFFICIENT_DATA change does not count.
	tests := []struct {
		now    time.Duration
		wantOK bool
		detail string
	}{
		{3*time.Hour + time.Minute, false, "quiet since 2026-11-20T13:00:00Z, 1m of the 1d soak: 23h 59m to go"},
		{26 * time.Hour, false, "23h of the 1d soak: 1h to go"},
		{27 * time.Hour, true, "went to ALARM at 2026-11-20T12:00:00Z"},
	}
	for _, tt := range tests {
		c := soakAlarmsCheck(alarms, nil, t0, at(tt.now), 24*time.Hour)
		if c.OK != tt.wantOK || !strings.Contains(c.Detail, tt.detail) {
			t.Errorf("at +%v: %+v, want ok=%v and %q", tt.now, c, tt.wantOK, tt.detail)
		}
	}
	c := nowAlarmsCheck(alarms, nil)
	if c.OK || !strings.Contains(c.Detail, "not found, so not known to be quiet: production "+missing) {
		t.Errorf("missing alarm: %+v", c)
	}
}

// TestReadAlarmsWithoutHistory: when DescribeAlarmHistory fails (moto does
// not implement it), each alarm's last state change since the window start
// counts, which is stricter than the history, never looser; the history is
// not asked again for the other alarms.
func TestReadAlarmsWithoutHistory(t *testing.T) {
	const a, b = "A-s-aws", "B-s-gcp"
	cw := &fakeCloudWatch{historyErr: errors.New("StatusCode: 500"),
		alarms: map[string]cwtypes.MetricAlarm{a: metricAlarm(a, StateOK, at(2*time.Hour)), b: metricAlarm(b, StateOK, at(-time.Hour))}}
	alarms, note, err := readAlarms(context.Background(), cw, "staging", []string{a, b}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(note, "the alarm history of staging could not be read (describe alarm history of A-s-aws: StatusCode: 500)") || cw.calls != 1 {
		t.Errorf("note %q after %d history calls", note, cw.calls)
	}
	if !alarms[0].Inferred || len(alarms[0].Events) != 1 || alarms[0].Events[0] != (AlarmEvent{Time: at(2 * time.Hour), To: StateOK}) {
		t.Errorf("inferred events %+v", alarms[0])
	}
	if len(alarms[1].Events) != 0 {
		t.Errorf("a change before the window counted: %+v", alarms[1])
	}
	c := soakAlarmsCheck(alarms, nil, t0, at(2*time.Hour+30*time.Minute), time.Hour)
	if c.OK || !strings.Contains(c.Detail, "changed state to OK at 2026-11-20T12:00:00Z (no alarm history: counted as an alarm)") {
		t.Errorf("check %+v", c)
	}
	// Without a window nothing is read from the history at all.
	cw.calls = 0
	if alarms, note, err = readAlarms(context.Background(), cw, "staging", []string{a}, time.Time{}); err != nil || note != "" || cw.calls != 0 || len(alarms[0].Events) != 0 {
		t.Errorf("no window: %+v %q %v, %d calls", alarms, note, err, cw.calls)
	}
}

func TestAlarmsNowCheck(t *testing.T) {
	tests := []struct {
		name     string
		alarms   []Alarm
		readErrs []string
		wantOK   bool
		detail   string
	}{
		{"quiet", []Alarm{{Environment: "dev", Name: "A", Found: true, State: StateOK}, {Environment: "pre", Name: "A", Found: true, State: "INSUFFICIENT_DATA"}}, nil, true, "none of the 2 watched alarms is in ALARM"},
		{"firing", []Alarm{{Environment: "dev", Name: "A", Found: true, State: StateAlarm, StateUpdated: t0}}, nil, false, "in ALARM now: dev A (since 2026-11-20T10:00:00Z)"},
		{"missing", []Alarm{{Environment: "dev", Name: "A"}}, nil, false, "not found, so not known to be quiet: dev A"},
		{"unreadable", nil, []string{"describe alarms in dev: denied"}, false, "cannot read the alarms: describe alarms in dev: denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := nowAlarmsCheck(tt.alarms, tt.readErrs)
			if c.OK != tt.wantOK || !strings.Contains(c.Detail, tt.detail) || c.Name != CheckAlarmsNow {
				t.Errorf("%+v, want ok=%v %q", c, tt.wantOK, tt.detail)
			}
		})
	}
}
