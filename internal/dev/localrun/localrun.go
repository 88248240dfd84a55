// Package localrun brings the whole system up on one machine, the way it
// is deployed: the queues and the flag parameter created from template.yaml
// in a local AWS (moto_server), every function's real bootstrap binary
// (built by the Makefile's build-<LogicalId> targets, as `sam build` does)
// running under the Lambda Runtime Interface Emulator with the environment
// the template gives it, and each SQS event source emulated by esm. The
// partners are the doubles of partnertest/sandbox. `make run` and the
// end-to-end tests use it.
package localrun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/awstest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/esm"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/lambdalocal"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/localstack"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/samtemplate"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
)

// Options configure a local stack.
type Options struct {
	// Root is the repository root (template.yaml, Makefile, bin/).
	Root string
	// Endpoint is the local AWS (moto_server) base URL.
	Endpoint string
	// Prefix starts every queue name, keeping several stacks apart on one moto.
	Prefix string
	// Parameters override template parameters (as sam deploy's
	// --parameter-overrides do), e.g. FeatureFlagParameterName, MaxAttempts.
	Parameters map[string]string
	// BuildDir receives the bootstraps (default Root/.local/build).
	BuildDir string
	// Env is added to every function's environment (partner endpoints,
	// FEATURE_FLAG_CACHE_TTL, RETRY_BACKOFF_BASE, ...).
	Env map[string]string
	// FunctionEnv is added to one function's environment, by logical id.
	FunctionEnv map[string]map[string]string
	// Output receives every line a function prints, with its logical id.
	Output func(function, line string)
	// Logger receives the stack's own log lines (optional).
	Logger *slog.Logger
	// Adjust, when set, changes the loaded template before anything is
	// created (the chaos suite shortens function and visibility timeouts).
	Adjust func(*samtemplate.Template) error
	// Prebuilt skips the build: BuildDir already holds every bootstrap
	// (Build was called once for several stacks).
	Prebuilt bool
	// PollEndpoint is the local AWS the event source mappings poll and
	// delete through (default Endpoint): the bench puts a counting proxy
	// there, since Lambda's polling of SQS is billed as SQS requests.
	PollEndpoint string
	// OnInvoke, when set, is told of every invocation an event source
	// mapping made, with the function's logical id (esm.Mapping.OnInvoke).
	OnInvoke func(function string, records []events.SQSMessage, start, end time.Time)
}

// Stack is a running local deployment.
type Stack struct {
	Template  *samtemplate.Template
	Local     *localstack.Stack
	SQS       *sqs.Client
	Functions map[string]*lambdalocal.Function
	Mappings  []*esm.Mapping
	Metrics   *EMFCollector
	// Env is each function's environment as started, by logical id (what
	// `make run ARGS=--keep` writes to .local/env.json for `make invoke`).
	Env map[string]map[string]string

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// LocalParameters override template parameters in every local stack,
// before Options.Parameters: a rate set for a partner's hourly budget
// (GitHub's 60 requests an hour for revoked tokens) would hand the samples
// back to SQS for minutes, and the doubles enforce no such budget.
var LocalParameters = map[string]string{"GithubRatePerSecond": "5"}

// Start creates the resources, builds and starts the functions and their
// event source mappings. Stop it when done.
func Start(ctx context.Context, o Options) (*Stack, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.BuildDir == "" {
		o.BuildDir = filepath.Join(o.Root, ".local", "build")
	}
	tpl, err := samtemplate.Load(filepath.Join(o.Root, "template.yaml"))
	if err != nil {
		return nil, err
	}
	params := maps.Clone(LocalParameters)
	maps.Copy(params, o.Parameters)
	for name, v := range params {
		if err := tpl.SetParameter(name, v); err != nil {
			return nil, fmt.Errorf("localrun: parameter %s: %w", name, err)
		}
	}
	if o.Adjust != nil {
		if err := o.Adjust(tpl); err != nil {
			return nil, fmt.Errorf("localrun: adjust template: %w", err)
		}
	}
	cfg := awstest.Config(o.Endpoint)
	local, err := localstack.Apply(ctx, tpl, cfg, o.Prefix)
	if err != nil {
		return nil, err
	}
	rie, err := lambdalocal.FindRIE(o.Root)
	if err != nil {
		return nil, err
	}
	s := &Stack{Template: tpl, Local: local, SQS: sqs.NewFromConfig(cfg), Functions: map[string]*lambdalocal.Function{}, Metrics: NewEMFCollector(), Env: map[string]map[string]string{}}
	ids := make([]string, 0, len(tpl.Functions))
	for id := range tpl.Functions {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	if !o.Prebuilt {
		if err := Build(ctx, o.Root, o.BuildDir, Functions(tpl, ids...)...); err != nil {
			return nil, err
		}
	}
	pollSQS := s.SQS
	if o.PollEndpoint != "" {
		pollSQS = sqs.NewFromConfig(awstest.Config(o.PollEndpoint))
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	for _, id := range ids {
		fn := tpl.Functions[id]
		overrides := map[string]string{
			"AWS_ENDPOINT_URL":      o.Endpoint,
			"AWS_ACCESS_KEY_ID":     "testing",
			"AWS_SECRET_ACCESS_KEY": "testing",
			"AWS_REGION":            awstest.Region,
		}
		for k, v := range o.Env {
			overrides[k] = v
		}
		for k, v := range o.FunctionEnv[id] {
			overrides[k] = v
		}
		env, err := local.FunctionEnv(id, overrides)
		if err != nil {
			s.Stop()
			return nil, err
		}
		s.Env[id] = env
		output := func(line string) {
			s.Metrics.Line(line)
			if o.Output != nil {
				o.Output(id, line)
			}
		}
		f, err := lambdalocal.Start(ctx, lambdalocal.Options{
			Name: id, RIE: rie, Bootstrap: Bootstrap(o.BuildDir, fn), Env: env,
			Timeout: time.Duration(fn.Timeout) * time.Second, MemoryMB: fn.MemorySize, Output: output,
		})
		if err != nil {
			s.Stop()
			return nil, err
		}
		s.Functions[id] = f
		for _, ev := range fn.SQSEvents {
			q, ok := local.Queues[ev.Queue]
			if !ok {
				s.Stop()
				return nil, fmt.Errorf("localrun: %s: event source queue %s was not created", id, ev.Queue)
			}
			var onInvoke func([]events.SQSMessage, time.Time, time.Time)
			if o.OnInvoke != nil {
				onInvoke = func(recs []events.SQSMessage, start, end time.Time) { o.OnInvoke(id, recs, start, end) }
			}
			m := &esm.Mapping{
				Name: id, Client: pollSQS, QueueURL: q.URL, QueueARN: q.ARN, OnInvoke: onInvoke,
				BatchSize: ev.BatchSize, BatchingWindow: time.Duration(ev.MaximumBatchingWindow) * time.Second,
				// One emulator is one function instance: one invocation at a time.
				MaxConcurrency: 1, FunctionTimeout: time.Duration(fn.Timeout) * time.Second,
				Invoke: invoker(f), Logger: o.Logger,
			}
			s.Mappings = append(s.Mappings, m)
			s.wg.Add(1)
			go func() { defer s.wg.Done(); _ = m.Run(runCtx) }()
		}
	}
	return s, nil
}

// invoker adapts an emulated function to an event source mapping.
func invoker(f *lambdalocal.Function) esm.InvokeFunc {
	return func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		payload, err := json.Marshal(ev)
		if err != nil {
			return events.SQSEventResponse{}, err
		}
		out, err := f.Invoke(ctx, payload)
		if err != nil {
			return events.SQSEventResponse{}, err
		}
		var resp events.SQSEventResponse
		if err := json.Unmarshal(out, &resp); err != nil {
			return events.SQSEventResponse{}, fmt.Errorf("localrun: %s: response is not an SQSEventResponse: %w", f.Name, err)
		}
		return resp, nil
	}
}

// Build runs the Makefile target `sam build` runs for each function (its
// BuildTarget: build-<LogicalId>, or build-Function for every partner
// stack's function), for this machine's architecture, into
// Bootstrap(dir, f). Each distinct target is built once, so the partners'
// one binary is built once however many partners there are.
func Build(ctx context.Context, root, dir string, fns ...*samtemplate.Function) error {
	return BuildFor(ctx, root, dir, runtime.GOARCH, fns...)
}

// BuildFor is Build for another architecture (arm64, as deployed).
func BuildFor(ctx context.Context, root, dir, goarch string, fns ...*samtemplate.Function) error {
	done := map[string]bool{}
	for _, f := range fns {
		if f.BuildTarget == "" {
			return fmt.Errorf("localrun: build %s: no Makefile build target (BuildMethod %q)", f.LogicalID, f.BuildMethod)
		}
		if done[f.BuildTarget] {
			continue
		}
		done[f.BuildTarget] = true
		out := filepath.Dir(Bootstrap(dir, f))
		if err := os.MkdirAll(out, 0o755); err != nil {
			return err
		}
		cmd := exec.CommandContext(ctx, "make", "-s", "-C", root, f.BuildTarget, "ARTIFACTS_DIR="+out, "LAMBDA_GOARCH="+goarch)
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("localrun: build %s (%s): %w\n%s", f.LogicalID, f.BuildTarget, err, b)
		}
	}
	return nil
}

// Bootstrap is where Build puts a function's binary: dir/<target>/bootstrap,
// shared by every function built by the same target.
func Bootstrap(dir string, f *samtemplate.Function) string {
	return filepath.Join(dir, strings.TrimPrefix(f.BuildTarget, "build-"), "bootstrap")
}

// Functions returns the template's functions with the given logical ids
// (every function when none is given), sorted by id.
func Functions(tpl *samtemplate.Template, ids ...string) []*samtemplate.Function {
	if len(ids) == 0 {
		for id := range tpl.Functions {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	out := make([]*samtemplate.Function, 0, len(ids))
	for _, id := range ids {
		if f, ok := tpl.Functions[id]; ok {
			out = append(out, f)
		}
	}
	return out
}

// Stop ends the mappings (letting running invocations finish) and the functions.
func (s *Stack) Stop() {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	for _, f := range s.Functions {
		f.Stop()
	}
}

// Queue returns a local queue by logical id.
func (s *Stack) Queue(id string) (localstack.Queue, error) {
	q, ok := s.Local.Queues[id]
	if !ok {
		return q, fmt.Errorf("localrun: no queue %s", id)
	}
	return q, nil
}

// Send puts one message body on a queue (by logical id).
func (s *Stack) Send(ctx context.Context, queueID, body string) error {
	q, err := s.Queue(queueID)
	if err != nil {
		return err
	}
	_, err = s.SQS.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(q.URL), MessageBody: aws.String(body)})
	if err != nil {
		return fmt.Errorf("localrun: send to %s: %w", queueID, err)
	}
	return nil
}

// WaitIdle returns once every queue that feeds a function is empty (nothing
// visible, in flight or delayed) and no invocation runs, twice in a row.
func (s *Stack) WaitIdle(ctx context.Context) error {
	quiet := 0
	for quiet < 2 {
		busy, err := s.busy(ctx)
		if err != nil {
			return err
		}
		if busy {
			quiet = 0
		} else {
			quiet++
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("localrun: still busy: %w", ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
	return nil
}

func (s *Stack) busy(ctx context.Context) (bool, error) {
	for _, m := range s.Mappings {
		if m.Stats().InFlight > 0 {
			return true, nil
		}
		v, nv, d, err := esm.QueueDepth(ctx, s.SQS, m.QueueURL)
		if err != nil {
			return false, err
		}
		if v+nv+d > 0 {
			return true, nil
		}
	}
	return false, nil
}

// Drain receives and deletes every message of a queue (by logical id).
func (s *Stack) Drain(ctx context.Context, queueID string) ([]string, error) {
	return s.DrainUpTo(ctx, queueID, 0)
}

// DrainUpTo is Drain that stops after about max messages (0: none left):
// a queue that functions keep filling as fast as it is read would
// otherwise keep a drain going for as long as they run.
func (s *Stack) DrainUpTo(ctx context.Context, queueID string, max int) ([]string, error) {
	q, err := s.Queue(queueID)
	if err != nil {
		return nil, err
	}
	var bodies []string
	for max <= 0 || len(bodies) < max {
		out, err := s.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(q.URL), MaxNumberOfMessages: 10, WaitTimeSeconds: 0})
		if err != nil {
			return bodies, fmt.Errorf("localrun: drain %s: %w", queueID, err)
		}
		if len(out.Messages) == 0 {
			return bodies, nil
		}
		entries := make([]types.DeleteMessageBatchRequestEntry, len(out.Messages))
		for i, m := range out.Messages {
			bodies = append(bodies, aws.ToString(m.Body))
			entries[i] = types.DeleteMessageBatchRequestEntry{Id: aws.String(fmt.Sprint(i)), ReceiptHandle: m.ReceiptHandle}
		}
		if _, err := s.SQS.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(q.URL), Entries: entries}); err != nil {
			return bodies, fmt.Errorf("localrun: drain %s: delete: %w", queueID, err)
		}
	}
	return bodies, nil
}

// Results drains the results queue and decodes every result.
func (s *Stack) Results(ctx context.Context) ([]finding.Result, error) {
	bodies, err := s.Drain(ctx, "ResultsQueue")
	if err != nil {
		return nil, err
	}
	out := make([]finding.Result, 0, len(bodies))
	for _, b := range bodies {
		var r finding.Result
		if err := json.Unmarshal([]byte(b), &r); err != nil {
			return out, fmt.Errorf("localrun: a result is not JSON: %w", err)
		}
		out = append(out, r)
	}
	return out, nil
}

// DeadLetterCounts is the number of messages in each dead-letter queue.
func (s *Stack) DeadLetterCounts(ctx context.Context) (map[string]int, error) {
	out := map[string]int{}
	for id, q := range s.Local.Queues {
		if !strings.HasSuffix(id, "DeadLetterQueue") {
			continue
		}
		v, nv, d, err := esm.QueueDepth(ctx, s.SQS, q.URL)
		if err != nil {
			return nil, err
		}
		out[id] = v + nv + d
	}
	return out, nil
}

// ErrMissingResults is returned by Check when findings got no result.
var ErrMissingResults = errors.New("findings without a result")
