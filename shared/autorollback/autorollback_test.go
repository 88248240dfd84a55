package autorollback

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/registry"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	featureflags "gitlab.com/gitlab-org/secret-detection/partner-token-verification/config/feature_flags"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/awstest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/samtemplate"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/featureflag"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
)

func TestMain(m *testing.M) { awstest.Main(m) }

// stack is the stack of the notifications in testdata/.
const stack = "partner-token-verification-production"

var (
	flag  = featureflags.PartnerTokenVerification
	param = featureflag.DefaultParameter(flag)
)

// loadEvent reads a CloudWatch alarm notification as SNS delivers it to a
// Lambda function, and points it at topic.
func loadEvent(t *testing.T, file, topic string) events.SNSEvent {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	var ev events.SNSEvent
	if err := json.Unmarshal(data, &ev); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	for i := range ev.Records {
		ev.Records[i].SNS.TopicArn = topic
	}
	return ev
}

// TestNotificationAlarmsAreTheTemplates: the alarm names in testdata are
// the ones template.yaml gives the stack, so the handler is tested against
// the names it will really receive.
func TestNotificationAlarmsAreTheTemplates(t *testing.T) {
	root, err := samtemplate.FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := samtemplate.Load(filepath.Join(root, samtemplate.FileName))
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, a := range tpl.Alarms {
		for _, s := range []string{stack, "partner-token-verification-staging"} {
			n, err := a.NameIn(samtemplate.SymbolicScope(s, "us-east-1", "123456789012"))
			if err != nil {
				t.Fatal(err)
			}
			names[n] = true
		}
	}
	files, _ := filepath.Glob("testdata/*.json")
	if len(files) < 5 {
		t.Fatalf("%d notifications in testdata", len(files))
	}
	for _, f := range files {
		ev := loadEvent(t, filepath.Base(f), "")
		n, ok := parse(ev.Records[0].SNS.Message)
		if !ok || !names[n.AlarmName] {
			t.Errorf("%s: alarm %q (parsed %v) is not one of the template's", f, n.AlarmName, ok)
		}
	}
	h := &Handler{Stack: stack}
	for _, alert := range alerts {
		for _, p := range registry.Names() {
			if _, _, ok := h.match(alert + "-" + stack + "-" + string(p)); !ok || !names[alert+"-"+stack+"-"+string(p)] {
				t.Errorf("%s for %s: acted on %v, in template %v", alert, p, ok, names[alert+"-"+stack+"-"+string(p)])
			}
		}
	}
}

// rig is a handler on moto: the flag in SSM, the on-call topic in SNS with
// a queue subscribed to read what the handler publishes.
type rig struct {
	t     *testing.T
	h     *Handler
	topic string
	ssm   *ssm.Client
	sqs   *sqs.Client
	inbox string
	logs  *bytes.Buffer
}

func newRig(t *testing.T, initial featureflag.Change) *rig {
	t.Helper()
	m := awstest.Shared(t)
	if err := m.Reset(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cfg := awstest.FastRetries(m.Config())
	r := &rig{t: t, ssm: ssm.NewFromConfig(cfg), sqs: sqs.NewFromConfig(cfg), logs: &bytes.Buffer{}}
	sc := sns.NewFromConfig(cfg)
	topic, err := sc.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("oncall")})
	if err != nil {
		t.Fatal(err)
	}
	r.topic = aws.ToString(topic.TopicArn)
	q, err := r.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("oncall-inbox")})
	if err != nil {
		t.Fatal(err)
	}
	r.inbox = aws.ToString(q.QueueUrl)
	if _, err := sc.Subscribe(ctx, &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("sqs"),
		Endpoint: aws.String("arn:aws:sqs:" + awstest.Region + ":123456789012:oncall-inbox"), Attributes: map[string]string{"RawMessageDelivery": "true"}}); err != nil {
		t.Fatal(err)
	}
	clock := time.Date(2026, 11, 25, 18, 35, 30, 0, time.UTC)
	store := featureflag.NewStore(r.ssm, func() time.Time { return clock })
	if _, err := store.Set(ctx, flag, param, initial, featureflag.Meta{By: "atiwari71"}, false); err != nil {
		t.Fatal(err)
	}
	r.h = &Handler{Store: store, Flag: flag, Parameter: param, Stack: stack, Environment: "production", SNS: sc,
		Logger: slog.New(slog.NewJSONHandler(r.logs, nil))}
	return r
}

func (r *rig) value() (int64, featureflag.Value) {
	r.t.Helper()
	st, err := r.h.Store.Get(context.Background(), flag, param)
	if err != nil || !st.Found {
		r.t.Fatalf("get flag: %v %+v", err, st)
	}
	return st.Version, st.Value
}

// published returns the messages on-call received since the last call.
func (r *rig) published() []string {
	r.t.Helper()
	var out []string
	for {
		resp, err := r.sqs.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(r.inbox), MaxNumberOfMessages: 10})
		if err != nil {
			r.t.Fatal(err)
		}
		if len(resp.Messages) == 0 {
			return out
		}
		for _, m := range resp.Messages {
			out = append(out, aws.ToString(m.Body))
			if _, err := r.sqs.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(r.inbox), ReceiptHandle: m.ReceiptHandle}); err != nil {
				r.t.Fatal(err)
			}
		}
	}
}

func TestHandlerOnMoto(t *testing.T) {
	r := newRig(t, featureflag.Change{Enable: true})
	type want struct {
		ignored   string
		partner   finding.Partner
		written   bool
		published string
	}
	steps := []struct {
		name  string
		event func() events.SNSEvent
		want  want
		// off are the partners switched off after the step.
		off []finding.Partner
	}{
		{"error rate of postman enters ALARM", func() events.SNSEvent { return loadEvent(t, "error_rate_alarm.json", r.topic) },
			want{partner: finding.PartnerPostman, written: true, published: "Partner postman is now switched off in feature flag " + flag},
			[]finding.Partner{finding.PartnerPostman}},
		{"the same notification again", func() events.SNSEvent { return loadEvent(t, "error_rate_alarm.json", r.topic) },
			want{partner: finding.PartnerPostman, published: "Partner postman was already switched off"},
			[]finding.Partner{finding.PartnerPostman}},
		{"postman back to OK", func() events.SNSEvent { return loadEvent(t, "error_rate_ok.json", r.topic) },
			want{ignored: "state OK, not ALARM"}, []finding.Partner{finding.PartnerPostman}},
		{"rate-limit alarm", func() events.SNSEvent { return loadEvent(t, "rate_limit_alarm.json", r.topic) },
			want{ignored: "not a partner error-rate or latency alarm of stack " + stack}, []finding.Partner{finding.PartnerPostman}},
		{"another stack's alarm", func() events.SNSEvent { return loadEvent(t, "other_stack_alarm.json", r.topic) },
			want{ignored: "not a partner error-rate or latency alarm"}, []finding.Partner{finding.PartnerPostman}},
		{"metric of another partner", func() events.SNSEvent {
			ev := loadEvent(t, "latency_alarm.json", r.topic)
			ev.Records[0].SNS.Message = strings.Replace(ev.Records[0].SNS.Message, `{"value":"gcp","name":"Partner"}`, `{"value":"aws","name":"Partner"}`, 1)
			return ev
		}, want{ignored: "the alarm's name says partner gcp but its metric is of partner aws", partner: finding.PartnerGCP}, []finding.Partner{finding.PartnerPostman}},
		{"its own report", func() events.SNSEvent {
			ev := loadEvent(t, "error_rate_alarm.json", r.topic)
			ev.Records[0].SNS.Message = "Automatic rollback in production (stack " + stack + ").\n\nAlarm x went from OK to ALARM"
			return ev
		}, want{ignored: "not a CloudWatch alarm notification"}, []finding.Partner{finding.PartnerPostman}},
		{"latency of gcp enters ALARM", func() events.SNSEvent { return loadEvent(t, "latency_alarm.json", r.topic) },
			want{partner: finding.PartnerGCP, written: true, published: "Partner gcp is now switched off"},
			[]finding.Partner{finding.PartnerGCP, finding.PartnerPostman}},
	}
	version, _ := r.value()
	for _, s := range steps {
		ev := s.event()
		a, err := r.h.handleRecord(context.Background(), ev.Records[0])
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if a.Ignored == "" != (s.want.ignored == "") || !strings.Contains(a.Ignored, s.want.ignored) || a.Partner != s.want.partner || a.Written != s.want.written {
			t.Errorf("%s: action %+v, want %+v", s.name, a, s.want)
		}
		msgs := r.published()
		switch {
		case s.want.published == "" && len(msgs) > 0:
			t.Errorf("%s: published %q", s.name, msgs)
		case s.want.published != "" && (len(msgs) != 1 || !strings.Contains(msgs[0], s.want.published) ||
			!strings.Contains(msgs[0], "feature set "+flag+" true --partner="+string(s.want.partner)+" --production") ||
			!strings.Contains(msgs[0], "nothing is ever switched on automatically")):
			t.Errorf("%s: published %q, want one containing %q", s.name, msgs, s.want.published)
		}
		v, got := r.value()
		if s.want.written {
			version++
		}
		if v != version {
			t.Errorf("%s: parameter version %d, want %d", s.name, v, version)
		}
		for _, p := range registry.Names() {
			wantOff := false
			for _, o := range s.off {
				wantOff = wantOff || o == p
			}
			if got.PartnerEnabled(p) == wantOff {
				t.Errorf("%s: partner %s enabled=%v", s.name, p, got.PartnerEnabled(p))
			}
		}
		if !got.Enabled {
			t.Errorf("%s: the global gate was changed: %+v", s.name, got)
		}
		if s.want.written {
			alarm := "SecretDetectionPartnerAPIHighErrorRate-" + stack + "-postman"
			reason := "SecretDetectionPartnerAPIHighErrorRate went from OK to ALARM at 2026-11-25T18:35:16.429+0000: Threshold Crossed: 5 out of the last 5 datapoints"
			if s.want.partner == finding.PartnerGCP {
				alarm = "SecretDetectionPartnerAPIHighLatency-" + stack + "-gcp"
				reason = "SecretDetectionPartnerAPIHighLatency went from INSUFFICIENT_DATA to ALARM at 2026-11-25T18:41:02.880+0000"
			}
			if got.UpdatedBy != "auto-rollback "+alarm || !strings.HasPrefix(got.Reason, reason) {
				t.Errorf("%s: updated_by %q reason %q", s.name, got.UpdatedBy, got.Reason)
			}
		}
	}
	if strings.Count(r.logs.String(), `"msg":"auto-rollback: notification ignored"`) != 5 {
		t.Errorf("logs:\n%s", r.logs)
	}
}

// TestHandlerNeverTurnsAnythingOn: with the flag on for one group only and
// aws switched off, a gcp alarm adds gcp's switch and changes nothing else.
func TestHandlerNeverTurnsAnythingOn(t *testing.T) {
	r := newRig(t, featureflag.Change{Enable: true, Groups: []string{"gitlab-org"}})
	if _, err := r.h.Store.Set(context.Background(), flag, param, featureflag.Change{Partners: []finding.Partner{finding.PartnerAWS}},
		featureflag.Meta{By: "oncall"}, false); err != nil {
		t.Fatal(err)
	}
	if err := r.h.Handle(context.Background(), loadEvent(t, "latency_alarm.json", r.topic)); err != nil {
		t.Fatal(err)
	}
	_, v := r.value()
	want := featureflag.Value{Groups: []string{"gitlab-org"}, Partners: map[finding.Partner]bool{finding.PartnerAWS: false, finding.PartnerGCP: false}}
	if !v.SameGates(want) || v.Enabled || !v.PartnerEnabled(finding.PartnerPostman) {
		t.Errorf("value %s, want %s", v.Describe(), want.Describe())
	}
}

// failingSSM fails every call, as SSM does when it is throttling.
type failingSSM struct{}

func (failingSSM) GetParameter(context.Context, *ssm.GetParameterInput, ...func(*ssm.Options)) (*ssm.GetParameterOutput, error) {
	return nil, errors.New("ThrottlingException: Rate exceeded")
}

func (failingSSM) PutParameter(context.Context, *ssm.PutParameterInput, ...func(*ssm.Options)) (*ssm.PutParameterOutput, error) {
	return nil, errors.New("ThrottlingException: Rate exceeded")
}

func (failingSSM) DeleteParameter(context.Context, *ssm.DeleteParameterInput, ...func(*ssm.Options)) (*ssm.DeleteParameterOutput, error) {
	return nil, errors.New("ThrottlingException: Rate exceeded")
}

// failingSNS fails every publish.
type failingSNS struct{}

func (failingSNS) Publish(context.Context, *sns.PublishInput, ...func(*sns.Options)) (*sns.PublishOutput, error) {
	return nil, errors.New("AuthorizationError: not allowed")
}

// TestHandlerFailuresAreRetried: when the switch cannot be written, or the
// report cannot be published, the invocation fails so Lambda retries it;
// ignored notifications in the same event do not fail it.
func TestHandlerFailuresAreRetried(t *testing.T) {
	logs := &bytes.Buffer{}
	h := &Handler{Store: featureflag.NewStore(failingSSM{}, nil), Flag: flag, Parameter: param, Stack: stack,
		SNS: failingSNS{}, Logger: slog.New(slog.NewJSONHandler(logs, nil))}
	ev := loadEvent(t, "error_rate_ok.json", "arn:aws:sns:us-east-1:123456789012:oncall")
	if err := h.Handle(context.Background(), ev); err != nil {
		t.Errorf("an OK notification failed: %v", err)
	}
	ev.Records = append(ev.Records, loadEvent(t, "error_rate_alarm.json", "arn:aws:sns:us-east-1:123456789012:oncall").Records...)
	err := h.Handle(context.Background(), ev)
	if err == nil || !strings.Contains(err.Error(), "auto-rollback of partner postman") || !strings.Contains(err.Error(), "ThrottlingException") {
		t.Errorf("SSM failure: %v", err)
	}

	r := newRig(t, featureflag.Change{Enable: true})
	r.h.SNS = failingSNS{}
	err = r.h.Handle(context.Background(), loadEvent(t, "error_rate_alarm.json", r.topic))
	if err == nil || !strings.Contains(err.Error(), "publish the report of partner postman") {
		t.Errorf("SNS failure: %v", err)
	}
	if _, v := r.value(); v.PartnerEnabled(finding.PartnerPostman) {
		t.Error("the partner was not switched off before the report failed")
	}
}

func TestPrintable(t *testing.T) {
	if got := printable("ééééé\n", 8); got != "éé..." {
		t.Errorf("printable = %q, want it cut to 8 bytes on a rune boundary", got)
	}
	if got := printable("a\nb\tc", 10); got != "a b c" {
		t.Errorf("printable = %q", got)
	}
}
