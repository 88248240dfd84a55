package chaos

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/awstest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/esm"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/localrun"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/localstack"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
)

// queueEnv is an Env over bare queues of the shared moto_server, enough
// for the collector and the backlog (no functions run).
func queueEnv(t *testing.T, ids ...string) (*Env, map[string]localstack.Queue) {
	t.Helper()
	moto := awstest.Shared(t)
	c := sqs.NewFromConfig(moto.Config())
	queues := map[string]localstack.Queue{}
	prefix := "collector-" + randomHex(3) + "-"
	for _, id := range ids {
		out, err := c.CreateQueue(context.Background(), &sqs.CreateQueueInput{QueueName: aws.String(prefix + id)})
		if err != nil {
			t.Fatal(err)
		}
		queues[id] = localstack.Queue{LogicalID: id, Name: prefix + id, URL: aws.ToString(out.QueueUrl)}
	}
	stack := &localrun.Stack{SQS: c, Local: &localstack.Stack{Queues: queues}}
	return &Env{Ctx: context.Background(), Stack: stack, obs: newObservation("collector")}, queues
}

// TestCollectorReadsResultsAsTheyCome: the soak's collector takes results
// off the results queue while they are still being written, without the
// scenario stopping to drain it, and records each one into the observation.
func TestCollectorReadsResultsAsTheyCome(t *testing.T) {
	e, queues := queueEnv(t, "ResultsQueue")
	const n = 120
	for i := range n {
		e.obs.Expect[Key{"s", fmt.Sprint(i)}] = &Expectation{}
	}
	col := e.StartCollector(20 * time.Millisecond)
	defer col.Stop()
	for i := range n {
		body := fmt.Sprintf(`{"version":1,"scan_id":"s","finding_id":"%d","status":"unknown","reason":%q}`, i, finding.ReasonPartnerError)
		if _, err := e.Stack.SQS.SendMessage(e.Ctx, &sqs.SendMessageInput{QueueUrl: aws.String(queues["ResultsQueue"].URL), MessageBody: aws.String(body)}); err != nil {
			t.Fatal(err)
		}
	}
	// The queue empties by the collector's work alone.
	for deadline := time.Now().Add(time.Minute); ; {
		v, nv, _, err := esm.QueueDepth(e.Ctx, e.Stack.SQS, queues["ResultsQueue"].URL)
		if err != nil {
			t.Fatal(err)
		}
		if v+nv == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("results queue still holds %d visible, %d in flight: the collector does not drain it", v, nv)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if errs := col.Stop(); len(errs) > 0 {
		t.Errorf("drain errors: %v", errs)
	}
	if len(e.obs.Results) != n {
		t.Errorf("%d findings with a result recorded, want %d (problems: %v)", len(e.obs.Results), n, e.obs.Problems)
	}
	if len(e.obs.Unexpected) != 0 {
		t.Errorf("%d unexpected results", len(e.obs.Unexpected))
	}
}

// TestBacklogCountsPartnerQueues: the soak holds its sending while a
// partner queue or the results queue is long, not only the ingress queue:
// queues of hundreds made the local AWS CPU-bound.
func TestBacklogCountsPartnerQueues(t *testing.T) {
	e, queues := queueEnv(t, "IngressQueue", "AwsQueue", "GcpQueue", "ResultsQueue")
	for _, m := range []struct{ fn, q string }{{"DispatcherFunction", "IngressQueue"}, {"AwsFunction", "AwsQueue"}, {"GcpFunction", "GcpQueue"}} {
		e.Stack.Mappings = append(e.Stack.Mappings, &esm.Mapping{Name: m.fn, QueueURL: queues[m.q].URL})
	}
	b, err := e.backlog()
	if err != nil {
		t.Fatal(err)
	}
	if why, over := b.Over(BacklogLimits{}); over {
		t.Fatalf("empty queues are over the limits: %s", why)
	}
	sendN(t, e, queues["GcpQueue"].URL, 5)
	if b, err = e.backlog(); err != nil {
		t.Fatal(err)
	}
	if b.Ingress != 0 || b.Partner != 5 || b.PartnerQueue != "GcpFunction" {
		t.Errorf("backlog = %+v, want 5 on GcpFunction's queue and none on ingress", b)
	}
	if _, over := b.Over(BacklogLimits{Ingress: 20, Partner: 4, Results: 20}); !over {
		t.Error("5 messages on a partner queue are not over a partner limit of 4")
	}
	if why, over := b.Over(BacklogLimits{Ingress: 20, Partner: 5, Results: 20}); over {
		t.Errorf("5 messages are over a limit of 5: %s", why)
	}
	sendN(t, e, queues["ResultsQueue"].URL, 3)
	if b, err = e.backlog(); err != nil {
		t.Fatal(err)
	}
	if b.Results != 3 {
		t.Errorf("backlog = %+v, want 3 results", b)
	}
	if _, over := b.Over(BacklogLimits{Ingress: 20, Partner: 20, Results: 2}); !over {
		t.Error("3 results are not over a results limit of 2: a results queue left to grow is not held back")
	}
}

// TestProxyReusesConnections: the proxy keeps its connections to the
// local AWS for the next requests; with http.DefaultTransport's two idle
// connections per host every burst of the functions' calls opened new
// ones, each a new thread of moto_server.
func TestProxyReusesConnections(t *testing.T) {
	var opened atomic.Int64
	backend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond) // overlapping requests
		_, _ = w.Write([]byte("ok"))
	}))
	backend.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			opened.Add(1)
		}
	}
	backend.Start()
	defer backend.Close()
	p, err := StartProxy(backend.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 100}}
	const burst, bursts = 12, 5
	for range bursts {
		var wg sync.WaitGroup
		for range burst {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := client.Post(p.URL(), "application/x-amz-json-1.0", nil)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
			}()
		}
		wg.Wait()
	}
	// A burst may need a few more connections than the previous one left
	// idle, but connections are not opened anew for every burst.
	if n := opened.Load(); n > 2*burst {
		t.Errorf("the proxy opened %d connections to the backend for %d bursts of %d requests: it does not keep them", n, bursts, burst)
	}
}

// TestSamplerCountsObservedProcesses: a bootstrap killed before the
// sampler's next reading still counts as a process of its function, with
// its peak; the crash scenarios' "second bootstrap" check relies on it on
// a loaded machine, where a first invocation can end within 200 ms.
func TestSamplerCountsObservedProcesses(t *testing.T) {
	self := os.Getpid()
	// An emulator pid with no bootstrap below it, sampled once an hour:
	// only observe can report a process.
	s := startSampler(map[string]int{"AwsFunction": self}, map[string]int{"AwsFunction": 128}, time.Hour)
	s.observe("AwsFunction", []int{self})
	s.observe("NoSuchFunction", []int{self})
	mem := s.Stop()
	if len(mem) != 1 || mem[0].Function != "AwsFunction" {
		t.Fatalf("memory = %+v, want AwsFunction only", mem)
	}
	if mem[0].Processes != 1 || mem[0].PeakKB <= 0 {
		t.Errorf("AwsFunction: %d processes, peak %d kB; want the observed process with its peak", mem[0].Processes, mem[0].PeakKB)
	}
}

// sendN puts n messages on the queue at url.
func sendN(t *testing.T, e *Env, url string, n int) {
	t.Helper()
	for i := range n {
		if _, err := e.Stack.SQS.SendMessage(e.Ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
}
