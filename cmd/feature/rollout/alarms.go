package rollout

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/schemas"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/smithy-go/transport/http/protocol/awsjson"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
)

// CloudWatchAPI is the part of the CloudWatch client the rollout reads.
type CloudWatchAPI interface {
	DescribeAlarms(ctx context.Context, in *cloudwatch.DescribeAlarmsInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.DescribeAlarmsOutput, error)
	DescribeAlarmHistory(ctx context.Context, in *cloudwatch.DescribeAlarmHistoryInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.DescribeAlarmHistoryOutput, error)
}

// LocalCloudWatchProtocol makes a CloudWatch client speak AWS JSON 1.0
// instead of the SDK's default, Smithy RPC v2 CBOR. CloudWatch itself
// accepts both; moto_server (moto/cloudwatch/responses.py, dispatched by
// moto.core's request protocol detection) answers the JSON and query
// protocols but not CBOR, so clients pointed at a local AWS use this:
//
//	cloudwatch.NewFromConfig(cfg, rollout.LocalCloudWatchProtocol)
func LocalCloudWatchProtocol(o *cloudwatch.Options) {
	o.Protocol = awsjson.New10(schemas.GraniteServiceVersion20100801)
}

// initialStateReason is CloudWatch's state reason of an alarm that has
// not been evaluated since it was created.
const initialStateReason = "Unchecked: Initial alarm creation"

// Alarm states.
const (
	StateAlarm = "ALARM"
	StateOK    = "OK"
)

// AlarmName is the name the template gives an alert's alarm for one
// partner in one stack (template.yaml: <alert>-${AWS::StackName}-<partner>).
func AlarmName(alert, stack string, p finding.Partner) string {
	return alert + "-" + stack + "-" + string(p)
}

// AlarmEvent is one state change of an alarm.
type AlarmEvent struct {
	Time time.Time `json:"time"`
	// From is empty when it is not known (no history: see Alarm.Inferred).
	From string `json:"from,omitempty"`
	To   string `json:"to"`
}

// Alarm is a watched alarm as found in one environment.
type Alarm struct {
	Environment string `json:"environment"`
	Name        string `json:"name"`
	// Found is false when the stack has no such alarm: it cannot be said
	// to be quiet.
	Found        bool      `json:"found"`
	State        string    `json:"state,omitempty"`
	StateUpdated time.Time `json:"state_updated,omitzero"`
	// Events are the changes into or out of ALARM since the window start,
	// oldest first.
	Events []AlarmEvent `json:"events,omitempty"`
	// Inferred is set when the alarm history could not be read: every state
	// change since the window start then counts, as if it were an alarm.
	Inferred bool `json:"inferred,omitempty"`
}

// InAlarm reports whether the alarm is in ALARM now.
func (a Alarm) InAlarm() bool { return a.State == StateAlarm }

// LastEvent is the time of the latest event, zero without events.
func (a Alarm) LastEvent() time.Time {
	if len(a.Events) == 0 {
		return time.Time{}
	}
	return a.Events[len(a.Events)-1].Time
}

// describeAlarmsBatch is DescribeAlarms' limit on AlarmNames.
const describeAlarmsBatch = 100

// readAlarms describes the named alarms of one environment and, when since
// is not zero, their changes into or out of ALARM since then. history is
// the note to report when the alarm history could not be read and events
// were inferred from each alarm's last state change instead (moto, which
// does not implement DescribeAlarmHistory, or a denied permission); the
// inference can only count more changes, never fewer.
func readAlarms(ctx context.Context, api CloudWatchAPI, env string, names []string, since time.Time) (alarms []Alarm, history string, err error) {
	found := map[string]cwtypes.MetricAlarm{}
	for chunk := range slices.Chunk(names, describeAlarmsBatch) {
		in := &cloudwatch.DescribeAlarmsInput{AlarmNames: chunk, AlarmTypes: []cwtypes.AlarmType{cwtypes.AlarmTypeMetricAlarm}}
		for {
			out, err := api.DescribeAlarms(ctx, in)
			if err != nil {
				return nil, "", fmt.Errorf("describe alarms in %s: %w", env, err)
			}
			for _, a := range out.MetricAlarms {
				found[aws.ToString(a.AlarmName)] = a
			}
			if aws.ToString(out.NextToken) == "" {
				break
			}
			in.NextToken = out.NextToken
		}
	}
	created := map[string]bool{}
	for _, name := range names {
		a := Alarm{Environment: env, Name: name}
		if m, ok := found[name]; ok {
			a.Found, a.State, a.StateUpdated = true, string(m.StateValue), aws.ToTime(m.StateUpdatedTimestamp)
			created[name] = strings.HasPrefix(aws.ToString(m.StateReason), initialStateReason)
		}
		alarms = append(alarms, a)
	}
	if since.IsZero() {
		return alarms, "", nil
	}
	for i := range alarms {
		a := &alarms[i]
		if !a.Found {
			continue
		}
		if history == "" {
			events, err := alarmHistory(ctx, api, a.Name, since)
			if err == nil {
				a.Events = events
				continue
			}
			history = fmt.Sprintf("the alarm history of %s could not be read (%v), so every state change since %s counts as an alarm",
				env, err, since.UTC().Format(time.RFC3339))
		}
		a.Inferred = true
		// An alarm created since (a deploy) has not changed state yet.
		if !a.StateUpdated.Before(since) && !(created[a.Name] && !a.InAlarm()) {
			a.Events = []AlarmEvent{{Time: a.StateUpdated, To: a.State}}
		}
	}
	return alarms, history, nil
}

// historyData is the part of a StateUpdate history item's HistoryData
// that says which states the alarm went between.
type historyData struct {
	OldState struct {
		StateValue string `json:"stateValue"`
	} `json:"oldState"`
	NewState struct {
		StateValue string `json:"stateValue"`
	} `json:"newState"`
}

// historySummary is CloudWatch's summary of a state update.
var historySummary = regexp.MustCompile(`from (\w+) to (\w+)`)

// alarmHistory lists one alarm's changes into or out of ALARM since a time.
func alarmHistory(ctx context.Context, api CloudWatchAPI, name string, since time.Time) ([]AlarmEvent, error) {
	in := &cloudwatch.DescribeAlarmHistoryInput{
		AlarmName:       aws.String(name),
		HistoryItemType: cwtypes.HistoryItemTypeStateUpdate,
		StartDate:       aws.Time(since),
		MaxRecords:      aws.Int32(100),
	}
	var events []AlarmEvent
	for {
		out, err := api.DescribeAlarmHistory(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("describe alarm history of %s: %w", name, err)
		}
		for _, item := range out.AlarmHistoryItems {
			e := AlarmEvent{Time: aws.ToTime(item.Timestamp)}
			var hd historyData
			if json.Unmarshal([]byte(aws.ToString(item.HistoryData)), &hd) == nil && hd.NewState.StateValue != "" {
				e.From, e.To = hd.OldState.StateValue, hd.NewState.StateValue
			} else if m := historySummary.FindStringSubmatch(aws.ToString(item.HistorySummary)); m != nil {
				e.From, e.To = m[1], m[2]
			}
			// An item whose states cannot be read counts, as an unknown change would.
			if e.Time.Before(since) || (e.From != StateAlarm && e.To != StateAlarm && e.To != "") {
				continue
			}
			events = append(events, e)
		}
		if aws.ToString(out.NextToken) == "" {
			break
		}
		in.NextToken = out.NextToken
	}
	slices.SortFunc(events, func(a, b AlarmEvent) int { return a.Time.Compare(b.Time) })
	return events, nil
}
