package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/awsmeter"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/awstest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/esm"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/lambdalocal"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/localrun"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/sandbox"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/samtemplate"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/featureflag"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/registry"
)

// The callers the meter tells apart, one port each.
const (
	callerScanner    = "scanner"
	callerDispatcher = "dispatcher function"
	callerPartners   = "partner functions"
	callerPollers    = "event source pollers"
	callerConsumer   = "results consumer"
	dispatcherID     = "DispatcherFunction"
	benchFlag        = "secret_detection_partner_token_verification"
)

// batchingWindowParam is the template parameter every event source takes
// its MaximumBatchingWindowInSeconds from.
const batchingWindowParam = "BatchingWindowInSeconds"

// windowZero is the deployable setting that serves latency: every event
// source invokes as soon as it has records, partner batches cut to 10.
var windowZero = map[string]string{batchingWindowParam: "0"}

// settingName names the template's batching window setting of a stack,
// e.g. "BatchingWindowInSeconds=1 (default)".
func settingName(t *samtemplate.Template) string {
	v, err := t.ParameterValue(batchingWindowParam)
	if err != nil {
		return "template (" + err.Error() + ")"
	}
	name := batchingWindowParam + "=" + v
	if p := t.Parameters[batchingWindowParam]; p != nil && p.HasDefault && p.Default == v {
		name += " (default)"
	}
	return name
}

// pipelineRate is every partner function's PARTNER_RATE_PER_SECOND (and
// burst) in the whole-pipeline runs: the doubles enforce no budget, and a
// partner's published rate (SendGrid's 0.5/s) would make its queue the
// measurement instead of the pipeline.
const (
	pipelineRate  = "100"
	pipelineBurst = "20"
)

// pipeOptions start one whole local stack for a cost or latency run.
type pipeOptions struct {
	root, buildDir, endpoint, prefix string
	latency, jitter                  time.Duration
	// params override template parameters, as a deploy's
	// --parameter-overrides would (windowZero).
	params map[string]string
	// adjust changes the template before the stack is created (batch size
	// 1 for the unbatched design).
	adjust func(*samtemplate.Template) error
	// env is set in every function's environment (SEND_LINGER=0 for
	// the unbatched design).
	env map[string]string
	// log, when set, receives every line the functions and the event
	// source mappings write, with its source.
	log func(source, line string)
}

// pipe is a running whole-pipeline stack behind a counting proxy.
type pipe struct {
	stack    *localrun.Stack
	sb       *sandbox.Sandbox
	meter    *awsmeter.Meter
	scanner  *sqs.Client
	consumer *sqs.Client
	tr       *tracer
	runs     *invocationLog
	ingress  string
	results  string
	partnerQ map[string]bool
}

// startPipe starts the doubles (with latency ± jitter on every partner),
// the meter, the stack with every AWS call of the functions, the pollers,
// the scanner and the consumer through the meter, and turns the flag on.
func startPipe(ctx context.Context, o pipeOptions) (*pipe, error) {
	p := &pipe{tr: newTracer(), runs: newInvocationLog(), partnerQ: map[string]bool{}}
	ok := false
	defer func() {
		if !ok {
			p.stop()
		}
	}()
	var err error
	if p.sb, err = sandbox.Start(sandbox.Addrs{}); err != nil {
		return nil, err
	}
	for _, cs := range p.sb.Controls() {
		for _, c := range cs {
			c.SetLatency(o.latency, o.jitter)
		}
	}
	if p.meter, err = awsmeter.New(o.endpoint, p.tap); err != nil {
		return nil, err
	}
	urls := map[string]string{}
	for _, c := range []string{callerScanner, callerDispatcher, callerPartners, callerPollers, callerConsumer} {
		if urls[c], err = p.meter.Endpoint(c); err != nil {
			return nil, err
		}
	}
	param := "/bench/" + strings.TrimSuffix(o.prefix, "-") + "/" + benchFlag
	params := map[string]string{"FeatureFlagParameterName": param}
	maps.Copy(params, o.params)
	env := map[string]string{"LOG_LEVEL": "info"}
	for k, v := range p.sb.Env() {
		env[k] = v
	}
	fnEnv := map[string]map[string]string{dispatcherID: {"AWS_ENDPOINT_URL": urls[callerDispatcher]}}
	for _, d := range registry.All() {
		fnEnv[partnerFunction(d.Name)] = map[string]string{"AWS_ENDPOINT_URL": urls[callerPartners],
			"PARTNER_RATE_PER_SECOND": pipelineRate, "PARTNER_RATE_BURST": pipelineBurst}
	}
	for _, e := range fnEnv {
		maps.Copy(e, o.env)
	}
	output := p.runs.line
	var logger *slog.Logger
	if o.log != nil {
		output = func(fn, line string) { p.runs.line(fn, line); o.log(o.prefix+fn, line) }
		logger = slog.New(slog.NewTextHandler(logWriter{o.log, o.prefix + "esm"}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	p.stack, err = localrun.Start(ctx, localrun.Options{
		Root: o.root, Endpoint: o.endpoint, Prefix: o.prefix, BuildDir: o.buildDir, Prebuilt: true,
		Parameters: params,
		Env:        env, FunctionEnv: fnEnv, Adjust: o.adjust,
		PollEndpoint: urls[callerPollers], Output: output, Logger: logger, OnInvoke: p.onInvoke,
	})
	if err != nil {
		return nil, err
	}
	for id := range p.stack.Functions {
		p.runs.memoryMB[id] = p.stack.Template.Functions[id].MemorySize
	}
	in, err := p.stack.Queue("IngressQueue")
	if err != nil {
		return nil, err
	}
	res, err := p.stack.Queue("ResultsQueue")
	if err != nil {
		return nil, err
	}
	p.ingress, p.results = in.URL, res.URL
	for _, m := range p.stack.Mappings {
		if m.Name != dispatcherID {
			p.partnerQ[m.QueueURL] = true
		}
	}
	store := featureflag.NewStore(ssm.NewFromConfig(awstest.Config(o.endpoint)), time.Now)
	if _, err := store.Set(ctx, benchFlag, param, featureflag.Change{Enable: true}, featureflag.Meta{By: "bench"}, false); err != nil {
		return nil, fmt.Errorf("set flag: %w", err)
	}
	p.scanner = sqs.NewFromConfig(awstest.Config(urls[callerScanner]))
	p.consumer = sqs.NewFromConfig(awstest.Config(urls[callerConsumer]))
	// What the setup asked (creating queues goes straight to the local AWS,
	// the first polls ran already) is not what findings cost.
	p.meter.Reset()
	ok = true
	return p, nil
}

func (p *pipe) stop() {
	if p.stack != nil {
		p.stack.Stop()
	}
	if p.meter != nil {
		p.meter.Close()
	}
	if p.sb != nil {
		p.sb.Close()
	}
}

// partnerFunction is a partner's function logical id (its nested stack's
// logical id, the partner's name TitleCased, + Function).
func partnerFunction(p finding.Partner) string {
	return samtemplate.PartnerStem(string(p)) + "Function"
}

// scanMsg is one message the scanner sends: a scan of some findings.
type scanMsg struct {
	scanID string
	body   string
	keys   []fkey
}

// fkey names one finding across the run.
type fkey struct{ scan, finding string }

// workloadMix describes the fixed mixed workload, for the report.
const workloadMix = "every partner of the registry in turn; of every 4 findings 3 carry a fresh credential registered as live " +
	"in its double and 1 a fresh one it does not know (revoked: inactive); every 10th finding repeats the credential " +
	"of the same partner's previous finding (a verdict-cache hit when that verdict is cached)"

// workload builds n findings in scans of perScan (the last one shorter),
// registering the live credentials with the doubles. The mix is fixed: the
// same n and perScan always give the same partners, states and repeats.
func workload(sb *sandbox.Sandbox, prefix string, n, perScan int) ([]scanMsg, error) {
	partners := registry.Names()
	need := map[finding.Partner]int{}
	for i := range n {
		need[partners[i%len(partners)]]++
	}
	fresh := map[finding.Partner][]finding.Finding{}
	live := sandbox.Credentials{}
	for _, p := range partners {
		fs, creds, err := sandbox.LiveFindings(p, need[p], 0)
		if err != nil {
			return nil, err
		}
		fresh[p] = fs
		for i := range fs {
			if i%4 != 3 {
				live[string(p)] = append(live[string(p)], creds[string(p)][i])
			}
		}
	}
	if err := sb.Register(live); err != nil {
		return nil, err
	}
	used := map[finding.Partner]int{}
	last := map[finding.Partner]finding.Finding{}
	var out []scanMsg
	for start := 0; start < n; start += perScan {
		scanID := fmt.Sprintf("%s%d", prefix, len(out)+1)
		b := finding.Batch{Version: 1, ScanID: scanID, Project: finding.Project{ID: 278964, FullPath: "gitlab-org/bench"}}
		m := scanMsg{scanID: scanID}
		for i := start; i < min(start+perScan, n); i++ {
			p := partners[i%len(partners)]
			f := fresh[p][used[p]]
			if prev, ok := last[p]; ok && i%10 == 9 {
				f.Token, f.Context = prev.Token, prev.Context
			}
			used[p]++
			last[p] = f
			f.ID = "f-" + strconv.Itoa(i)
			b.Findings = append(b.Findings, f)
			m.keys = append(m.keys, fkey{scanID, f.ID})
		}
		body, err := finding.Encode(b)
		if err != nil {
			return nil, err
		}
		m.body = string(body)
		out = append(out, m)
	}
	return out, nil
}

// send is the scanner's SendMessage of one scan; it notes when it was sent.
func (p *pipe) send(ctx context.Context, m scanMsg) error {
	p.tr.sent(m.scanID, time.Now())
	_, err := p.scanner.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(p.ingress), MessageBody: aws.String(m.body)})
	if err != nil {
		return fmt.Errorf("scanner send: %w", err)
	}
	return nil
}

// backlog is the ingress queue's messages, visible or in flight, asked of
// the local AWS directly (not a cost of the pipeline).
func (p *pipe) backlog(ctx context.Context) int {
	v, nv, _, err := esm.QueueDepth(ctx, p.stack.SQS, p.ingress)
	if err != nil {
		return 0
	}
	return v + nv
}

// consume reads the results queue as a consumer would (10 at a time, long
// polls of 1 s, one DeleteMessageBatch per receive) until every expected
// finding has a result or ctx ends; it returns how many were missing.
func (p *pipe) consume(ctx context.Context, expect map[fkey]bool) (missing int, err error) {
	left := len(expect)
	for left > 0 {
		if ctx.Err() != nil {
			return left, nil
		}
		out, err := p.consumer.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(p.results), MaxNumberOfMessages: 10,
			WaitTimeSeconds: 1, MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameSentTimestamp}})
		if err != nil {
			if ctx.Err() != nil {
				return left, nil
			}
			return left, fmt.Errorf("consume results: %w", err)
		}
		if len(out.Messages) == 0 {
			continue
		}
		entries := make([]types.DeleteMessageBatchRequestEntry, len(out.Messages))
		for i, m := range out.Messages {
			entries[i] = types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle}
			var r finding.Result
			if json.Unmarshal([]byte(aws.ToString(m.Body)), &r) != nil {
				continue
			}
			k := fkey{r.ScanID, r.FindingID}
			ms, _ := strconv.ParseInt(m.Attributes[string(types.MessageSystemAttributeNameSentTimestamp)], 10, 64)
			if expect[k] && p.tr.arrived(k, r, ms) {
				left--
			}
		}
		if _, err := p.consumer.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(p.results), Entries: entries}); err != nil {
			return left, fmt.Errorf("consume results: delete: %w", err)
		}
	}
	return 0, nil
}

// tap times the hops of each finding from the calls the meter sees.
func (p *pipe) tap(c awsmeter.Call) {
	if c.Service != "sqs" || c.Status != 200 {
		return
	}
	switch c.Operation {
	case "ReceiveMessage":
		if c.Caller != callerPollers {
			return
		}
		q := awsmeter.QueueURL(c.Request)
		for _, m := range awsmeter.Messages(c.Response) {
			switch {
			case q == p.ingress:
				p.tr.scanPolled(scanOf(m.Body), c.End)
			case p.partnerQ[q]:
				for _, k := range keysOf(m.Body) {
					p.tr.hop(k, func(h *hops) { setOnce(&h.polled, c.End) })
				}
			}
		}
	case "SendMessage", "SendMessageBatch":
		q, bodies := awsmeter.Sent(c.Request)
		for _, b := range bodies {
			switch {
			case c.Caller == callerDispatcher && p.partnerQ[q]:
				for _, k := range keysOf(b) {
					p.tr.hop(k, func(h *hops) { setOnce(&h.forwarded, c.Start) })
				}
			case q == p.results:
				for _, k := range keysOf(b) {
					p.tr.hop(k, func(h *hops) { setOnce(&h.resultSend, c.Start); setOnce(&h.resultSent, c.End) })
				}
			}
		}
	}
}

// onInvoke notes when the invocation that carried a message started.
func (p *pipe) onInvoke(function string, recs []events.SQSMessage, start, end time.Time) {
	p.runs.invoked(function, start, end)
	for _, r := range recs {
		if function == dispatcherID {
			p.tr.scanInvoked(scanOf(r.Body), start)
			continue
		}
		for _, k := range keysOf(r.Body) {
			p.tr.hop(k, func(h *hops) { setOnce(&h.invoked, start) })
		}
	}
}

// ids is what a body tells of the findings it is about: a batch (ingress
// or forward) or a result.
type ids struct {
	ScanID    string `json:"scan_id"`
	FindingID string `json:"finding_id"`
	Findings  []struct {
		ID string `json:"id"`
	} `json:"findings"`
}

func keysOf(body string) []fkey {
	var v ids
	if json.Unmarshal([]byte(body), &v) != nil || v.ScanID == "" {
		return nil
	}
	if v.FindingID != "" {
		return []fkey{{v.ScanID, v.FindingID}}
	}
	out := make([]fkey, 0, len(v.Findings))
	for _, f := range v.Findings {
		out = append(out, fkey{v.ScanID, f.ID})
	}
	return out
}

func scanOf(body string) string {
	var v struct {
		ScanID string `json:"scan_id"`
	}
	_ = json.Unmarshal([]byte(body), &v)
	return v.ScanID
}

func setOnce(t *time.Time, v time.Time) {
	if t.IsZero() {
		*t = v
	}
}

// hops are the moments one finding passed each point, first time each.
type hops struct {
	forwarded  time.Time // the dispatcher's send to the partner queue began
	polled     time.Time // a poller first received it from the partner queue
	invoked    time.Time // the partner function's invocation carrying it began
	resultSend time.Time // the partner function's send of its result began
	resultSent time.Time // the local AWS answered that send
	arrivedMS  int64     // SentTimestamp of the result message (ms)
	partner    finding.Partner
	status     finding.Status
	done       bool
}

// scanHops are the moments one scan message passed the ingress side.
type scanHops struct {
	sent, polled, invoked time.Time
}

// tracer gathers hops from the meter's tap, the mappings and the consumer.
type tracer struct {
	mu    sync.Mutex
	scans map[string]*scanHops
	f     map[fkey]*hops
}

func newTracer() *tracer { return &tracer{scans: map[string]*scanHops{}, f: map[fkey]*hops{}} }

func (t *tracer) scan(id string) *scanHops {
	s := t.scans[id]
	if s == nil {
		s = &scanHops{}
		t.scans[id] = s
	}
	return s
}

func (t *tracer) sent(scan string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	setOnce(&t.scan(scan).sent, at)
}

func (t *tracer) scanPolled(scan string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	setOnce(&t.scan(scan).polled, at)
}

func (t *tracer) scanInvoked(scan string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	setOnce(&t.scan(scan).invoked, at)
}

func (t *tracer) hop(k fkey, f func(*hops)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	h := t.f[k]
	if h == nil {
		h = &hops{}
		t.f[k] = h
	}
	f(h)
}

// arrived records a finding's result; it reports whether it was the first.
func (t *tracer) arrived(k fkey, r finding.Result, sentMS int64) bool {
	first := false
	t.hop(k, func(h *hops) {
		if !h.done {
			first, h.done = true, true
			h.arrivedMS, h.partner, h.status = sentMS, r.Partner, r.Status
		}
	})
	return first
}

// invocationLog is each function's invocations, billed durations (the
// emulator's REPORT lines) and log output (what CloudWatch Logs ingests).
type invocationLog struct {
	mu          sync.Mutex
	invocations map[string]int
	wallMS      map[string]float64
	billedMS    map[string]float64
	reports     map[string]int
	memoryMB    map[string]int
	logBytes    atomic.Int64
	// partnerMS are the partner round trips the functions' EMF records
	// report (PartnerAPILatency).
	partnerMS []float64
}

func newInvocationLog() *invocationLog {
	return &invocationLog{invocations: map[string]int{}, wallMS: map[string]float64{}, billedMS: map[string]float64{},
		reports: map[string]int{}, memoryMB: map[string]int{}}
}

// billedDuration is the REPORT line's "Billed Duration: N ms".
var billedDuration = regexp.MustCompile(`^REPORT RequestId: .*\tBilled Duration: ([0-9.]+) ms`)

func (l *invocationLog) line(function, line string) {
	if lambdalocal.IsEmulatorLine(line) {
		return
	}
	l.logBytes.Add(int64(len(line) + 1))
	if v := PartnerLatencies(line); len(v) > 0 {
		l.mu.Lock()
		l.partnerMS = append(l.partnerMS, v...)
		l.mu.Unlock()
	}
	if m := billedDuration.FindStringSubmatch(line); m != nil {
		ms, err := strconv.ParseFloat(m[1], 64)
		if err == nil {
			l.mu.Lock()
			l.billedMS[function] += ms
			l.reports[function]++
			l.mu.Unlock()
		}
	}
}

func (l *invocationLog) invoked(function string, start, end time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.invocations[function]++
	l.wallMS[function] += float64(end.Sub(start).Microseconds()) / 1000
}

// logWriter turns a logger's output into lines of one source.
type logWriter struct {
	log    func(source, line string)
	source string
}

func (w logWriter) Write(p []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		w.log(w.source, l)
	}
	return len(p), nil
}

// PartnerLatencies are the PartnerAPILatency values of an EMF record (a
// number or a list of them), or none.
func PartnerLatencies(line string) []float64 {
	if !strings.Contains(line, `"PartnerAPILatency"`) {
		return nil
	}
	var rec struct {
		PartnerAPILatency json.RawMessage
	}
	if json.Unmarshal([]byte(line), &rec) != nil || len(rec.PartnerAPILatency) == 0 {
		return nil
	}
	var list []float64
	if json.Unmarshal(rec.PartnerAPILatency, &list) == nil {
		return list
	}
	var one float64
	if json.Unmarshal(rec.PartnerAPILatency, &one) == nil {
		return []float64{one}
	}
	return nil
}

// statuses counts the results received by status ("active=3 inactive=1").
func (t *tracer) statuses() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := map[string]int{}
	for _, h := range t.f {
		if h.done {
			n[string(h.status)]++
		}
	}
	var out []string
	for k, v := range n {
		out = append(out, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

// consumed is what consumeAsync found: findings without a result, or why
// it stopped reading.
type consumed struct {
	missing int
	err     error
}

// consumeAsync reads the results of msgs' findings in the background
// until each has one or ctx ends.
func (p *pipe) consumeAsync(ctx context.Context, msgs []scanMsg) <-chan consumed {
	expect := map[fkey]bool{}
	for _, m := range msgs {
		for _, k := range m.keys {
			expect[k] = true
		}
	}
	done := make(chan consumed, 1)
	go func() {
		m, err := p.consume(ctx, expect)
		done <- consumed{m, err}
	}()
	return done
}

// settle waits (up to 20 s) for the stack to go idle: the last
// invocations' deletes follow their results.
func (p *pipe) settle(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	_ = p.stack.WaitIdle(ctx)
}

// costInputLocked is what the stack counted for n findings; p.runs.mu
// must be held.
func (p *pipe) costInputLocked(n int) CostInput {
	return CostInput{Findings: n, Counts: p.meter.Counts(), Invocations: copyMap(p.runs.invocations), BilledMS: copyMap(p.runs.billedMS),
		MemoryMB: copyMap(p.runs.memoryMB), LogBytes: p.runs.logBytes.Load(), Excluded: map[string]bool{callerConsumer: true}}
}
