package featureflag

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ssm"

	featureflags "gitlab.com/gitlab-org/secret-detection/partner-token-verification/config/feature_flags"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
)

// Environment variables of contract §6 that configure the reader.
const (
	EnvParameter = "FEATURE_FLAG_PARAMETER"
	EnvCacheTTL  = "FEATURE_FLAG_CACHE_TTL"
)

// DefaultTTL is how long a function instance uses a value before reading
// the parameter again: the bound on how long a rollback takes to bite.
const DefaultTTL = 30 * time.Second

// MaxTTL caps the cache time, so that a typo cannot stretch the rollback
// bound into hours.
const MaxTTL = 15 * time.Minute

// maxRetryInterval bounds how often a failing read is retried: an SSM outage
// must not turn every message into a GetParameter call, which would soon be
// throttled too.
const maxRetryInterval = time.Second

// GetParameterAPI is the part of the SSM client the reader uses.
type GetParameterAPI interface {
	GetParameter(ctx context.Context, in *ssm.GetParameterInput, optFns ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
}

// InvalidValueError reports a parameter whose value is not a valid flag
// value. It is never read as "off": the caller gets it until the value is fixed.
type InvalidValueError struct {
	Parameter string
	Version   int64
	Err       error
}

// Error names the parameter, its version and what is wrong with the value.
func (e *InvalidValueError) Error() string {
	return fmt.Sprintf("feature flag parameter %s version %d: invalid value: %v", e.Parameter, e.Version, e.Err)
}

// Unwrap gives the decoding error.
func (e *InvalidValueError) Unwrap() error { return e.Err }

// ReaderOptions configures a Reader; zero fields take the defaults.
type ReaderOptions struct {
	// Parameter is the SSM parameter name; default DefaultParameter(flag).
	Parameter string
	// TTL is how long a value read is used; default DefaultTTL.
	TTL time.Duration
	// Now is the clock; default time.Now. Tests inject their own.
	Now func() time.Time
	// Logger receives a warning when a stale value is used; default slog.Default().
	Logger *slog.Logger
}

// Reader gives a function instance the current value of one flag, read from
// SSM at most once per TTL. It is safe for concurrent use.
type Reader struct {
	api       GetParameterAPI
	def       featureflags.Definition
	parameter string
	ttl       time.Duration
	now       func() time.Time
	log       *slog.Logger

	mu        sync.Mutex
	have      bool      // a value was read at least once
	val       Value     // the last value read
	readAt    time.Time // when val was read
	failErr   error     // the last read's error, while retries are held back
	failStale bool      // whether val may stand in during failErr
	retryAt   time.Time // no read before this after a failure
}

// NewReader returns a reader of the named flag, which must have a definition.
func NewReader(api GetParameterAPI, flag string, opts ReaderOptions) (*Reader, error) {
	def, err := definition(flag)
	if err != nil {
		return nil, fmt.Errorf("new feature flag reader: %w", err)
	}
	r := &Reader{api: api, def: def, parameter: opts.Parameter, ttl: opts.TTL, now: opts.Now, log: opts.Logger}
	if r.parameter == "" {
		r.parameter = DefaultParameter(flag)
	}
	if !strings.HasPrefix(r.parameter, "/") {
		return nil, fmt.Errorf("new feature flag reader: parameter name %q does not start with /", printable(r.parameter))
	}
	if r.ttl == 0 {
		r.ttl = DefaultTTL
	}
	if r.ttl < 0 || r.ttl > MaxTTL {
		return nil, fmt.Errorf("new feature flag reader: cache TTL %v is outside (0, %v]", r.ttl, MaxTTL)
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	return r, nil
}

// Value returns the flag's value, reading SSM when the cached one is older
// than the TTL. When SSM fails it returns the last value read; when nothing
// was ever read, or the parameter holds an invalid value, it returns an
// error, so the caller retries the message instead of deciding it wrongly.
// A missing parameter is the definition's default_enabled.
func (r *Reader) Value(ctx context.Context) (Value, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if r.have && now.Sub(r.readAt) < r.ttl && r.failErr == nil {
		return r.val, nil
	}
	if r.failErr != nil && now.Before(r.retryAt) {
		if r.failStale {
			return r.val, nil
		}
		return Value{}, r.failErr
	}
	v, err := r.read(ctx)
	if err == nil {
		r.val, r.have, r.readAt, r.failErr = v, true, now, nil
		return v, nil
	}
	var invalid *InvalidValueError
	r.failErr = err
	r.failStale = r.have && !errors.As(err, &invalid)
	r.retryAt = now.Add(min(r.ttl, maxRetryInterval))
	if r.failStale {
		r.log.LogAttrs(ctx, slog.LevelWarn, "feature flag: using the last value read, SSM read failed",
			slog.String("parameter", r.parameter),
			slog.Time("read_at", r.readAt),
			slog.String("error", err.Error()))
		return r.val, nil
	}
	return Value{}, err
}

// EnabledFor evaluates the flag for a project and partner (see Value.EnabledFor).
func (r *Reader) EnabledFor(ctx context.Context, project finding.Project, partner finding.Partner) (bool, error) {
	v, err := r.Value(ctx)
	if err != nil {
		return false, err
	}
	return v.EnabledFor(project, partner), nil
}

// read reads the parameter once: an absent one is the definition's
// default, an invalid one an *InvalidValueError.
func (r *Reader) read(ctx context.Context) (Value, error) {
	st, err := ReadParameter(ctx, r.api, r.def.Name, r.parameter)
	switch {
	case err != nil:
		return Value{}, err
	case !st.Found:
		return Value{Enabled: r.def.DefaultEnabled, Flag: r.def.Name}, nil
	case st.Invalid != "":
		return Value{}, &InvalidValueError{Parameter: r.parameter, Version: st.Version, Err: errors.New(st.Invalid)}
	}
	return st.Value, nil
}
