package pipeline

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/projectcap"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/sqsbatch"
)

// GroupSink is a Sink that can put messages in a message group
// (sqsbatch.Sender.SendGroup, sqsbatch.Coalescer.SendGroup).
type GroupSink interface {
	Sink
	SendGroup(ctx context.Context, group string, bodies [][]byte) error
}

var (
	_ GroupSink = (*sqsbatch.Sender)(nil)
	_ GroupSink = (*sqsbatch.Coalescer)(nil)
)

// forward sends one record's findings to partner p's queue. With fair
// queues on, every message carries its project id as MessageGroupId: SQS
// fair queues take the group as the tenant and deliver a quiet project's
// messages ahead of a flooding project's backlog ("Amazon SQS fair queues",
// https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-fair-queues.html).
func (d *Dispatcher) forward(ctx context.Context, p finding.Partner, project finding.Project, bodies [][]byte) error {
	q := d.cfg.PartnerQueues[p]
	if gs, ok := q.(GroupSink); ok && d.cfg.FairQueues {
		return gs.SendGroup(ctx, strconv.FormatInt(project.ID, 10), bodies)
	}
	return q.Send(ctx, bodies)
}

// ProjectCap paces one project's findings through this partner's function
// (projectcap.Limiter).
type ProjectCap interface {
	Admit(project int64, messageID string, n int) time.Duration
}

// newProjectCap builds the limiter the options describe, nil for none.
func newProjectCap(o *projectcap.Options) ProjectCap {
	if o == nil {
		return nil
	}
	return projectcap.New(*o)
}

// heldError is a record handed back to SQS because its project is over its
// cap for this partner: not a fault, and no result is written for it.
type heldError struct{ wait time.Duration }

func (e *heldError) Error() string {
	return fmt.Sprintf("held back by the per-project cap for %ds", int(e.wait.Seconds()))
}

// holdForProject hands the record back to SQS until its project's slot
// when the project is over its cap. The last attempt is never held: a
// hold costs a receive like any hand-back, and the record must still get
// its partner's answer before the queue's maxReceiveCount.
func (w *Worker) holdForProject(ctx context.Context, rec events.SQSMessage, b finding.Batch, checks []checked, attempt int) error {
	if w.cfg.ProjectCap == nil || attempt >= w.cfg.MaxAttempts {
		return nil
	}
	n := 0
	for _, c := range checks {
		// Only findings bound for this partner's API spend the project's
		// rate; those concluded before any call (malformed, unsupported) do not.
		if !c.done && c.rt.Partner == w.cfg.Partner {
			n++
		}
	}
	wait := w.cfg.ProjectCap.Admit(b.Project.ID, rec.MessageId, n)
	if wait <= 0 {
		return nil
	}
	if w.cfg.Requeue != nil {
		if err := w.cfg.Requeue.Delay(ctx, rec, wait); err != nil {
			// The record still comes back, after the queue's visibility timeout.
			w.cfg.Logger.WarnContext(ctx, "could not delay held record", "message_id", rec.MessageId, "error", err.Error())
		}
	}
	w.cfg.Logger.InfoContext(ctx, "project held back", "scan_id", b.ScanID, "project_id", b.Project.ID,
		"message_id", rec.MessageId, "partner", string(w.cfg.Partner), "findings", n, "attempt", attempt,
		"retry_in_s", int(wait.Seconds()))
	return &heldError{wait}
}
