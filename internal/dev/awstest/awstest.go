// Package awstest starts a real local AWS (moto_server) for tests and local
// runs, and builds SDK configurations that talk to it.
package awstest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/proc"
)

// Region is the region every local resource lives in.
const Region = "us-east-1"

// Moto is a running moto_server process.
type Moto struct {
	// Endpoint is the base URL, e.g. http://127.0.0.1:45123.
	Endpoint string
	cmd      *exec.Cmd
	done     chan struct{}
}

// ErrNoMoto means moto_server is not installed.
var ErrNoMoto = errors.New(`moto_server not found on PATH: install it with pip install "moto[server]"`)

// Start launches moto_server on a free loopback port and waits until it answers.
func Start(ctx context.Context) (*Moto, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	return StartOn(ctx, port)
}

// StartOn launches moto_server on a given loopback port and waits until it
// answers; starting it again on the port of a stopped one is how the chaos
// suite restarts the local AWS under running functions.
func StartOn(ctx context.Context, port int) (*Moto, error) {
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		return nil, ErrNoMoto
	}
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", fmt.Sprint(port))
	proc.Group(cmd)
	if os.Getenv("AWSTEST_VERBOSE") == "" {
		cmd.Stdout, cmd.Stderr = nil, nil
	} else {
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start moto_server: %w", err)
	}
	m := &Moto{Endpoint: fmt.Sprintf("http://127.0.0.1:%d", port), cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(m.done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(m.Endpoint + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			return m, nil
		}
		select {
		case <-m.done:
			return nil, errors.New("moto_server exited during start-up")
		case <-ctx.Done():
			m.Stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			m.Stop()
			return nil, errors.New("moto_server did not answer within 30s")
		}
	}
}

// Stop ends the moto_server process group.
func (m *Moto) Stop() {
	if m == nil || m.cmd.Process == nil {
		return
	}
	proc.StopGroup(m.cmd, m.done, 5*time.Second)
}

// Reset drops every resource moto holds, between tests that share a server.
func (m *Moto) Reset() error {
	resp, err := http.Post(m.Endpoint+"/moto-api/reset", "application/json", nil)
	if err != nil {
		return fmt.Errorf("moto reset: %w", err)
	}
	resp.Body.Close()
	return nil
}

// Config returns an SDK configuration for the local AWS with static test credentials.
func (m *Moto) Config() aws.Config {
	return Config(m.Endpoint)
}

// RequestTimeout bounds each request the tooling sends to the local AWS.
// The SDK's own client has no timeout at all, and moto_server under load
// sometimes leaves a request unanswered (a connection waiting in its accept
// queue, or dropped under an answer): without a bound the caller waited
// forever with the CPU idle. An attempt that times out is retried by the
// standard retryer like a dropped connection. The longest call the tooling
// makes is a 1 s long poll, so 30 s is far beyond any answer moto gives.
const RequestTimeout = 30 * time.Second

// Config returns an SDK configuration that sends every service to endpoint.
// It keeps the SDK's standard retryer (with more attempts): moto_server on
// a loaded machine now and then drops a connection, which a test must not
// mistake for a failure of the code under test.
func Config(endpoint string) aws.Config {
	return ConfigWithTimeout(endpoint, RequestTimeout)
}

// ConfigWithTimeout is Config with another bound on each request attempt.
func ConfigWithTimeout(endpoint string, timeout time.Duration) aws.Config {
	return aws.Config{
		Region:       Region,
		Credentials:  credentials.NewStaticCredentialsProvider("testing", "testing", ""),
		BaseEndpoint: aws.String(endpoint),
		HTTPClient:   awshttp.NewBuildableClient().WithTimeout(timeout),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = 5 })
		},
	}
}

var (
	sharedOnce sync.Once
	shared     *Moto
	sharedErr  error
)

// Shared returns one moto_server for the whole test binary, started on first
// use; tests keep apart by unique resource names. It fails the test when
// moto_server is missing: CI must run these tests, not skip them.
func Shared(t testing.TB) *Moto {
	t.Helper()
	sharedOnce.Do(func() {
		shared, sharedErr = Start(context.Background())
	})
	if sharedErr != nil {
		t.Fatalf("awstest: %v", sharedErr)
	}
	return shared
}

// StopShared stops the shared server; call it from TestMain after m.Run.
func StopShared() {
	if shared != nil {
		shared.Stop()
	}
}

// FreePort asks the kernel for a free loopback TCP port.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Main runs a test binary's tests and stops the shared moto_server after
// them; a package whose tests use Shared calls it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	StopShared()
	os.Exit(code)
}

// FastRetries returns cfg whose clients retry what the SDK deems transient
// with a flat 10 ms backoff: a loaded moto_server now and then drops a
// connection ("use of closed network connection"), which is no finding and
// should not cost a test the SDK's exponential backoff.
func FastRetries(cfg aws.Config) aws.Config {
	cfg.Retryer = func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 10 * time.Millisecond, nil })
		})
	}
	return cfg
}
