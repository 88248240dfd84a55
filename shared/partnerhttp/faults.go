package partnerhttp

import (
	"context"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	"unicode"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/textfit"
)

// RetryAfter returns how long a partner asked us to wait, 0 when no header
// says. It reads, first match wins: Retry-After (delta seconds or an HTTP
// date); Postman's X-RateLimit-RetryAfter (delta seconds); X-RateLimit-Reset
// and RateLimit-Reset (a Unix time or delta seconds), unless their
// -Remaining header says requests remain;
// RateLimit-ResetTime (an HTTP date); OpenAI's
// x-ratelimit-reset-requests / -tokens (a Go-like duration such as 6m0s or
// 12ms); Anthropic's anthropic-ratelimit-requests-reset / -tokens-reset (RFC 3339).
func RetryAfter(h http.Header, now time.Time) time.Duration {
	until := func(t time.Time) time.Duration { return max(t.Sub(now), 0) }
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if secs, err := strconv.ParseInt(v, 10, 64); err == nil && secs >= 0 {
			return time.Duration(secs) * time.Second
		}
		if t, err := http.ParseTime(v); err == nil {
			return until(t)
		}
	}
	// Postman's delta seconds (learning.postman.com, postman-api-rate-limits).
	if secs, err := strconv.ParseInt(strings.TrimSpace(h.Get("X-RateLimit-RetryAfter")), 10, 64); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second
	}
	for _, name := range []string{"X-RateLimit-Reset", "RateLimit-Reset"} {
		v := strings.TrimSpace(h.Get(name))
		// A reset is when a spent budget refills: with requests remaining
		// the answer is another limit (GitHub's secondary limits), which
		// that reset says nothing about.
		if rem := strings.TrimSpace(h.Get(strings.TrimSuffix(name, "Reset") + "Remaining")); v == "" || (rem != "" && rem != "0") {
			continue
		}
		if n, err := strconv.ParseFloat(v, 64); err == nil && n >= 0 && n < 1e12 {
			if n > 1e9 { // a Unix time, not a delta
				return until(time.Unix(0, int64(n*1e9)))
			}
			return time.Duration(n * float64(time.Second))
		}
	}
	if t, err := http.ParseTime(strings.TrimSpace(h.Get("RateLimit-ResetTime"))); err == nil {
		return until(t)
	}
	var wait time.Duration
	for _, name := range []string{"X-Ratelimit-Reset-Requests", "X-Ratelimit-Reset-Tokens"} {
		if d, err := time.ParseDuration(strings.TrimSpace(h.Get(name))); err == nil && d > 0 {
			wait = max(wait, d)
		}
	}
	for _, name := range []string{"Anthropic-Ratelimit-Requests-Reset", "Anthropic-Ratelimit-Tokens-Reset"} {
		if t, err := time.Parse(time.RFC3339, strings.TrimSpace(h.Get(name))); err == nil {
			wait = max(wait, until(t))
		}
	}
	return wait
}

// IsHTML reports a page rather than an API answer: an HTML content type, or
// a body starting with '<' that is not declared XML (or that is declared
// XML but opens an HTML document). A proxy's or portal's page proves
// nothing, whatever its status.
func IsHTML(h http.Header, body []byte) bool {
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	if mt == "text/html" || mt == "application/xhtml+xml" {
		return true
	}
	trimmed := strings.TrimLeftFunc(string(body[:min(len(body), 512)]), unicode.IsSpace)
	if !strings.HasPrefix(trimmed, "<") {
		return false
	}
	if mt == "text/xml" || mt == "application/xml" || strings.HasSuffix(mt, "+xml") {
		l := strings.ToLower(trimmed)
		return strings.HasPrefix(l, "<!doctype html") || strings.HasPrefix(l, "<html")
	}
	return true
}

// describeNetErr is the one description of a request that got no (whole)
// response: the first fixed category any of errs falls in, else the first
// error's innermost text, bounded, with secrets scrubbed.
func describeNetErr(secrets []string, errs ...error) string {
	categories := []struct {
		is   func(error) bool
		text string
	}{
		{func(err error) bool { return errors.Is(err, ErrEndpointNotAllowed) }, "request refused: not a configured partner endpoint"},
		{func(err error) bool { return errors.Is(err, errBodyTooLong) }, "response body too long"},
		{func(err error) bool {
			var ne net.Error
			return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
		}, "timeout"},
		{func(err error) bool { return errors.Is(err, context.Canceled) }, "network error: request cancelled"},
		{func(err error) bool { return errors.Is(err, syscall.ECONNRESET) }, "network error: connection reset"},
		{func(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }, "network error: connection refused"},
		{func(err error) bool { return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) }, "network error: connection closed before the whole response"},
		{func(err error) bool { var dns *net.DNSError; return errors.As(err, &dns) }, "network error: DNS lookup failed"},
	}
	for _, c := range categories {
		for _, err := range errs {
			if err != nil && c.is(err) {
				return c.text
			}
		}
	}
	for _, err := range errs {
		if err == nil {
			continue
		}
		for next := errors.Unwrap(err); next != nil; next = errors.Unwrap(err) {
			err = next
		}
		return "network error: " + BoundedText(finding.Scrub(err.Error(), secrets...))
	}
	return "network error: no response"
}

// maxText bounds partner- or library-provided text quoted in a fault.
const maxText = 160

// BoundedText keeps text quoted in a fault short and printable; callers
// scrub secrets first (finding.Scrub).
func BoundedText(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return ' '
	}, s)
	return textfit.Fit(s, maxText)
}

type callInfoKey struct{}

// CallInfo carries what the transport saw during one verification back to
// the caller (for the trace and the log line), since verifiers return only
// verdicts and faults.
type CallInfo struct{ lastStatus atomic.Int64 }

// WithCallInfo returns a context whose partner requests report into info.
func WithCallInfo(ctx context.Context) (context.Context, *CallInfo) {
	info := &CallInfo{}
	return context.WithValue(ctx, callInfoKey{}, info), info
}

// LastStatus is the HTTP status of the last partner response, 0 when none arrived.
func (c *CallInfo) LastStatus() int { return int(c.lastStatus.Load()) }
