package chaos

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/registry"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/sqsbatch"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verdictcache"
)

// SoakOptions size a long run (`make soak`).
type SoakOptions struct {
	// Findings is how many partner findings to send, spread evenly over
	// every partner of the registry.
	Findings int
	// Seed drives every random choice of the run: the workload, the faults
	// pushed to the doubles, which function is killed when, the duplicates
	// and the moment of the flag flip. Which request meets a fault still
	// depends on timing, so a replay repeats the schedule, not every step.
	Seed uint64
	// KillEvery is the mean time between two kills of a random function
	// process (0: no kills).
	KillEvery time.Duration
	// Settle bounds the wait for the stack to finish after the last send.
	Settle time.Duration
	// Progress receives a line now and then (optional).
	Progress func(string)
}

// SoakStats are the soak's figures beyond the invariant table.
type SoakStats struct {
	// Findings and Scans sent; Duplicates are scans sent a second time.
	Findings, Scans, Duplicates int
	// Kills is how many function processes were killed; Faults how many
	// faults were pushed to the doubles.
	Kills, Faults int
	// MessageIDs bounds the partner-queue messages each partner function
	// was handed (one per scan the dispatcher forwarded), Tokens the
	// distinct credentials: its record of completed message ids and its
	// verdict cache hold no more than these, nor more than their caps.
	MessageIDs map[string]int
	Tokens     map[string]int
	// RSSKB is each function's resident memory at the end (VmRSS of its
	// current bootstrap), 0 when no bootstrap was running.
	RSSKB map[string]int64
	// FailedInvocations counts each function's failed invocations by the
	// error type the emulator gave (Runtime.ExitError for a killed
	// process, Sandbox.Timedout for one past its timeout).
	FailedInvocations map[string]map[string]int
}

// Caps of the per-instance state the soak watches, as the functions run here.
const (
	CompletedCap    = sqsbatch.DefaultCompletedSize
	VerdictCacheCap = verdictcache.DefaultSize
)

// soakFunctionTimeout is every function's timeout in the soak: a killed
// invocation's messages return after VisibilityFactor × this.
const soakFunctionTimeout = 5

// soakBacklog bounds what the soak lets wait in the queues before it sends
// the next scan. A scan puts one message on each partner queue and about
// 45 on the results queue. moto_server's cost per message grows with the
// queue's length, so a queue that grows makes every call slower and its
// drain slower still: bounding every queue, the results queue included,
// keeps the local AWS out of that spiral on a loaded machine.
var soakBacklog = BacklogLimits{Ingress: 10, Partner: 10, Results: 300}

// soakFaults are the partner faults the soak injects; each is retried,
// never a verdict.
var soakFaults = []partnertest.Fault{partnertest.Fault500, partnertest.Fault503, partnertest.Fault502,
	partnertest.FaultReset, partnertest.Fault429, partnertest.FaultGarbled, partnertest.FaultHTML403}

// Soak is the long run as a scenario: o.Findings findings of every partner
// through the whole stack while partner faults, process kills, duplicate
// scans and a flag flip happen at random; stats is filled as it runs.
func Soak(o SoakOptions, stats *SoakStats) Scenario {
	if o.Progress == nil {
		o.Progress = func(string) {}
	}
	timeouts, env := map[string]int{"DispatcherFunction": soakFunctionTimeout}, map[string]map[string]string{}
	for _, id := range partnerFunctions {
		timeouts[id] = soakFunctionTimeout
		// The doubles enforce no budget: the partners' own rates (SendGrid
		// 0.5/s) would make a restarted instance's cold cache the bottleneck.
		env[id] = map[string]string{"PARTNER_RATE_PER_SECOND": "100", "PARTNER_RATE_BURST": "20"}
	}
	return Scenario{Name: "soak", Fault: fmt.Sprintf("%d findings, seed %d: random partner faults, a process killed about every %s, duplicate scans, a flag flip",
		o.Findings, o.Seed, o.KillEvery), Setup: Setup{Timeouts: timeouts, FunctionEnv: env},
		Run: func(e *Env) error { return soak(e, o, stats) }}
}

func soak(e *Env, o SoakOptions, stats *SoakStats) error {
	rng := rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))
	stats.MessageIDs, stats.Tokens = map[string]int{}, map[string]int{}
	// A small pool of credentials, as in real scans: the same leaked token
	// turns up again and again, and the verdict cache answers the repeats.
	pool := map[finding.Partner][]Cred{}
	for range 3 {
		creds, err := e.Creds()
		if err != nil {
			return err
		}
		for _, c := range creds {
			pool[c.Partner] = append(pool[c.Partner], c)
		}
	}
	partners := registry.Names()
	for _, p := range partners {
		tokens := map[string]bool{}
		for _, c := range pool[p] {
			tokens[c.Token] = true
		}
		stats.Tokens[functionOf(p)] = len(tokens)
	}
	const perScan = 45
	stop := make(chan struct{})
	done := make(chan struct{})
	var kills, faults atomic.Int64
	// The chaos: a seeded schedule of kills and fault bursts, apart from the sender.
	chaosRng := rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64()))
	fns := append([]string{"DispatcherFunction"}, partnerFunctions...)
	go func() {
		defer close(done)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		nextKill := time.Now().Add(jitter(chaosRng, o.KillEvery))
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			// Each tick, a burst of at most MaxAttempts-1 faults for one double.
			if chaosRng.IntN(4) == 0 {
				p := partners[chaosRng.IntN(len(partners))]
				cs := e.Sandbox.Controls()[string(p)]
				c := cs[chaosRng.IntN(len(cs))]
				n := 1 + chaosRng.IntN(MaxAttempts-1)
				for range n {
					c.Push(soakFaults[chaosRng.IntN(len(soakFaults))])
				}
				faults.Add(int64(n))
			}
			if o.KillEvery > 0 && time.Now().After(nextKill) {
				// A function with no process yet (never invoked) has
				// nothing to kill: another is tried on the next tick.
				fn := fns[chaosRng.IntN(len(fns))]
				if n := e.Kill(fn); n > 0 {
					kills.Add(int64(n))
					nextKill = time.Now().Add(jitter(chaosRng, o.KillEvery))
				}
			}
		}
	}()
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		<-done
		stats.Kills, stats.Faults = int(kills.Load()), int(faults.Load())
	}()

	// Results are taken off their queue as the run goes, as the consumer
	// would: a queue of thousands makes the local AWS CPU-bound.
	collector := e.StartCollector(250 * time.Millisecond)
	defer collector.Stop()

	flipAt := o.Findings * (3 + rng.IntN(4)) / 10
	start := time.Now()
	for sent := 0; sent < o.Findings; {
		if err := e.Ctx.Err(); err != nil {
			return err
		}
		if sent >= flipAt && flipAt >= 0 {
			flipAt = -1
			o.Progress(fmt.Sprintf("soak: flag off after %d findings", sent))
			if err := e.SetFlag(false); err != nil {
				return err
			}
			time.Sleep(2 * time.Second)
			if err := e.SetFlag(true); err != nil {
				return err
			}
			o.Progress("soak: flag on again")
		}
		n := min(perScan, o.Findings-sent)
		stats.Scans++
		scanID := fmt.Sprintf("soak-%d-%d", o.Seed, stats.Scans)
		b := finding.Batch{Version: 1, ScanID: scanID, Project: finding.Project{ID: 278964, FullPath: "gitlab-org/soak"}}
		for i := range n {
			p := partners[(sent+i)%len(partners)]
			c := pool[p][rng.IntN(len(pool[p]))]
			id := fmt.Sprintf("f%d", sent+i)
			f := finding.Finding{ID: id, RuleID: c.RuleID, Token: finding.Secret(c.Token)}
			if len(c.Context) > 0 {
				f.Context = map[string]finding.Secret{}
				for k, v := range c.Context {
					f.Context[k] = finding.Secret(v)
				}
			}
			b.Findings = append(b.Findings, f)
			e.obs.Expect[Key{scanID, id}] = &Expectation{Cred: c, Terminal: true, Mixed: true, Allowed: []finding.Reason{
				c.Truth(), finding.ReasonPartnerError, finding.ReasonRateLimited, finding.ReasonFeatureDisabled}}
		}
		body, err := finding.Encode(b)
		if err != nil {
			return err
		}
		copies := 1
		if rng.IntN(20) == 0 {
			copies, stats.Duplicates = 2, stats.Duplicates+1
		}
		for range copies {
			if err := e.Send("IngressQueue", body); err != nil {
				return err
			}
		}
		sent += n
		stats.Findings = sent
		collector.Take()
		if stats.Scans%40 == 0 {
			o.Progress(fmt.Sprintf("soak: %d findings sent in %s, %d kills, %d results read", sent, time.Since(start).Round(time.Second), kills.Load(), len(e.obs.Bodies)))
		}
		// Keep every source queue short: the backlog is not the test, and
		// moto_server's cost per message grows with the queue's length.
		for waited := time.Duration(0); ; waited += 200 * time.Millisecond {
			b, err := e.backlog()
			why, over := b.Over(soakBacklog)
			if err != nil {
				// The depth is unknown: wait and read it again, as
				// for a long queue (a failed read is no finding lost).
				why, over = err.Error(), true
			}
			if !over || e.Ctx.Err() != nil {
				break
			}
			if waited > 0 && waited%(30*time.Second) == 0 {
				o.Progress("soak: sending waits: " + why)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	// A short run may end its sending before the first kill: the chaos
	// goes on (the stack still has work) until one happened.
	for wait := time.Now().Add(3 * o.KillEvery); o.KillEvery > 0 && kills.Load() == 0 && time.Now().Before(wait) && e.Ctx.Err() == nil; {
		time.Sleep(100 * time.Millisecond)
	}
	close(stop)
	<-done
	o.Progress(fmt.Sprintf("soak: all %d findings sent in %s; waiting for the stack to settle", o.Findings, time.Since(start).Round(time.Second)))
	err := e.Settle(o.Settle)
	if errs := collector.Stop(); len(errs) > 0 {
		o.Progress(fmt.Sprintf("soak: %d results-queue drains failed and were retried, first: %s", len(errs), errs[0]))
	}
	// Each scan the dispatcher forwarded put at most one message on every
	// partner queue: the bound on each partner function's record of
	// completed message ids.
	stats.RSSKB = map[string]int64{}
	for id, f := range e.Stack.Functions {
		for _, pid := range f.RuntimePIDs() {
			if kb, ok := procStatus(pid, "VmRSS:"); ok {
				stats.RSSKB[id] += kb
			}
		}
	}
	stats.FailedInvocations = map[string]map[string]int{}
	for _, l := range e.logLines("esm: invocation failed") {
		fn, _ := l["mapping"].(string)
		msg, _ := l["error"].(string)
		kind := "other"
		for _, t := range []string{"Runtime.ExitError", "Sandbox.Timedout"} {
			if strings.Contains(msg, t) {
				kind = t
			}
		}
		if stats.FailedInvocations[fn] == nil {
			stats.FailedInvocations[fn] = map[string]int{}
		}
		stats.FailedInvocations[fn][kind]++
	}
	forwarded := len(e.logLines("scan dispatched"))
	for _, id := range partnerFunctions {
		stats.MessageIDs[id] = forwarded
	}
	return err
}

// jitter is a duration uniform in [d/2, 3d/2).
func jitter(rng *rand.Rand, d time.Duration) time.Duration {
	if d <= 0 {
		return time.Hour
	}
	return d/2 + time.Duration(rng.Int64N(int64(d)))
}

// SoakLine is the soak's last line: findings sent, findings with a result,
// findings with neither a result nor a place in a queue, findings whose
// results disagree, and credential leaks.
func SoakLine(o *Observation, row Row) string {
	results, missing := 0, 0
	for k := range o.Expect {
		switch {
		case len(o.Results[k]) > 0:
			results++
		case o.Queued[k] == 0 && o.DeadLettered[k] == 0:
			missing++
		}
	}
	leaked := 0
	for i, inv := range Invariants {
		if inv.Name == "no secret leaked" {
			leaked = len(row.Cells[i].Violations)
		}
	}
	return fmt.Sprintf("findings=%d results=%d missing=%d contradictions=%d leaked=%d", len(o.Expect), results, missing, Contradictions(o), leaked)
}

// SortedFunctions is the keys of a per-function map, sorted.
func SortedFunctions(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
