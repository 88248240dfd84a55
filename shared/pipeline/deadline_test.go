package pipeline

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

// ctxSink fails a send whose context has ended, as the SQS client does.
type ctxSink struct{ sink }

func (s *ctxSink) Send(ctx context.Context, bodies [][]byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	return s.sink.Send(ctx, bodies)
}

// ctxDelays records delays made while the record's context was alive.
type ctxDelays struct {
	mu   sync.Mutex
	live int
}

func (q *ctxDelays) Delay(ctx context.Context, _ events.SQSMessage, _ time.Duration) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delay: %w", err)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.live++
	return nil
}

// stalledVerifier is a partner slower than the invocation: it answers only
// when the call's context ends, with the fault a cut call gives.
type stalledVerifier struct{}

func (stalledVerifier) Verify(ctx context.Context, _ finding.TokenType, _ finding.Finding) (verify.Verdict, error) {
	<-ctx.Done()
	return verify.Verdict{}, &verify.Fault{Kind: verify.PartnerError, Partner: finding.PartnerPostman, Op: "GET /me", Network: true, Msg: "timeout"}
}

// TestPartnerSlowerThanDeadlineStillConcludes is the chaos suite's
// slower-than-deadline scenario in miniature: a partner that outlasts the
// invocation must leave the record time to postpone its retry, and the last
// attempt time to write its terminal result, instead of failing the record
// until SQS dead-letters it without one.
func TestPartnerSlowerThanDeadlineStillConcludes(t *testing.T) {
	tk := newTokens()
	body := map[string]any{"version": 1, "scan_id": "s", "project": map[string]any{"id": 1, "full_path": "g/p"},
		"findings": []map[string]any{{"id": "f", "rule_id": "Postman API token", "token": tk.pmak}}}
	tests := []struct {
		name        string
		receive     int
		wantResult  bool
		wantDelayed bool
	}{
		{"an early attempt postpones its retry", 1, false, true},
		{"the last attempt writes partner_error", 3, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			results, delays := &ctxSink{}, &ctxDelays{}
			w, err := NewWorker(WorkerConfig{
				Common:  Common{Results: results, Gate: gateAll(true), Now: func() time.Time { return fixed }},
				Partner: finding.PartnerPostman, Verifier: stalledVerifier{}, Requeue: delays, MaxAttempts: 3,
			})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			resp, err := w.Handle(ctx, events.SQSEvent{Records: []events.SQSMessage{record(t, "r", tt.receive, body)}})
			if err != nil {
				t.Fatal(err)
			}
			rs := results.results(t)
			if tt.wantResult {
				if len(rs) != 1 || rs[0].Reason != finding.ReasonPartnerError || len(resp.BatchItemFailures) != 0 {
					t.Fatalf("results %+v, failures %v; want one partner_error and the record done", rs, resp.BatchItemFailures)
				}
				return
			}
			if len(rs) != 0 || len(resp.BatchItemFailures) != 1 {
				t.Fatalf("results %+v, failures %v; want none and the record retried", rs, resp.BatchItemFailures)
			}
			if tt.wantDelayed && delays.live != 1 {
				t.Fatalf("%d retries postponed in time, want 1", delays.live)
			}
		})
	}
}
