// Package verify defines what every partner verifier provides: one small
// interface, the verdict it returns, and the fault it reports when the
// partner's answer proves nothing.
package verify

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/panics"
)

// Verdict is a conclusive answer about one finding: active, inactive, or an
// unknown that retrying cannot change (unsupported, malformed, missing context).
type Verdict struct {
	Reason  finding.Reason
	Details finding.Details
	// Message explains an unknown verdict to a person; never a secret.
	Message string
	// Cached is true when the verdict came from this instance's verdict
	// cache rather than a partner call made for this finding.
	Cached bool
}

// Status is the contract status implied by the verdict's reason.
func (v Verdict) Status() finding.Status { return finding.StatusOf(v.Reason) }

// Unsupported is the verdict of partner p's verifier asked about a token
// type other than those it verifies: unknown, naming what it does verify,
// so that a routing mistake reads as one in the result.
func Unsupported(p finding.Partner, got finding.TokenType, verifies ...finding.TokenType) Verdict {
	names := make([]string, len(verifies))
	for i, t := range verifies {
		names[i] = string(t)
	}
	list := strings.Join(names, ", ")
	if i := strings.LastIndex(list, ", "); i >= 0 {
		list = list[:i] + " and " + list[i+len(", "):]
	}
	return Verdict{Reason: finding.ReasonUnsupportedTokenType, Message: fmt.Sprintf("%s verifies %s only, not %s", p, list, got)}
}

// Verifier asks one partner whether a credential is live. Verify returns
// either a Verdict and a nil error, or a *Fault when the partner's answer
// proves nothing (timeouts, resets, 5xx, 429, unusable bodies); it never
// turns a fault into an inactive verdict. Findings reach it already routed
// to its partner and past finding.Check.
type Verifier interface {
	Verify(ctx context.Context, tokenType finding.TokenType, f finding.Finding) (Verdict, error)
}

// FaultKind separates the two terminal reasons a fault can end in.
type FaultKind int

// The kinds of fault: rate limiting ends in rate_limited, all else in partner_error.
const (
	PartnerError FaultKind = iota
	RateLimited
)

// Reason is the terminal reason a fault of this kind ends in once retries are spent.
func (k FaultKind) Reason() finding.Reason {
	if k == RateLimited {
		return finding.ReasonRateLimited
	}
	return finding.ReasonPartnerError
}

// String is the kind's name.
func (k FaultKind) String() string {
	if k == RateLimited {
		return "rate limited"
	}
	return "partner error"
}

// Fault is a transient failure: the finding should be retried later. Its
// text names the partner and operation and never contains credential material.
type Fault struct {
	Kind    FaultKind
	Partner finding.Partner
	Op      string // e.g. "sts GetCallerIdentity", "GET /me"
	// HTTPStatus is the partner's status code, 0 when no response arrived.
	HTTPStatus int
	// Network is true when no HTTP response was received (timeout, reset, DNS).
	Network bool
	// RetryAfter is the wait the partner asked for (Retry-After,
	// X-RateLimit-Reset), 0 when it gave none.
	RetryAfter time.Duration
	// Msg is a short, secret-free description of what was wrong.
	Msg string
}

// Error describes the fault without any token material.
func (f *Fault) Error() string {
	s := fmt.Sprintf("%s: %s: %s", f.Partner, f.Op, f.Kind)
	if f.HTTPStatus != 0 {
		s += fmt.Sprintf(" (http %d)", f.HTTPStatus)
	}
	if f.Msg != "" {
		s += ": " + f.Msg
	}
	return s
}

// AsFault extracts the *Fault from an error returned by a Verifier; any other
// error (a bug, a cancelled context) is treated as a partner error, never as
// an answer.
func AsFault(err error) (*Fault, bool) {
	var f *Fault
	ok := errors.As(err, &f)
	return f, ok
}

// Panicked is the fault for a verifier that panicked: a bug, never an
// answer about the token, so the finding is retried and ends partner_error.
// It names the panic value's type and where it happened, never the value,
// which may quote the token. Call it from the deferred function that
// recovered the panic: the frames it reads are that panic's.
func Panicked(partner finding.Partner, v any) *Fault {
	site := panics.Recovered(v)
	return &Fault{Kind: PartnerError, Partner: partner, Op: "verify", Msg: fmt.Sprintf("verifier panicked with a %s at %s", site.Type, site.Location)}
}
