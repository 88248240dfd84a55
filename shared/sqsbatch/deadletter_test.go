package sqsbatch

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go"
)

func TestDeadLetter(t *testing.T) {
	secret := randomToken()
	body := `{"findings":[{"token":"` + secret + `"` // unparseable, carries a token
	reason := errors.New("finding batch: not a JSON object of the finding-batch schema: invalid JSON at byte 40")
	rec := events.SQSMessage{MessageId: "msg-1", Body: body, EventSourceARN: "arn:aws:sqs:us-east-1:111122223333:IngressQueue"}
	denied := func(int, *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error) {
		return nil, &smithy.GenericAPIError{Code: "AccessDenied", Fault: smithy.FaultClient}
	}
	tests := []struct {
		name     string
		queueURL string
		hook     func(int, *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error)
		reason   error
		wantMove bool
		wantIs   error
		wantWhy  string
	}{
		{name: "moved", queueURL: "https://q/IngressDLQ", reason: reason, wantMove: true, wantWhy: reason.Error()},
		{name: "nil reason", queueURL: "https://q/IngressDLQ", wantMove: true, wantWhy: "unparseable body"},
		{name: "unset queue", wantIs: ErrNoDeadLetterQueue, reason: reason},
		{name: "send fails", queueURL: "https://q/IngressDLQ", hook: denied, reason: reason},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeSQS{batchHook: tc.hook}
			log, buf := testLogger()
			d := NewDeadLetterer(f, tc.queueURL, log)
			err := d.DeadLetter(context.Background(), rec, tc.reason)
			if tc.wantMove != (err == nil) {
				t.Fatalf("DeadLetter = %v, want moved %v", err, tc.wantMove)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("error %v is not %v", err, tc.wantIs)
			}
			if err != nil && (!strings.Contains(err.Error(), "msg-1") || strings.Contains(err.Error(), secret)) {
				t.Errorf("error %q: want the message id, never the body", err)
			}
			if out := buf.String(); strings.Contains(out, secret) || !strings.Contains(out, `"message_id":"msg-1"`) || !strings.Contains(out, `"reason"`) {
				t.Errorf("log line must name id and reason, never the body: %s", out)
			}
			if !tc.wantMove {
				return
			}
			calls := f.calls()
			if len(calls) != 1 || len(calls[0]) != 1 {
				t.Fatalf("calls %v, want one entry", len(calls))
			}
			e := calls[0][0]
			if aws.ToString(e.MessageBody) != body {
				t.Error("the original body was not sent unchanged")
			}
			attr := func(name string) string { return aws.ToString(e.MessageAttributes[name].StringValue) }
			if attr(ReasonAttribute) != tc.wantWhy || attr(OriginalMessageIDAttribute) != "msg-1" || attr(SourceQueueAttribute) != rec.EventSourceARN {
				t.Errorf("attributes %q %q %q", attr(ReasonAttribute), attr(OriginalMessageIDAttribute), attr(SourceQueueAttribute))
			}
		})
	}
}

// TestDeadLetterWithAttributes: a partly rejected batch goes to the DLQ with
// its body unchanged, the reason, and the indexes of the rejected findings;
// an extra attribute cannot replace the reason, and a long one is cut.
func TestDeadLetterWithAttributes(t *testing.T) {
	body := `{"version":1,"findings":[{"id":"a"},{"id":"a"}]}`
	rec := events.SQSMessage{MessageId: "msg-2", Body: body}
	f := &fakeSQS{}
	log, buf := testLogger()
	d := NewDeadLetterer(f, "https://q/IngressDLQ", log)
	base := errors.New("finding batch: 1 of 2 findings rejected (no usable id), the other 1 accepted: findings[1].id: duplicate of findings[0].id")
	reason := WithAttributes(base, map[string]string{
		RejectedFindingsAttribute: "1",
		ReasonAttribute:           "overridden",
		"long":                    strings.Repeat("9", 3000),
	})
	if !errors.Is(reason, base) {
		t.Fatal("WithAttributes hides the reason from errors.Is")
	}
	if err := d.DeadLetter(context.Background(), rec, reason); err != nil {
		t.Fatal(err)
	}
	calls := f.calls()
	if len(calls) != 1 || len(calls[0]) != 1 {
		t.Fatalf("calls %v, want one entry", len(calls))
	}
	e := calls[0][0]
	attr := func(name string) string { return aws.ToString(e.MessageAttributes[name].StringValue) }
	if aws.ToString(e.MessageBody) != body {
		t.Error("the original body was not sent unchanged")
	}
	if attr(RejectedFindingsAttribute) != "1" || attr(ReasonAttribute) != base.Error() || attr(OriginalMessageIDAttribute) != "msg-2" {
		t.Errorf("attributes %q %q %q", attr(RejectedFindingsAttribute), attr(ReasonAttribute), attr(OriginalMessageIDAttribute))
	}
	if n := len(attr("long")); n != maxExtraAttributeBytes {
		t.Errorf("long attribute is %d bytes, want cut to %d", n, maxExtraAttributeBytes)
	}
	if !strings.Contains(buf.String(), `"rejected_findings":"1"`) {
		t.Errorf("the log line does not name the rejected findings: %s", buf.String())
	}
}

func TestDeadLettererWithoutQueueAndNil(t *testing.T) {
	if NewDeadLetterer(&fakeSQS{}, "", nil).enabled() {
		t.Error("enabled without a dead-letter queue")
	}
	d := NewDeadLetterer(&fakeSQS{}, "https://q/dlq", nil)
	if !d.enabled() || d.sender.queueURL != "https://q/dlq" {
		t.Error("the dead-letter queue is not used")
	}
	log, _ := testLogger()
	prev := slog.Default()
	slog.SetDefault(log)
	defer slog.SetDefault(prev)
	var none *DeadLetterer
	if none.enabled() {
		t.Error("nil DeadLetterer claims to be enabled")
	}
	if err := none.DeadLetter(context.Background(), events.SQSMessage{MessageId: "x"}, nil); !errors.Is(err, ErrNoDeadLetterQueue) {
		t.Errorf("nil DeadLetterer: %v", err)
	}
}

func TestCleanReason(t *testing.T) {
	tests := []struct{ in, want string }{
		{"finding batch: version: missing", "finding batch: version: missing"},
		{"line\nbreak\x00", "line break "},
		{"   ", "unparseable body"},
		{strings.Repeat("é", 400), strings.Repeat("é", maxReasonBytes/2)},
	}
	for _, tc := range tests {
		if got := cleanReason(tc.in); got != tc.want {
			t.Errorf("cleanReason(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestDeadLetterInsideRun(t *testing.T) {
	f := &fakeSQS{}
	log, _ := testLogger()
	moved := NewDeadLetterer(f, "https://q/dlq", log)
	unset := NewDeadLetterer(f, "", log)
	opts := freshOptions()
	resp := Run(context.Background(), eventOf("moved", "unset", "fine"), opts, func(ctx context.Context, rec events.SQSMessage) error {
		switch rec.MessageId {
		case "moved":
			return moved.DeadLetter(ctx, rec, errors.New("finding batch: version: missing"))
		case "unset":
			return unset.DeadLetter(ctx, rec, errors.New("finding batch: version: missing"))
		}
		return nil
	})
	if got := failureIDs(resp); len(got) != 1 || got[0] != "unset" {
		t.Errorf("failures = %v, want only the record without a DLQ", got)
	}
}
