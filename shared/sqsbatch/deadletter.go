package sqsbatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
)

// Dead-lettering of bodies that cannot be parsed (contract §2, §6).
const (
	// ReasonAttribute is the message attribute saying why a body was
	// dead-lettered.
	ReasonAttribute = "dead_letter_reason"
	// OriginalMessageIDAttribute is the message attribute holding the id of
	// the message as the source queue knew it.
	OriginalMessageIDAttribute = "original_message_id"
	// SourceQueueAttribute is the message attribute holding the source
	// queue's ARN, for a redrive back to it.
	SourceQueueAttribute = "source_queue_arn"
	// RejectedFindingsAttribute is the message attribute listing, by index
	// in the findings array, the findings of a batch that could get no
	// result ("2,5,7-9"); the other findings of that message were verified.
	RejectedFindingsAttribute = "rejected_findings"
	// maxReasonBytes keeps the reason attribute short.
	maxReasonBytes = 512
	// maxExtraAttributeBytes bounds an attribute given by WithAttributes.
	maxExtraAttributeBytes = 1024
)

// attributedError is a dead-letter reason with extra message attributes.
type attributedError struct {
	error
	attrs map[string]string
}

func (e *attributedError) Unwrap() error { return e.error }

// WithAttributes attaches message attributes to a dead-letter reason, such as
// RejectedFindingsAttribute; DeadLetter sets them next to its own. Values
// must be as secret-free as the reason; longer ones are cut to 1 KiB.
func WithAttributes(reason error, attrs map[string]string) error {
	return &attributedError{reason, attrs}
}

// ErrNoDeadLetterQueue means DEAD_LETTER_QUEUE_URL is unset, so an
// unparseable record is left to the source queue's redrive policy.
var ErrNoDeadLetterQueue = errors.New("no dead-letter queue configured")

// DeadLetterer moves records whose body cannot be parsed to the dead-letter
// queue at once. A nil or disabled DeadLetterer fails every record, which
// then reaches the DLQ through the redrive policy.
type DeadLetterer struct {
	sender *Sender
	logger *slog.Logger
}

// NewDeadLetterer returns a DeadLetterer sending to queueURL; an empty
// queueURL disables it. A nil logger means slog.Default().
func NewDeadLetterer(client SQSAPI, queueURL string, logger *slog.Logger) *DeadLetterer {
	if logger == nil {
		logger = slog.Default()
	}
	d := &DeadLetterer{logger: logger}
	if queueURL != "" {
		d.sender = NewSender(client, queueURL)
	}
	return d
}

// enabled reports whether records can be moved to a dead-letter queue.
func (d *DeadLetterer) enabled() bool { return d != nil && d.sender != nil }

// DeadLetter sends the record's original body to the dead-letter queue with
// the reason and the original message id as attributes. It returns nil when
// the body was moved (the record counts as processed), and an error when it
// was not (return it from process, so the record is a batch item failure).
// reason must be secret-free and must not quote the body, as
// finding.BodyError is; the log line names only the message id and reason.
func (d *DeadLetterer) DeadLetter(ctx context.Context, rec events.SQSMessage, reason error) error {
	why := "unparseable body"
	if reason != nil {
		why = cleanReason(reason.Error())
	}
	logger := slog.Default()
	if d != nil {
		logger = d.logger
	}
	if !d.enabled() {
		logger.WarnContext(ctx, "sqsbatch: unparseable record left to the redrive policy",
			"message_id", rec.MessageId, "reason", why, "cause", ErrNoDeadLetterQueue.Error())
		return fmt.Errorf("dead-letter message %s (%s): %w", rec.MessageId, why, ErrNoDeadLetterQueue)
	}
	attrs := map[string]string{}
	var extra *attributedError
	if errors.As(reason, &extra) {
		for k, v := range extra.attrs {
			if v = cleanAttribute(v, maxExtraAttributeBytes); v != "" {
				attrs[k] = v
			}
		}
	}
	attrs[ReasonAttribute] = why
	if rec.MessageId != "" {
		attrs[OriginalMessageIDAttribute] = rec.MessageId
	}
	if rec.EventSourceARN != "" {
		attrs[SourceQueueAttribute] = rec.EventSourceARN
	}
	if err := d.sender.sendMessages(ctx, []message{{Body: []byte(rec.Body), Attributes: attrs}}); err != nil {
		logger.WarnContext(ctx, "sqsbatch: could not move an unparseable record to the dead-letter queue; left to the redrive policy",
			"message_id", rec.MessageId, "reason", why, "error", err.Error())
		return fmt.Errorf("dead-letter message %s (%s): %w", rec.MessageId, why, err)
	}
	args := []any{"message_id", rec.MessageId, "reason", why, "dead_letter_queue", queueName(d.sender.queueURL)}
	if v, ok := attrs[RejectedFindingsAttribute]; ok {
		args = append(args, RejectedFindingsAttribute, v)
	}
	logger.WarnContext(ctx, "sqsbatch: moved an unparseable record to the dead-letter queue", args...)
	return nil
}

// cleanReason keeps a reason short and made of characters SQS accepts.
func cleanReason(s string) string {
	if c := cleanAttribute(s, maxReasonBytes); strings.TrimSpace(c) != "" {
		return c
	}
	return "unparseable body"
}

// cleanAttribute cuts s to limit bytes and replaces characters SQS refuses
// in an attribute value with spaces.
func cleanAttribute(s string, limit int) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len()+utf8.RuneLen(r) > limit {
			break
		}
		if r == utf8.RuneError || r < 0x20 || (r >= 0xD800 && r <= 0xDFFF) || r == 0xFFFE || r == 0xFFFF {
			r = ' '
		}
		b.WriteRune(r)
	}
	return b.String()
}
