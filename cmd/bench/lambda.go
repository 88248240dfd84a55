package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/awstest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/lambdalocal"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/localrun"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/localstack"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/samtemplate"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/featureflag"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/pipeline"
)

// coldBatch is the records of each invocation after a cold start: the
// dispatcher's batch size, and a whole batch in flight in a partner function.
const coldBatch = 10

// flagName is the feature flag the functions read (contract §4).
const flagName = "secret_detection_partner_token_verification"

// functionIDs are the template's functions, with the partner each verifies
// for ("" for the dispatcher).
var functionIDs = []struct {
	id      string
	partner finding.Partner
}{
	{"AwsFunction", finding.PartnerAWS},
	{"GcpFunction", finding.PartnerGCP},
	{"PostmanFunction", finding.PartnerPostman},
	{"DispatcherFunction", ""},
}

// builds are the bootstrap directories per architecture.
type builds struct {
	hostArch string
	host     string // dir/<LogicalId>/bootstrap for this machine (what the emulator runs)
	arm64    string // the same for linux/arm64 (what is deployed)
}

// buildFunctions builds every function's bootstrap with the Makefile's
// build-<LogicalId> targets (as sam build does): for this machine with
// localrun.Build, and for linux/arm64.
func buildFunctions(ctx context.Context, root, dir string) (builds, error) {
	b := builds{hostArch: runtime.GOARCH, host: filepath.Join(dir, "host"), arm64: filepath.Join(dir, "arm64")}
	tpl, err := samtemplate.Load(filepath.Join(root, samtemplate.FileName))
	if err != nil {
		return b, err
	}
	ids := make([]string, len(functionIDs))
	for i, f := range functionIDs {
		ids[i] = f.id
	}
	fns := localrun.Functions(tpl, ids...)
	if err := localrun.Build(ctx, root, b.host, fns...); err != nil {
		return b, err
	}
	if err := localrun.BuildFor(ctx, root, b.arm64, "arm64", fns...); err != nil {
		return b, err
	}
	return b, nil
}

// functionFigures are one function's size, cold start and memory.
type functionFigures struct {
	id                   string
	sizeArm64, sizeHost  int64
	initMS               []float64
	peakRSS              []int64
	invocations, records int
}

// coldStarts measures every function under the Lambda Runtime Interface
// Emulator with the environment template.yaml gives it, against a local AWS
// (moto) holding its queues and the flag (on): samples cold starts, each
// followed by invocations of coldBatch records; the init time is the
// emulator's INIT REPORT, the peak memory the bootstrap's VmHWM after the
// invocations.
func coldStarts(ctx context.Context, root string, b builds, sb *sandboxProc, samples, batches int) ([]functionFigures, error) {
	rie, err := lambdalocal.FindRIE(root)
	if err != nil {
		return nil, err
	}
	moto, err := awstest.Start(ctx)
	if err != nil {
		return nil, err
	}
	defer moto.Stop()
	tpl, err := samtemplate.Load(filepath.Join(root, "template.yaml"))
	if err != nil {
		return nil, err
	}
	param := "/bench/" + flagName
	if err := tpl.SetParameter("FeatureFlagParameterName", param); err != nil {
		return nil, err
	}
	cfg := awstest.Config(moto.Endpoint)
	local, err := localstack.Apply(ctx, tpl, cfg, "bench-")
	if err != nil {
		return nil, err
	}
	if _, err := featureflag.NewStore(ssm.NewFromConfig(cfg), time.Now).Set(ctx, flagName, param, featureflag.Change{Enable: true}, featureflag.Meta{By: "bench", Reason: "make bench"}, false); err != nil {
		return nil, err
	}
	overrides := map[string]string{
		"AWS_ENDPOINT_URL": moto.Endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": awstest.Region,
		// Every record of a batch in flight at once and none held back by
		// the template's per-instance rate: the memory of a full batch.
		pipeline.EnvConcurrency: strconv.Itoa(coldBatch), pipeline.EnvRatePerSecond: strconv.Itoa(fastRate), pipeline.EnvRateBurst: strconv.Itoa(coldBatch),
	}
	for k, v := range sb.env {
		overrides[k] = v
	}
	var out []functionFigures
	for _, fn := range functionIDs {
		ff := functionFigures{id: fn.id}
		def := tpl.Functions[fn.id]
		if def == nil {
			return nil, fmt.Errorf("no function %s in the template", fn.id)
		}
		if ff.sizeHost, err = fileSize(localrun.Bootstrap(b.host, def)); err != nil {
			return nil, err
		}
		if ff.sizeArm64, err = fileSize(localrun.Bootstrap(b.arm64, def)); err != nil {
			return nil, err
		}
		env, err := local.FunctionEnv(fn.id, overrides)
		if err != nil {
			return nil, err
		}
		for range samples {
			initMS, rss, err := coldStart(ctx, rie, localrun.Bootstrap(b.host, def), fn.id, fn.partner, env, def, sb, batches)
			if err != nil {
				return nil, err
			}
			ff.initMS = append(ff.initMS, initMS)
			ff.peakRSS = append(ff.peakRSS, rss)
			ff.invocations += batches
			ff.records += batches * coldBatch
		}
		out = append(out, ff)
	}
	return out, nil
}

// coldStart starts one emulator, invokes it batches times with coldBatch
// records of fresh live tokens, and returns the init time and the
// bootstrap's peak resident memory.
func coldStart(ctx context.Context, rie, bootstrap, id string, p finding.Partner, env map[string]string, def *samtemplate.Function, sb *sandboxProc, batches int) (float64, int64, error) {
	var mu sync.Mutex
	initMS := -1.0
	f, err := lambdalocal.Start(ctx, lambdalocal.Options{
		Name: id, RIE: rie, Bootstrap: bootstrap, Env: env,
		Timeout: time.Duration(def.Timeout) * time.Second, MemoryMB: def.MemorySize,
		Output: func(line string) {
			if d, ok := ParseInitReport(line); ok {
				mu.Lock()
				if initMS < 0 {
					initMS = float64(d.Microseconds()) / 1000
				}
				mu.Unlock()
			}
		},
	})
	if err != nil {
		return 0, 0, err
	}
	defer f.Stop()
	for range batches {
		payload, err := batchEvent(ctx, sb, p)
		if err != nil {
			return 0, 0, err
		}
		out, err := f.Invoke(ctx, payload)
		if err != nil {
			return 0, 0, err
		}
		var resp events.SQSEventResponse
		if err := json.Unmarshal(out, &resp); err != nil {
			return 0, 0, fmt.Errorf("%s: response: %w", id, err)
		}
		if n := len(resp.BatchItemFailures); n > 0 {
			return 0, 0, fmt.Errorf("%s: %d of %d records failed", id, n, coldBatch)
		}
	}
	abs, err := filepath.Abs(bootstrap)
	if err != nil {
		return 0, 0, err
	}
	pid, err := pidOf(abs)
	if err != nil {
		return 0, 0, fmt.Errorf("%s: %w", id, err)
	}
	status, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, 0, fmt.Errorf("%s: read bootstrap memory: %w", id, err)
	}
	defer status.Close()
	rss, err := ParseVmHWM(status)
	if err != nil {
		return 0, 0, fmt.Errorf("%s: %w", id, err)
	}
	// The emulator prints INIT REPORT as the init phase ends, before the
	// first invocation's answer: it has been read by now.
	mu.Lock()
	defer mu.Unlock()
	if initMS < 0 {
		return 0, 0, fmt.Errorf("%s: the emulator printed no INIT REPORT", id)
	}
	return initMS, rss, nil
}

// batchEvent is an SQS event of coldBatch records, one finding each, of
// fresh tokens registered as live: for a partner function its own
// partner-queue messages; for the dispatcher (p == "") ingress messages
// of Postman tokens, which it routes to the Postman queue.
func batchEvent(ctx context.Context, sb *sandboxProc, p finding.Partner) ([]byte, error) {
	gen := p
	if gen == "" {
		gen = finding.PartnerPostman
	}
	fs, creds, err := newFindings(gen, coldBatch)
	if err != nil {
		return nil, err
	}
	if err := sb.register(ctx, creds); err != nil {
		return nil, err
	}
	ev := events.SQSEvent{}
	for _, f := range fs {
		b, err := body(f)
		if err != nil {
			return nil, err
		}
		id := "bench-" + strconv.FormatInt(messageSeq.Add(1), 10)
		ev.Records = append(ev.Records, events.SQSMessage{
			MessageId: id, Body: string(b), EventSource: "aws:sqs", EventSourceARN: sourceARN, AWSRegion: awstest.Region,
			Attributes: map[string]string{"ApproximateReceiveCount": "1"},
		})
	}
	return json.Marshal(ev)
}

// pidOf finds the process running the executable at path (the emulator
// starts the bootstrap as its child; each bootstrap has its own path).
func pidOf(path string) (int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, fmt.Errorf("find bootstrap process: %w", err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe")); err == nil && exe == path {
			pids = append(pids, pid)
		}
	}
	switch len(pids) {
	case 0:
		return 0, errors.New("find bootstrap process: not running")
	case 1:
		return pids[0], nil
	}
	return 0, fmt.Errorf("find bootstrap process: %d processes run it", len(pids))
}

func fileSize(path string) (int64, error) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, fmt.Errorf("bootstrap size: %w", err)
	}
	return st.Size(), nil
}
