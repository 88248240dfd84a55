package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/awstest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/localrun"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/samtemplate"
)

// pipelineFlags are the whole-pipeline sections' options.
type pipelineFlags struct {
	skipCost, skipLatency bool
	costFindings          int
	costTimeout           time.Duration
	latencyRate           float64
	latencyDuration       time.Duration
	latencyScan           int
	latencyWindowZero     bool
	costBacklog           bool
	costWindowZero        bool
	// log is a file for every line the stacks write (empty: none).
	log string
}

// pipelineResults are what the whole-pipeline sections measured.
type pipelineResults struct {
	cost    *costSection
	latency []*latencyRun
}

// pipelineSections runs the cost and latency sections on a moto_server of
// their own, building the functions once into tmp.
func pipelineSections(ctx context.Context, o options, tmp string, w io.Writer) (*pipelineResults, error) {
	res := &pipelineResults{}
	pf := o.pipeline
	if pf.skipCost && pf.skipLatency {
		return res, nil
	}
	tpl, err := samtemplate.Load(filepath.Join(o.root, "template.yaml"))
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(tmp, "pipeline-build")
	started := time.Now()
	if err := localrun.Build(ctx, o.root, dir, localrun.Functions(tpl)...); err != nil {
		return nil, err
	}
	moto, err := awstest.Start(ctx)
	if err != nil {
		return nil, err
	}
	defer moto.Stop()
	fmt.Fprintf(w, "whole-pipeline sections: functions built and moto_server started in %s\n\n", time.Since(started).Round(100*time.Millisecond))
	base := pipeOptions{root: o.root, buildDir: dir, endpoint: moto.Endpoint, latency: o.latency, jitter: o.jitter}
	if pf.log != "" {
		f, err := os.Create(pf.log)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		var mu sync.Mutex
		base.log = func(source, line string) {
			mu.Lock()
			defer mu.Unlock()
			fmt.Fprintf(f, "%s %s %s\n", time.Now().Format("15:04:05.000"), source, line)
		}
	}
	if !pf.skipCost {
		cs := &costSection{}
		if cs.batched, err = runCost(ctx, base, pf.costFindings, paced, pf.costTimeout); err != nil {
			return nil, fmt.Errorf("cost, batched: %w", err)
		}
		if cs.unbatched, err = runCost(ctx, base, pf.costFindings, unbatched, pf.costTimeout); err != nil {
			return nil, fmt.Errorf("cost, unbatched: %w", err)
		}
		if pf.costBacklog {
			if cs.backlog, err = runCost(ctx, base, pf.costFindings, backlog, pf.costTimeout); err != nil {
				return nil, fmt.Errorf("cost, backlog: %w", err)
			}
		}
		if pf.costWindowZero {
			if cs.windowZero, err = runCost(ctx, base, pf.costFindings, pacedWindowZero, pf.costTimeout); err != nil {
				return nil, fmt.Errorf("cost, window 0: %w", err)
			}
		}
		res.cost = cs
		printCost(w, *cs, o)
	}
	if !pf.skipLatency {
		for _, zero := range []bool{false, true} {
			if zero && !pf.latencyWindowZero {
				continue
			}
			r, err := runLatency(ctx, base, pf.latencyRate, pf.latencyDuration, pf.latencyScan, zero)
			if err != nil {
				return nil, fmt.Errorf("latency: %w", err)
			}
			res.latency = append(res.latency, r)
		}
		printLatency(w, res.latency, o)
	}
	return res, nil
}

// printPipelineTargets ends the targets with the whole-pipeline ones.
func printPipelineTargets(w io.Writer, r *pipelineResults) {
	if r == nil {
		r = &pipelineResults{}
	}
	costTarget(w, r.cost)
	latencyTarget(w, r.latency)
}
