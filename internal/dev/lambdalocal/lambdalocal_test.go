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

func TestInvokeRunsTheBootstrapUnderTheEmulator(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "bootstrap")
	build := exec.Command("go", "build", "-tags", "lambda.norpc", "-o", bin, "./testdata/echo")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
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
