package panics

import (
	"errors"
	"strings"
	"testing"
)

func explode(v any) { panic(v) }

func recovering(v any) (s Site) {
	defer func() { s = Recovered(recover()) }()
	explode(v)
	return Site{}
}

func TestRecoveredPointsAtThePanic(t *testing.T) {
	const secret = "AKIAIOSFODNN7EXAMPLE"
	s := recovering(errors.New("token " + secret))
	if s.Type != "*errors.errorString" {
		t.Errorf("Type = %q", s.Type)
	}
	if !strings.Contains(s.Location, "panics.explode") || !strings.Contains(s.Location, "panics_test.go:") {
		t.Errorf("Location = %q, want the explode line", s.Location)
	}
	if len(s.Stack) < 3 || !strings.HasPrefix(s.Stack[0], "runtime.gopanic") {
		t.Errorf("Stack does not begin at runtime.gopanic: %q", s.Stack)
	}
	if strings.Contains(strings.Join(append(s.Stack, s.Type, s.Location), " "), secret) {
		t.Error("the panic's value reached its description")
	}
}

func TestRecoveredWithoutPanic(t *testing.T) {
	if s := Recovered(nil); s.Location != "unknown" || len(s.Stack) != 0 {
		t.Errorf("no panic under way: %+v", s)
	}
}
