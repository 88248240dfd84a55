// Package proc starts the local tooling's child processes (moto_server, the
// Lambda emulator, the partner sandbox) in process groups of their own and
// stops them group and all: a child's own children (a function's bootstrap
// under the emulator, moto's workers) must not outlive a stopped run.
package proc

import (
	"os/exec"
	"syscall"
	"time"
)

// Group makes cmd, when started, lead a process group of its own, which is
// killed if this process dies first. Call it before cmd.Start.
func Group(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// StopGroup ends the process group that cmd leads (see Group): SIGTERM to
// the whole group, then SIGKILL if done is not closed within grace. done
// must be closed once cmd.Wait has returned; StopGroup returns after that.
// A cmd that was never started is left alone.
func StopGroup(cmd *exec.Cmd, done <-chan struct{}, grace time.Duration) {
	if cmd == nil || cmd.Process == nil {
		return
	}
	pgid := cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-done
	}
}
