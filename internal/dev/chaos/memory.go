package chaos

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Memory is one function's peak resident memory over a scenario.
type Memory struct {
	Function string
	// PeakKB is the highest VmHWM of the function's bootstrap processes:
	// the most resident memory the function ever used, as the kernel kept it.
	PeakKB int64
	// LimitMB is the function's MemorySize from the template, the size
	// Lambda would stop it at.
	LimitMB int
	// Processes is how many bootstrap processes were seen: more than one
	// means the runtime was restarted (a crash or a hard timeout).
	Processes int
	// Samples is how many times the peak was read.
	Samples int
	// Invocations is how many times the function was invoked; one never
	// invoked has no bootstrap to measure (the emulator starts it lazily).
	Invocations int
}

// sampler reads the peak memory of the bootstrap processes under each
// emulator from /proc while a scenario runs.
type sampler struct {
	mu     sync.Mutex
	emus   map[string]int // function -> emulator pid
	limits map[string]int
	peaks  map[string]int64
	pids   map[string]map[int]bool
	counts map[string]int
	stop   context.CancelFunc
	done   chan struct{}
}

func startSampler(emus map[string]int, limits map[string]int, every time.Duration) *sampler {
	ctx, cancel := context.WithCancel(context.Background())
	s := &sampler{emus: emus, limits: limits, peaks: map[string]int64{}, pids: map[string]map[int]bool{},
		counts: map[string]int{}, stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			s.sample()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// sample reads VmHWM of every bootstrap below each emulator once.
func (s *sampler) sample() {
	children := processTree()
	s.mu.Lock()
	defer s.mu.Unlock()
	for fn, emu := range s.emus {
		for _, pid := range descendants(children, emu) {
			if comm(pid) != "bootstrap" {
				continue
			}
			if s.noteLocked(fn, pid) {
				s.counts[fn]++
			}
		}
	}
}

// observe records bootstrap processes of a function found some other way
// than by sampling (the processes a kill is about to end), with their peak.
func (s *sampler) observe(fn string, pids []int) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.emus[fn]; !ok {
		return
	}
	for _, pid := range pids {
		s.noteLocked(fn, pid)
	}
}

// noteLocked records one bootstrap process of fn and its peak memory, if
// it can still be read; s.mu must be held.
func (s *sampler) noteLocked(fn string, pid int) bool {
	kb, ok := vmHWM(pid)
	if !ok {
		return false
	}
	if s.pids[fn] == nil {
		s.pids[fn] = map[int]bool{}
	}
	s.pids[fn][pid] = true
	s.peaks[fn] = max(s.peaks[fn], kb)
	return true
}

// Stop ends sampling after one last reading and returns the peaks.
func (s *sampler) Stop() []Memory {
	s.stop()
	<-s.done
	s.sample()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Memory
	for fn := range s.emus {
		out = append(out, Memory{Function: fn, PeakKB: s.peaks[fn], LimitMB: s.limits[fn], Processes: len(s.pids[fn]), Samples: s.counts[fn]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Function < out[j].Function })
	return out
}

// processTree maps each pid to its children, from /proc/<pid>/stat.
func processTree() map[int][]int {
	out := map[int][]int{}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 {
			continue
		}
		pid, err1 := strconv.Atoi(strings.Fields(s)[0])
		ppid, err2 := strconv.Atoi(f[1])
		if err1 == nil && err2 == nil {
			out[ppid] = append(out[ppid], pid)
		}
	}
	return out
}

func descendants(children map[int][]int, root int) []int {
	var out []int
	queue := []int{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

func comm(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// vmHWM reads the peak resident set size in kB from /proc/<pid>/status.
func vmHWM(pid int) (int64, bool) { return procStatus(pid, "VmHWM:") }

// procStatus reads one kB field of /proc/<pid>/status.
func procStatus(pid int, field string) (int64, bool) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}
