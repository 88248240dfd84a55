package main

import (
	"math"
	"sort"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/awsmeter"
)

// Prices are the published us-east-1 list prices the cost section uses,
// after free tiers (assumptions: docs/benchmarks.md names their source and
// the date they were read).
type Prices struct {
	// SQSPerMillion is standard-queue requests (64 KiB chunks), per million.
	SQSPerMillion float64
	// LambdaRequestsPerMillion is invocations, per million.
	LambdaRequestsPerMillion float64
	// LambdaGBSecond is arm64 duration, per GB-second (first tier).
	LambdaGBSecond float64
	// LogsPerGB is CloudWatch Logs ingestion (standard class), per GB.
	LogsPerGB float64
	// SSMPerMillion is GetParameter of standard parameters at standard
	// throughput: free.
	SSMPerMillion float64
}

// ListPrices are the prices read on PricesDate.
var ListPrices = Prices{SQSPerMillion: 0.40, LambdaRequestsPerMillion: 0.20, LambdaGBSecond: 0.0000133334, LogsPerGB: 0.50, SSMPerMillion: 0}

// PricesDate is when ListPrices were checked.
const PricesDate = "2026-12-06"

// CostInput is what one whole-pipeline run measured.
type CostInput struct {
	Findings int
	// Counts are the meter's counts of the run.
	Counts map[awsmeter.Key]awsmeter.Count
	// Invocations, BilledMS and MemoryMB by function logical id.
	Invocations map[string]int
	BilledMS    map[string]float64
	MemoryMB    map[string]int
	// LogBytes is every line the functions wrote (logs and EMF records).
	LogBytes int64
	// Excluded callers are counted apart, outside the pipeline's cost (the
	// results consumer is the integrator's, not the pipeline's).
	Excluded map[string]bool
}

// CostFigures are a run's figures per finding, per 1000 and per million.
type CostFigures struct {
	Findings int
	// SQSRequests is every SQS request of the pipeline per finding but
	// empty receives; Empty the empty receives per finding; SQSUnits the
	// billed 64 KiB chunks of the non-empty requests per finding.
	SQSRequests, Empty, SQSUnits float64
	// SSMRequests and Other are per finding.
	SSMRequests, Other float64
	// Excluded is the excluded callers' SQS requests per finding.
	Excluded float64
	// Invocations and GBSeconds per 1000 findings.
	Invocations, GBSeconds float64
	// LogBytes per finding.
	LogBytes float64
	// Cost per million findings, by part, in dollars.
	SQSCost, LambdaRequestCost, LambdaDurationCost, LogsCost, SSMCost float64
}

// Total is the cost per million findings.
func (c CostFigures) Total() float64 {
	return c.SQSCost + c.LambdaRequestCost + c.LambdaDurationCost + c.LogsCost + c.SSMCost
}

// Cost turns a run's measurements into CostFigures at prices p. Empty
// receives are left out of SQSRequests and of the cost: the local event
// source's polling (1 s long polls, short polls inside a batching window)
// is not Lambda's, whose idle pollers are a fixed cost (IdleSQSRequests).
func Cost(in CostInput, p Prices) CostFigures {
	n := float64(max(in.Findings, 1))
	var f CostFigures
	f.Findings = in.Findings
	var units float64
	for k, c := range in.Counts {
		switch {
		case in.Excluded[k.Caller]:
			if k.Service == "sqs" {
				f.Excluded += float64(c.Requests - c.Empty)
			}
		case k.Service == "sqs":
			f.SQSRequests += float64(c.Requests - c.Empty)
			f.Empty += float64(c.Empty)
			// An empty answer is one chunk.
			units += float64(c.Units - c.Empty)
		case k.Service == "ssm":
			f.SSMRequests += float64(c.Requests)
		default:
			f.Other += float64(c.Requests)
		}
	}
	f.SQSRequests /= n
	f.Empty /= n
	f.SQSUnits = units / n
	f.SSMRequests /= n
	f.Other /= n
	f.Excluded /= n
	var inv, gbs float64
	for id, k := range in.Invocations {
		inv += float64(k)
		gbs += in.BilledMS[id] / 1000 * float64(in.MemoryMB[id]) / 1024
	}
	f.Invocations = inv / n * 1000
	f.GBSeconds = gbs / n * 1000
	f.LogBytes = float64(in.LogBytes) / n
	const million = 1e6
	f.SQSCost = f.SQSUnits * p.SQSPerMillion
	f.SSMCost = f.SSMRequests * p.SSMPerMillion
	f.LambdaRequestCost = inv / n * p.LambdaRequestsPerMillion
	f.LambdaDurationCost = gbs / n * million * p.LambdaGBSecond
	f.LogsCost = f.LogBytes * million / (1 << 30) * p.LogsPerGB
	return f
}

// IdleSQSRequests is what Lambda's pollers ask of SQS in a month while
// every queue is empty, as assumed: pollers long-poll for 20 s, so each
// makes one ReceiveMessage per 20 s.
func IdleSQSRequests(queues, pollersPerQueue int) float64 {
	const monthSeconds = 30 * 24 * 3600
	return float64(queues*pollersPerQueue) * monthSeconds / 20
}

// APIRow is one operation's requests per finding, by caller.
type APIRow struct {
	Service, Operation string
	// ByCaller are requests per finding (empty receives apart).
	ByCaller map[string]float64
	// Empty is empty receives per finding (all callers).
	Empty float64
}

// APIRows groups a run's counts by service and operation.
func APIRows(counts map[awsmeter.Key]awsmeter.Count, findings int) []APIRow {
	n := float64(max(findings, 1))
	rows := map[[2]string]*APIRow{}
	for k, c := range counts {
		id := [2]string{k.Service, k.Operation}
		r := rows[id]
		if r == nil {
			r = &APIRow{Service: k.Service, Operation: k.Operation, ByCaller: map[string]float64{}}
			rows[id] = r
		}
		r.ByCaller[k.Caller] += float64(c.Requests-c.Empty) / n
		r.Empty += float64(c.Empty) / n
	}
	out := make([]APIRow, 0, len(rows))
	for _, r := range rows {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Service != out[j].Service {
			return out[i].Service < out[j].Service
		}
		return out[i].Operation < out[j].Operation
	})
	return out
}

// LatencySegments are a finding's time from scan to verdict, cut at the
// hops (milliseconds). ok is false when a hop is missing.
type LatencySegments struct {
	Total, Arrival                             float64
	IngressWait, Dispatcher                    float64
	PartnerQueueWait, UntilPolled, BatchWindow float64
	PartnerCall, ResultSend                    float64
}

// Segments cuts one finding's journey: sent (the scanner's SendMessage
// began), dispatched (the dispatcher invocation carrying the scan began),
// forwarded (the dispatcher's send to the partner queue began), polled (a
// poller received it from the partner queue), invoked (the partner
// invocation carrying it began), resultSend and resultSent (the partner
// function's send of the result began and was answered), arrivedMS (the
// result message's SentTimestamp, ms since the epoch).
func Segments(sent, dispatched, forwarded, polled, invoked, resultSend, resultSent msTime, arrivedMS int64) (LatencySegments, bool) {
	for _, t := range []msTime{sent, dispatched, forwarded, polled, invoked, resultSend, resultSent} {
		if t == 0 {
			return LatencySegments{}, false
		}
	}
	s := LatencySegments{
		Total:            float64(resultSent - sent),
		IngressWait:      float64(dispatched - sent),
		Dispatcher:       float64(forwarded - dispatched),
		PartnerQueueWait: float64(invoked - forwarded),
		UntilPolled:      float64(polled - forwarded),
		BatchWindow:      float64(invoked - polled),
		PartnerCall:      float64(resultSend - invoked),
		ResultSend:       float64(resultSent - resultSend),
		Arrival:          math.NaN(),
	}
	if arrivedMS > 0 {
		s.Arrival = float64(arrivedMS) - float64(sent)
	}
	return s, true
}

// msTime is a moment in milliseconds since the epoch, with a fraction.
type msTime float64
