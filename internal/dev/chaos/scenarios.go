package chaos

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/registry"

	"github.com/aws/aws-lambda-go/events"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/awstest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/localstack"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
)

// settle is how long a scenario waits for the stack to finish its work:
// enough for every retry of the slowest fault (three attempts cut by the
// partner client's 4 s timeout) and for one visibility timeout of a
// shortened function.
const settle = 2 * time.Minute

// partnerFunctions are the logical ids of the partner functions: the
// partner's name TitleCased + Function, one per partner of the registry.
var partnerFunctions = func() []string {
	var ids []string
	for _, p := range registry.Names() {
		ids = append(ids, functionOf(p))
	}
	return ids
}()

// Scenarios is the whole suite, in the order `make chaos` runs it.
func Scenarios() []Scenario {
	return []Scenario{
		burst("partner-5xx-burst", "two 500/503 answers from every partner, then normal ones", true, partnertest.Fault500, partnertest.Fault503),
		burst("gateway-5xx-burst", "two 502/504 HTML answers from every partner, then normal ones", false, partnertest.Fault502, partnertest.Fault504),
		storm("partner-5xx-storm", "every partner answers 500, past every retry", false, finding.ReasonPartnerError, each(partnertest.Fault500)),
		storm("timeout-latency", "every answer takes 5 s, above the partner client's 4 s timeout", false, finding.ReasonPartnerError,
			all(func(c *partnertest.Controls) { c.SetLatency(5*time.Second, 0) })),
		storm("timeout-hang", "no partner ever answers", false, finding.ReasonPartnerError, each(partnertest.FaultHang)),
		storm("connection-reset-storm", "every partner connection is reset", false, finding.ReasonPartnerError, each(partnertest.FaultReset)),
		burst("connection-reset-burst", "two connection resets from every partner, then normal answers", false, partnertest.FaultReset, partnertest.FaultReset),
		slowerThanDeadline(),
		rateLimitStorm(),
		rateLimitBurst(),
		storm("empty-body", "every partner answers 200 with an empty body", false, finding.ReasonPartnerError, each(partnertest.FaultEmpty)),
		storm("truncated-body", "every partner's 200 body stops half-way", false, finding.ReasonPartnerError, each(partnertest.FaultTruncated)),
		storm("garbled-body", "every partner answers 200 with a body not in its format", false, finding.ReasonPartnerError, each(partnertest.FaultGarbled)),
		storm("bad-bodies-mixed", "STS garbled, discovery empty, OAuth truncated, Postman 502 HTML", true, finding.ReasonPartnerError,
			mixed(partnertest.FaultGarbled, partnertest.FaultEmpty, partnertest.FaultTruncated, partnertest.Fault502)),
		storm("proxy-401-html", "a proxy answers every partner call with a 401 HTML page", false, finding.ReasonPartnerError, each(partnertest.FaultHTML401)),
		storm("proxy-403-html", "a proxy answers every partner call with a 403 HTML page", false, finding.ReasonPartnerError, each(partnertest.FaultHTML403)),
		storm("proxy-html-401-403", "401 HTML from STS and OAuth, 403 HTML from discovery and Postman", true, finding.ReasonPartnerError,
			mixed(partnertest.FaultHTML401, partnertest.FaultHTML403, partnertest.FaultHTML401, partnertest.FaultHTML403)),
		ssmCached("ssm-down-flag-cached", "SSM endpoint refuses connections after the flag was read", true, func(p *Proxy) { p.Down() }),
		ssmCached("ssm-500-flag-cached", "SSM answers 500 after the flag was read", false, func(p *Proxy) { p.Refuse(RefuseAll) }),
		ssmCold(),
		resultsRefused(),
		deadlineMidBatch(),
		duplicateDelivery(),
		motoRestart(),
		killDuringPartnerCall(),
		killBeforeResultsSent(),
		killAfterResultsSent(),
		killDispatcherAfterForward(),
		verifierPanic(),
		noisyTenant("noisy-tenant-uncapped", false, true),
		noisyTenant("noisy-tenant", true, true),
	}
}

// Short is the representative subset `make test` runs.
func Short() []Scenario {
	var out []Scenario
	for _, s := range Scenarios() {
		if s.Short {
			out = append(out, s)
		}
	}
	return out
}

// ByName returns the scenarios with the given names, in the suite's order.
func ByName(names ...string) ([]Scenario, error) {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var out []Scenario
	for _, s := range Scenarios() {
		if want[s.Name] {
			out = append(out, s)
			delete(want, s.Name)
		}
	}
	for n := range want {
		return nil, fmt.Errorf("chaos: no scenario %q", n)
	}
	return out, nil
}

// storm faults every partner call for the whole scenario: every partner
// finding must end in the fault's terminal unknown reason, never in a verdict.
func storm(name, fault string, short bool, reason finding.Reason, set func(*Env)) Scenario {
	return Scenario{Name: name, Fault: fault, Short: short, Run: func(e *Env) error {
		creds, err := e.Creds()
		if err != nil {
			return err
		}
		set(e)
		if _, err := e.SendScan(creds, Ends(reason)); err != nil {
			return err
		}
		err = e.Settle(settle)
		e.requireRequests(1)
		return err
	}}
}

// all applies f to every double.
func all(f func(*partnertest.Controls)) func(*Env) {
	return func(e *Env) { e.Doubles(f) }
}

// each makes every double answer every call with fault f.
func each(f partnertest.Fault) func(*Env) {
	return all(func(c *partnertest.Controls) { c.SetErrorRate(1, f) })
}

// mixed gives each double its own fault: STS, discovery, OAuth, Postman;
// the doubles of later partners get Postman's.
func mixed(sts, discovery, oauth, postman partnertest.Fault) func(*Env) {
	return func(e *Env) {
		e.Doubles(func(c *partnertest.Controls) { c.SetErrorRate(1, postman) })
		e.Sandbox.STS.Controls.SetErrorRate(1, sts)
		e.Sandbox.Google.Discovery.Controls.SetErrorRate(1, discovery)
		e.Sandbox.Google.OAuth.Controls.SetErrorRate(1, oauth)
		e.Sandbox.Postman.Controls.SetErrorRate(1, postman)
		for p, cs := range e.Sandbox.Controls() {
			if p == string(finding.PartnerAWS) || p == string(finding.PartnerGCP) || p == string(finding.PartnerPostman) {
				continue
			}
			for _, c := range cs {
				c.SetErrorRate(1, postman)
			}
		}
	}
}

// burst answers the first calls of every double with faults, fewer than
// MaxAttempts, so every finding must still reach its partner's real answer.
func burst(name, fault string, short bool, faults ...partnertest.Fault) Scenario {
	if len(faults) >= MaxAttempts {
		panic("chaos: a burst must leave one attempt to succeed")
	}
	return Scenario{Name: name, Fault: fault, Short: short, Run: func(e *Env) error {
		creds, err := e.Creds()
		if err != nil {
			return err
		}
		e.Doubles(func(c *partnertest.Controls) {
			c.SetRetryAfter("1")
			c.Push(faults...)
		})
		if _, err := e.SendScan(creds, Truth); err != nil {
			return err
		}
		err = e.Settle(settle)
		e.requireRequests(int64(len(faults)) + 1)
		return err
	}}
}

// requireRequests records a problem when a double saw fewer requests than
// the fault needs to have been served: the scenario would prove nothing.
func (e *Env) requireRequests(n int64) {
	for p, cs := range e.Sandbox.Controls() {
		for i, c := range cs {
			if c.Requests() < n {
				e.Problem("%s double %d saw %d requests, the fault needs at least %d", p, i, c.Requests(), n)
			}
		}
	}
}

// logLines returns the JSON log records with a given message.
func (e *Env) logLines(msg string) []map[string]any {
	var out []map[string]any
	for _, l := range e.Lines() {
		_, js, ok := strings.Cut(l, " ")
		if !ok || !strings.Contains(js, `"msg":"`+msg+`"`) {
			continue
		}
		var m map[string]any
		if json.Unmarshal([]byte(js), &m) == nil {
			m["_source"] = lineSource(l)
			out = append(out, m)
		}
	}
	return out
}

func rateLimitStorm() Scenario {
	const retryAfter = 2
	return Scenario{Name: "429-storm-retry-after", Fault: "every partner answers 429 with Retry-After: 2", Short: true, Run: func(e *Env) error {
		creds, err := e.Creds()
		if err != nil {
			return err
		}
		e.Doubles(func(c *partnertest.Controls) {
			c.SetRetryAfter(fmt.Sprint(retryAfter))
			c.SetErrorRate(1, partnertest.Fault429)
		})
		if _, err := e.SendScan(creds, Ends(finding.ReasonRateLimited)); err != nil {
			return err
		}
		err = e.Settle(settle)
		e.requireRequests(1)
		// Every retry after a partner's 429 waits at least its Retry-After.
		retries := 0
		for _, m := range e.logLines("finding retry") {
			fault, _ := m["fault"].(string)
			if !strings.Contains(fault, "(http 429)") {
				continue
			}
			retries++
			if s, _ := m["retry_in_s"].(float64); s < retryAfter {
				e.Problem("%s retried a 429 after %vs, before Retry-After %ds", m["_source"], s, retryAfter)
			}
		}
		if retries == 0 {
			e.Problem("no retry after a partner 429 was logged")
		}
		return err
	}}
}

// rateLimitBurst answers the first two calls of every double with 429. The
// instance's limiter then holds back every call of its partner for the
// Retry-After, and a held-back call spends an attempt like a refused one:
// a finding that only ever met pauses may end rate_limited instead of in
// its verdict (with the short backoff used here the retries of one batch
// stay in step, which makes that likely). What may never happen is any
// other outcome; and at least one finding of each partner must get through.
func rateLimitBurst() Scenario {
	return Scenario{Name: "429-burst", Fault: "two 429s with Retry-After: 1 from every partner, then normal answers", Run: func(e *Env) error {
		creds, err := e.Creds()
		if err != nil {
			return err
		}
		e.Doubles(func(c *partnertest.Controls) {
			c.SetRetryAfter("1")
			c.Push(partnertest.Fault429, partnertest.Fault429)
		})
		if _, err := e.SendScan(creds, TruthOr(finding.ReasonRateLimited)); err != nil {
			return err
		}
		err = e.Settle(settle)
		e.requireRequests(3)
		return err
	}, Check: func(o *Observation) []string {
		through := map[finding.Partner]bool{}
		for k, rs := range o.Results {
			if x := o.Expect[k]; x != nil && x.Cred.Partner != "" && len(rs) > 0 && rs[0].Reason == x.Cred.Truth() {
				through[x.Cred.Partner] = true
			}
		}
		var v []string
		for _, p := range registry.Names() {
			if !through[p] {
				v = append(v, fmt.Sprintf("no %s finding reached its verdict after the burst", p))
			}
		}
		return v
	}}
}

// slowerThanDeadline makes every partner answer after the partner
// functions' deadline (but within the partner client's timeout): the
// function itself must cut the call and still write the terminal result on
// the last attempt, before SQS would dead-letter the message.
func slowerThanDeadline() Scenario {
	timeouts, env := map[string]int{}, map[string]map[string]string{}
	for _, id := range partnerFunctions {
		timeouts[id] = 3
		// Every record of a batch starts at once, so none waits for a slot,
		// nor for the rate limiter of a partner with a low rate (SendGrid's
		// 0.5/s would hold the second record past the deadline: rate_limited).
		env[id] = map[string]string{"PARTNER_CONCURRENCY": "10", "PARTNER_RATE_BURST": "10"}
	}
	// The fault here is the deadline, not the local limiter: at Anthropic's
	// 0.4/s default its later records would wait past the 3 s deadline in
	// the limiter and rightly end rate_limited instead.
	env["AnthropicFunction"]["PARTNER_RATE_PER_SECOND"] = "10"
	return Scenario{Name: "slower-than-deadline", Fault: "partners answer in 3.5 s; partner functions time out after 3 s", Short: true,
		Setup: Setup{Timeouts: timeouts, FunctionEnv: env},
		Run: func(e *Env) error {
			creds, err := e.Creds()
			if err != nil {
				return err
			}
			e.Doubles(func(c *partnertest.Controls) { c.SetLatency(3500*time.Millisecond, 0) })
			if _, err := e.SendScan(creds, Ends(finding.ReasonPartnerError)); err != nil {
				return err
			}
			err = e.Settle(settle)
			e.requireRequests(1)
			return err
		}}
}

// ssmCached takes SSM away after every function has read the flag: each
// must go on with the value it read (and say so), deciding nothing wrongly.
func ssmCached(name, fault string, short bool, fail func(*Proxy)) Scenario {
	return Scenario{Name: name, Fault: fault, Short: short, Run: func(e *Env) error {
		warm, err := e.Creds()
		if err != nil {
			return err
		}
		var first []Cred
		for _, c := range warm {
			if c.Active && (c.Partner != finding.PartnerGCP || c.RuleID == "GCP API key") {
				first = append(first, c)
			}
		}
		if _, err := e.SendScan(first, Truth); err != nil {
			return err
		}
		if err := e.Settle(settle); err != nil {
			return err
		}
		fail(e.SSM)
		time.Sleep(FlagCacheTTL + 200*time.Millisecond)
		creds, err := e.Creds()
		if err != nil {
			return err
		}
		if _, err := e.SendScan(creds, Truth); err != nil {
			return err
		}
		err = e.Settle(settle)
		stale := map[string]bool{}
		for _, m := range e.logLines("feature flag: using the last value read, SSM read failed") {
			stale[m["_source"].(string)] = true
		}
		for _, id := range append([]string{"DispatcherFunction"}, partnerFunctions...) {
			if !stale[id] {
				e.Problem("%s never said it used the cached flag while SSM failed", id)
			}
		}
		e.SSM.Refuse(nil)
		return errors.Join(err, e.SSM.Up())
	}}
}

// ssmCold starts every function with SSM unreachable, so none has a flag:
// nothing may be concluded (not even feature_disabled) until SSM is back,
// and then everything must be.
func ssmCold() Scenario {
	return Scenario{Name: "ssm-down-no-flag", Fault: "SSM endpoint refuses connections before any flag was read, for 6 s",
		Setup: Setup{SSMDown: true, Timeouts: map[string]int{"DispatcherFunction": 3}},
		Run: func(e *Env) error {
			creds, err := e.Creds()
			if err != nil {
				return err
			}
			if _, err := e.SendScan(creds, Truth); err != nil {
				return err
			}
			time.Sleep(6 * time.Second)
			if err := e.Collect(); err != nil {
				return err
			}
			if n := len(e.obs.Results) + len(e.obs.Unexpected); n > 0 {
				e.Problem("%d findings were concluded while no flag could be read", n)
			}
			failed := false
			for _, m := range e.logLines("sqsbatch: record failed; SQS will redeliver it") {
				if msg, _ := m["error"].(string); m["_source"] == "DispatcherFunction" && strings.Contains(msg, "feature flag") {
					failed = true
				}
			}
			if !failed {
				e.Problem("the dispatcher never reported the unreadable flag")
			}
			if err := e.SSM.Up(); err != nil {
				return err
			}
			return e.Settle(settle)
		}}
}

// resultsRefused makes the results queue refuse every send for a while:
// results must arrive once it accepts again, none lost, none contradicting.
func resultsRefused() Scenario {
	timeouts := map[string]int{"DispatcherFunction": 5}
	for _, id := range partnerFunctions {
		timeouts[id] = 5
	}
	return Scenario{Name: "results-queue-refusing", Fault: "SendMessageBatch to the results queue answers 500 for 8 s",
		Setup: Setup{Timeouts: timeouts},
		Run: func(e *Env) error {
			creds, err := e.Creds()
			if err != nil {
				return err
			}
			q, err := e.Stack.Queue("ResultsQueue")
			if err != nil {
				return err
			}
			e.SQS.Refuse(RefuseSends(q.URL))
			if _, err := e.SendScan(creds, AtLeastOnce(Truth)); err != nil {
				return err
			}
			time.Sleep(8 * time.Second)
			e.SQS.Refuse(nil)
			if e.SQS.Refused() == 0 {
				e.Problem("no send to the results queue was refused")
			}
			return e.Settle(settle)
		}}
}

// deadlineMidBatch gives the AWS function a 4 s deadline, one record at a
// time and 1.2 s partner answers: a batch of four cannot finish in one
// invocation. The records left over must come back and be verified.
func deadlineMidBatch() Scenario {
	return Scenario{Name: "deadline-mid-batch", Fault: "AWS function: 4 s timeout, one record at a time, STS answers in 1.2 s",
		Setup: Setup{Timeouts: map[string]int{"AwsFunction": 4}, FunctionEnv: map[string]map[string]string{"AwsFunction": {"PARTNER_CONCURRENCY": "1"}}},
		Run: func(e *Env) error {
			var aws []Cred
			for range 2 {
				creds, err := e.Creds()
				if err != nil {
					return err
				}
				for _, c := range Only(creds, finding.PartnerAWS) {
					c.Name = fmt.Sprintf("%s-%d", c.Name, len(aws))
					aws = append(aws, c)
				}
			}
			e.Sandbox.STS.Controls.SetLatency(1200*time.Millisecond, 0)
			if _, err := e.SendScan(aws, Truth); err != nil {
				return err
			}
			err := e.Settle(settle)
			cut := false
			for _, m := range e.logLines("sqsbatch: records left unstarted for lack of time; SQS will redeliver them") {
				cut = cut || m["_source"] == "AwsFunction"
			}
			if !cut {
				e.Problem("the AWS function never ran out of time: the scenario proved nothing")
			}
			return err
		}}
}

// duplicateDelivery sends one scan twice (two messages: two acceptances,
// two agreeing results each) and hands a partner function the same record
// twice in a batch and then again (one message: one result, one call).
func duplicateDelivery() Scenario {
	return Scenario{Name: "duplicate-delivery", Fault: "one scan sent twice; one partner record delivered twice in a batch and again", Short: true,
		Run: func(e *Env) error {
			creds, err := e.Creds()
			if err != nil {
				return err
			}
			twice := func(c Cred) Expectation { x := Truth(c); x.Exactly = 2; return x }
			scan, body, err := e.Scan(creds, twice)
			if err != nil {
				return err
			}
			e.obs.Expect[Key{scan, "unsupported"}].Exactly = 2
			for range 2 {
				if err := e.Send("IngressQueue", body); err != nil {
					return err
				}
			}

			more, err := e.Creds()
			if err != nil {
				return err
			}
			pm := Only(more, finding.PartnerPostman)[0]
			one := finding.Batch{Version: 1, ScanID: "chaos-duplicate-direct", Project: finding.Project{ID: 278964, FullPath: "gitlab-org/chaos"},
				Findings: []finding.Finding{{ID: pm.Name, RuleID: pm.RuleID, Token: finding.Secret(pm.Token)}}}
			raw, err := finding.Encode(one)
			if err != nil {
				return err
			}
			e.Expect(Key{one.ScanID, pm.Name}, Truth(pm))
			rec := events.SQSMessage{MessageId: "chaos-dup-" + randomHex(8), ReceiptHandle: "chaos-" + randomHex(8), Body: string(raw)}
			before := e.Sandbox.Postman.Controls.CountFor(pm.Token)
			for _, batch := range [][]events.SQSMessage{{rec, rec}, {rec}} {
				resp, err := e.Invoke("PostmanFunction", "PostmanQueue", batch)
				if err != nil {
					return err
				}
				if len(resp.BatchItemFailures) > 0 {
					e.Problem("a duplicate delivery was reported failed: %v", resp.BatchItemFailures)
				}
			}
			if n := e.Sandbox.Postman.Controls.CountFor(pm.Token) - before; n > 1 {
				e.Problem("one message delivered three times cost %d partner calls, want at most 1", n)
			}
			return e.Settle(settle)
		}}
}

// motoRestart stops the local AWS between invocations and starts an empty
// one on the same port. What moto loses with its state is not the
// functions' to keep; the invariant is that they never report a record
// done that they could not conclude, stay up, and work again once the
// queues and the flag exist again.
func motoRestart() Scenario {
	return Scenario{Name: "moto-restart", Fault: "the local AWS stops, comes back empty on the same port, the stack is re-created",
		Setup: Setup{OwnMoto: true},
		Run: func(e *Env) error {
			creds, err := e.Creds()
			if err != nil {
				return err
			}
			if _, err := e.SendScan(creds, Truth); err != nil {
				return err
			}
			if err := e.Settle(settle); err != nil {
				return err
			}
			if err := e.Collect(); err != nil {
				return err
			}
			u, err := url.Parse(e.Moto.Endpoint)
			if err != nil {
				return err
			}
			var port int
			if _, err := fmt.Sscan(u.Port(), &port); err != nil {
				return fmt.Errorf("moto port: %w", err)
			}
			e.Moto.Stop()
			time.Sleep(2 * time.Second)
			if err := e.probe(creds, "while the local AWS is down"); err != nil {
				return err
			}
			m, err := awstest.StartOn(e.Ctx, port)
			if err != nil {
				return err
			}
			e.Moto = m
			if err := e.probe(creds, "while its queues do not exist"); err != nil {
				return err
			}
			local, err := localstack.Apply(e.Ctx, e.Stack.Template, awstest.Config(e.Endpoint), e.Stack.Local.Prefix)
			if err != nil {
				return err
			}
			for id, q := range local.Queues {
				if e.Stack.Local.Queues[id].URL != q.URL {
					e.Problem("queue %s came back under another URL", id)
				}
			}
			if err := e.SetFlag(true); err != nil {
				return err
			}
			again, err := e.Creds()
			if err != nil {
				return err
			}
			if _, err := e.SendScan(again, Truth); err != nil {
				return err
			}
			return e.Settle(settle)
		}}
}

// probe hands the AWS function a record it cannot finish (its result has
// nowhere to go): it must report the record failed, not done.
func (e *Env) probe(creds []Cred, when string) error {
	c := Only(creds, finding.PartnerAWS)[0]
	b := finding.Batch{Version: 1, ScanID: "chaos-probe", Project: finding.Project{ID: 278964, FullPath: "gitlab-org/chaos"},
		Findings: []finding.Finding{{ID: "probe", RuleID: c.RuleID, Token: finding.Secret(c.Token),
			Context: map[string]finding.Secret{finding.ContextAWSSecretAccessKey: finding.Secret(c.Context[finding.ContextAWSSecretAccessKey])}}}}
	raw, err := finding.Encode(b)
	if err != nil {
		return err
	}
	id := "chaos-probe-" + randomHex(8)
	resp, err := e.Invoke("AwsFunction", "AwsQueue", []events.SQSMessage{{MessageId: id, ReceiptHandle: "chaos-" + randomHex(8), Body: string(raw)}})
	if err != nil {
		// A failed invocation leaves every record to SQS: nothing vanished.
		return nil
	}
	for _, f := range resp.BatchItemFailures {
		if f.ItemIdentifier == id {
			return nil
		}
	}
	e.Vanished("a record handed to the AWS function %s was reported done, yet its result could not be written", when)
	return nil
}
