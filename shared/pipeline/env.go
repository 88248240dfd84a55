package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	featureflags "gitlab.com/gitlab-org/secret-detection/partner-token-verification/config/feature_flags"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/featureflag"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/logging"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/registry"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/projectcap"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/sqsbatch"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/throttle"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/tracing"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verdictcache"
)

// Environment variables read here besides those of contract §6.
const (
	// EnvPartner names the partner a partner function verifies for: every
	// partner function runs the same binary.
	EnvPartner = "PARTNER"
	// EnvConcurrency bounds the records processed at once in one invocation.
	EnvConcurrency = "PARTNER_CONCURRENCY"
	// EnvResultsQueue is the results queue (contract §6).
	EnvResultsQueue = "RESULTS_QUEUE_URL"
	// EnvSendLinger is the longest a result or a forward waits for others
	// to share its SendMessageBatch (sqsbatch.Coalescer; default
	// sqsbatch.DefaultLinger, 0 sends each record's messages alone).
	EnvSendLinger = "SEND_LINGER"
	// EnvPartnerQueuePrefix + upper-case partner is a partner queue (dispatcher only).
	EnvPartnerQueuePrefix = "PARTNER_QUEUE_URL_"
	// EnvBackoffBase overrides the retry backoff's base; local runs and
	// end-to-end tests shorten it.
	EnvBackoffBase = "RETRY_BACKOFF_BASE"
	// EnvPartnerTimeout bounds one partner HTTP request. A request is
	// measured for PartnerAPILatency only up to it, so the latency alarm can
	// see a slow partner only when it is above that alarm's threshold.
	EnvPartnerTimeout = "PARTNER_TIMEOUT"
	// EnvRatePerSecond and EnvRateBurst override the partner's default
	// per-instance rate (partner.Definition.Rate).
	EnvRatePerSecond = "PARTNER_RATE_PER_SECOND"
	EnvRateBurst     = "PARTNER_RATE_BURST"
	// EnvMaxAttempts is the receive count at which a transient failure
	// becomes the terminal result (contract §6).
	EnvMaxAttempts = "MAX_ATTEMPTS"
	// EnvDeadLetterQueue is the DLQ of the function's own source queue.
	EnvDeadLetterQueue = "DEAD_LETTER_QUEUE_URL"
	// EnvLogLevel is the JSON log's level: debug, info, warn or error.
	EnvLogLevel = "LOG_LEVEL"
	// EnvCacheSize, EnvCacheTTLActive and EnvCacheTTLInactive size the
	// verdict cache; 0 turns the cache, or caching of that kind, off.
	EnvCacheSize        = "VERDICT_CACHE_SIZE"
	EnvCacheTTLActive   = "VERDICT_CACHE_TTL_ACTIVE"
	EnvCacheTTLInactive = "VERDICT_CACHE_TTL_INACTIVE"
	// EnvProjectRateCaps caps how fast one project's findings reach a
	// partner, in findings per second across all instances, as
	// partner=rate pairs ("gitlab=1,github=0.5"). One variable for every
	// partner, so that one root parameter serves forty partner stacks;
	// a partner it does not name, and an empty value, have no cap.
	EnvProjectRateCaps = "PROJECT_RATE_CAPS"
	// EnvMaxConcurrency is the event source mapping's MaximumConcurrency,
	// by which a global per-project cap is divided into this instance's share.
	EnvMaxConcurrency = "PARTNER_MAX_CONCURRENCY"
	// EnvFairQueues (default true) makes the dispatcher set each partner
	// message's MessageGroupId to its project id (SQS fair queues).
	EnvFairQueues = "FAIR_QUEUES"
)

// env reads a function's configuration with one syntax per kind of value
// and one error style ("config: NAME=value: want …"); the first error is
// kept and every later read is skipped, so a loader reads straight through
// and checks once.
type env struct {
	getenv func(string) string
	err    error
}

func (e *env) get(name string) (string, bool) {
	if e.err != nil {
		return "", false
	}
	v := strings.TrimSpace(e.getenv(name))
	return v, v != ""
}

func (e *env) fail(name, value, want string) {
	if len(value) > 64 {
		value = value[:64] + "…"
	}
	e.err = fmt.Errorf("config: %s=%s: want %s", name, strconv.Quote(value), want)
}

// required is a variable that must be set.
func (e *env) required(name string) string {
	v, ok := e.get(name)
	if !ok && e.err == nil {
		e.err = fmt.Errorf("config: %s is not set", name)
	}
	return v
}

// duration is a Go duration (10s, 1m30s, 250ms) or whole seconds (30),
// above 0, or at least 0 where zero means off; it is the one duration
// syntax of every variable a function reads.
func (e *env) duration(name string, def time.Duration, zeroOff bool) time.Duration {
	v, ok := e.get(name)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if n, nerr := strconv.ParseInt(v, 10, 64); nerr == nil && n <= int64(366*24*time.Hour/time.Second) {
		d, err = time.Duration(n)*time.Second, nil
	}
	switch {
	case err != nil || d < 0 || (d == 0 && !zeroOff):
		want := "a positive Go duration such as 10s, or whole seconds"
		if zeroOff {
			want = "a Go duration such as 10s, or whole seconds; 0 for off"
		}
		e.fail(name, v, want)
		return def
	case d == 0:
		return -1 // off, in the options' convention
	}
	return d
}

// intRange is a whole number within [lo, hi].
func (e *env) intRange(name string, def, lo, hi int) int {
	v, ok := e.get(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		e.fail(name, v, fmt.Sprintf("a whole number from %d to %d", lo, hi))
		return def
	}
	return n
}

// positiveInt is a whole number of at least 1.
func (e *env) positiveInt(name string, def int) int {
	return e.intRange(name, def, 1, math.MaxInt32)
}

// positiveFloat is a finite number above 0.
func (e *env) positiveFloat(name string, def float64) float64 {
	v, ok := e.get(name)
	if !ok {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f <= 0 || math.IsNaN(f) || math.IsInf(f, 0) {
		e.fail(name, v, "a positive number")
		return def
	}
	return f
}

// boolean is true or false (strconv.ParseBool's spellings).
func (e *env) boolean(name string, def bool) bool {
	v, ok := e.get(name)
	if !ok {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		e.fail(name, v, "true or false")
		return def
	}
	return b
}

// projectRateCap reads EnvProjectRateCaps, checks every pair in it (a typo
// in another partner's entry fails every function, not only that
// partner's, so it is caught at the first deploy) and returns partner p's
// cap, 0 when it has none.
func (e *env) projectRateCap(p finding.Partner) float64 {
	v, ok := e.get(EnvProjectRateCaps)
	if !ok {
		return 0
	}
	const syntax = `partner=rate pairs separated by commas, such as "gitlab=1,github=0.5"`
	seen := map[string]bool{}
	var got float64
	for _, pair := range strings.Split(v, ",") {
		name, rate, ok := strings.Cut(strings.TrimSpace(pair), "=")
		name, rate = strings.TrimSpace(name), strings.TrimSpace(rate)
		if !ok || name == "" {
			e.fail(EnvProjectRateCaps, v, fmt.Sprintf("%s; %q is not one", syntax, strings.TrimSpace(pair)))
			return 0
		}
		if _, known := registry.Lookup(name); !known {
			e.fail(EnvProjectRateCaps, v, fmt.Sprintf("%s; %q is not a partner (%v)", syntax, name, registry.Names()))
			return 0
		}
		if seen[name] {
			e.fail(EnvProjectRateCaps, v, fmt.Sprintf("%s; %s appears twice", syntax, name))
			return 0
		}
		seen[name] = true
		f, err := strconv.ParseFloat(rate, 64)
		if err != nil || f <= 0 || math.IsNaN(f) || math.IsInf(f, 0) {
			e.fail(EnvProjectRateCaps, v, fmt.Sprintf("%s; %s's rate %q is not a positive number of findings per second", syntax, name, rate))
			return 0
		}
		if name == string(p) {
			got = f
		}
	}
	return got
}

// commonFromEnv builds what both kinds of function need from the Lambda
// environment: SDK clients (X-Ray instrumented; AWS_ENDPOINT_URL honoured
// by the SDK for local runs), the results sink, the flag reader, the
// dead-letterer and the JSON logger; and the queues the handler makes its
// other sinks and its requeuer from, with the same SEND_LINGER.
func commonFromEnv(ctx context.Context, e *env) (Common, queues, error) {
	results := e.required(EnvResultsQueue)
	linger := e.duration(EnvSendLinger, sqsbatch.DefaultLinger, true)
	conc := e.positiveInt(EnvConcurrency, sqsbatch.DefaultConcurrency)
	flagParam, _ := e.get(featureflag.EnvParameter)
	flagTTL := e.duration(featureflag.EnvCacheTTL, featureflag.DefaultTTL, false)
	dlq, _ := e.get(EnvDeadLetterQueue)
	var level slog.Level
	if v, ok := e.get(EnvLogLevel); ok && level.UnmarshalText([]byte(v)) != nil {
		e.fail(EnvLogLevel, v, "debug, info, warn or error")
	}
	if e.err != nil {
		return Common{}, queues{}, e.err
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return Common{}, queues{}, fmt.Errorf("load AWS config: %w", err)
	}
	tracing.InstrumentAWS(&cfg)
	q := queues{client: sqs.NewFromConfig(cfg), linger: linger}
	logger := logging.New(os.Stderr, level)
	flag, err := featureflag.NewReader(ssm.NewFromConfig(cfg), featureflags.PartnerTokenVerification,
		featureflag.ReaderOptions{Parameter: flagParam, TTL: flagTTL, Logger: logger})
	if err != nil {
		return Common{}, queues{}, err
	}
	return Common{
		Results:     q.sink(results),
		Gate:        flag.EnabledFor,
		DeadLetter:  sqsbatch.NewDeadLetterer(q.client, dlq, logger),
		Logger:      logger,
		MetricsOut:  os.Stdout,
		Concurrency: conc,
	}, q, nil
}

// queues is the functions' SQS client and their SEND_LINGER, from which
// each queue's Sink is made.
type queues struct {
	client *sqs.Client
	linger time.Duration
}

// sink is the Sink of the queue at url: its Sender behind a Coalescer of
// the linger, or the Sender alone when the linger is 0 (every record sends
// its own messages).
func (q queues) sink(url string) Sink {
	s := sqsbatch.NewSender(q.client, url)
	if q.linger <= 0 {
		return s
	}
	return sqsbatch.NewCoalescer(s, q.linger)
}

// DispatcherFromEnv builds the dispatcher from the Lambda environment: one
// queue per partner of the registry.
func DispatcherFromEnv(ctx context.Context) (*Dispatcher, error) {
	e := &env{getenv: os.Getenv}
	urls := map[finding.Partner]string{}
	for _, p := range registry.Names() {
		urls[p] = e.required(EnvPartnerQueuePrefix + strings.ToUpper(string(p)))
	}
	fair := e.boolean(EnvFairQueues, true)
	common, q, err := commonFromEnv(ctx, e)
	if err != nil {
		return nil, err
	}
	sinks := map[finding.Partner]Sink{}
	for p, url := range urls {
		sinks[p] = q.sink(url)
	}
	return NewDispatcher(DispatcherConfig{Common: common, PartnerQueues: sinks, FairQueues: fair})
}

// PartnerWorkerFromEnv builds the partner function named by PARTNER: its
// verifier from the registry (endpoints from PARTNER_ENDPOINT_…, the
// request timeout), wrapped in the per-instance rate limiter and, outermost
// so that a cache hit spends no rate, the verdict cache.
func PartnerWorkerFromEnv(ctx context.Context) (*Worker, error) {
	e := &env{getenv: os.Getenv}
	name := e.required(EnvPartner)
	if e.err != nil {
		return nil, e.err
	}
	def, ok := registry.Lookup(name)
	if !ok {
		e.fail(EnvPartner, name, fmt.Sprintf("one of %v", registry.Names()))
		return nil, e.err
	}
	opts, err := registry.Options(def, os.Getenv)
	if err != nil {
		return nil, err
	}
	opts.Timeout = e.duration(EnvPartnerTimeout, 0, false)
	opts.NetworkRetries = NetworkRetries
	rate := throttle.Options{
		RatePerSecond: e.positiveFloat(EnvRatePerSecond, def.Rate.PerSecond),
		Burst:         e.positiveInt(EnvRateBurst, def.Rate.Burst),
	}
	backoff := sqsbatch.Backoff
	if base := e.duration(EnvBackoffBase, 0, false); base > 0 {
		backoff = sqsbatch.BackoffFrom(base)
	}
	// Below 1000, SQS's largest maxReceiveCount: the queue's must be larger.
	maxAttempts := e.intRange(EnvMaxAttempts, sqsbatch.DefaultMaxAttempts, 1, 999)
	cache := verdictcache.Options{
		Size:        e.intRange(EnvCacheSize, verdictcache.DefaultSize, 0, math.MaxInt32),
		ActiveTTL:   e.duration(EnvCacheTTLActive, 0, true),
		InactiveTTL: e.duration(EnvCacheTTLInactive, 0, true),
	}
	if cache.Size == 0 {
		cache.Size = -1 // off, in the options' convention
	}
	var capOpts *projectcap.Options
	if c := e.projectRateCap(def.Name); c > 0 {
		instances := e.intRange(EnvMaxConcurrency, 0, 1, 1000)
		if instances == 0 && e.err == nil {
			e.err = fmt.Errorf("config: %s is not set: want the event source's MaximumConcurrency, by which %s's cap in %s is divided",
				EnvMaxConcurrency, def.Name, EnvProjectRateCaps)
		}
		capOpts = &projectcap.Options{PerSecond: c / float64(max(instances, 1))}
	}
	common, q, err := commonFromEnv(ctx, e)
	if err != nil {
		return nil, err
	}
	v, err := def.New(opts)
	if err != nil {
		return nil, fmt.Errorf("%s: new verifier: %w", def.Name, err)
	}
	cached := verdictcache.New(throttle.New(v, def.Name, rate), def.Name, cache)
	return NewWorker(WorkerConfig{
		Common:      common,
		Partner:     def.Name,
		Verifier:    cached,
		Requeue:     QueueDelayer{sqsbatch.NewQueueURLResolver(q.client)},
		MaxAttempts: maxAttempts,
		Backoff:     backoff,
		ProjectCap:  newProjectCap(capOpts),
	})
}

// QueueDelayer pushes a record's visibility out on its own source queue.
type QueueDelayer struct{ Queues *sqsbatch.QueueURLResolver }

// Delay implements Requeuer with ChangeMessageVisibility.
func (q QueueDelayer) Delay(ctx context.Context, rec events.SQSMessage, d time.Duration) error {
	return sqsbatch.Delay(ctx, q.Queues, rec, d)
}
