package partner

import (
	"regexp"
	"sync"
)

// Pattern is a regular expression compiled on its first use. Every partner
// function links every partner package, so expressions compiled at package
// init would make each cold start pay for all partners' formats (bounded
// repetitions such as {8,250} compile to large programs); compiled on use,
// a function pays only for the partners it serves.
type Pattern struct {
	compiled func() *regexp.Regexp
}

// NewPattern returns a Pattern for expr, which must be a valid RE2
// expression: like regexp.MustCompile it panics on an invalid one, but at
// first use rather than at init, so every pattern's package tests must use it.
func NewPattern(expr string) *Pattern {
	return &Pattern{compiled: sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })}
}

// MatchString reports whether s contains a match of the pattern.
func (p *Pattern) MatchString(s string) bool { return p.compiled().MatchString(s) }

// String returns the source text of the pattern.
func (p *Pattern) String() string { return p.compiled().String() }
