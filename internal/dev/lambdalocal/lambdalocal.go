// Package lambdalocal runs a function's real bootstrap binary the way Lambda
// does, under the AWS Lambda Runtime Interface Emulator (aws-lambda-rie),
// for machines without Docker or the SAM CLI: `make invoke` posts one event
// to it, `make run` feeds it from the local event source mappings.
package lambdalocal

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/awstest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/proc"
)

// Function is one running emulator with one function instance behind it.
type Function struct {
	// Name is the function's logical id.
	Name    string
	addr    string
	cmd     *exec.Cmd
	done    chan struct{}
	mu      sync.Mutex // one invocation at a time, as one Lambda instance
	timeout time.Duration

	// failMu guards failure: the emulator's last "Init failed" or "Invoke
	// failed" reason, which its empty 502 answer leaves out.
	failMu  sync.Mutex
	failure string
}

// Options describe how to start a function.
type Options struct {
	// Name is the logical id (also AWS_LAMBDA_FUNCTION_NAME).
	Name string
	// RIE is the emulator binary (aws-lambda-rie).
	RIE string
	// Bootstrap is the function's binary, built for this machine.
	Bootstrap string
	// Env is the function's environment (the template's plus overrides).
	Env map[string]string
	// Timeout and MemoryMB are the template's Timeout and MemorySize.
	Timeout  time.Duration
	MemoryMB int
	// Output receives every line the emulator and the function print
	// (function logs on stderr, EMF records on stdout); nil discards them.
	Output func(line string)
}

// Start launches the emulator on a free loopback port and waits until it accepts connections.
func Start(ctx context.Context, o Options) (*Function, error) {
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.MemoryMB <= 0 {
		o.MemoryMB = 128
	}
	if _, err := os.Stat(o.Bootstrap); err != nil {
		return nil, fmt.Errorf("lambdalocal: %s: bootstrap: %w", o.Name, err)
	}
	// The emulator runs in the bootstrap's directory, as Lambda runs it in
	// /var/task: relative paths must not depend on ours.
	for _, p := range []*string{&o.Bootstrap, &o.RIE} {
		if strings.ContainsRune(*p, filepath.Separator) {
			abs, err := filepath.Abs(*p)
			if err != nil {
				return nil, fmt.Errorf("lambdalocal: %s: %w", o.Name, err)
			}
			*p = abs
		}
	}
	port, err := awstest.FreePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	// The Runtime API the bootstrap polls defaults to 127.0.0.1:9001; each
	// emulator gets its own port so several functions can run side by side.
	apiPort, err := awstest.FreePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(o.RIE, "--runtime-interface-emulator-address", addr,
		"--runtime-api-address", fmt.Sprintf("127.0.0.1:%d", apiPort), o.Bootstrap)
	cmd.Dir = filepath.Dir(o.Bootstrap)
	proc.Group(cmd)
	cmd.Env = environ(o)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("lambdalocal: start %s: %w", o.RIE, err)
	}
	f := &Function{Name: o.Name, addr: addr, cmd: cmd, done: make(chan struct{}), timeout: o.Timeout}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			if m := failedLine.FindStringSubmatch(sc.Text()); m != nil {
				f.failMu.Lock()
				f.failure = m[1]
				f.failMu.Unlock()
			}
			if o.Output != nil {
				o.Output(sc.Text())
			}
		}
		_ = cmd.Wait()
		close(f.done)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return f, nil
		}
		select {
		case <-f.done:
			return nil, fmt.Errorf("lambdalocal: %s: emulator exited during start-up", o.Name)
		case <-ctx.Done():
			f.Stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			f.Stop()
			return nil, fmt.Errorf("lambdalocal: %s: emulator not listening after 10s", o.Name)
		}
	}
}

// environ is what Lambda gives a function: its variables plus the runtime's
// own (timeout, memory, name, region) and the caller's PATH and credentials.
func environ(o Options) []string {
	env := map[string]string{
		"AWS_LAMBDA_FUNCTION_NAME":        o.Name,
		"AWS_LAMBDA_FUNCTION_TIMEOUT":     fmt.Sprint(int(o.Timeout.Seconds())),
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": fmt.Sprint(o.MemoryMB),
		"AWS_LAMBDA_FUNCTION_VERSION":     "$LATEST",
		"AWS_REGION":                      awstest.Region,
		"AWS_DEFAULT_REGION":              awstest.Region,
	}
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"} {
		if v, ok := os.LookupEnv(k); ok {
			env[k] = v
		}
	}
	for k, v := range o.Env {
		env[k] = v
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, k+"="+env[k])
	}
	return out
}

// Invoke posts one event and returns the function's response payload. A
// function error (the handler returned an error or crashed) is an error
// whose text is the runtime's error payload.
//
// The emulator enforces the function's timeout itself and answers "Task
// timed out"; Invoke waits for that answer (up to the timeout and 5 s more)
// even when ctx's deadline comes sooner, as an event source mapping's
// deadline always does, its clock having started first. A caller that
// gives up leaves the emulator with an invocation still running, and the
// emulator crashes on the next one (rapidcore: "ReserveFailed:
// AlreadyReserved", then a nil dereference): the function would be gone
// for the rest of the run. Only a cancellation of ctx ends the wait early.
func (f *Function) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	parent := ctx
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), f.timeout+5*time.Second)
	defer cancel()
	stop := context.AfterFunc(parent, func() {
		if !errors.Is(parent.Err(), context.DeadlineExceeded) {
			cancel()
		}
	})
	defer stop()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+f.addr+"/2015-03-31/functions/function/invocations", bytes.NewReader(payload))
	if err != nil {
		return nil, err
	}
	// Our own request id, so that an error payload made up for the
	// emulator's empty answer names the invocation, as Lambda's does.
	requestID := rand.Text()
	req.Header.Set("X-Amzn-RequestId", requestID)
	f.failMu.Lock()
	f.failure = ""
	f.failMu.Unlock()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("lambdalocal: invoke %s: %w", f.Name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 6*1024*1024))
	if err != nil {
		return nil, fmt.Errorf("lambdalocal: invoke %s: read response: %w", f.Name, err)
	}
	if timedOut.Match(body) {
		body = errorPayload("Sandbox.Timedout", requestID, strings.TrimSpace(string(body)))
		return body, &FunctionError{Function: f.Name, Payload: string(body)}
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Amz-Function-Error") != "" || isErrorPayload(body) {
		if len(bytes.TrimSpace(body)) == 0 {
			body = errorPayload("Runtime.ExitError", requestID, f.failureReason())
		}
		return body, &FunctionError{Function: f.Name, Payload: strings.TrimSpace(string(body))}
	}
	return body, nil
}

// failedLine is the emulator's log line of a failed init or invocation;
// its reason ("Runtime exited with error: exit status 1") is what Lambda
// puts in the Runtime.ExitError payload.
var failedLine = regexp.MustCompile(`\(rapid\) (?:Init|Invoke) failed error=(.+?) InvokeID=`)

// timedOut is the emulator's answer to an invocation past its timeout.
var timedOut = regexp.MustCompile(`^Task timed out after [0-9.]+ seconds$`)

// failureReason is the reason the emulator logged for the failure it just
// answered; the log arrives through a pipe, so it may trail the answer.
func (f *Function) failureReason() string {
	for range 20 {
		f.failMu.Lock()
		r := f.failure
		f.failMu.Unlock()
		if r != "" {
			return r
		}
		select {
		case <-f.done:
		case <-time.After(10 * time.Millisecond):
		}
	}
	return "Runtime exited without providing a reason"
}

// errorPayload is Lambda's error payload for a failure of the runtime
// itself, which the emulator answers without one.
func errorPayload(errorType, requestID, reason string) []byte {
	b, _ := json.Marshal(struct {
		ErrorType    string `json:"errorType"`
		ErrorMessage string `json:"errorMessage"`
	}{errorType, "RequestId: " + requestID + " Error: " + reason})
	return b
}

// emulatorLine is a log line of the emulator itself ("06 Dec 2026
// 18:01:41,748 [DEBUG] (rapid) ..."), as opposed to the function's output
// and the START/END/REPORT lines Lambda also writes to the log.
var emulatorLine = regexp.MustCompile(`^\d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2},\d{3} \[\w+\] \(\w+\) `)

// IsEmulatorLine reports whether a line of Output is the emulator's own
// debug log, which `sam local invoke` only shows with --debug.
func IsEmulatorLine(line string) bool { return emulatorLine.MatchString(line) }

// FunctionError is a failed invocation: the handler returned an error,
// panicked, or the runtime timed out.
type FunctionError struct {
	Function string
	Payload  string
}

// Error names the function and quotes its error payload.
func (e *FunctionError) Error() string { return "function " + e.Function + " failed: " + e.Payload }

// isErrorPayload recognises the runtime's error shape, which the emulator
// returns with status 200.
func isErrorPayload(b []byte) bool {
	b = bytes.TrimSpace(b)
	return bytes.HasPrefix(b, []byte(`{"errorMessage"`)) || bytes.HasPrefix(b, []byte(`{"errorType"`))
}

// Stop ends the emulator and the function process.
func (f *Function) Stop() {
	if f == nil || f.cmd.Process == nil {
		return
	}
	proc.StopGroup(f.cmd, f.done, 3*time.Second)
}

// ErrNoRIE means the emulator binary is missing.
var ErrNoRIE = errors.New("aws-lambda-rie not found: run `make tools` (go install github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie)")

// FindRIE returns the emulator: bin/aws-lambda-rie under root, then PATH.
func FindRIE(root string) (string, error) {
	p := filepath.Join(root, "bin", "aws-lambda-rie")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	if p, err := exec.LookPath("aws-lambda-rie"); err == nil {
		return p, nil
	}
	return "", ErrNoRIE
}
