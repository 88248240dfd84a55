// Package panics says where a recovered panic happened without saying what
// it carried: a panic's value can hold a token (a formatted error, a
// request), so only its type and its frames are ever reported.
package panics

import (
	"fmt"
	"runtime"
	"strings"
)

// Site describes the panic being recovered, as seen from the deferred
// function that called recover.
type Site struct {
	// Type is the Go type of the panic's value, never the value.
	Type string
	// Location is the function, file and line that panicked: the first
	// frame outside the runtime after runtime.gopanic ("unknown" if none).
	Location string
	// Stack is every frame from runtime.gopanic down, one "function (file:line)" each.
	Stack []string
}

// Recovered returns the Site of the panic whose value v was just
// recovered; call it from the deferred function (or a function it calls)
// while the panic's frames are still on the stack.
func Recovered(v any) Site {
	pcs := make([]uintptr, 64)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(2, pcs)])
	s := Site{Type: fmt.Sprintf("%T", v), Location: "unknown"}
	inPanic := false
	for {
		f, more := frames.Next()
		if f.Function == "runtime.gopanic" {
			inPanic = true
		}
		if inPanic && f.Function != "" {
			where := fmt.Sprintf("%s (%s:%d)", f.Function, f.File, f.Line)
			s.Stack = append(s.Stack, where)
			if s.Location == "unknown" && !strings.HasPrefix(f.Function, "runtime.") {
				s.Location = where
			}
		}
		if !more {
			break
		}
	}
	return s
}
