package lambdalocal

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// rie finds the emulator as make test installs it (bin/ at the repo root).
func rie(t *testing.T) string {
	t.Helper()
	p, err := FindRIE(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// echoBootstrap builds testdata/echo, a bootstrap that answers with what
// it was asked, and returns its path.
func echoBootstrap(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "bootstrap")
	build := exec.Command("go", "build", "-tags", "lambda.norpc", "-o", bin, "./testdata/echo")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// startEcho runs the echo bootstrap under the emulator with a 20 s
// timeout, stopped when the test ends.
func startEcho(t *testing.T) *Function {
	t.Helper()
	f, err := Start(context.Background(), Options{Name: "EchoFunction", RIE: rie(t), Bootstrap: echoBootstrap(t), Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Stop)
	return f
}

func TestInvokeRunsTheBootstrapUnderTheEmulator(t *testing.T) {
	bin := echoBootstrap(t)
	var mu sync.Mutex
	var lines []string
	f, err := Start(context.Background(), Options{
		Name: "EchoFunction", RIE: rie(t), Bootstrap: bin, Env: map[string]string{"FOO": "bar"}, Timeout: 7 * time.Second,
		Output: func(l string) { mu.Lock(); lines = append(lines, l); mu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Stop()
	out, err := f.Invoke(context.Background(), []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("response %s: %v", out, err)
	}
	if got["foo"] != "bar" {
		t.Errorf("function env FOO = %q, want bar", got["foo"])
	}
	if got["left"] != "7s" && got["left"] != "6s" {
		t.Errorf("deadline left = %s, want the template timeout of 7s", got["left"])
	}
	_, err = f.Invoke(context.Background(), []byte(`{"fail":true}`))
	var fe *FunctionError
	if !errors.As(err, &fe) || !strings.Contains(fe.Payload, "asked to fail") {
		t.Fatalf("failing invocation: err = %v, want a FunctionError", err)
	}
	f.Stop()
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(strings.Join(lines, "\n"), `"line":"stdout"`) {
		t.Errorf("function stdout not captured: %q", lines)
	}
}

func TestStartFailsWithoutBootstrap(t *testing.T) {
	_, err := Start(context.Background(), Options{Name: "X", RIE: "aws-lambda-rie", Bootstrap: filepath.Join(t.TempDir(), "missing")})
	if err == nil || !os.IsNotExist(errors.Unwrap(err)) && !strings.Contains(err.Error(), "bootstrap") {
		t.Fatalf("err = %v, want a bootstrap error", err)
	}
}

// TestKillRuntimeMidInvocation: a bootstrap killed during an invocation
// fails that invocation (the event source mapping then leaves the batch to
// SQS), the emulator stays up, and the next invocation gets a fresh
// bootstrap, as after an out-of-memory kill in Lambda; a bootstrap killed
// between invocations is replaced the same way.
func TestKillRuntimeMidInvocation(t *testing.T) {
	f := startEcho(t)
	if _, err := f.Invoke(context.Background(), []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	first := f.RuntimePIDs()
	if len(first) != 1 {
		t.Fatalf("bootstraps after the first invocation: %v, want one", first)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := f.Invoke(context.Background(), []byte(`{"sleep":"10s"}`))
		errc <- err
	}()
	time.Sleep(time.Second)
	if n := f.KillRuntime(); n != 1 {
		t.Fatalf("KillRuntime killed %d processes, want 1", n)
	}
	select {
	case err := <-errc:
		var fe *FunctionError
		if !errors.As(err, &fe) {
			t.Fatalf("invocation whose process was killed: err = %v, want a FunctionError", err)
		}
		t.Logf("the killed invocation: %v", err)
	case <-time.After(8 * time.Second):
		t.Fatal("the invocation whose process was killed did not end")
	}
	for i, when := range []string{"after a kill mid-invocation", "after a kill between invocations"} {
		if i == 1 {
			if n := f.KillRuntime(); n != 1 {
				t.Fatalf("KillRuntime between invocations killed %d processes, want 1", n)
			}
			// The emulator notices a runtime that died while idle only when
			// it hands it the next invocation, which fails like the one
			// above (Lambda would send it to another instance): a batch
			// comes back after its visibility timeout, nothing is lost.
			var fe *FunctionError
			if _, err := f.Invoke(context.Background(), []byte(`{}`)); !errors.As(err, &fe) || !strings.Contains(fe.Payload, "Runtime.ExitError") {
				t.Fatalf("the first invocation after an idle kill: err = %v, want a Runtime.ExitError", err)
			}
		}
		if _, err := f.Invoke(context.Background(), []byte(`{}`)); err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		if f.Exited() {
			t.Fatalf("%s: the emulator exited", when)
		}
		now := f.RuntimePIDs()
		if len(now) != 1 || now[0] == first[0] {
			t.Fatalf("%s: bootstraps %v, want one fresh process (the first was %d)", when, now, first[0])
		}
		first = now
	}
}

// TestInvokeOutlivesTheCallersDeadline: an event source mapping's deadline
// for an invocation ends no later than the function's own timeout, which
// the emulator enforces. A caller that gave up at its deadline left the
// emulator mid-invocation, and the next invocation crashed the emulator
// ("ReserveFailed: AlreadyReserved", nil dereference): Invoke waits for
// the emulator's answer instead, and only a cancellation ends it early.
func TestInvokeOutlivesTheCallersDeadline(t *testing.T) {
	f := startEcho(t)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := f.Invoke(ctx, []byte(`{"sleep":"1s"}`)); err != nil {
		t.Fatalf("an invocation that outlives the caller's deadline but not the function's timeout: %v", err)
	}
	for i := range 2 {
		if _, err := f.Invoke(context.Background(), []byte(`{}`)); err != nil {
			t.Fatalf("invocation %d after it: %v", i+1, err)
		}
	}
	if f.Exited() {
		t.Fatal("the emulator exited")
	}
	// A cancellation (the stack stopping) still ends the wait.
	cctx, ccancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, ccancel)
	if _, err := f.Invoke(cctx, []byte(`{"sleep":"15s"}`)); !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled invocation: err = %v, want context.Canceled", err)
	}
}
