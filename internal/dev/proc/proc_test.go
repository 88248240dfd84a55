package proc

import (
	"io"
	"os"
	"os/exec"
	"testing"
	"time"
)

// startGroup starts script under sh in its own group. The returned reader
// reaches EOF only once every process of the group has exited, since each
// holds the pipe's write end as its stdout.
func startGroup(t *testing.T, script string) (*exec.Cmd, <-chan struct{}, *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	cmd := exec.Command("sh", "-c", script)
	cmd.Stdout = w
	Group(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	// The script says it is ready once its children are started.
	buf := make([]byte, len("ready\n"))
	if _, err := io.ReadFull(r, buf); err != nil {
		t.Fatalf("script did not start: %v", err)
	}
	return cmd, done, r
}

func TestStopGroupEndsChildrenToo(t *testing.T) {
	cmd, done, r := startGroup(t, "sleep 600 & sleep 600 & echo ready; wait")
	StopGroup(cmd, done, time.Hour)
	if _, err := io.ReadAll(r); err != nil {
		t.Fatal(err)
	}
}

func TestStopGroupKillsWhatIgnoresTERM(t *testing.T) {
	// Ignored signals stay ignored across exec, so the sleeps ignore TERM too.
	cmd, done, r := startGroup(t, "trap '' TERM; sleep 600 & echo ready; wait")
	StopGroup(cmd, done, 0)
	if _, err := io.ReadAll(r); err != nil {
		t.Fatal(err)
	}
}

func TestStopGroupOfUnstartedCommand(t *testing.T) {
	StopGroup(exec.Command("true"), nil, 0)
	StopGroup(nil, nil, 0)
}
