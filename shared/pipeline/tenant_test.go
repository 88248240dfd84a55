package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/registry"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/projectcap"
)

// capClock is the project cap's fake clock.
type capClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *capClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *capClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func projectScan(tk tokens, project int64, id string) map[string]any {
	return map[string]any{"version": 1, "scan_id": fmt.Sprintf("s-%d", project), "project": map[string]any{"id": project, "full_path": "g/p"},
		"findings": []map[string]any{{"id": id, "rule_id": "Postman API token", "token": tk.pmak}}}
}

// TestProjectCapDelaysNeverDrops: a project over its cap is handed back to
// SQS with its visibility pushed out to its slot, writes no result and
// costs no partner call; each held record passes when it comes back at its
// slot; another project's record goes straight through meanwhile.
func TestProjectCapDelaysNeverDrops(t *testing.T) {
	tk := newTokens()
	var logs bytes.Buffer
	v := &scriptedVerifier{}
	w, results, q := newWorker(t, v, gateAll(true), &logs)
	clk := &capClock{t: fixed}
	w.cfg.ProjectCap = projectcap.New(projectcap.Options{PerSecond: 1, Burst: 1, Clock: clk.now})

	var flood []events.SQSMessage
	for i := range 5 {
		flood = append(flood, record(t, fmt.Sprintf("big-%d", i), 1, projectScan(tk, 1, fmt.Sprintf("big-%d", i))))
	}
	resp, _ := w.Handle(context.Background(), events.SQSEvent{Records: flood})
	if len(resp.BatchItemFailures) != 4 {
		t.Fatalf("%d records handed back, want 4 (one passes on the burst)", len(resp.BatchItemFailures))
	}
	if n := len(results.results(t)); n != 1 || v.calls != 1 {
		t.Fatalf("%d results and %d partner calls after the flood, want 1 and 1: held records are neither", n, v.calls)
	}
	got := slices.Clone(q.d)
	slices.Sort(got)
	if want := []time.Duration{time.Second, 2 * time.Second, 3 * time.Second, 4 * time.Second}; !slices.Equal(got, want) {
		t.Errorf("visibility delays %v, want each held record's own slot %v", got, want)
	}

	resp, _ = w.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{record(t, "small", 1, projectScan(tk, 2, "small"))}})
	if len(resp.BatchItemFailures) != 0 {
		t.Fatal("the second project's record was held behind the first project's flood")
	}

	clk.advance(4 * time.Second)
	// All five come back; the one that passed is skipped as completed.
	var back []events.SQSMessage
	for _, rec := range flood {
		rec.Attributes = map[string]string{"ApproximateReceiveCount": "2"}
		back = append(back, rec)
	}
	resp, _ = w.Handle(context.Background(), events.SQSEvent{Records: back})
	if len(resp.BatchItemFailures) != 0 {
		t.Fatalf("%d held records were held again at their slots", len(resp.BatchItemFailures))
	}
	rs := results.results(t)
	seen := map[string]int{}
	for _, r := range rs {
		seen[r.FindingID]++
		if r.Reason != finding.ReasonPartnerConfirmed {
			t.Errorf("%s: %s, want the partner's answer: a hold is never a result", r.FindingID, r.Reason)
		}
	}
	for _, id := range []string{"big-0", "big-1", "big-2", "big-3", "big-4", "small"} {
		if seen[id] != 1 {
			t.Errorf("%s has %d results, want 1", id, seen[id])
		}
	}
	if strings.Contains(logs.String(), `"finding retry"`) {
		t.Error("a hold was logged as a partner fault's retry")
	}
	if c := strings.Count(logs.String(), `"msg":"project held back"`); c != 4 {
		t.Errorf("%d hold log lines, want 4", c)
	}
	assertNoSecrets(t, tk, logs.String(), results)
}

// TestProjectCapLetsTheLastAttemptThrough: a hold costs a receive; on its
// last attempt a record goes to the partner whatever its project's rate,
// so the cap can never leave it without a result or send it to the DLQ.
func TestProjectCapLetsTheLastAttemptThrough(t *testing.T) {
	tk := newTokens()
	var logs bytes.Buffer
	v := &scriptedVerifier{}
	w, results, _ := newWorker(t, v, gateAll(true), &logs)
	clk := &capClock{t: fixed}
	w.cfg.ProjectCap = projectcap.New(projectcap.Options{PerSecond: 0.001, Burst: 1, Clock: clk.now})
	w.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{record(t, "a", 1, projectScan(tk, 1, "a"))}})
	resp, _ := w.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{record(t, "b", 2, projectScan(tk, 1, "b"))}})
	if len(resp.BatchItemFailures) != 1 {
		t.Fatal("an attempt before the last was not held")
	}
	resp, _ = w.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{record(t, "c", w.cfg.MaxAttempts, projectScan(tk, 1, "c"))}})
	if len(resp.BatchItemFailures) != 0 || len(results.results(t)) != 2 {
		t.Fatalf("the last attempt was held (%d failures, %d results)", len(resp.BatchItemFailures), len(results.results(t)))
	}
}

// TestProjectCapSpendsNothingOnFindingsWithoutACall: a malformed finding is
// concluded without a call, so it is not paced.
func TestProjectCapSpendsNothingOnFindingsWithoutACall(t *testing.T) {
	var logs bytes.Buffer
	w, results, _ := newWorker(t, &scriptedVerifier{}, gateAll(true), &logs)
	clk := &capClock{t: fixed}
	w.cfg.ProjectCap = projectcap.New(projectcap.Options{PerSecond: 0.001, Burst: 1, Clock: clk.now})
	for i := range 3 {
		b := map[string]any{"version": 1, "scan_id": "s", "project": map[string]any{"id": 1, "full_path": "g/p"},
			"findings": []map[string]any{{"id": fmt.Sprint(i), "rule_id": "Postman API token", "token": "PMAK-nothex"}}}
		resp, _ := w.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{record(t, fmt.Sprint(i), 1, b)}})
		if len(resp.BatchItemFailures) != 0 {
			t.Fatalf("malformed finding %d was held", i)
		}
	}
	if n := len(results.results(t)); n != 3 {
		t.Errorf("%d results, want 3", n)
	}
}

// groupSink records the group of every send.
type groupSink struct {
	sink
	groups []string
}

func (g *groupSink) SendGroup(ctx context.Context, group string, bodies [][]byte) error {
	g.mu.Lock()
	g.groups = append(g.groups, group)
	g.mu.Unlock()
	return g.Send(ctx, bodies)
}

func TestDispatcherSetsTheProjectAsMessageGroup(t *testing.T) {
	for _, fair := range []bool{true, false} {
		t.Run(fmt.Sprint("fair=", fair), func(t *testing.T) {
			tk := newTokens()
			queues := map[finding.Partner]*groupSink{}
			sinks := map[finding.Partner]Sink{}
			for _, p := range registry.Names() {
				queues[p] = &groupSink{}
				sinks[p] = queues[p]
			}
			d, err := NewDispatcher(DispatcherConfig{Common: Common{Results: &sink{}, Gate: gateAll(true), Now: func() time.Time { return fixed }},
				PartnerQueues: sinks, FairQueues: fair})
			if err != nil {
				t.Fatal(err)
			}
			resp, _ := d.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{record(t, "m", 1, scan(tk))}})
			if len(resp.BatchItemFailures) != 0 {
				t.Fatal("dispatch failed")
			}
			sent := 0
			for p, q := range queues {
				sent += len(q.bodies)
				for _, g := range q.groups {
					if !fair || g != "278964" {
						t.Errorf("%s: group %q with fair queues %v, want the project id only when on", p, g, fair)
					}
				}
				if fair && len(q.bodies) > 0 && len(q.groups) == 0 {
					t.Errorf("%s: forwarded without a group", p)
				}
			}
			if sent == 0 {
				t.Fatal("nothing forwarded")
			}
		})
	}
}

// TestProjectRateCapsConfig: one variable for every partner; each mistake
// is named, and a partner's share is its cap over the event source's
// MaximumConcurrency.
func TestProjectRateCapsConfig(t *testing.T) {
	bad := []struct{ value, want string }{
		{"postman", `"postman" is not one`},
		{"=1", `"=1" is not one`},
		{"postmen=1", `"postmen" is not a partner`},
		{"postman=1,postman=2", "postman appears twice"},
		{"postman=0", `postman's rate "0" is not a positive number`},
		{"github=fast", `github's rate "fast" is not a positive number`},
		{"postman=1,,github=2", `"" is not one`},
	}
	for _, tc := range bad {
		e := &env{getenv: func(string) string { return tc.value }}
		e.projectRateCap(finding.PartnerPostman)
		if e.err == nil || !strings.HasPrefix(e.err.Error(), "config: PROJECT_RATE_CAPS=") || !strings.Contains(e.err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want one naming PROJECT_RATE_CAPS and %s", tc.value, e.err, tc.want)
		}
	}
	for value, want := range map[string]float64{"": 0, "github=0.5": 0, " github = 0.5 , postman = 3 ": 3} {
		e := &env{getenv: func(string) string { return value }}
		if got := e.projectRateCap(finding.PartnerPostman); got != want || e.err != nil {
			t.Errorf("%q: postman's cap %v, %v; want %v", value, got, e.err, want)
		}
	}
}

func TestPartnerWorkerFromEnvProjectCap(t *testing.T) {
	base := map[string]string{
		EnvPartner: "postman", EnvResultsQueue: "http://127.0.0.1:1/000000000000/results",
		"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x",
	}
	run := func(extra map[string]string) (*Worker, error) {
		for k, v := range base {
			t.Setenv(k, v)
		}
		for _, k := range []string{EnvProjectRateCaps, EnvMaxConcurrency} {
			t.Setenv(k, extra[k])
		}
		return PartnerWorkerFromEnv(context.Background())
	}
	if w, err := run(nil); err != nil || w.cfg.ProjectCap != nil {
		t.Fatalf("unset: cap %v, err %v; want off by default", w.cfg.ProjectCap, err)
	}
	if w, err := run(map[string]string{EnvProjectRateCaps: "github=1"}); err != nil || w.cfg.ProjectCap != nil {
		t.Fatalf("another partner's cap: cap %v, err %v; want none here", w.cfg.ProjectCap, err)
	}
	if _, err := run(map[string]string{EnvProjectRateCaps: "postman=2"}); err == nil || !strings.Contains(err.Error(), EnvMaxConcurrency) {
		t.Fatalf("cap without MaximumConcurrency: err = %v, want one naming %s", err, EnvMaxConcurrency)
	}
	if _, err := run(map[string]string{EnvProjectRateCaps: "postman=2", EnvMaxConcurrency: "0"}); err == nil || !strings.Contains(err.Error(), EnvMaxConcurrency) {
		t.Fatalf("MaximumConcurrency 0: err = %v", err)
	}
	w, err := run(map[string]string{EnvProjectRateCaps: "postman=2", EnvMaxConcurrency: "4"})
	if err != nil {
		t.Fatal(err)
	}
	// 2/s over 4 instances: 0.5/s here, so the second record waits 2 s.
	c := w.cfg.ProjectCap
	c.Admit(1, "a", 1)
	if d := c.Admit(1, "b", 1); d <= time.Second || d > 2*time.Second {
		t.Errorf("second record held %v, want up to 2s and above the 1s of 1/s (the per-instance share is 0.5/s)", d)
	}
}
