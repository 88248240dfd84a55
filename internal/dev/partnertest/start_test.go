package partnertest

import "testing"

type closer struct{ closed *bool }

func (c closer) Close() { *c.closed = true }

func TestStartDouble(t *testing.T) {
	var closed bool
	addr := "unset"
	t.Run("started", func(t *testing.T) {
		StartDouble(t, func(a string) (closer, error) { addr = a; return closer{&closed}, nil })
		if closed {
			t.Error("closed before the test ended")
		}
	})
	if addr != "" || !closed {
		t.Errorf("started on %q, closed %v; want a free port and closed at the end", addr, closed)
	}
}

func TestFaults(t *testing.T) {
	fs := Faults()
	if len(fs) != len(faultNames) || fs[0] != FaultNone || fs[len(fs)-1] != FaultHang {
		t.Errorf("Faults() = %v, want all %d, none first, hang last", fs, len(faultNames))
	}
	for i, f := range fs {
		if f != Fault(i) {
			t.Errorf("Faults()[%d] = %v, not in declaration order", i, f)
		}
	}
}
