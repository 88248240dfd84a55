package chaos

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/samtemplate"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/registry"
)

// crashTimeout is the partner functions' timeout in the crash scenarios:
// a killed invocation's records come back after its queue's visibility
// timeout (VisibilityFactor × this), which bounds each scenario's length.
const crashTimeout = 4

// functionOf is the logical id of a partner's function.
func functionOf(p finding.Partner) string {
	return samtemplate.PartnerStem(string(p)) + "Function"
}

// crashSetup shortens every partner function's timeout (and with it its
// queue's visibility timeout) so that a redelivery takes seconds.
func crashSetup() Setup {
	timeouts := map[string]int{}
	for _, id := range partnerFunctions {
		timeouts[id] = crashTimeout
	}
	return Setup{Timeouts: timeouts}
}

// onceEach lets a kill happen once per function.
type onceEach struct {
	mu   sync.Mutex
	done map[string]bool
}

func (o *onceEach) first(function string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.done == nil {
		o.done = map[string]bool{}
	}
	if o.done[function] {
		return false
	}
	o.done[function] = true
	return true
}

// crash runs one scan with every partner's findings after arm has set up
// the kill, and requires that every partner function was killed once and
// that its runtime came back (a second bootstrap process ran the redelivery).
func crash(name, fault string, short bool, outcome Outcome, arm func(e *Env, once *onceEach)) Scenario {
	return Scenario{Name: name, Fault: fault, Short: short, Setup: crashSetup(), Run: func(e *Env) error {
		creds, err := e.Creds()
		if err != nil {
			return err
		}
		arm(e, &onceEach{})
		if _, err := e.SendScan(creds, outcome); err != nil {
			return err
		}
		err = e.Settle(settle)
		for _, p := range registry.Names() {
			if e.Killed(functionOf(p)) == 0 {
				e.Problem("%s was never killed: the scenario proved nothing for %s", functionOf(p), p)
			}
		}
		return err
	}, Check: func(o *Observation) []string {
		var v []string
		for _, m := range o.Memory {
			if o.Killed[m.Function] > 0 && m.Processes < 2 {
				v = append(v, fmt.Sprintf("%s: killed, yet no second bootstrap process was seen", m.Function))
			}
		}
		return v
	}}
}

// killDuringPartnerCall: each partner's double, on receiving the first
// request of the scenario, kills the function that sent it, before it
// answers. That record's result was not written; SQS redelivers the batch
// after its visibility timeout and a fresh instance verifies it. A record
// of the batch that concluded before the kill may get a second, identical
// result (at-least-once); none is lost.
func killDuringPartnerCall() Scenario {
	return crash("kill-during-partner-call", "SIGKILL of each partner function while its first partner call waits for the answer", false, AtLeastOnce(Truth),
		func(e *Env, once *onceEach) {
			for _, p := range registry.Names() {
				fn := functionOf(p)
				for _, c := range e.Sandbox.Controls()[string(p)] {
					c.OnRequest(func(*http.Request) {
						if once.first(fn) {
							e.Kill(fn)
						}
					})
				}
			}
		})
}

// resultsHook kills the function whose results a send to the results queue
// carries, once per function, before the send is forwarded (it never
// reaches SQS) or after SQS accepted it (the function never learns).
func resultsHook(e *Env, once *onceEach, before bool) error {
	q, err := e.Stack.Queue("ResultsQueue")
	if err != nil {
		return err
	}
	kill := func(body []byte) bool {
		killed := false
		for _, p := range SentPartners(body) {
			if fn := functionOf(p); once.first(fn) {
				killed = e.Kill(fn) > 0 || killed
			}
		}
		return killed
	}
	h := &Hook{Pick: RefuseSends(q.URL)}
	if before {
		h.Before = kill
	} else {
		h.After = func(body []byte) { kill(body) }
	}
	e.SQS.SetHook(h)
	return nil
}

// killBeforeResultsSent: the partner answered, the function has its
// verdicts, and dies as its SendMessageBatch reaches the results queue's
// proxy, which drops the request. Nothing of that send reached SQS and
// nothing was deleted: the redelivery verifies again. Records of the same
// batch whose results went out in an earlier send come back too, and may
// get a second, identical result (at-least-once); none is lost.
func killBeforeResultsSent() Scenario {
	return crash("kill-before-results-sent", "SIGKILL of each partner function when its results send arrives, before it reaches SQS", false, AtLeastOnce(Truth),
		func(e *Env, once *onceEach) {
			if err := resultsHook(e, once, true); err != nil {
				e.Problem("%v", err)
			}
		})
}

// killAfterResultsSent: the results are in the queue, the function dies
// before it reports the batch: SQS redelivers the record it never heard
// was done, and the fresh instance (whose record of completed messages
// died with the old one) verifies it again. A second, identical result is
// allowed; a contradicting one is not.
func killAfterResultsSent() Scenario {
	s := crash("kill-after-results-sent", "SIGKILL of each partner function right after SQS accepted its results, before the batch response", false,
		AtLeastOnce(Truth), func(e *Env, once *onceEach) {
			if err := resultsHook(e, once, false); err != nil {
				e.Problem("%v", err)
			}
		})
	check := s.Check
	s.Check = func(o *Observation) []string {
		v := check(o)
		repeated := false
		for _, rs := range o.Results {
			repeated = repeated || len(rs) > 1
		}
		if !repeated {
			v = append(v, "no finding got a second result: the kill did not come after the send")
		}
		return v
	}
	return s
}

// killDispatcherAfterForward: the dispatcher has put the scan's findings
// on the partner queues and dies before its batch response: SQS redelivers
// the scan, which is forwarded again; every finding gets a second result
// with the same verdict (the partner functions' verdict cache answers).
func killDispatcherAfterForward() Scenario {
	return Scenario{Name: "kill-dispatcher-after-forward", Fault: "SIGKILL of the dispatcher right after it forwarded a scan, before the batch response",
		Setup: Setup{Timeouts: map[string]int{"DispatcherFunction": crashTimeout}},
		Run: func(e *Env) error {
			creds, err := e.Creds()
			if err != nil {
				return err
			}
			partnerQueues := map[string]bool{}
			for _, p := range registry.Names() {
				q, err := e.Stack.Queue(strings.TrimSuffix(functionOf(p), "Function") + "Queue")
				if err != nil {
					return err
				}
				partnerQueues[q.URL] = true
			}
			var once onceEach
			e.SQS.SetHook(&Hook{
				Pick: func(target string, body []byte) bool {
					for u := range partnerQueues {
						if RefuseSends(u)(target, body) {
							return true
						}
					}
					return false
				},
				After: func([]byte) {
					if once.first("DispatcherFunction") {
						// The other partner queues' sends of the batch may
						// still be on their way: let them through first.
						time.Sleep(200 * time.Millisecond)
						e.Kill("DispatcherFunction")
					}
				},
			})
			if err := e.sendScanRepeatable(creds); err != nil {
				return err
			}
			err = e.Settle(settle)
			if e.Killed("DispatcherFunction") == 0 {
				e.Problem("the dispatcher was never killed: the scenario proved nothing")
			}
			return err
		}}
}

// sendScanRepeatable sends a scan of which every finding, the one the
// dispatcher concludes too, may get repeated, agreeing results.
func (e *Env) sendScanRepeatable(creds []Cred) error {
	scan, body, err := e.Scan(creds, AtLeastOnce(Truth))
	if err != nil {
		return err
	}
	e.obs.Expect[Key{scan, "unsupported"}].Exactly = 0
	return e.Send("IngressQueue", body)
}

// verifierPanic runs every partner function as the chaos-only build
// internal/dev/chaos/panicking, whose verifier panics on a token's first
// call with the token in the panic value: sqsbatch must keep the panic as
// a failed record (type and location logged, never the value), the
// instance must live on, and the redelivery must reach the verdict.
func verifierPanic() Scenario {
	s := crashSetup()
	s.Bootstraps = map[string]string{}
	for _, id := range partnerFunctions {
		s.Bootstraps[id] = "internal/dev/chaos/panicking"
	}
	return Scenario{Name: "verifier-panic", Fault: "every partner's verifier panics on each token's first call (a chaos-only build), the value quoting the token",
		Setup: s,
		Run: func(e *Env) error {
			creds, err := e.Creds()
			if err != nil {
				return err
			}
			if _, err := e.SendScan(creds, Truth); err != nil {
				return err
			}
			err = e.Settle(settle)
			panicked := map[string]bool{}
			// The verdict cache keeps the panic as the finding's fault
			// (named by type and place), which the worker logs as a retry.
			for _, m := range e.logLines("finding retry") {
				if s, _ := m["fault"].(string); strings.Contains(s, "verifier panicked with a") {
					panicked[m["_source"].(string)] = true
				}
			}
			for _, id := range partnerFunctions {
				if !panicked[id] {
					e.Problem("%s never logged a kept panic: the scenario proved nothing", id)
				}
			}
			return err
		}}
}
