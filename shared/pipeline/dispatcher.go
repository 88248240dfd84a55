package pipeline

import (
	"context"
	"errors"
	"maps"
	"slices"

	"github.com/aws/aws-lambda-go/events"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/metrics"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/registry"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/sqsbatch"
)

// DispatcherConfig configures the dispatcher function.
type DispatcherConfig struct {
	Common
	// PartnerQueues are the partner queues by partner.
	PartnerQueues map[finding.Partner]Sink
	// FairQueues sets each forwarded message's MessageGroupId to its
	// project id, when its queue's Sink is a GroupSink.
	FairQueues bool
}

// Dispatcher is the handler of the dispatcher function.
type Dispatcher struct {
	cfg DispatcherConfig
	// completed is this handler's record of completed message ids.
	completed *sqsbatch.Completed
	// idle flushes the partner queues' and the results' shared sends.
	idle func()
}

// NewDispatcher returns the dispatcher handler.
func NewDispatcher(cfg DispatcherConfig) (*Dispatcher, error) {
	cfg.defaults()
	if cfg.Results == nil || cfg.Gate == nil {
		return nil, errors.New("pipeline: dispatcher: results and gate are required")
	}
	for _, p := range registry.Names() {
		if cfg.PartnerQueues[p] == nil {
			return nil, errors.New("pipeline: dispatcher: no queue for partner " + string(p))
		}
	}
	sinks := append(slices.Collect(maps.Values(cfg.PartnerQueues)), cfg.Results)
	return &Dispatcher{cfg: cfg, completed: sqsbatch.NewCompleted(sqsbatch.DefaultCompletedSize), idle: flushAll(sinks)}, nil
}

// Handle is the Lambda handler: one invocation of a batch of ingress records.
func (d *Dispatcher) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	rec := metrics.New()
	ctx = metrics.NewContext(ctx, rec)
	defer d.cfg.flush(ctx, rec)
	return sqsbatch.Run(ctx, ev, d.cfg.runOptions(d.completed, d.idle), d.processRecord), nil
}

// processRecord validates one ingress message and, per finding, either
// forwards it to its partner queue (one finding per message) or concludes
// it at once. Findings without a usable id (or with a repeated one) cannot
// get a result: once the others are done, the message goes to the
// dead-letter queue naming them. The record succeeds only when every
// forward, every result and that dead letter were sent; otherwise SQS
// redelivers it whole (at-least-once: the partner side's verdict cache
// makes a repeated forward cheap).
func (d *Dispatcher) processRecord(ctx context.Context, rec events.SQSMessage) error {
	b, err := finding.Parse([]byte(rec.Body))
	if err != nil {
		return d.cfg.deadLetter(ctx, rec, err)
	}
	attempt := sqsbatch.ReceiveCount(rec)
	var outs []outcome
	forwards := map[finding.Partner][][]byte{}
	forwarded := 0
	for _, f := range b.Findings {
		rt, r, done := precheck(b, f, d.cfg.Now())
		if done {
			outs = append(outs, outcome{result: r})
			continue
		}
		r, off, err := d.cfg.gated(ctx, b, f, rt)
		if err != nil {
			return err
		}
		if off {
			outs = append(outs, outcome{result: r})
			continue
		}
		one := finding.Batch{Version: 1, ScanID: b.ScanID, Project: b.Project, Findings: []finding.Finding{f}}
		body, err := finding.Encode(one)
		if err != nil {
			return &recordError{"encode forward", err}
		}
		forwards[rt.Partner] = append(forwards[rt.Partner], body)
		forwarded++
	}
	for _, p := range registry.Names() {
		if len(forwards[p]) == 0 {
			continue
		}
		if err := d.forward(ctx, p, b.Project, forwards[p]); err != nil {
			return &recordError{"forward to " + string(p) + " queue", err}
		}
	}
	if err := d.cfg.emit(ctx, attempt, outs); err != nil {
		return err
	}
	if err := d.cfg.deadLetterRejected(ctx, rec, b); err != nil {
		return err
	}
	d.cfg.Logger.InfoContext(ctx, "scan dispatched", "scan_id", b.ScanID, "project_id", b.Project.ID,
		"message_id", rec.MessageId, "findings", len(b.Findings), "forwarded", forwarded, "concluded", len(outs),
		"rejected", len(b.Rejected))
	return nil
}
