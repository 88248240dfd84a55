package pipeline

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/featureflag"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/logging"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/sqsbatch"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/throttle"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/tracing"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verdictcache"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

// Environment variables read here besides those of contract §6.
const (
	// EnvConcurrency bounds the records processed at once in one invocation.
	EnvConcurrency = "PARTNER_CONCURRENCY"
	// EnvResultsQueue is the results queue (contract §6).
	EnvResultsQueue = "RESULTS_QUEUE_URL"
	// EnvPartnerQueuePrefix + upper-case partner is a partner queue (dispatcher only).
	EnvPartnerQueuePrefix = "PARTNER_QUEUE_URL_"
	// EnvBackoffBase overrides the retry backoff's base (a Go duration);
	// local runs and end-to-end tests shorten it.
	EnvBackoffBase = "RETRY_BACKOFF_BASE"
	// EnvPartnerTimeout bounds one partner HTTP request (a Go duration);
	// unset means partnerhttp.DefaultTimeout. A request is measured for
	// PartnerAPILatency only up to it, so the latency alarm can see a slow
	// partner only when it is above that alarm's threshold.
	EnvPartnerTimeout = "PARTNER_TIMEOUT"
)

// PartnerTimeout reads PARTNER_TIMEOUT for a partner verifier's Config:
// 0, the partner client's default, when unset.
func PartnerTimeout() (time.Duration, error) {
	v := strings.TrimSpace(os.Getenv(EnvPartnerTimeout))
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("config: %s: want a positive duration such as 10s", EnvPartnerTimeout)
	}
	return d, nil
}

// commonFromEnv builds what both kinds of function need from the Lambda
// environment: SDK clients (X-Ray instrumented; AWS_ENDPOINT_URL honoured
// by the SDK for local runs), the results sender, the flag reader, the
// dead-letterer and the JSON logger.
func commonFromEnv(ctx context.Context) (Common, *sqs.Client, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return Common{}, nil, fmt.Errorf("load AWS config: %w", err)
	}
	tracing.InstrumentAWS(&cfg)
	client := sqs.NewFromConfig(cfg)
	results, err := required(EnvResultsQueue)
	if err != nil {
		return Common{}, nil, err
	}
	flag, err := featureflag.ReaderFromEnv(cfg)
	if err != nil {
		return Common{}, nil, err
	}
	conc, err := positiveInt(EnvConcurrency, sqsbatch.DefaultConcurrency)
	if err != nil {
		return Common{}, nil, err
	}
	logger := logging.FromEnv()
	return Common{
		Results:     sqsbatch.NewSender(client, results),
		Gate:        flag.EnabledFor,
		DeadLetter:  sqsbatch.DeadLettererFromEnv(client, logger),
		Logger:      logger,
		MetricsOut:  os.Stdout,
		Concurrency: conc,
	}, client, nil
}

// DispatcherFromEnv builds the dispatcher from the Lambda environment.
func DispatcherFromEnv(ctx context.Context) (*Dispatcher, error) {
	common, client, err := commonFromEnv(ctx)
	if err != nil {
		return nil, err
	}
	queues := map[finding.Partner]Sink{}
	for _, p := range finding.Partners() {
		url, err := required(EnvPartnerQueuePrefix + strings.ToUpper(string(p)))
		if err != nil {
			return nil, err
		}
		queues[p] = sqsbatch.NewSender(client, url)
	}
	return NewDispatcher(DispatcherConfig{Common: common, PartnerQueues: queues})
}

// WorkerFromEnv builds a partner function around its partner's verifier,
// adding the verdict cache (outermost: a cache hit spends no rate) and the
// per-instance rate limiter.
func WorkerFromEnv(ctx context.Context, partner finding.Partner, v verify.Verifier) (*Worker, error) {
	common, client, err := commonFromEnv(ctx)
	if err != nil {
		return nil, err
	}
	limited, err := throttle.FromEnv(v, partner)
	if err != nil {
		return nil, err
	}
	cached, err := verdictcache.FromEnv(limited, partner)
	if err != nil {
		return nil, err
	}
	maxAttempts, err := sqsbatch.MaxAttempts()
	if err != nil {
		return nil, err
	}
	backoff := sqsbatch.Backoff
	if v := strings.TrimSpace(os.Getenv(EnvBackoffBase)); v != "" {
		base, err := time.ParseDuration(v)
		if err != nil || base <= 0 {
			return nil, fmt.Errorf("config: %s: want a positive duration such as 10s", EnvBackoffBase)
		}
		backoff = sqsbatch.BackoffFrom(base)
	}
	return NewWorker(WorkerConfig{
		Common:      common,
		Partner:     partner,
		Verifier:    cached,
		Requeue:     QueueDelayer{sqsbatch.NewQueueURLResolver(client)},
		MaxAttempts: maxAttempts,
		Backoff:     backoff,
	})
}

// QueueDelayer pushes a record's visibility out on its own source queue.
type QueueDelayer struct{ Queues *sqsbatch.QueueURLResolver }

// Delay implements Requeuer with ChangeMessageVisibility.
func (q QueueDelayer) Delay(ctx context.Context, rec events.SQSMessage, d time.Duration) error {
	return sqsbatch.Delay(ctx, q.Queues, rec, d)
}

func required(name string) (string, error) {
	v := strings.TrimSpace(os.Getenv(name))
	if v == "" {
		return "", fmt.Errorf("config: %s is not set", name)
	}
	return v, nil
}

func positiveInt(name string, def int) (int, error) {
	v := strings.TrimSpace(os.Getenv(name))
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("config: %s: want a positive integer", name)
	}
	return n, nil
}
