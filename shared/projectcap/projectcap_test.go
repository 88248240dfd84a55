package projectcap

import (
	"fmt"
	"testing"
	"time"
)

// clock is a settable fake clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func TestFloodIsSpreadAtTheCapAndEveryRecordPassesOnItsSlot(t *testing.T) {
	c := newClock()
	l := New(Options{PerSecond: 2, Burst: 1, Clock: c.now})
	const n = 20
	holds := map[string]time.Duration{}
	for i := range n {
		id := fmt.Sprintf("m-%d", i)
		if d := l.Admit(1, id, 1); d > 0 {
			holds[id] = d
		}
	}
	// One passes on the burst; the others get distinct slots 0.5 s apart.
	if len(holds) != n-1 {
		t.Fatalf("held %d of %d records, want %d", len(holds), n, n-1)
	}
	seen := map[time.Duration]bool{}
	for id, d := range holds {
		if seen[d] {
			t.Errorf("%s: two records share the slot at %v", id, d)
		}
		seen[d] = true
		if d > time.Duration(n)*500*time.Millisecond {
			t.Errorf("%s: held %v, beyond the last slot", id, d)
		}
	}
	// Nothing is dropped: each record, back at its slot, passes at once.
	c.advance(time.Duration(n) * 500 * time.Millisecond)
	for id := range holds {
		if d := l.Admit(1, id, 1); d != 0 {
			t.Errorf("%s: back at its slot, held again for %v", id, d)
		}
	}
	if _, held := l.Len(); held != 0 {
		t.Errorf("%d slots still held after every record passed", held)
	}
}

func TestRecordBackEarlyWaitsOutItsOwnSlot(t *testing.T) {
	c := newClock()
	l := New(Options{PerSecond: 1, Burst: 1, Clock: c.now})
	l.Admit(7, "a", 1)
	d := l.Admit(7, "b", 1)
	if d != time.Second {
		t.Fatalf("second record held %v, want 1s", d)
	}
	c.advance(400 * time.Millisecond)
	if got := l.Admit(7, "b", 1); got != 600*time.Millisecond {
		t.Errorf("back early: held %v, want the rest of its slot, 600ms", got)
	}
	// Its slot was not taken twice: a new record queues behind it.
	if got := l.Admit(7, "c", 1); got != 1600*time.Millisecond {
		t.Errorf("next record held %v, want 1.6s", got)
	}
}

func TestSecondProjectIsUnaffected(t *testing.T) {
	c := newClock()
	l := New(Options{PerSecond: 1, Clock: c.now})
	for i := range 5000 {
		l.Admit(1, fmt.Sprintf("big-%d", i), 1)
	}
	for i := range 3 {
		want := time.Duration(0)
		if i > 0 {
			want = time.Duration(i) * time.Second
		}
		if d := l.Admit(2, fmt.Sprintf("small-%d", i), 1); d != want {
			t.Errorf("small project's record %d held %v, want %v (its own bucket)", i, d, want)
		}
	}
}

func TestMemoryIsBounded(t *testing.T) {
	c := newClock()
	l := New(Options{PerSecond: 1, Projects: 100, Held: 50, Clock: c.now})
	for p := range int64(1000) {
		for i := range 3 {
			l.Admit(p, fmt.Sprintf("%d-%d", p, i), 1)
		}
	}
	projects, held := l.Len()
	if projects != 100 || held != 50 {
		t.Errorf("kept %d buckets and %d slots, want 100 and 50", projects, held)
	}
}

func TestForgottenSlotIsPacedAgainNeverLost(t *testing.T) {
	c := newClock()
	l := New(Options{PerSecond: 1, Burst: 1, Held: 1, Clock: c.now})
	l.Admit(1, "a", 1)
	if d := l.Admit(1, "b", 1); d != time.Second {
		t.Fatalf("b held %v, want 1s", d)
	}
	l.Admit(1, "c", 1) // evicts b's slot
	c.advance(time.Second)
	if d := l.Admit(1, "b", 1); d <= 0 {
		t.Errorf("b's slot was forgotten, yet it passed without a token")
	}
}

func TestBatchLargerThanBurstPaysTheBurst(t *testing.T) {
	c := newClock()
	l := New(Options{PerSecond: 1, Burst: 2, Clock: c.now})
	if d := l.Admit(1, "big", 10); d != 0 {
		t.Errorf("a record of 10 findings on a full bucket of 2 held %v; it could never pass", d)
	}
	if d := l.Admit(1, "next", 1); d != time.Second {
		t.Errorf("next record held %v, want 1s", d)
	}
}

func TestHoldNeverExceedsSQSVisibility(t *testing.T) {
	c := newClock()
	l := New(Options{PerSecond: 1.0 / (9 * 3600), Burst: 1, Clock: c.now})
	l.Admit(1, "a", 1)
	l.Admit(1, "b", 1)
	d := l.Admit(1, "c", 1)
	if d != MaxHold {
		t.Errorf("held %v, want MaxHold %v", d, MaxHold)
	}
	if _, held := l.Len(); held != 1 {
		t.Errorf("%d slots held, want only b's (c gave its slot back)", held)
	}
}
