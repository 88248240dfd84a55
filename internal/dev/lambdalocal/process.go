package lambdalocal

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// PID is the process id of the emulator; the function's bootstrap runs as
// its child. The chaos suite reads the bootstrap's peak memory through it.
func (f *Function) PID() int {
	if f == nil || f.cmd == nil || f.cmd.Process == nil {
		return 0
	}
	return f.cmd.Process.Pid
}

// Exited reports whether the emulator has ended (crashed or stopped).
func (f *Function) Exited() bool {
	select {
	case <-f.done:
		return true
	default:
		return false
	}
}

// KillRuntime SIGKILLs the function's bootstrap processes, not the
// emulator, and waits until they are gone: what Lambda does to an instance
// that exceeds its memory or whose host fails. The emulator answers the
// invocation that was running with a Runtime.ExitError and starts a fresh
// bootstrap (a cold start) for the next one. It returns how many processes
// were killed; 0 means no bootstrap was running.
func (f *Function) KillRuntime() int {
	pids := f.RuntimePIDs()
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range pids {
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	return len(pids)
}

// RuntimePIDs are the bootstrap processes running under the emulator.
func (f *Function) RuntimePIDs() []int {
	root := f.PID()
	if root == 0 {
		return nil
	}
	children := map[int][]int{}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range stats {
		pid, ppid, state, ok := readStat(p)
		if ok && state != "Z" {
			children[ppid] = append(children[ppid], pid)
		}
	}
	var out []int
	queue := []int{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			queue = append(queue, c)
			if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", c)); err == nil && strings.TrimSpace(string(b)) == "bootstrap" {
				out = append(out, c)
			}
		}
	}
	return out
}

// alive reports whether a process exists and is not a zombie.
func alive(pid int) bool {
	_, _, state, ok := readStat(fmt.Sprintf("/proc/%d/stat", pid))
	return ok && state != "Z"
}

// readStat reads pid, ppid and state from a /proc/<pid>/stat file; comm,
// between the parentheses, may itself hold spaces and parentheses.
func readStat(path string) (pid, ppid int, state string, ok bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, "", false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, "", false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return 0, 0, "", false
	}
	pid, err1 := strconv.Atoi(strings.Fields(s)[0])
	ppid, err2 := strconv.Atoi(f[1])
	return pid, ppid, f[0], err1 == nil && err2 == nil
}
