package main

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/awsmeter"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/samtemplate"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/registry"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9*math.Max(1, math.Abs(b)) }

func TestCost(t *testing.T) {
	in := CostInput{
		Findings: 100,
		Counts: map[awsmeter.Key]awsmeter.Count{
			{Caller: callerScanner, Service: "sqs", Operation: "SendMessage"}:          {Requests: 5, Units: 10},
			{Caller: callerPollers, Service: "sqs", Operation: "ReceiveMessage"}:       {Requests: 50, Empty: 30, Units: 50},
			{Caller: callerPartners, Service: "sqs", Operation: "SendMessageBatch"}:    {Requests: 100, Units: 100},
			{Caller: callerPartners, Service: "ssm", Operation: "GetParameter"}:        {Requests: 4, Units: 4},
			{Caller: callerConsumer, Service: "sqs", Operation: "ReceiveMessage"}:      {Requests: 12, Empty: 2, Units: 12},
			{Caller: callerDispatcher, Service: "xray", Operation: "PutTraceSegments"}: {Requests: 1, Units: 1},
		},
		Invocations: map[string]int{dispatcherID: 10, "AwsFunction": 20},
		BilledMS:    map[string]float64{dispatcherID: 1000, "AwsFunction": 4000},
		MemoryMB:    map[string]int{dispatcherID: 256, "AwsFunction": 128},
		LogBytes:    1 << 20,
		Excluded:    map[string]bool{callerConsumer: true},
	}
	p := Prices{SQSPerMillion: 0.4, LambdaRequestsPerMillion: 0.2, LambdaGBSecond: 0.00001, LogsPerGB: 0.5, SSMPerMillion: 0.05}
	f := Cost(in, p)
	// Non-empty SQS requests: 5 + 20 + 100 = 125; billed chunks 10 + 20 + 100 = 130.
	for name, c := range map[string][2]float64{
		"SQSRequests": {f.SQSRequests, 1.25},
		"SQSUnits":    {f.SQSUnits, 1.30},
		"Empty":       {f.Empty, 0.30},
		"Excluded":    {f.Excluded, 0.10},
		"SSMRequests": {f.SSMRequests, 0.04},
		"Other":       {f.Other, 0.01},
		"Invocations": {f.Invocations, 300},
		// GB-s: 1 s × 0.25 GB + 4 s × 0.125 GB = 0.75 for 100 findings.
		"GBSeconds":          {f.GBSeconds, 7.5},
		"LogBytes":           {f.LogBytes, 10485.76},
		"SQSCost":            {f.SQSCost, 0.52},
		"LambdaRequestCost":  {f.LambdaRequestCost, 0.06},
		"LambdaDurationCost": {f.LambdaDurationCost, 0.075},
		"LogsCost":           {f.LogsCost, 10485.76 * 1e6 / (1 << 30) * 0.5},
		"SSMCost":            {f.SSMCost, 0.002},
	} {
		if !near(c[0], c[1]) {
			t.Errorf("%s = %v, want %v", name, c[0], c[1])
		}
	}
	if want := f.SQSCost + f.LambdaRequestCost + f.LambdaDurationCost + f.LogsCost + f.SSMCost; !near(f.Total(), want) {
		t.Errorf("Total = %v, want %v", f.Total(), want)
	}
}

func TestIdleSQSRequests(t *testing.T) {
	// 13 sources × 5 pollers × 3 a minute × 43200 minutes.
	if got := IdleSQSRequests(13, 5); !near(got, 8424000) {
		t.Errorf("IdleSQSRequests(13, 5) = %v, want 8424000", got)
	}
}

func TestAPIRows(t *testing.T) {
	rows := APIRows(map[awsmeter.Key]awsmeter.Count{
		{Caller: callerPollers, Service: "sqs", Operation: "ReceiveMessage"}:    {Requests: 30, Empty: 10},
		{Caller: callerConsumer, Service: "sqs", Operation: "ReceiveMessage"}:   {Requests: 5, Empty: 5},
		{Caller: callerPartners, Service: "sqs", Operation: "SendMessageBatch"}: {Requests: 10},
		{Caller: callerPartners, Service: "ssm", Operation: "GetParameter"}:     {Requests: 1},
	}, 10)
	if len(rows) != 3 || rows[0].Operation != "ReceiveMessage" || rows[1].Operation != "SendMessageBatch" || rows[2].Service != "ssm" {
		t.Fatalf("rows %+v", rows)
	}
	if r := rows[0]; !near(r.ByCaller[callerPollers], 2) || r.ByCaller[callerConsumer] != 0 || !near(r.Empty, 1.5) {
		t.Errorf("ReceiveMessage row %+v", r)
	}
}

func TestSegments(t *testing.T) {
	s, ok := Segments(1000, 1010, 1030, 1100, 1600, 1710, 1720, 1719)
	if !ok {
		t.Fatal("not ok with every hop")
	}
	want := LatencySegments{Total: 720, Arrival: 719, IngressWait: 10, Dispatcher: 20, PartnerQueueWait: 570, UntilPolled: 70,
		BatchWindow: 500, PartnerCall: 110, ResultSend: 10}
	if s != want {
		t.Errorf("Segments = %+v, want %+v", s, want)
	}
	if sum := s.IngressWait + s.Dispatcher + s.PartnerQueueWait + s.PartnerCall + s.ResultSend; sum != s.Total {
		t.Errorf("parts add up to %v, total %v", sum, s.Total)
	}
	if s, ok := Segments(1000, 1010, 1030, 1100, 1600, 1710, 1720, 0); !ok || !math.IsNaN(s.Arrival) {
		t.Errorf("without SentTimestamp: ok %v, arrival %v", ok, s.Arrival)
	}
	if _, ok := Segments(1000, 1010, 0, 1100, 1600, 1710, 1720, 1719); ok {
		t.Error("ok without the forward")
	}
}

func TestPartnerP95(t *testing.T) {
	if got := partnerP95(100e6, 20e6); !near(got, 118) {
		t.Errorf("partnerP95(100ms, 20ms) = %v, want 118", got)
	}
}

func TestBilledDuration(t *testing.T) {
	l := newInvocationLog()
	l.line("AwsFunction", "REPORT RequestId: 7d3c\tDuration: 12.34 ms\tBilled Duration: 13 ms\tMemory Size: 128 MB\tMax Memory Used: 30 MB\t")
	l.line("AwsFunction", `{"level":"INFO","msg":"REPORT RequestId: x Billed Duration: 99 ms"}`)
	l.line("AwsFunction", "06 Dec 2026 18:01:41,748 [DEBUG] (rapid) REPORT RequestId: x\tBilled Duration: 99 ms")
	if l.billedMS["AwsFunction"] != 13 || l.reports["AwsFunction"] != 1 {
		t.Errorf("billed %v ms from %d REPORT lines, want 13 from 1", l.billedMS["AwsFunction"], l.reports["AwsFunction"])
	}
	// The emulator's own debug line is not the function's log.
	want := int64(len("REPORT RequestId: 7d3c\tDuration: 12.34 ms\tBilled Duration: 13 ms\tMemory Size: 128 MB\tMax Memory Used: 30 MB\t") + 1 +
		len(`{"level":"INFO","msg":"REPORT RequestId: x Billed Duration: 99 ms"}`) + 1)
	if got := l.logBytes.Load(); got != want {
		t.Errorf("log bytes %d, want %d", got, want)
	}
}

// Every partner of the registry has a function the bench can configure.
func TestPartnerFunctionIDs(t *testing.T) {
	root, err := samtemplate.FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := samtemplate.Load(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range registry.Names() {
		f, ok := tpl.Functions[partnerFunction(p)]
		if !ok || len(f.SQSEvents) == 0 {
			t.Errorf("%s: no function %s with an SQS event source", p, partnerFunction(p))
		}
	}
	// windowZero is a deployable setting: every event source without a
	// window, and no batch above the 10 SQS then allows.
	w0, err := samtemplate.Load(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range windowZero {
		if err := w0.SetParameter(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if got := settingName(w0); got != batchingWindowParam+"=0" {
		t.Errorf("settingName = %q, want %s=0", got, batchingWindowParam)
	}
	for id, f := range w0.Functions {
		for _, e := range f.SQSEvents {
			if e.MaximumBatchingWindow != 0 || e.BatchSize > 10 {
				t.Errorf("%s: BatchSize %d, window %d with %v: want window 0 and at most 10 records", id, e.BatchSize, e.MaximumBatchingWindow, windowZero)
			}
		}
	}
	if got, want := settingName(tpl), batchingWindowParam+"=1 (default)"; got != want {
		t.Errorf("settingName = %q, want %q", got, want)
	}
	if err := batchSizeOne(tpl); err != nil {
		t.Fatal(err)
	}
	for id, f := range tpl.Functions {
		for _, e := range f.SQSEvents {
			if e.BatchSize != 1 {
				t.Errorf("%s: BatchSize %d after the unbatched override", id, e.BatchSize)
			}
		}
	}
}

func TestResultsTogether(t *testing.T) {
	r := &costRun{
		rows: []APIRow{
			{Service: "sqs", Operation: "SendMessageBatch", ByCaller: map[string]float64{callerPartners: 1, callerDispatcher: 0.3}},
			{Service: "sqs", Operation: "ReceiveMessage", ByCaller: map[string]float64{callerPollers: 0.2}},
		},
		in:  CostInput{Invocations: map[string]int{dispatcherID: 25, "AwsFunction": 100, "GcpFunction": 50}},
		fig: CostFigures{Findings: 1000, SQSRequests: 1.5},
	}
	est, sends := resultsTogether(r)
	// 1.5 − 1 (a send per finding) + 0.15 (a send per partner invocation).
	if !near(sends, 1) || !near(est, 0.65) {
		t.Errorf("resultsTogether = %v, %v; want 0.65, 1", est, sends)
	}
}

func TestPartnerLatencies(t *testing.T) {
	for line, want := range map[string][]float64{
		`{"Partner":"aws","PartnerAPILatency":[98.5,101],"_aws":{}}`: {98.5, 101},
		`{"Partner":"aws","PartnerAPILatency":120.25}`:               {120.25},
		`{"Partner":"aws","PartnerAPIRequests":3}`:                   nil,
		`REPORT RequestId: x PartnerAPILatency`:                      nil,
	} {
		got := PartnerLatencies(line)
		if len(got) != len(want) {
			t.Errorf("%s: %v, want %v", line, got, want)
			continue
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%s: %v, want %v", line, got, want)
			}
		}
	}
}

// The cost target is met only when every batched workload measured keeps
// within it, and the line says which one did not.
func TestCostTargetNeedsEveryBatchedWorkload(t *testing.T) {
	run := func(name string, sqs float64) *costRun {
		return &costRun{name: name, fig: CostFigures{SQSRequests: sqs, Findings: 2000}}
	}
	for _, tc := range []struct {
		paced, backlog float64 // 0: not measured
		want           string
	}{
		{0.95, 0, "): met: paced 0.950 (met), backlog not measured"},
		{1.02, 0, "): MISSED: paced 1.020 (MISSED)"},
		{0.95, 0.70, "): met: paced 0.950 (met), backlog 0.700 (met)"},
		{1.02, 0.70, "): MISSED: paced 1.020 (MISSED), backlog 0.700 (met)"},
		{0.95, 1.10, "): MISSED: paced 0.950 (met), backlog 1.100 (MISSED)"},
	} {
		cs := &costSection{batched: run("batched", tc.paced), unbatched: run("unbatched", 7)}
		if tc.backlog > 0 {
			cs.backlog = run("backlog", tc.backlog)
		}
		var out strings.Builder
		costTarget(&out, cs)
		if !strings.Contains(out.String(), tc.want) {
			t.Errorf("paced %.2f, backlog %.2f: %q, want it to contain %q", tc.paced, tc.backlog, out.String(), tc.want)
		}
	}
}

// The window-0 run's cost is shown beside the target, not counted in it:
// that setting serves the latency target.
func TestCostTargetShowsWindowZeroApart(t *testing.T) {
	run := func(name string, sqs float64) *costRun {
		return &costRun{name: name, fig: CostFigures{SQSRequests: sqs, Findings: 2000}}
	}
	cs := &costSection{batched: run("batched", 0.58), unbatched: run("unbatched", 7), windowZero: run("window 0", 1.27)}
	var out strings.Builder
	costTarget(&out, cs)
	for _, want := range []string{"): met: paced 0.580 (met)", "; with BatchingWindowInSeconds=0 (the setting that serves latency, not this target) paced 1.270 (MISSED)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("%q, want it to contain %q", out.String(), want)
		}
	}
}

// The latency target is met when one batching window setting keeps within
// it; the line names that setting, what it costs, and where a missing
// setting's time goes.
func TestLatencyTargetNamesTheSettingThatMeetsIt(t *testing.T) {
	run := func(name string, totalMS float64, sqs float64) *latencyRun {
		r := &latencyRun{name: name, partnerP95: 120, measuredPartnerP95: math.NaN(), cost: CostFigures{SQSRequests: sqs}}
		for range 100 {
			r.segs = append(r.segs, LatencySegments{Total: totalMS, Arrival: totalMS, IngressWait: 5, Dispatcher: 15, PartnerQueueWait: totalMS - 135, PartnerCall: 105, ResultSend: 10})
		}
		return r
	}
	for _, tc := range []struct {
		runs []*latencyRun
		want []string
	}{
		{[]*latencyRun{run("W=1 (default)", 1100, 3.8), run("W=0", 165, 4.6)},
			[]string{"= 370 ms: met: with W=1 (default): 1100 ms (MISSED, 3.80 SQS requests per finding at this load), p95 of the parts:", "; with W=0: 165 ms (met, 4.60 SQS"}},
		{[]*latencyRun{run("W=1 (default)", 1100, 3.8)}, []string{"= 370 ms: MISSED: with W=1 (default): 1100 ms (MISSED"}},
		{[]*latencyRun{run("W=1 (default)", 1100, 3.8), run("W=0", 400, 4.6)}, []string{": MISSED: with", "; with W=0: 400 ms (MISSED"}},
		{[]*latencyRun{run("W=1 (default)", 300, 3.8)}, []string{": met: with W=1 (default): 300 ms (met, 3.80"}},
	} {
		var out strings.Builder
		latencyTarget(&out, tc.runs)
		for _, want := range tc.want {
			if !strings.Contains(out.String(), want) {
				t.Errorf("%q, want it to contain %q", out.String(), want)
			}
		}
	}
}
