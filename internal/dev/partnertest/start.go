package partnertest

import "testing"

// StartDouble starts a double with start("") (on a free loopback port) and
// closes it when tb ends: start is a double package's Start, as in
// partnertest.StartDouble(t, herokudouble.Start).
func StartDouble[S interface{ Close() }](tb testing.TB, start func(addr string) (S, error)) S {
	tb.Helper()
	s, err := start("")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	return s
}

// Faults is every fault a double can show, FaultNone (the normal answer)
// first, in declaration order: the list a leak sweep runs through.
func Faults() []Fault {
	var fs []Fault
	for f := FaultNone; f.String() != ""; f++ {
		fs = append(fs, f)
	}
	return fs
}
