package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/localrun"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
)

// Noisy tenant: one project floods one partner's queue and another sends a
// few findings right after; what is measured is the small project's wait,
// from its scan's send to the ingress queue to each result's arrival.
const (
	// noisyFindings and quietFindings are the two projects' findings. The
	// flood is 300, not 5,000: moto answers ReceiveMessage by scanning the
	// whole queue, and with 5,000 messages on a shared 2-core machine it
	// fell so far behind that the dispatcher's records outlived their
	// visibility and were forwarded twice (docs/failure-behaviour.md).
	noisyFindings = 300
	quietFindings = 50
	// noisyPerScan findings go in one ingress message (well under 256 KiB).
	noisyPerScan = 100
	// noisyRate is the AWS function's partner rate in the scenario, so
	// that the partner, not the local machine, is what the flood queues
	// for, as it is in production: one local invocation of 10 records
	// costs about a second on a loaded machine, so the queue moves at about
	// 10 records/s and a partner rate near that would hide the cap's effect.
	noisyRate = 2
	// noisyCap is the noisy project's cap when it is on: half the rate.
	noisyCap = 1
	// noisySettle bounds the wait for the capped flood (300 at 1/s is
	// five minutes) on a loaded machine.
	noisySettle = 15 * time.Minute
	// noisyDispatcherTimeout keeps a dispatcher record of 100 findings
	// (ten SendMessageBatch calls to a slow moto) inside its visibility.
	noisyDispatcherTimeout           = 60
	noisyProject, quietProject int64 = 4242, 1717
)

// noisyTenant builds one row of the noisy-tenant figure: capped sets
// PROJECT_RATE_CAPS for the AWS function, groups the dispatcher's
// MessageGroupId (FAIR_QUEUES). Moto accepts a MessageGroupId on a standard
// queue but does not emulate fair queues, so groups changes nothing here.
func noisyTenant(name string, capped, groups bool) Scenario {
	awsEnv := map[string]string{
		"PARTNER_RATE_PER_SECOND": fmt.Sprint(noisyRate),
		"PARTNER_RATE_BURST":      fmt.Sprint(noisyRate),
		// Every finding carries the same live key: without the verdict
		// cache only findings verified at the same moment share a call
		// (in-flight sharing stays on), so the flood still queues for the
		// partner.
		"VERDICT_CACHE_SIZE": "0",
		// One emulator is one instance: the whole cap is this instance's.
		"PARTNER_MAX_CONCURRENCY": "1",
	}
	fault := fmt.Sprintf("project %d sends %d AWS findings, then project %d sends %d; AWS rate %d/s", noisyProject, noisyFindings, quietProject, quietFindings, noisyRate)
	if capped {
		awsEnv["PROJECT_RATE_CAPS"] = fmt.Sprintf("aws=%d", noisyCap)
		fault += fmt.Sprintf(", per-project cap aws=%d", noisyCap)
	}
	fault += fmt.Sprintf(", MessageGroupId %v", map[bool]string{true: "on", false: "off"}[groups])
	return Scenario{Name: name, Fault: fault,
		Setup: Setup{Timeouts: map[string]int{"DispatcherFunction": noisyDispatcherTimeout}, FunctionEnv: map[string]map[string]string{
			"AwsFunction":        awsEnv,
			"DispatcherFunction": {"FAIR_QUEUES": fmt.Sprint(groups)},
		}},
		Run: func(e *Env) error {
			creds, err := e.Creds()
			if err != nil {
				return err
			}
			var live Cred
			for _, c := range Only(creds, finding.PartnerAWS) {
				if c.Active {
					live = c
				}
			}
			if live.Token == "" {
				return fmt.Errorf("no live AWS credential")
			}
			load := loadAverage()
			for i := range noisyFindings / noisyPerScan {
				if _, err := e.sendProject(live, noisyProject, fmt.Sprintf("chaos-%s-noisy-%d", e.Name, i), noisyPerScan); err != nil {
					return err
				}
			}
			quietScan := "chaos-" + e.Name + "-quiet"
			sent, err := e.sendProject(live, quietProject, quietScan, quietFindings)
			if err != nil {
				return err
			}
			waits, err := e.awaitScan(quietScan, quietFindings, sent, noisySettle)
			if err != nil {
				return err
			}
			flood := time.Now()
			err = e.Settle(noisySettle)
			e.obs.Notes = append(e.obs.Notes,
				fmt.Sprintf("project %d (%d findings): p50 wait %s, p95 wait %s, max %s (scanner send to result)",
					quietProject, quietFindings, percentile(waits, 50), percentile(waits, 95), percentile(waits, 100)),
				fmt.Sprintf("project %d's flood done %s after the small project's last result; %d findings with repeated results", noisyProject, time.Since(flood).Round(time.Second), e.repeated()),
				fmt.Sprintf("load average at start %s, at end %s (2 cores, shared)", load, loadAverage()))
			held := len(e.logLines("project held back"))
			switch {
			case capped && held == 0:
				e.Problem("the cap never held a record back: the scenario proved nothing")
			case !capped && held > 0:
				e.Problem("%d records held back with no cap configured", held)
			}
			return err
		}}
}

// sendProject sends n findings of the credential as one scan of project,
// expecting the partner's answer once for each, and returns when it was sent.
func (e *Env) sendProject(c Cred, project int64, scanID string, n int) (time.Time, error) {
	b := finding.Batch{Version: 1, ScanID: scanID, Project: finding.Project{ID: project, FullPath: fmt.Sprintf("chaos/project-%d", project)}}
	for i := range n {
		f := finding.Finding{ID: fmt.Sprintf("%s-%d", c.Name, i), RuleID: c.RuleID, Token: finding.Secret(c.Token),
			Context: map[string]finding.Secret{}}
		for k, v := range c.Context {
			f.Context[k] = finding.Secret(v)
		}
		b.Findings = append(b.Findings, f)
		// A dispatcher record that outlives its visibility on a loaded
		// machine is forwarded again: agreeing repeats are allowed.
		e.Expect(Key{scanID, f.ID}, AtLeastOnce(Truth)(c))
	}
	body, err := finding.Encode(b)
	if err != nil {
		return time.Time{}, err
	}
	at := time.Now()
	return at, e.Send("IngressQueue", body)
}

// awaitScan reads the results queue until every one of n results of scanID
// arrived, keeping every result it reads as Collect would, and returns each
// of those n results' wait since sent.
func (e *Env) awaitScan(scanID string, n int, sent time.Time, timeout time.Duration) ([]time.Duration, error) {
	q, err := e.Stack.Queue("ResultsQueue")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(e.Ctx, timeout)
	defer cancel()
	var waits []time.Duration
	seen := map[string]bool{}
	for len(waits) < n {
		out, err := e.Stack.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(q.URL), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			return waits, fmt.Errorf("%d of %d results of %s after %s: %w", len(waits), n, scanID, time.Since(sent).Round(time.Second), err)
		}
		now := time.Now()
		if len(out.Messages) == 0 {
			continue
		}
		entries := make([]types.DeleteMessageBatchRequestEntry, len(out.Messages))
		for i, m := range out.Messages {
			entries[i] = types.DeleteMessageBatchRequestEntry{Id: aws.String(fmt.Sprint(i)), ReceiptHandle: m.ReceiptHandle}
			body := aws.ToString(m.Body)
			if r, ok := e.keep(body); ok && r.ScanID == scanID && !seen[r.FindingID] {
				seen[r.FindingID] = true
				waits = append(waits, now.Sub(sent))
			}
		}
		if _, err := e.Stack.SQS.DeleteMessageBatch(context.WithoutCancel(ctx), &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(q.URL), Entries: entries}); err != nil {
			return waits, fmt.Errorf("delete read results: %w", err)
		}
	}
	return waits, nil
}

// keep records one result body as Collect does.
func (e *Env) keep(body string) (finding.Result, bool) {
	e.obs.Bodies = append(e.obs.Bodies, body)
	var r finding.Result
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		e.Problem("a result is not JSON: %v", err)
		return r, false
	}
	k := Key{r.ScanID, r.FindingID}
	if _, ok := e.obs.Expect[k]; ok {
		e.obs.Results[k] = append(e.obs.Results[k], r)
	} else {
		e.obs.Unexpected = append(e.obs.Unexpected, r)
	}
	return r, true
}

// percentile is localrun.Percentile of ds, rounded for reading; 0 for none.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	vs := make([]float64, len(ds))
	for i, d := range ds {
		vs[i] = float64(d)
	}
	return time.Duration(localrun.Percentile(vs, p)).Round(100 * time.Millisecond)
}

// loadAverage is the machine's 1-, 5- and 15-minute load, or "unknown".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// repeated counts the findings with more than one result so far.
func (e *Env) repeated() int {
	n := 0
	for _, rs := range e.obs.Results {
		if len(rs) > 1 {
			n++
		}
	}
	return n
}
