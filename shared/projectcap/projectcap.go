// Package projectcap paces one project's findings through one partner's
// function, so that a project sending thousands of findings cannot take
// the partner's whole rate (or a per-project limit the partner keeps, as
// GitLab does for its verifications) while another project waits.
//
// Each project gets a token bucket (golang.org/x/time/rate) in a bounded
// LRU. The rate is this instance's share of a global per-project cap:
// SQS runs at most MaximumConcurrency instances of a partner function, so
//
//	per-instance rate = global cap ÷ MaximumConcurrency
//
// as for the partner rate (shared/throttle).
//
// A record over its project's rate is not refused: it keeps a slot in the
// bucket (the reservation is not cancelled) and is handed back to SQS with
// its visibility pushed out until that slot. When it comes back to this
// instance it passes on the slot it holds, without taking another token,
// so a flood of one project comes back spread over time at the cap, each
// record received about twice. A record that returns to another instance
// has no slot there and is paced again; that costs it a receive, never its
// finding (the caller lets a record's last attempt through uncapped).
//
// Memory is bounded twice: at most Projects buckets (the least recently
// used project forgets its bucket and starts with a full burst again) and
// at most Held slots (a record whose slot was forgotten takes a new one).
package projectcap

import (
	"math"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"
)

// Defaults of Options.
const (
	// DefaultProjects bounds the buckets kept: a few hundred bytes each, so
	// ten thousand projects cost a few megabytes of a 128 MB function.
	DefaultProjects = 10000
	// DefaultHeld bounds the slots remembered for records handed back.
	DefaultHeld = 10000
	// MaxHold is the longest a record is handed back for: SQS's largest
	// visibility timeout. A record whose slot is further out gives its
	// slot back and is paced again when it returns.
	MaxHold = 12 * time.Hour
)

// Options configures a Limiter.
type Options struct {
	// PerSecond is this instance's rate for one project; it must be above 0.
	PerSecond float64
	// Burst is how many findings of a quiet project may pass at once; 0
	// means the rate rounded up (at least 1).
	Burst int
	// Projects and Held bound the LRUs; 0 means the defaults.
	Projects, Held int
	// Clock returns the current time; nil means time.Now. Tests inject one.
	Clock func() time.Time
}

// Limiter decides, per record, whether its project's findings may reach
// the partner now. It is safe for concurrent use; build one per partner
// function instance.
type Limiter struct {
	limit rate.Limit
	burst int
	now   func() time.Time

	mu       sync.Mutex
	projects *lru.Cache[int64, *rate.Limiter]
	held     *lru.Cache[string, time.Time]
}

// New returns a Limiter; it panics when o.PerSecond is not a finite
// positive number, which the configuration loader rules out first.
func New(o Options) *Limiter {
	if !(o.PerSecond > 0) || math.IsInf(o.PerSecond, 0) {
		panic("projectcap: PerSecond must be a finite positive number")
	}
	if o.Burst <= 0 {
		o.Burst = max(1, int(math.Ceil(o.PerSecond)))
	}
	if o.Projects <= 0 {
		o.Projects = DefaultProjects
	}
	if o.Held <= 0 {
		o.Held = DefaultHeld
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	projects, _ := lru.New[int64, *rate.Limiter](o.Projects)
	held, _ := lru.New[string, time.Time](o.Held)
	return &Limiter{limit: rate.Limit(o.PerSecond), burst: o.Burst, now: o.Clock, projects: projects, held: held}
}

// Admit asks for n findings of project, carried by the SQS message
// messageID. It returns 0 when they may go to the partner now, else how
// long to hand the record back for; the record then holds its slot here.
func (l *Limiter) Admit(project int64, messageID string, n int) time.Duration {
	if n <= 0 {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if due, ok := l.held.Get(messageID); ok {
		if !now.Before(due) {
			l.held.Remove(messageID)
			return 0
		}
		// Back before its slot (its visibility was changed elsewhere, or a
		// duplicate delivery): wait out the rest of the slot it holds.
		return due.Sub(now)
	}
	lim, ok := l.projects.Get(project)
	if !ok {
		lim = rate.NewLimiter(l.limit, l.burst)
		// Anchor the bucket at the injected clock, not the zero time.
		lim.SetLimitAt(now, l.limit)
		l.projects.Add(project, lim)
	}
	// A record with more findings than the burst could never be admitted
	// whole; it pays the burst, the most the bucket can hold.
	r := lim.ReserveN(now, min(n, l.burst))
	d := r.DelayFrom(now)
	switch {
	case d <= 0:
		return 0
	case d > MaxHold:
		r.CancelAt(now)
		return MaxHold
	}
	l.held.Add(messageID, now.Add(d))
	return d
}

// Len reports how many project buckets and held slots are kept.
func (l *Limiter) Len() (projects, held int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.projects.Len(), l.held.Len()
}
