package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/sandbox"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/proc"
)

// sandboxProc is cmd/partner-sandbox running as a separate process, as the
// partners are separate from the function: its HTTP stack, latency sleeps
// and rate limiter do not share the benchmark's scheduler or heap.
type sandboxProc struct {
	cmd   *exec.Cmd
	env   map[string]string
	admin string
	done  chan struct{}
	// stderr keeps the process's last lines, for an error report.
	stderr *tailBuffer
}

// sandboxStats are the counters of GET /stats.
type sandboxStats struct {
	Requests    map[string]int64 `json:"requests"`
	RateLimited map[string]int64 `json:"rate_limited"`
}

// startSandbox runs the built binary on free loopback ports with the given
// latency and per-partner rates and waits for its endpoint lines.
func startSandbox(ctx context.Context, bin string, latency, jitter time.Duration, rates map[string]float64) (*sandboxProc, error) {
	args := []string{"-latency", latency.String(), "-jitter", jitter.String(),
		"-env-file", "", "-admin", "127.0.0.1:0"}
	if r := rateFlag(rates); r != "" {
		args = append(args, "-rate", r)
	}
	cmd := exec.Command(bin, args...)
	proc.Group(cmd)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("start sandbox: %w", err)
	}
	p := &sandboxProc{cmd: cmd, env: map[string]string{}, done: make(chan struct{}), stderr: &tailBuffer{max: 4096}}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start sandbox: %w", err)
	}
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		signalled := false
		for sc.Scan() {
			if signalled {
				continue
			}
			k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "=")
			if !ok {
				continue
			}
			if k == "PARTNER_SANDBOX_ADMIN" {
				p.admin = v
				signalled = true
				ready <- nil
				continue
			}
			p.env[k] = v
		}
		if !signalled {
			ready <- fmt.Errorf("start sandbox: exited before it was ready: %s", p.stderr.String())
		}
		_ = cmd.Wait()
		close(p.done)
	}()
	select {
	case err := <-ready:
		if err != nil {
			p.stop()
			return nil, err
		}
		return p, nil
	case <-time.After(15 * time.Second):
		p.stop()
		return nil, fmt.Errorf("start sandbox: not ready after 15s")
	case <-ctx.Done():
		p.stop()
		return nil, ctx.Err()
	}
}

// rateFlag formats rates as the sandbox's -rate flag, partners sorted.
func rateFlag(rates map[string]float64) string {
	parts := make([]string, 0, len(rates))
	for p, r := range rates {
		parts = append(parts, fmt.Sprintf("%s=%g", p, r))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// stop ends the sandbox process group.
func (p *sandboxProc) stop() {
	if p == nil || p.cmd.Process == nil {
		return
	}
	proc.StopGroup(p.cmd, p.done, 3*time.Second)
}

// register makes generated credentials live in the sandbox.
func (p *sandboxProc) register(ctx context.Context, c sandbox.Credentials) error {
	body, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("register credentials: %w", err)
	}
	return p.post(ctx, "/credentials", body)
}

// reset zeroes the sandbox's counters between runs.
func (p *sandboxProc) reset(ctx context.Context) error { return p.post(ctx, "/reset", nil) }

func (p *sandboxProc) post(ctx context.Context, path string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.admin+path, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("sandbox %s: %w", path, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("sandbox %s: %w", path, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("sandbox %s: %s: %s", path, resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}

// stats reads the sandbox's request and 429 counters.
func (p *sandboxProc) stats(ctx context.Context) (sandboxStats, error) {
	var st sandboxStats
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.admin+"/stats", nil)
	if err != nil {
		return st, fmt.Errorf("sandbox stats: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, fmt.Errorf("sandbox stats: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("sandbox stats: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return st, fmt.Errorf("sandbox stats: %w", err)
	}
	return st, nil
}

// tailBuffer keeps the last max bytes written to it; the process writes
// from exec's copying goroutine while an error report reads.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = t.buf[over:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.buf))
}
