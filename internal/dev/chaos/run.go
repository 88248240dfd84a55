package chaos

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/awstest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/esm"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/localrun"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/sandbox"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/samtemplate"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/featureflag"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
)

// FlagName is the feature flag the functions read (contract §4).
const FlagName = "secret_detection_partner_token_verification"

// Settings every scenario's functions run with: short retries, so that a
// scenario takes seconds, with the template's retry structure unchanged.
const (
	MaxAttempts  = 3
	FlagCacheTTL = time.Second
	BackoffBase  = time.Second
	// PartnerTimeout is one partner request's timeout in the suite's stacks.
	PartnerTimeout = partnerhttp.DefaultTimeout
	// VisibilityFactor is the template's rule: a source queue's visibility
	// timeout is six times its function's timeout. Scenarios that shorten
	// a function's timeout shorten its queue's visibility with it.
	VisibilityFactor = 6
)

// Config is how a suite run is set up.
type Config struct {
	// Root is the repository root (template.yaml, Makefile, bin/).
	Root string
	// Endpoint is the shared local AWS (moto_server) most scenarios use;
	// scenarios that restart it start their own.
	Endpoint string
	// BuildDir holds the bootstraps; Run builds them once into it
	// (default Root/.local/chaos-build).
	BuildDir string
	// Progress receives one line per scenario event (optional).
	Progress func(line string)
	// Output receives every line the system writes, with its source (optional).
	Output func(source, line string)
}

// Scenario is one fault injected into the whole local system.
type Scenario struct {
	// Name is the table's row label.
	Name string
	// Fault says what is injected, in a few words.
	Fault string
	// Short puts the scenario in the short form run by `make test`.
	Short bool
	// Setup is how its stack differs from the template.
	Setup Setup
	// Run drives the scenario: injects faults, sends scans, waits for them.
	Run func(e *Env) error
	// Check, when set, judges the end state beyond the expectations; what
	// it returns fails the documented outcome.
	Check func(o *Observation) []string
}

// Setup is how a scenario's stack differs from the default one.
type Setup struct {
	// Timeouts overrides functions' Timeout (seconds) by logical id; their
	// source queues' visibility timeouts follow (VisibilityFactor).
	Timeouts map[string]int
	// FunctionEnv is added to functions' environments by logical id.
	FunctionEnv map[string]map[string]string
	// SSMDown starts the stack with the functions' SSM endpoint refusing
	// connections: no function can have read the flag.
	SSMDown bool
	// OwnMoto runs the scenario on a local AWS of its own, which it may stop.
	OwnMoto bool
	// Bootstraps replaces functions' binaries, by logical id, with a main
	// package of the chaos suite (a path below the repository root), built
	// for this run: test-only faults that no outside input can cause, such
	// as a verifier that panics, never hooks in shared/.
	Bootstraps map[string]string
}

// Env is a running scenario: its stack and the knobs to hurt it.
type Env struct {
	// Ctx bounds the scenario.
	Ctx context.Context
	// Name is the scenario's name.
	Name string
	// Stack is the local deployment; Sandbox the partner doubles.
	Stack   *localrun.Stack
	Sandbox *sandbox.Sandbox
	// SSM and SQS stand between the functions and the local AWS.
	SSM, SQS *Proxy
	// Moto is the scenario's own local AWS (Setup.OwnMoto), else nil.
	Moto *awstest.Moto
	// Endpoint is the local AWS the stack lives in.
	Endpoint string

	cfg    Config
	obs    *Observation
	lines  *lineLog
	canary *httptest.Server
	hits   atomic.Int64
	scans  int
	direct map[string]int // direct invocations by function
	param  string
	store  *featureflag.Store
	killMu sync.Mutex
	mem    *sampler
}

// lineLog keeps every line the system wrote, with its source.
type lineLog struct {
	mu    sync.Mutex
	lines []string
	echo  func(source, line string)
}

func (l *lineLog) add(source, line string) {
	l.mu.Lock()
	l.lines = append(l.lines, source+" "+line)
	l.mu.Unlock()
	if l.echo != nil {
		l.echo(source, line)
	}
}

func (l *lineLog) snapshot() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

// lineWriter turns a logger's output into lines of one source.
type lineWriter struct {
	log    *lineLog
	source string
}

func (w lineWriter) Write(p []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		w.log.add(w.source, l)
	}
	return len(p), nil
}

// Run builds the functions once and runs each scenario on a stack of its
// own, checking every invariant after each. An error means the suite
// itself could not run; failed invariants are in the report.
func Run(ctx context.Context, cfg Config, scenarios []Scenario) (*Report, error) {
	if cfg.BuildDir == "" {
		cfg.BuildDir = filepath.Join(cfg.Root, ".local", "chaos-build")
	}
	if cfg.Progress == nil {
		cfg.Progress = func(string) {}
	}
	tpl, err := samtemplate.Load(filepath.Join(cfg.Root, "template.yaml"))
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(tpl.Functions))
	for id := range tpl.Functions {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	cfg.Progress("building " + strings.Join(ids, ", "))
	if err := localrun.Build(ctx, cfg.Root, cfg.BuildDir, localrun.Functions(tpl, ids...)...); err != nil {
		return nil, err
	}
	rep := &Report{Invariants: Invariants}
	for _, sc := range scenarios {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		cfg.Progress("scenario " + sc.Name + ": " + sc.Fault)
		start := time.Now()
		obs, err := runOne(ctx, cfg, sc)
		if err != nil {
			return rep, fmt.Errorf("chaos: scenario %s: %w", sc.Name, err)
		}
		row := Evaluate(obs)
		row.Fault = sc.Fault
		row.Duration = time.Since(start)
		rep.Rows = append(rep.Rows, row)
		cfg.Progress(fmt.Sprintf("scenario %s: %s in %s", sc.Name, row.verdict(), row.Duration.Round(time.Second)))
	}
	return rep, nil
}

// runOne starts a scenario's world, runs it and gathers what it left.
func runOne(ctx context.Context, cfg Config, sc Scenario) (obs *Observation, err error) {
	e := &Env{Ctx: ctx, Name: sc.Name, cfg: cfg, obs: newObservation(sc.Name), lines: &lineLog{echo: cfg.Output}, Endpoint: cfg.Endpoint,
		direct: map[string]int{}}
	var cleanup []func()
	defer func() {
		for i := len(cleanup) - 1; i >= 0; i-- {
			cleanup[i]()
		}
	}()
	if sc.Setup.OwnMoto {
		m, err := awstest.Start(ctx)
		if err != nil {
			return nil, err
		}
		e.Moto, e.Endpoint = m, m.Endpoint
		cleanup = append(cleanup, func() { e.Moto.Stop() })
	}
	if e.Sandbox, err = sandbox.Start(sandbox.Addrs{}); err != nil {
		return nil, err
	}
	cleanup = append(cleanup, e.Sandbox.Close)
	e.canary = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		e.hits.Add(1)
		w.WriteHeader(http.StatusTeapot)
	}))
	cleanup = append(cleanup, e.canary.Close)
	if e.SSM, err = StartProxy(e.Endpoint); err != nil {
		return nil, err
	}
	cleanup = append(cleanup, e.SSM.Close)
	if e.SQS, err = StartProxy(e.Endpoint); err != nil {
		return nil, err
	}
	cleanup = append(cleanup, e.SQS.Close)
	if sc.Setup.SSMDown {
		e.SSM.Down()
	}

	prefix := "chaos-" + sc.Name + "-" + randomHex(3) + "-"
	e.param = "/chaos/" + strings.TrimSuffix(prefix, "-") + "/" + FlagName
	env := map[string]string{
		"FEATURE_FLAG_CACHE_TTL": FlagCacheTTL.String(),
		"RETRY_BACKOFF_BASE":     BackoffBase.String(),
		// The client's own default (4 s), not the deployed 8 s, keeps the
		// timeout scenarios to seconds; the timeout mechanism is the same.
		"PARTNER_TIMEOUT":      PartnerTimeout.String(),
		"LOG_LEVEL":            "info",
		"AWS_ENDPOINT_URL_SSM": e.SSM.URL(),
		"AWS_ENDPOINT_URL_SQS": e.SQS.URL(),
	}
	for k, v := range e.Sandbox.Env() {
		env[k] = v
	}
	logger := slog.New(slog.NewJSONHandler(lineWriter{e.lines, "esm"}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	opts := localrun.Options{
		Root: cfg.Root, Endpoint: e.Endpoint, Prefix: prefix, BuildDir: cfg.BuildDir, Prebuilt: true,
		Parameters:  map[string]string{"FeatureFlagParameterName": e.param, "MaxAttempts": fmt.Sprint(MaxAttempts)},
		Env:         env,
		FunctionEnv: sc.Setup.FunctionEnv,
		Adjust: func(t *samtemplate.Template) error {
			if err := replaceBootstraps(t, sc.Setup.Bootstraps); err != nil {
				return err
			}
			return shorten(t, sc.Setup.Timeouts)
		},
		Output: e.lines.add,
		Logger: logger,
	}
	if err := buildBootstraps(ctx, cfg, sc.Setup.Bootstraps); err != nil {
		return nil, err
	}
	stack, err := startStack(ctx, opts, cfg.Progress)
	if err != nil {
		return nil, err
	}
	e.Stack = stack
	stopped := false
	stopStack := func() {
		if !stopped {
			stopped = true
			stack.Stop()
		}
	}
	cleanup = append(cleanup, stopStack)
	e.store = featureflag.NewStore(ssm.NewFromConfig(awstest.Config(e.Endpoint)), time.Now)
	if err := e.SetFlag(true); err != nil {
		return nil, err
	}

	emus, limits := map[string]int{}, map[string]int{}
	for id, f := range stack.Functions {
		// Functions without an SQS event source are never invoked here, and
		// the emulator starts a bootstrap only for an invocation.
		if len(stack.Template.Functions[id].SQSEvents) > 0 {
			emus[id] = f.PID()
			limits[id] = stack.Template.Functions[id].MemorySize
		}
	}
	mem := startSampler(emus, limits, 200*time.Millisecond)
	e.mem = mem
	runErr := sc.Run(e)
	if runErr != nil {
		e.Problem("scenario could not run to its end: %v", runErr)
	}
	e.obs.Memory = mem.Stop()
	for i, m := range e.obs.Memory {
		n := e.direct[m.Function]
		for _, mp := range stack.Mappings {
			if mp.Name == m.Function {
				n += mp.Stats().Invocations
			}
		}
		e.obs.Memory[i].Invocations = n
	}
	for id, f := range stack.Functions {
		if f.Exited() {
			e.Problem("%s: its emulator exited", id)
		}
	}
	stopStack()
	if err := e.collect(); err != nil {
		e.Problem("collecting the end state: %v", err)
	}
	if sc.Check != nil {
		e.obs.Problems = append(e.obs.Problems, sc.Check(e.obs)...)
	}
	e.obs.Secrets = append(e.obs.Secrets, e.Sandbox.Google.IssuedTokens()...)
	e.obs.CanaryHits = e.hits.Load()
	e.obs.Lines = e.lines.snapshot()
	return e.obs, nil
}

// startStack starts a scenario's stack, trying again when the local AWS
// fumbles a call while the queues are created (moto now and then closes a
// connection under an answer, and the stack's own client does not retry).
func startStack(ctx context.Context, o localrun.Options, progress func(string)) (*localrun.Stack, error) {
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		var s *localrun.Stack
		if s, err = localrun.Start(ctx, o); err == nil {
			return s, nil
		}
		progress(fmt.Sprintf("starting the stack failed (attempt %d): %v", attempt, err))
		time.Sleep(time.Second)
	}
	return nil, err
}

// bootstrapTarget is the build target name Setup.Bootstraps gives a function.
func bootstrapTarget(id string) string { return "chaos-" + id }

// buildBootstraps builds the binaries of Setup.Bootstraps where
// localrun.Bootstrap will look for them.
func buildBootstraps(ctx context.Context, cfg Config, pkgs map[string]string) error {
	for id, pkg := range pkgs {
		out := filepath.Join(cfg.BuildDir, bootstrapTarget(id), "bootstrap")
		cmd := exec.CommandContext(ctx, "go", "build", "-tags", "lambda.norpc", "-o", out, "./"+pkg)
		cmd.Dir = cfg.Root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("chaos: build %s for %s: %w\n%s", pkg, id, err, b)
		}
	}
	return nil
}

// replaceBootstraps points the functions of Setup.Bootstraps at their builds.
func replaceBootstraps(t *samtemplate.Template, pkgs map[string]string) error {
	for id := range pkgs {
		f, ok := t.Functions[id]
		if !ok {
			return fmt.Errorf("no function %s", id)
		}
		f.BuildTarget = "build-" + bootstrapTarget(id)
	}
	return nil
}

// Kill SIGKILLs a function's bootstrap (lambdalocal.KillRuntime), as
// Lambda does to an instance over its memory, and counts the kill so that
// the restart it causes is not taken for a crash. It returns how many
// processes it killed.
func (e *Env) Kill(function string) int {
	f, ok := e.Stack.Functions[function]
	if !ok {
		e.Problem("kill: no function %s", function)
		return 0
	}
	// A process killed within its first sampling period would never be
	// seen by the sampler: the kill itself reports it, with its peak.
	e.mem.observe(function, f.RuntimePIDs())
	n := f.KillRuntime()
	e.killMu.Lock()
	e.obs.Killed[function] += n
	e.killMu.Unlock()
	e.lines.add("chaos", fmt.Sprintf(`{"level":"WARN","msg":"chaos: killed the function's process","function":%q,"processes":%d}`, function, n))
	return n
}

// Killed is how many processes of a function the scenario has killed.
func (e *Env) Killed(function string) int {
	e.killMu.Lock()
	defer e.killMu.Unlock()
	return e.obs.Killed[function]
}

// shorten applies Setup.Timeouts and keeps the template's visibility rule.
func shorten(t *samtemplate.Template, timeouts map[string]int) error {
	for id, secs := range timeouts {
		f, ok := t.Functions[id]
		if !ok {
			return fmt.Errorf("no function %s", id)
		}
		f.Timeout = secs
		for _, ev := range f.SQSEvents {
			q, ok := t.Queues[ev.Queue]
			if !ok {
				return fmt.Errorf("%s: no queue %s", id, ev.Queue)
			}
			q.VisibilityTimeout = VisibilityFactor * secs
		}
	}
	return nil
}

// SetFlag turns the feature flag on or off for every project, in the local
// AWS directly (not through the functions' SSM proxy), and waits out the
// functions' flag cache.
func (e *Env) SetFlag(on bool) error {
	if _, err := e.store.Set(e.Ctx, FlagName, e.param, featureflag.Change{Enable: on}, featureflag.Meta{By: "chaos"}, false); err != nil {
		return fmt.Errorf("set flag: %w", err)
	}
	time.Sleep(FlagCacheTTL + 100*time.Millisecond)
	return nil
}

// Problem records a failed scenario-specific check.
func (e *Env) Problem(format string, args ...any) {
	e.obs.Problems = append(e.obs.Problems, fmt.Sprintf(format, args...))
}

// Lines returns what the system has written so far.
func (e *Env) Lines() []string { return e.lines.snapshot() }

// Creds registers fresh credentials with the doubles (see NewCreds).
func (e *Env) Creds() ([]Cred, error) {
	c, err := NewCreds(e.Sandbox, e.canary.URL)
	if err != nil {
		return nil, err
	}
	for _, x := range c {
		e.obs.Secrets = append(e.obs.Secrets, x.Secrets...)
	}
	return c, nil
}

// Doubles applies f to the fault knobs of every partner double.
func (e *Env) Doubles(f func(*partnertest.Controls)) {
	for _, cs := range e.Sandbox.Controls() {
		for _, c := range cs {
			f(c)
		}
	}
}

// Outcome is a rule giving the expectation of a credential's finding.
type Outcome func(Cred) Expectation

// Truth expects the partner's real answer, exactly once.
func Truth(c Cred) Expectation {
	return Expectation{Cred: c, Allowed: []finding.Reason{c.Truth()}, Terminal: true, Exactly: 1}
}

// Ends expects the terminal unknown result a fault ends in once retries are spent.
func Ends(reason finding.Reason) Outcome {
	return func(c Cred) Expectation {
		return Expectation{Cred: c, Allowed: []finding.Reason{reason}, Terminal: true, Exactly: 1}
	}
}

// TruthOr expects the partner's real answer or, for a fault whose effect
// reaches beyond the calls it hit, one terminal unknown reason.
func TruthOr(reason finding.Reason) Outcome {
	return func(c Cred) Expectation {
		x := Truth(c)
		x.Allowed = append(x.Allowed, reason)
		return x
	}
}

// AtLeastOnce relaxes an outcome to any number of agreeing results, for
// faults after which SQS redelivers work that was partly done.
func AtLeastOnce(o Outcome) Outcome {
	return func(c Cred) Expectation {
		x := o(c)
		x.Exactly = 0
		return x
	}
}

// Scan builds one ingress message with a finding per credential and one
// finding of a rule no partner verifies (concluded by the dispatcher), and
// registers what each may become. It returns the scan id and the body.
func (e *Env) Scan(creds []Cred, outcome Outcome) (string, []byte, error) {
	e.scans++
	scanID := fmt.Sprintf("chaos-%s-%d", e.Name, e.scans)
	b := finding.Batch{Version: 1, ScanID: scanID, Project: finding.Project{ID: 278964, FullPath: "gitlab-org/chaos"}}
	for _, c := range creds {
		f := finding.Finding{ID: c.Name, RuleID: c.RuleID, Token: finding.Secret(c.Token)}
		if len(c.Context) > 0 {
			f.Context = map[string]finding.Secret{}
			for k, v := range c.Context {
				f.Context[k] = finding.Secret(v)
			}
		}
		b.Findings = append(b.Findings, f)
		x := outcome(c)
		e.obs.Expect[Key{scanID, c.Name}] = &x
	}
	// A Slack refresh token: routed to Slack, but no call can judge it.
	other := "xoxe-1-" + randomHex(16)
	e.obs.Secrets = append(e.obs.Secrets, other)
	b.Findings = append(b.Findings, finding.Finding{ID: "unsupported", RuleID: "Slack token", Token: finding.Secret(other)})
	e.obs.Expect[Key{scanID, "unsupported"}] = &Expectation{Allowed: []finding.Reason{finding.ReasonUnsupportedTokenType}, Terminal: true, Exactly: 1}
	body, err := finding.Encode(b)
	if err != nil {
		return "", nil, fmt.Errorf("encode scan: %w", err)
	}
	return scanID, body, nil
}

// Send puts a body on a queue (by logical id) of the local AWS.
func (e *Env) Send(queueID string, body []byte) error {
	return e.Stack.Send(e.Ctx, queueID, string(body))
}

// SendScan is Scan followed by Send to the ingress queue.
func (e *Env) SendScan(creds []Cred, outcome Outcome) (string, error) {
	id, body, err := e.Scan(creds, outcome)
	if err != nil {
		return "", err
	}
	return id, e.Send("IngressQueue", body)
}

// Settle waits until no queue feeding a function holds a message and no
// invocation runs. On timeout it records why, and returns the error.
func (e *Env) Settle(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(e.Ctx, timeout)
	defer cancel()
	if err := e.Stack.WaitIdle(ctx); err != nil {
		e.obs.Unsettled = e.depths()
		return fmt.Errorf("not idle after %s (%s): %w", timeout, e.obs.Unsettled, err)
	}
	return nil
}

// depths describes the queues that still hold messages.
func (e *Env) depths() string {
	var parts []string
	for _, m := range e.Stack.Mappings {
		v, nv, d, err := esm.QueueDepth(context.WithoutCancel(e.Ctx), e.Stack.SQS, m.QueueURL)
		if err != nil {
			parts = append(parts, m.Name+": "+err.Error())
			continue
		}
		if v+nv+d > 0 {
			parts = append(parts, fmt.Sprintf("%s queue: %d visible, %d in flight, %d delayed", m.Name, v, nv, d))
		}
	}
	return strings.Join(parts, "; ")
}

// Invoke hands records straight to a function, as a redelivering event
// source mapping would, and returns the batch item failures it reported.
// queueID names the queue the records claim to come from.
func (e *Env) Invoke(function, queueID string, records []events.SQSMessage) (events.SQSEventResponse, error) {
	f, ok := e.Stack.Functions[function]
	if !ok {
		return events.SQSEventResponse{}, fmt.Errorf("no function %s", function)
	}
	q, err := e.Stack.Queue(queueID)
	if err != nil {
		return events.SQSEventResponse{}, err
	}
	ev := events.SQSEvent{Records: records}
	for i := range ev.Records {
		ev.Records[i].EventSourceARN = q.ARN
		ev.Records[i].EventSource = "aws:sqs"
		ev.Records[i].AWSRegion = awstest.Region
		if ev.Records[i].Attributes == nil {
			ev.Records[i].Attributes = map[string]string{"ApproximateReceiveCount": "1"}
		}
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		return events.SQSEventResponse{}, err
	}
	e.direct[function]++
	out, err := f.Invoke(e.Ctx, payload)
	if err != nil {
		e.lines.add("invoke", err.Error())
		return events.SQSEventResponse{}, err
	}
	var resp events.SQSEventResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		return resp, fmt.Errorf("%s: response is not an SQSEventResponse: %w", function, err)
	}
	return resp, nil
}

// Expect registers a finding sent some other way than Scan.
func (e *Env) Expect(k Key, x Expectation) {
	e.obs.Expect[k] = &x
	e.obs.Secrets = append(e.obs.Secrets, x.Cred.Secrets...)
}

// Vanished records a finding that a function reported done without a result.
func (e *Env) Vanished(format string, args ...any) {
	e.obs.Vanished = append(e.obs.Vanished, fmt.Sprintf(format, args...))
}

// Collect drains the results written so far into the observation; the
// scenario calls it before it takes the local AWS away.
func (e *Env) Collect() error { return e.CollectUpTo(0) }

// CollectUpTo is Collect that stops after about max results (0: all):
// mid-run, while functions keep writing, a full drain would not end.
func (e *Env) CollectUpTo(max int) error {
	bodies, err := e.Stack.DrainUpTo(context.WithoutCancel(e.Ctx), "ResultsQueue", max)
	e.record(bodies)
	return err
}

// record adds result bodies taken off the results queue to the observation.
func (e *Env) record(bodies []string) {
	for _, b := range bodies {
		e.obs.Bodies = append(e.obs.Bodies, b)
		var r finding.Result
		if jerr := json.Unmarshal([]byte(b), &r); jerr != nil {
			e.Problem("a result is not JSON: %v", jerr)
			continue
		}
		k := Key{r.ScanID, r.FindingID}
		if _, ok := e.obs.Expect[k]; ok {
			e.obs.Results[k] = append(e.obs.Results[k], r)
		} else {
			e.obs.Unexpected = append(e.obs.Unexpected, r)
		}
	}
}

// collect gathers the end state: results, and the findings still held in
// a dead-letter queue or a source queue (visible ones; a message still in
// flight cannot be read, and leaves the stack unsettled).
func (e *Env) collect() error {
	var errs []error
	if err := e.Collect(); err != nil {
		errs = append(errs, err)
	}
	for id := range e.Stack.Local.Queues {
		if id == "ResultsQueue" || id == "ResultsDeadLetterQueue" {
			continue
		}
		bodies, err := e.Stack.Drain(context.WithoutCancel(e.Ctx), id)
		if err != nil {
			errs = append(errs, err)
		}
		into := e.obs.Queued
		if strings.HasSuffix(id, "DeadLetterQueue") {
			into = e.obs.DeadLettered
		}
		for _, body := range bodies {
			b, err := finding.Parse([]byte(body))
			if err != nil {
				continue
			}
			for _, f := range b.Findings {
				into[Key{b.ScanID, f.ID}]++
			}
		}
	}
	return errors.Join(errs...)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// lineWriter is where the event source mappings' slog handler writes.
var _ io.Writer = lineWriter{}
