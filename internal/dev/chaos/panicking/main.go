// Command panicking is a chaos-only build of the partner function (never
// deployed): the function of functions/partner, assembled from the same
// exported parts as pipeline.PartnerWorkerFromEnv, with one difference —
// its verifier panics the first time this process sees a token, with a
// panic value that quotes the token. No partner answer may make a shipped
// verifier panic, so the fault is injected here, outside shared/. The
// chaos scenario verifier-panic proves what the verdict cache and sqsbatch
// promise: the finding is retried, the instance lives on, the other
// records are unaffected and the panic value (the token) reaches no log.
package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	featureflags "gitlab.com/gitlab-org/secret-detection/partner-token-verification/config/feature_flags"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/featureflag"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/logging"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/registry"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/pipeline"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/sqsbatch"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/throttle"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verdictcache"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

// panicsOnce panics on the first call for each token, then verifies.
type panicsOnce struct {
	inner verify.Verifier
	mu    sync.Mutex
	seen  map[string]bool
}

func (p *panicsOnce) Verify(ctx context.Context, tt finding.TokenType, f finding.Finding) (verify.Verdict, error) {
	p.mu.Lock()
	first := !p.seen[string(f.Token)]
	p.seen[string(f.Token)] = true
	p.mu.Unlock()
	if first {
		// The value quotes the token on purpose: it must not reach a log.
		panic(fmt.Errorf("chaos: verifier panicked on token %s", string(f.Token)))
	}
	return p.inner.Verify(ctx, tt, f)
}

func main() {
	w, err := worker(context.Background())
	if err != nil {
		logging.Exit("panicking: init", err)
	}
	lambda.Start(w.Handle)
}

func worker(ctx context.Context) (*pipeline.Worker, error) {
	def, ok := registry.Lookup(os.Getenv(pipeline.EnvPartner))
	if !ok {
		return nil, fmt.Errorf("config: %s=%q: not a partner of the registry", pipeline.EnvPartner, os.Getenv(pipeline.EnvPartner))
	}
	opts, err := registry.Options(def, os.Getenv)
	if err != nil {
		return nil, err
	}
	opts.Timeout = duration(pipeline.EnvPartnerTimeout, 0)
	opts.NetworkRetries = pipeline.NetworkRetries
	v, err := def.New(opts)
	if err != nil {
		return nil, err
	}
	rate := throttle.Options{RatePerSecond: def.Rate.PerSecond, Burst: def.Rate.Burst}
	if f, err := strconv.ParseFloat(os.Getenv(pipeline.EnvRatePerSecond), 64); err == nil {
		rate.RatePerSecond = f
	}
	if n, err := strconv.Atoi(os.Getenv(pipeline.EnvRateBurst)); err == nil {
		rate.Burst = n
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, err
	}
	client := sqs.NewFromConfig(cfg)
	logger := logging.New(os.Stderr, 0)
	flag, err := featureflag.NewReader(ssm.NewFromConfig(cfg), featureflags.PartnerTokenVerification, featureflag.ReaderOptions{
		Parameter: os.Getenv(featureflag.EnvParameter), TTL: duration(featureflag.EnvCacheTTL, featureflag.DefaultTTL), Logger: logger})
	if err != nil {
		return nil, err
	}
	conc, _ := strconv.Atoi(os.Getenv(pipeline.EnvConcurrency))
	attempts, _ := strconv.Atoi(os.Getenv(pipeline.EnvMaxAttempts))
	backoff := sqsbatch.Backoff
	if base := duration(pipeline.EnvBackoffBase, 0); base > 0 {
		backoff = sqsbatch.BackoffFrom(base)
	}
	// Where a shipped verifier sits: inside the rate limiter and the
	// verdict cache, whose shared call runs on a goroutine of its own.
	panicking := &panicsOnce{inner: v, seen: map[string]bool{}}
	cached := verdictcache.New(throttle.New(panicking, def.Name, rate), def.Name, verdictcache.Options{})
	return pipeline.NewWorker(pipeline.WorkerConfig{
		Common: pipeline.Common{
			Results:     sqsbatch.NewSender(client, os.Getenv(pipeline.EnvResultsQueue)),
			Gate:        flag.EnabledFor,
			DeadLetter:  sqsbatch.NewDeadLetterer(client, os.Getenv(pipeline.EnvDeadLetterQueue), logger),
			Logger:      logger,
			MetricsOut:  os.Stdout,
			Concurrency: conc,
		},
		Partner:     def.Name,
		Verifier:    cached,
		Requeue:     pipeline.QueueDelayer{Queues: sqsbatch.NewQueueURLResolver(client)},
		MaxAttempts: attempts,
		Backoff:     backoff,
	})
}

// duration reads a Go duration; unset or unreadable gives def.
func duration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil && d > 0 {
		return d
	}
	return def
}
