package pipeline_test

import (
	"context"
	"encoding/json"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/registry"
	"io"
	"log/slog"
	"net/url"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/sandbox"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/logging"
	awspartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/aws"
	gcppartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/gcp"
	postmanpartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/postman"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/pipeline"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/throttle"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verdictcache"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

// The benchmarks measure the handler's own cost per batch on the real code
// path: pipeline.Worker.Handle with verdictcache(throttle(partner verifier))
// as PartnerWorkerFromEnv builds it, against the partner doubles in this process
// with no injected latency, so what is measured is CPU (handler, HTTP over
// loopback, and the double answering). Latency, rate limits and the limit
// min(rate, concurrency ÷ latency) are cmd/bench's business (make bench).

// benchMessages makes message ids unique across iterations: the worker
// skips ids that already completed in this process.
var benchMessages atomic.Int64

// benchSink counts results and keeps nothing.
type benchSink struct{ n atomic.Int64 }

func (s *benchSink) Send(_ context.Context, bodies [][]byte) error {
	s.n.Add(int64(len(bodies)))
	return nil
}

// benchWorker is one instance of a partner function against the doubles.
type benchWorker struct {
	sb      *sandbox.Sandbox
	partner finding.Partner
	worker  *pipeline.Worker
	sink    *benchSink
}

func newBenchWorker(b *testing.B, p finding.Partner, concurrency int) *benchWorker {
	b.Helper()
	sb, err := sandbox.Start(sandbox.Addrs{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(sb.Close)
	env := sb.Env()
	u := func(name string) *url.URL {
		v, err := url.Parse(env[name])
		if err != nil {
			b.Fatal(err)
		}
		return v
	}
	var v verify.Verifier
	switch p {
	case finding.PartnerAWS:
		v, err = awspartner.New(partnerhttp.Options{Endpoints: []*url.URL{u(awspartner.EndpointEnv)}})
	case finding.PartnerGCP:
		v, err = gcppartner.New(partnerhttp.Options{Endpoints: []*url.URL{u(gcppartner.EnvDiscovery), u(gcppartner.EnvOAuth)}})
	case finding.PartnerPostman:
		v, err = postmanpartner.New(partnerhttp.Options{Endpoints: []*url.URL{u(postmanpartner.EnvEndpoint)}})
	default: // later partners: their registry definition, pointed at the sandbox
		def, _ := registry.Lookup(string(p))
		var o partnerhttp.Options
		if o, err = registry.Options(def, func(k string) string { return env[k] }); err == nil {
			v, err = def.New(o)
		}
	}
	if err != nil {
		b.Fatal(err)
	}
	// A rate far above what the loop reaches: the limiter is on the path
	// but never makes a call wait.
	limited := throttle.New(v, p, throttle.Options{RatePerSecond: 1e9, Burst: 1 << 20})
	bw := &benchWorker{sb: sb, partner: p, sink: &benchSink{}}
	bw.worker, err = pipeline.NewWorker(pipeline.WorkerConfig{
		Common: pipeline.Common{
			Results:     bw.sink,
			Gate:        func(context.Context, finding.Project, finding.Partner) (bool, error) { return true, nil },
			Logger:      logging.New(io.Discard, slog.LevelInfo),
			MetricsOut:  io.Discard,
			Concurrency: concurrency,
		},
		Partner:  p,
		Verifier: verdictcache.New(limited, p, verdictcache.Options{}),
	})
	if err != nil {
		b.Fatal(err)
	}
	return bw
}

// findings returns n findings of live generated tokens, registered in the doubles.
func (bw *benchWorker) findings(b *testing.B, n int) []finding.Finding {
	b.Helper()
	out, creds, err := sandbox.LiveFindings(bw.partner, n, 0)
	if err != nil {
		b.Fatal(err)
	}
	if err := bw.sb.Register(creds); err != nil {
		b.Fatal(err)
	}
	return out
}

// events packs findings, one per record, into SQS events of batch records.
func benchEvents(b *testing.B, fs []finding.Finding, batch int) []events.SQSEvent {
	b.Helper()
	var out []events.SQSEvent
	for i := 0; i < len(fs); i += batch {
		var ev events.SQSEvent
		for _, f := range fs[i:min(i+batch, len(fs))] {
			body, err := json.Marshal(finding.Batch{Version: 1, ScanID: "bench", Project: finding.Project{ID: 1, FullPath: "gitlab-org/bench"}, Findings: []finding.Finding{f}})
			if err != nil {
				b.Fatal(err)
			}
			ev.Records = append(ev.Records, events.SQSMessage{
				MessageId: "m-" + strconv.FormatInt(benchMessages.Add(1), 10), Body: string(body),
				EventSource: "aws:sqs", Attributes: map[string]string{"ApproximateReceiveCount": "1"},
			})
		}
		out = append(out, ev)
	}
	return out
}

// runBatches invokes the handler once per event and fails on any record
// that did not end in a result.
func (bw *benchWorker) runBatches(b *testing.B, evs []events.SQSEvent, records int) {
	b.Helper()
	before := bw.sink.n.Load()
	b.ResetTimer()
	b.StartTimer() // a previous runBatches left it stopped
	for _, ev := range evs {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		resp, err := bw.worker.Handle(ctx, ev)
		cancel()
		if err != nil || len(resp.BatchItemFailures) > 0 {
			b.Fatalf("handle: error %v, %d failed records", err, len(resp.BatchItemFailures))
		}
	}
	b.StopTimer()
	if got := bw.sink.n.Load() - before; got != int64(records) {
		b.Fatalf("%d results for %d records", got, records)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(records), "ns/verification")
}

func benchPartners(b *testing.B, run func(b *testing.B, p finding.Partner)) {
	for _, p := range registry.Names() {
		b.Run(string(p), func(b *testing.B) { run(b, p) })
	}
}

// BenchmarkWorkerBatch10 is one invocation of 10 records with distinct live
// tokens, verified concurrently (Concurrency 10): one partner call each.
func BenchmarkWorkerBatch10(b *testing.B) {
	benchPartners(b, func(b *testing.B, p finding.Partner) {
		bw := newBenchWorker(b, p, 10)
		fs := bw.findings(b, 10*b.N)
		bw.runBatches(b, benchEvents(b, fs, 10), len(fs))
	})
}

// BenchmarkWorkerBatch10Serial is BenchmarkWorkerBatch10 one record at a time (Concurrency 1).
func BenchmarkWorkerBatch10Serial(b *testing.B) {
	benchPartners(b, func(b *testing.B, p finding.Partner) {
		bw := newBenchWorker(b, p, 1)
		fs := bw.findings(b, 10*b.N)
		bw.runBatches(b, benchEvents(b, fs, 10), len(fs))
	})
}

// BenchmarkWorkerBatch10Cached is an invocation of 10 records of one token
// whose verdict is cached: the handler's cost without a partner call.
func BenchmarkWorkerBatch10Cached(b *testing.B) {
	benchPartners(b, func(b *testing.B, p finding.Partner) {
		bw := newBenchWorker(b, p, 10)
		one := bw.findings(b, 1)[0]
		warm := benchEvents(b, []finding.Finding{one}, 1)
		bw.runBatches(b, warm, 1)
		fs := make([]finding.Finding, 10*b.N)
		for i := range fs {
			fs[i] = one
			fs[i].ID = "f-" + strconv.Itoa(i)
		}
		bw.runBatches(b, benchEvents(b, fs, 10), len(fs))
	})
}

// BenchmarkWorkerBatch1 is an invocation of one record: the per-invocation
// cost (metrics flush, batch bookkeeping) is not shared.
func BenchmarkWorkerBatch1(b *testing.B) {
	benchPartners(b, func(b *testing.B, p finding.Partner) {
		bw := newBenchWorker(b, p, 10)
		fs := bw.findings(b, b.N)
		bw.runBatches(b, benchEvents(b, fs, 1), len(fs))
	})
}
