package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/localrun"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/sandbox"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/logging"
	awspartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/aws"
	gcppartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/gcp"
	postmanpartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/postman"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/pipeline"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/sqsbatch"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/throttle"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verdictcache"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

// Concurrency is PARTNER_CONCURRENCY of the measured instance in both
// settings: the slots a batch's records share.
const Concurrency = 10

// serialBatch is the batch of the serial runs (Concurrency 1): ten records
// of about a tenth of a second each, several invocations in a window.
const serialBatch = 10

// functionTimeout is the partner functions' Timeout in template.yaml: the
// deadline of every invocation's context.
const functionTimeout = 30 * time.Second

// benchProject is the project of every generated finding.
var benchProject = finding.Project{ID: 278964, FullPath: "gitlab-org/bench"}

// findingSeq makes finding ids unique within the process.
var findingSeq int

// newFindings generates n findings for partner p, each with its own random
// token, and the credentials that make every one of them live in the sandbox.
func newFindings(p finding.Partner, n int) ([]finding.Finding, sandbox.Credentials, error) {
	fs, creds, err := sandbox.LiveFindings(p, n, findingSeq+1)
	findingSeq += n
	return fs, creds, err
}

// body is the partner-queue message of one finding, as the dispatcher sends it.
func body(f finding.Finding) ([]byte, error) {
	b, err := json.Marshal(finding.Batch{Version: 1, ScanID: "bench", Project: benchProject, Findings: []finding.Finding{f}})
	if err != nil {
		return nil, fmt.Errorf("encode finding batch: %w", err)
	}
	return b, nil
}

// partnerVerifier builds the partner's real verifier against the sandbox,
// as the function's main does from the same PARTNER_ENDPOINT_* variables.
func partnerVerifier(p finding.Partner, env map[string]string) (verify.Verifier, error) {
	u := func(name string) (*url.URL, error) {
		v, err := url.Parse(env[name])
		if err != nil || v.Host == "" {
			return nil, fmt.Errorf("sandbox endpoint %s: not a URL", name)
		}
		return v, nil
	}
	switch p {
	case finding.PartnerAWS:
		e, err := u(awspartner.EndpointEnv)
		if err != nil {
			return nil, err
		}
		return awspartner.New(partnerhttp.Options{Endpoints: []*url.URL{e}, NetworkRetries: pipeline.NetworkRetries})
	case finding.PartnerGCP:
		d, err := u(gcppartner.EnvDiscovery)
		if err != nil {
			return nil, err
		}
		o, err := u(gcppartner.EnvOAuth)
		if err != nil {
			return nil, err
		}
		return gcppartner.New(partnerhttp.Options{Endpoints: []*url.URL{d, o}, NetworkRetries: pipeline.NetworkRetries})
	case finding.PartnerPostman:
		e, err := u(postmanpartner.EnvEndpoint)
		if err != nil {
			return nil, err
		}
		return postmanpartner.New(partnerhttp.Options{Endpoints: []*url.URL{e}, NetworkRetries: pipeline.NetworkRetries})
	}
	return nil, fmt.Errorf("partner verifier: unknown partner %q", p)
}

// instance is one partner-function instance: the handler built as
// pipeline.PartnerWorkerFromEnv builds it (verdictcache around throttle around the
// partner verifier), with an emulated source queue and results queue.
type instance struct {
	partner finding.Partner
	// batch is the event source's batch size: the most records per invocation.
	batch   int
	worker  *pipeline.Worker
	cache   *verdictcache.Verifier
	queue   *queue
	sink    *sink
	metrics bytes.Buffer
}

// newInstance builds a fresh instance: new HTTP client, limiter and cache.
func newInstance(p finding.Partner, env map[string]string, lim throttle.Options, concurrency, batch int) (*instance, error) {
	v, err := partnerVerifier(p, env)
	if err != nil {
		return nil, err
	}
	cached := verdictcache.New(throttle.New(v, p, lim), p, verdictcache.Options{})
	in := &instance{partner: p, batch: batch, cache: cached, queue: newQueue(), sink: &sink{}}
	in.worker, err = pipeline.NewWorker(pipeline.WorkerConfig{
		Common: pipeline.Common{
			Results: in.sink,
			Gate:    func(context.Context, finding.Project, finding.Partner) (bool, error) { return true, nil },
			// The function's JSON logger, writing nowhere: its cost is part of the handler's.
			Logger:      logging.New(io.Discard, slog.LevelInfo),
			MetricsOut:  &in.metrics,
			Concurrency: concurrency,
		},
		Partner:     p,
		Verifier:    cached,
		Requeue:     in.queue,
		MaxAttempts: sqsbatch.DefaultMaxAttempts,
		Backoff:     sqsbatch.Backoff,
	})
	if err != nil {
		return nil, err
	}
	return in, nil
}

// invocation is what one call of the handler did.
type invocation struct {
	span      Span
	results   []sunk
	partnerMS []float64
	// records is how many records the invocation received.
	records   int
	failures  int
	undelayed int
	// errors and networkErrors are the invocation's PartnerAPIErrors and
	// PartnerAPINetworkErrors.
	errors, networkErrors int
}

// invoke receives one batch and runs the handler on it, as the event source
// mapping does; it returns false when no record became visible before until.
func (in *instance) invoke(ctx context.Context, until time.Time) (invocation, bool, error) {
	recs := in.queue.receive(ctx, in.batch, until)
	if len(recs) == 0 {
		return invocation{}, false, nil
	}
	in.metrics.Reset()
	mark := in.sink.len()
	ictx, cancel := context.WithTimeout(ctx, functionTimeout)
	start := time.Now()
	resp, _ := in.worker.Handle(ictx, events.SQSEvent{Records: recs})
	end := time.Now()
	cancel()
	results, err := in.sink.since(mark)
	if err != nil {
		return invocation{}, false, err
	}
	inv := invocation{results: results, records: len(recs), failures: len(resp.BatchItemFailures)}
	inv.undelayed = in.queue.settle(recs, resp)
	emf := localrun.NewEMFCollector()
	for _, line := range strings.Split(in.metrics.String(), "\n") {
		emf.Line(line)
	}
	figs := emf.Partners()[string(in.partner)]
	inv.partnerMS, inv.errors, inv.networkErrors = figs.LatencyMS, int(figs.Errors), int(figs.NetworkErrors)
	for _, r := range inv.results {
		if r.status == finding.StatusActive {
			inv.span.Verifications++
		}
	}
	inv.span.Start, inv.span.End = start, end
	return inv, true, nil
}

// loadConfig is one throughput run.
type loadConfig struct {
	partner     finding.Partner
	concurrency int
	// batch is the most records per invocation.
	batch   int
	limiter throttle.Options
	// warm is run but not measured: connections open, the burst is spent.
	warm, window time.Duration
	// backlog is how many findings wait in the queue at the start; enough
	// that a record is always visible while the run lasts.
	backlog int
	// quiet is waited before the run, so that the sandbox's bucket, which
	// the previous run emptied, is full again, as a fresh instance's is:
	// otherwise the two runs would share the partner's rate like two
	// instances do.
	quiet time.Duration
}

// loadResult is what a throughput run measured, over the invocations that
// started after the warm-up.
type loadResult struct {
	spans []Span
	// others counts results that were not active, by reason.
	others map[finding.Reason]int
	// overheadMS is the handler's time per verification beyond the partner
	// call, from invocations that ran their records one at a time.
	overheadMS []float64
	// unsplit counts such invocations whose calls and results did not pair up.
	unsplit int
	// partnerMS are the partner calls' latencies.
	partnerMS []float64
	// slotUse is the measured invocations' partner time over their
	// slot time (concurrency × duration): 1 when every slot was in a
	// partner call for the whole of every invocation.
	slotUse float64
	// records is the mean records per measured invocation.
	records float64
	// receives and handedBack are the queue's deliveries and the handler's
	// hand-backs over the whole run; undelayed are failures without a delay;
	// verified are the active results of the whole run.
	receives, handedBack, undelayed, verified int
	// requests and rateLimited are the sandbox's counts for the whole run.
	requests, rateLimited int64
	// errors and networkErrors are the handler's partner-error metrics for the whole run.
	errors, networkErrors int
	// slowestMS is the slowest partner call of the whole run.
	slowestMS float64
}

// runLoad feeds a backlog of distinct live tokens to one instance, one
// invocation after another, for warm + window.
func runLoad(ctx context.Context, sb *sandboxProc, c loadConfig) (loadResult, error) {
	res := loadResult{others: map[finding.Reason]int{}}
	var partnerTime, slotTime float64
	records := 0
	fs, creds, err := newFindings(c.partner, c.backlog)
	if err != nil {
		return res, err
	}
	if err := sb.register(ctx, creds); err != nil {
		return res, err
	}
	in, err := newInstance(c.partner, sb.env, c.limiter, c.concurrency, c.batch)
	if err != nil {
		return res, err
	}
	for _, f := range fs {
		b, err := body(f)
		if err != nil {
			return res, err
		}
		in.queue.add(b)
	}
	select {
	case <-time.After(c.quiet):
	case <-ctx.Done():
		return res, ctx.Err()
	}
	if err := sb.reset(ctx); err != nil {
		return res, err
	}
	measureFrom := time.Now().Add(c.warm)
	stopAt := measureFrom.Add(c.window)
	for time.Now().Before(stopAt) && ctx.Err() == nil {
		inv, ok, err := in.invoke(ctx, stopAt)
		if err != nil {
			return res, err
		}
		if !ok {
			break
		}
		res.undelayed += inv.undelayed
		res.verified += inv.span.Verifications
		res.errors += inv.errors
		res.networkErrors += inv.networkErrors
		if len(inv.partnerMS) > 0 {
			res.slowestMS = max(res.slowestMS, maxOf(inv.partnerMS))
		}
		if inv.span.Start.Before(measureFrom) {
			continue
		}
		res.spans = append(res.spans, inv.span)
		for _, r := range inv.results {
			if r.status != finding.StatusActive {
				res.others[r.reason]++
			}
		}
		res.partnerMS = append(res.partnerMS, inv.partnerMS...)
		for _, ms := range inv.partnerMS {
			partnerTime += ms / 1000
		}
		slotTime += float64(c.concurrency) * inv.span.End.Sub(inv.span.Start).Seconds()
		records += inv.records
		if c.concurrency == 1 {
			at := make([]time.Time, len(inv.results))
			for i, r := range inv.results {
				at[i] = r.at
			}
			if ms, ok := Overheads(inv.span.Start, inv.span.End, at, inv.partnerMS); ok {
				res.overheadMS = append(res.overheadMS, ms...)
			} else {
				res.unsplit++
			}
		}
	}
	if len(res.spans) == 0 {
		return res, fmt.Errorf("load %s: no invocation in the measured window", c.partner)
	}
	res.slotUse = Ratio(partnerTime, slotTime)
	res.records = float64(records) / float64(len(res.spans))
	res.receives, res.handedBack = in.queue.counts()
	st, err := sb.stats(ctx)
	if err != nil {
		return res, err
	}
	res.requests, res.rateLimited = st.Requests[string(c.partner)], st.RateLimited[string(c.partner)]
	return res, nil
}

func maxOf(v []float64) float64 {
	m := v[0]
	for _, x := range v[1:] {
		m = max(m, x)
	}
	return m
}

// dedupeResult is what n findings of one token cost.
type dedupeResult struct {
	findings, results, cached int
	// calls is what the sandbox received; stats what the cache counted.
	calls int64
	stats verdictcache.Stats
}

// runDedupe sends n findings of one live token through one instance, in
// batches, and counts the partner calls the sandbox received.
func runDedupe(ctx context.Context, sb *sandboxProc, p finding.Partner, lim throttle.Options, concurrency, batch, n int, recheck bool) (dedupeResult, error) {
	res := dedupeResult{findings: n}
	fs, creds, err := newFindings(p, 1)
	if err != nil {
		return res, err
	}
	if err := sb.register(ctx, creds); err != nil {
		return res, err
	}
	in, err := newInstance(p, sb.env, lim, concurrency, batch)
	if err != nil {
		return res, err
	}
	for range n {
		findingSeq++
		f := fs[0]
		f.ID, f.Recheck = "f-"+strconv.Itoa(findingSeq), recheck
		b, err := body(f)
		if err != nil {
			return res, err
		}
		in.queue.add(b)
	}
	if err := sb.reset(ctx); err != nil {
		return res, err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for res.results < n {
		inv, ok, err := in.invoke(ctx, deadline)
		if err != nil {
			return res, err
		}
		if !ok {
			return res, fmt.Errorf("dedupe %s: %d of %d findings concluded before the deadline", p, res.results, n)
		}
		for _, r := range inv.results {
			res.results++
			if r.cached {
				res.cached++
			}
		}
	}
	st, err := sb.stats(ctx)
	if err != nil {
		return res, err
	}
	res.calls = st.Requests[string(p)]
	res.stats = in.cache.Stats()
	return res, nil
}
