package featureflag

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
)

// fakeSSM answers GetParameter from a script the test changes between calls.
type fakeSSM struct {
	mu      sync.Mutex
	value   string
	version int64
	err     error // returned instead of the value when set
	calls   int
}

func (f *fakeSSM) set(value string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.value, f.err = value, err
	if err == nil && value != "" {
		f.version++
	}
}

func (f *fakeSSM) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func (f *fakeSSM) GetParameter(_ context.Context, in *ssm.GetParameterInput, _ ...func(*ssm.Options)) (*ssm.GetParameterOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	if f.value == "" {
		return nil, &types.ParameterNotFound{Message: aws.String("not found")}
	}
	return &ssm.GetParameterOutput{Parameter: &types.Parameter{
		Name: in.Name, Value: aws.String(f.value), Version: f.version, Type: types.ParameterTypeString,
	}}, nil
}

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newTestReader(t *testing.T, api GetParameterAPI, ttl time.Duration) (*Reader, *clock, *bytes.Buffer) {
	t.Helper()
	clk := &clock{now: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	var logs bytes.Buffer
	r, err := NewReader(api, flagName, ReaderOptions{
		TTL: ttl, Now: clk.Now, Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return r, clk, &logs
}

var anyProject = finding.Project{ID: 42, FullPath: "gitlab-org/gitlab"}

// step is one call of the reader in a scripted sequence.
type step struct {
	advance   time.Duration
	value     string // "" leaves the fake as it is; "-" makes it not found
	ssmErr    error
	wantOn    bool
	wantErr   string
	wantCalls int // SSM calls so far
}

func TestReaderSequences(t *testing.T) {
	on, off := `{"enabled": true}`, `{"enabled": false}`
	outage := errors.New("dial tcp: connection refused")
	tests := []struct {
		name  string
		ttl   time.Duration
		steps []step
	}{
		{"cached for the TTL, re-read after it", 30 * time.Second, []step{
			{value: on, wantOn: true, wantCalls: 1},
			{advance: 10 * time.Second, value: off, wantOn: true, wantCalls: 1},
			{advance: 19*time.Second + 999*time.Millisecond, wantOn: true, wantCalls: 1},
			{advance: time.Millisecond, wantOn: false, wantCalls: 2},
			{advance: time.Second, wantOn: false, wantCalls: 2},
		}},
		{"SSM failure keeps the last value", 30 * time.Second, []step{
			{value: on, wantOn: true, wantCalls: 1},
			{advance: 31 * time.Second, ssmErr: outage, wantOn: true, wantCalls: 2},
			// Retries are held back for a second, then tried again.
			{advance: 500 * time.Millisecond, wantOn: true, wantCalls: 2},
			{advance: 600 * time.Millisecond, wantOn: true, wantCalls: 3},
			{advance: 2 * time.Second, value: off, wantOn: false, wantCalls: 4},
		}},
		{"nothing ever read is an error, retried after a pause", 30 * time.Second, []step{
			{ssmErr: outage, wantErr: "get feature flag parameter /secret-detection/feature-flags/secret_detection_partner_token_verification: dial tcp", wantCalls: 1},
			{advance: 100 * time.Millisecond, wantErr: "connection refused", wantCalls: 1},
			{advance: time.Second, value: on, wantOn: true, wantCalls: 2},
		}},
		{"missing parameter is the definition's default (off)", 30 * time.Second, []step{
			{value: "-", wantOn: false, wantCalls: 1},
			{advance: 5 * time.Second, value: on, wantOn: false, wantCalls: 1},
			{advance: 25 * time.Second, wantOn: true, wantCalls: 2},
			{advance: 30 * time.Second, value: "-", wantOn: false, wantCalls: 3},
		}},
		{"invalid JSON is an error naming parameter and version", 30 * time.Second, []step{
			{value: `{"enabled": true`, wantErr: "feature flag parameter /secret-detection/feature-flags/secret_detection_partner_token_verification version 1: invalid value: invalid JSON", wantCalls: 1},
		}},
		{"invalid value after a good one is an error, not the stale value", 30 * time.Second, []step{
			{value: on, wantOn: true, wantCalls: 1},
			{advance: 30 * time.Second, value: `{"enabled": true, "partner": {"aws": false}}`, wantErr: `version 2: invalid value: unknown field "partner"`, wantCalls: 2},
			{advance: 500 * time.Millisecond, wantErr: "version 2", wantCalls: 2},
			{advance: 500 * time.Millisecond, value: off, wantOn: false, wantCalls: 3},
		}},
		{"short TTL retries failures at the TTL", 100 * time.Millisecond, []step{
			{ssmErr: outage, wantErr: "connection refused", wantCalls: 1},
			{advance: 99 * time.Millisecond, wantErr: "connection refused", wantCalls: 1},
			{advance: time.Millisecond, value: on, wantOn: true, wantCalls: 2},
			{advance: 100 * time.Millisecond, value: off, wantOn: false, wantCalls: 3},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := &fakeSSM{}
			r, clk, _ := newTestReader(t, api, tt.ttl)
			for i, s := range tt.steps {
				clk.Add(s.advance)
				switch {
				case s.ssmErr != nil:
					api.set(api.value, s.ssmErr)
				case s.value == "-":
					api.set("", nil)
				case s.value != "":
					api.set(s.value, nil)
				}
				got, err := r.EnabledFor(context.Background(), anyProject, finding.PartnerAWS)
				if s.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), s.wantErr) {
						t.Fatalf("step %d: err = %v, want one containing %q", i, err, s.wantErr)
					}
					if got {
						t.Fatalf("step %d: enabled together with an error", i)
					}
				} else if err != nil {
					t.Fatalf("step %d: %v", i, err)
				} else if got != s.wantOn {
					t.Fatalf("step %d: enabled = %v, want %v", i, got, s.wantOn)
				}
				if c := api.count(); c != s.wantCalls {
					t.Fatalf("step %d: %d SSM calls, want %d", i, c, s.wantCalls)
				}
			}
		})
	}
}

func TestReaderInvalidValueIsInvalidValueError(t *testing.T) {
	api := &fakeSSM{}
	api.set(`{"percentage_of_actors": 150}`, nil)
	r, _, _ := newTestReader(t, api, time.Second)
	_, err := r.Value(context.Background())
	var iv *InvalidValueError
	if !errors.As(err, &iv) || iv.Version != 1 || iv.Parameter != r.parameter {
		t.Fatalf("err = %#v, want *InvalidValueError for version 1", err)
	}
}

func TestReaderLogsStaleUse(t *testing.T) {
	api := &fakeSSM{}
	api.set(`{"enabled": true}`, nil)
	r, clk, logs := newTestReader(t, api, time.Second)
	if _, err := r.Value(context.Background()); err != nil {
		t.Fatal(err)
	}
	api.set(api.value, errors.New("throttled"))
	clk.Add(2 * time.Second)
	if _, err := r.Value(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"level":"WARN"`, `"parameter":"/secret-detection/feature-flags/`, `"error":"get feature flag parameter`, "throttled"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log %q lacks %q", logs.String(), want)
		}
	}
}

func TestReaderNotFoundUsesDefinitionDefault(t *testing.T) {
	for _, def := range []bool{false, true} {
		api := &fakeSSM{}
		r, _, _ := newTestReader(t, api, time.Second)
		r.def.DefaultEnabled = def // as if the definition said so
		v, err := r.Value(context.Background())
		if err != nil || v.Enabled != def || v.Flag != flagName {
			t.Errorf("default_enabled %v: Value = %+v, %v", def, v, err)
		}
	}
}

func TestReaderConcurrentCallersShareOneRead(t *testing.T) {
	api := &fakeSSM{}
	api.set(`{"enabled": true}`, nil)
	r, _, _ := newTestReader(t, api, time.Minute)
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if on, err := r.EnabledFor(context.Background(), anyProject, finding.PartnerGCP); err != nil || !on {
				t.Errorf("EnabledFor = %v, %v", on, err)
			}
		})
	}
	wg.Wait()
	if api.count() != 1 {
		t.Errorf("%d SSM calls for 50 concurrent callers within the TTL", api.count())
	}
}

func TestNewReaderRejects(t *testing.T) {
	tests := []struct {
		name, flag string
		opts       ReaderOptions
		wantErr    string
	}{
		{"undefined flag", "no_such_flag", ReaderOptions{}, `"no_such_flag" has no definition`},
		{"relative parameter", flagName, ReaderOptions{Parameter: "flags/x"}, "does not start with /"},
		{"negative TTL", flagName, ReaderOptions{TTL: -time.Second}, "outside"},
		{"huge TTL", flagName, ReaderOptions{TTL: time.Hour}, "outside"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewReader(&fakeSSM{}, tt.flag, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("NewReader = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}
