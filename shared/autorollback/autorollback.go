// Package autorollback is the automatic per-partner rollback: the
// AutoRollbackFunction, subscribed to the on-call topic, reads each
// CloudWatch alarm notification and, when a partner's error-rate or latency
// alarm of its own stack enters ALARM, switches only that partner off in the
// feature flag (partners.<name>: false), records who did it, and tells
// on-call on the same topic. It never switches anything on: every change it
// makes is a featureflag.Change that sets a kill switch.
package autorollback

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"unicode"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	featureflags "gitlab.com/gitlab-org/secret-detection/partner-token-verification/config/feature_flags"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/featureflag"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/logging"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/metrics"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/textfit"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/tracing"
)

// Environment variables the function reads besides FEATURE_FLAG_PARAMETER.
const (
	// EnvStackName is the stack whose alarms the function acts on.
	EnvStackName = "STACK_NAME"
	// EnvEnvironment names the deployment (dev ... production) in messages.
	EnvEnvironment = "ENVIRONMENT"
)

// alerts are the alerts (CONTRACT.md §5) that switch their partner off.
// Rate-limit hits and network errors are left to on-call: the first is
// the limiter doing its job, the second is as likely the network as the partner.
var alerts = []string{"SecretDetectionPartnerAPIHighErrorRate", "SecretDetectionPartnerAPIHighLatency"}

// stateAlarm is CloudWatch's ALARM state.
const stateAlarm = "ALARM"

// Limits of featureflag's metadata and of an SNS subject, in bytes.
const (
	maxUpdatedBy = 128
	maxReason    = 512
	maxSubject   = 100
)

// Publisher is the part of the SNS client the handler uses.
type Publisher interface {
	Publish(ctx context.Context, in *sns.PublishInput, optFns ...func(*sns.Options)) (*sns.PublishOutput, error)
}

// Handler acts on the notifications of one stack's on-call topic.
type Handler struct {
	Store *featureflag.Store
	// Flag and Parameter are the flag switched and its SSM parameter.
	Flag      string
	Parameter string
	// Stack is the stack whose alarms count; Environment names it in messages.
	Stack       string
	Environment string
	SNS         Publisher
	Logger      *slog.Logger
}

// FromEnv builds the handler from the Lambda environment.
func FromEnv(ctx context.Context) (*Handler, error) {
	stack := strings.TrimSpace(os.Getenv(EnvStackName))
	if stack == "" {
		return nil, fmt.Errorf("%s is not set", EnvStackName)
	}
	param := strings.TrimSpace(os.Getenv(featureflag.EnvParameter))
	if param == "" {
		param = featureflag.DefaultParameter(featureflags.PartnerTokenVerification)
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load AWS config: %w", err)
	}
	tracing.InstrumentAWS(&cfg)
	return &Handler{
		Store: featureflag.NewStore(ssm.NewFromConfig(cfg), nil), Flag: featureflags.PartnerTokenVerification, Parameter: param,
		Stack: stack, Environment: strings.TrimSpace(os.Getenv(EnvEnvironment)), SNS: sns.NewFromConfig(cfg), Logger: logging.FromEnv(),
	}, nil
}

// Action is what the handler did with one notification.
type Action struct {
	Alarm   string          `json:"alarm,omitempty"`
	Partner finding.Partner `json:"partner,omitempty"`
	// Ignored says why nothing was done; empty when the partner is off.
	Ignored string `json:"ignored,omitempty"`
	// Written is true when this notification switched the partner off;
	// false with Ignored empty means it was off already.
	Written bool  `json:"written"`
	Version int64 `json:"version,omitempty"`
	// Published is true when on-call was told.
	Published bool `json:"published"`
}

// Handle processes every record; a record that could not be acted on
// fails the invocation, so Lambda retries it (acting again is harmless:
// a partner already off is not written again).
func (h *Handler) Handle(ctx context.Context, ev events.SNSEvent) error {
	var errs []error
	for _, rec := range ev.Records {
		if _, err := h.handleRecord(ctx, rec); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// handleRecord acts on one SNS record.
func (h *Handler) handleRecord(ctx context.Context, rec events.SNSEventRecord) (Action, error) {
	n, ok := parse(rec.SNS.Message)
	if !ok {
		return h.ignore(ctx, Action{}, "not a CloudWatch alarm notification"), nil
	}
	a := Action{Alarm: n.AlarmName}
	if n.NewStateValue != stateAlarm {
		return h.ignore(ctx, a, "state "+printable(n.NewStateValue, 32)+", not ALARM"), nil
	}
	partner, alert, ok := h.match(n.AlarmName)
	if !ok {
		return h.ignore(ctx, a, "not a partner error-rate or latency alarm of stack "+h.Stack), nil
	}
	a.Partner = partner
	for _, d := range dimensions(n.Trigger) {
		if d.Name == metrics.DimPartner && d.Value != string(partner) {
			return h.ignore(ctx, a, fmt.Sprintf("the alarm's name says partner %s but its metric is of partner %s", partner, printable(d.Value, 32))), nil
		}
	}
	meta := featureflag.Meta{
		By: textfit.Fit("auto-rollback "+n.AlarmName, maxUpdatedBy),
		Reason: textfit.Fit(fmt.Sprintf("%s went from %s to ALARM at %s: %s", alert, printable(n.OldStateValue, 32),
			printable(n.StateChangeTime, 40), printable(n.NewStateReason, maxReason)), maxReason),
	}
	u, err := h.Store.Set(ctx, h.Flag, h.Parameter, featureflag.Change{Enable: false, Partners: []finding.Partner{partner}}, meta, false)
	if err != nil {
		h.Logger.ErrorContext(ctx, "auto-rollback: switching the partner off failed", "alarm", n.AlarmName, "partner", partner, "error", err.Error())
		return a, fmt.Errorf("auto-rollback of partner %s for alarm %s: %w", partner, n.AlarmName, err)
	}
	a.Written, a.Version = u.Written, u.After.Version
	h.Logger.WarnContext(ctx, "auto-rollback: partner switched off", "alarm", n.AlarmName, "partner", partner,
		"written", u.Written, "version", u.After.Version, "parameter", h.Parameter)
	if rec.SNS.TopicArn == "" {
		h.Logger.ErrorContext(ctx, "auto-rollback: the notification names no topic to report to", "alarm", n.AlarmName)
		return a, nil
	}
	// The report goes back to the topic the alarm came from: on-call reads
	// it there, and this function ignores it, as it is not an alarm.
	_, err = h.SNS.Publish(ctx, &sns.PublishInput{
		TopicArn: aws.String(rec.SNS.TopicArn),
		Subject:  aws.String(textfit.Fit(fmt.Sprintf("Auto-rollback: partner %s switched off in %s", partner, h.where()), maxSubject)),
		Message:  aws.String(h.report(n, partner, u)),
	})
	if err != nil {
		h.Logger.ErrorContext(ctx, "auto-rollback: reporting to on-call failed", "alarm", n.AlarmName, "error", err.Error())
		return a, fmt.Errorf("auto-rollback: publish the report of partner %s: %w", partner, err)
	}
	a.Published = true
	return a, nil
}

func (h *Handler) ignore(ctx context.Context, a Action, why string) Action {
	a.Ignored = why
	h.Logger.InfoContext(ctx, "auto-rollback: notification ignored", "alarm", a.Alarm, "why", why)
	return a
}

// match finds the partner of one of the stack's alarms the handler acts on;
// the names are the template's: <alert>-<stack>-<partner>. The partner is
// read from the name, not looked up in a list, so that this function needs
// no partner code and acts on a partner added after it was deployed.
func (h *Handler) match(name string) (finding.Partner, string, bool) {
	for _, alert := range alerts {
		if p, ok := strings.CutPrefix(name, alert+"-"+h.Stack+"-"); ok && featureflag.ValidPartnerName(p) {
			return finding.Partner(p), alert, true
		}
	}
	return "", "", false
}

func (h *Handler) where() string {
	if h.Environment == "" {
		return h.Stack
	}
	return h.Environment
}

// report is the message on-call receives.
func (h *Handler) report(n events.CloudWatchAlarmSNSPayload, p finding.Partner, u featureflag.Update) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Automatic rollback in %s (stack %s).\n\n", h.where(), h.Stack)
	fmt.Fprintf(&b, "Alarm %s went from %s to ALARM at %s:\n%s\n\n", n.AlarmName, printable(n.OldStateValue, 32),
		printable(n.StateChangeTime, 40), printable(n.NewStateReason, maxReason))
	if u.Written {
		fmt.Fprintf(&b, "Partner %s is now switched off in feature flag %s (parameter %s, version %d): its findings get feature_disabled and no %s API call is made once the functions' flag cache expires (FEATURE_FLAG_CACHE_TTL).\n",
			p, h.Flag, h.Parameter, u.After.Version, p)
	} else {
		fmt.Fprintf(&b, "Partner %s was already switched off in feature flag %s (parameter %s, version %d, updated by %s); nothing was written.\n",
			p, h.Flag, h.Parameter, u.Before.Version, u.Before.Value.UpdatedBy)
	}
	fmt.Fprintf(&b, "Nothing else was changed, and nothing is ever switched on automatically.\n\n")
	env := "--" + h.Environment
	if h.Environment == "" {
		env = "--<environment>"
	}
	fmt.Fprintf(&b, "Once the partner is healthy, switch it back on with:\n  feature set %s true --partner=%s %s\n", h.Flag, p, env)
	return b.String()
}

// parse reads an SNS message as a CloudWatch alarm notification.
func parse(msg string) (events.CloudWatchAlarmSNSPayload, bool) {
	var n events.CloudWatchAlarmSNSPayload
	if err := json.Unmarshal([]byte(msg), &n); err != nil || n.AlarmName == "" || n.NewStateValue == "" {
		return n, false
	}
	return n, true
}

// dimensions lists every dimension the alarm's trigger reads.
func dimensions(t events.CloudWatchAlarmTrigger) []events.CloudWatchDimension {
	out := append([]events.CloudWatchDimension{}, t.Dimensions...)
	for _, m := range t.Metrics {
		out = append(out, m.MetricStat.Metric.Dimensions...)
	}
	return out
}

// printable bounds text from a notification and replaces control
// characters, which the flag's metadata does not accept.
func printable(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) {
			return ' '
		}
		return r
	}, s)
	return textfit.Fit(s, n)
}
