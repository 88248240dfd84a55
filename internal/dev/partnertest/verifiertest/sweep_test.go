package verifiertest_test

import (
	"context"
	"strings"
	"testing"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/verifiertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

// verifierFunc is a verifier made of a function.
type verifierFunc func(context.Context, finding.TokenType, finding.Finding) (verify.Verdict, error)

func (f verifierFunc) Verify(ctx context.Context, tt finding.TokenType, fd finding.Finding) (verify.Verdict, error) {
	return f(ctx, tt, fd)
}

// echoing confirms every token with a message that quotes the given part
// of it (nothing when quote is nil), and answers a token starting "fault"
// with a fault.
func echoing(quote func(token string) string) verify.Verifier {
	return verifierFunc(func(_ context.Context, _ finding.TokenType, f finding.Finding) (verify.Verdict, error) {
		msg := "live"
		if quote != nil {
			msg += " " + quote(f.Token.Reveal())
		}
		if strings.HasPrefix(f.Token.Reveal(), "fault") {
			return verify.Verdict{}, &verify.Fault{Kind: verify.PartnerError, Partner: partnerName, Op: "GET /me", HTTPStatus: 500, Msg: msg}
		}
		return verify.Verdict{Reason: finding.ReasonPartnerConfirmed, Message: msg}, nil
	})
}

func TestLeakSweep(t *testing.T) {
	const token, other = "goodTOKENabcdefghij0123", "faultTOKENklmnopqr4567"
	halves := func(s string) []string { return []string{s[:len(s)/2], s[len(s)/2:]} }
	tests := []struct {
		name    string
		quote   func(string) string
		record  bool // the second outcome is recorded rather than verified
		secret  string
		mustLog []string
		parts   func(string) []string
		fails   string // a substring of the first failure; "" when the sweep must pass
	}{
		{"nothing quoted", nil, false, "", []string{`"reason":"partner_confirmed"`, "http 500"}, halves, ""},
		{"a recorded outcome", nil, true, "", []string{"http 500"}, halves, ""},
		{"the whole token", func(s string) string { return s }, false, "", nil, nil, "contains a secret"},
		{"the whole token of a recorded outcome", func(s string) string { return s }, true, "", nil, nil, "contains a secret"},
		{"half of it", func(s string) string { return s[len(s)/2:] }, false, "", nil, halves, "contains a secret"},
		{"half of it, no parts looked for", func(s string) string { return s[len(s)/2:] }, false, "", nil, nil, ""},
		{"a context secret", func(string) string { return "ctxSECRET9876543210" }, false, "ctxSECRET9876543210", nil, nil, "contains a secret"},
		{"an outcome missing from the log", nil, false, "", []string{`"reason":"partner_rejected"`}, nil, "log lacks"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := echoing(tc.quote)
			var opts partnerhttp.Options
			h := verifiertest.Harness{Def: definition(v, &opts)}
			tb := capture(func(tb testing.TB) {
				s := h.LeakSweep(tb, v)
				s.Secret(tc.secret)
				s.Verify("first", "", finding.Finding{ID: "f-1", RuleID: "acme-key", Token: token})
				f := finding.Finding{ID: "f-2", RuleID: "acme-key", Token: other}
				if tc.record {
					verdict, err := v.Verify(context.Background(), "key", f)
					s.Record("second", f, verdict, err)
				} else {
					s.Verify("second", "key", f)
				}
				s.Check(tc.mustLog, tc.parts)
			})
			expectFailure(t, "the sweep", tb.failures, tc.fails)
		})
	}
}

// TestLeakSweepLogsRedacted: the log the sweep checks holds the finding
// and its token as a service logs them; were the token's redaction lost,
// the sweep would fail.
func TestLeakSweepLogsRedacted(t *testing.T) {
	v := echoing(nil)
	var opts partnerhttp.Options
	h := verifiertest.Harness{Def: definition(v, &opts)}
	tb := capture(func(tb testing.TB) {
		s := h.LeakSweep(tb, v)
		s.Verify("one", "", finding.Finding{ID: "f-1", RuleID: "acme-key", Token: "goodTOKENabcdefghij0123"})
		s.Check([]string{`"case":"one"`, `"finding":`, `"token":`, `"fingerprint":`, `"message":"live"`}, nil)
	})
	if len(tb.failures) > 0 {
		t.Errorf("the sweep failed: %q", tb.failures)
	}
}

// crossing confirms every token with its own token's first four bytes as
// a detail, except that with cross set, a token ending in "1" gets the
// detail of the token ending in "0".
func crossing(cross bool) verify.Verifier {
	return verifierFunc(func(_ context.Context, _ finding.TokenType, f finding.Finding) (verify.Verdict, error) {
		tok := f.Token.Reveal()
		if strings.HasPrefix(tok, "dead") {
			return verify.Verdict{Reason: finding.ReasonPartnerRejected}, nil
		}
		id := tok[:4]
		if cross && strings.HasSuffix(tok, "1") {
			id = "good"
		}
		return verify.Verdict{Reason: finding.ReasonPartnerConfirmed, Details: finding.Details{"id": id, "n": len(tok)}}, nil
	})
}

func TestConcurrent(t *testing.T) {
	cases := []verifiertest.ConcurrentCase{
		{Finding: finding.Finding{ID: "f-0", RuleID: "acme-key", Token: "good0"}, Want: finding.ReasonPartnerConfirmed, Details: finding.Details{"id": "good"}},
		{Finding: finding.Finding{ID: "f-1", RuleID: "acme-key", Token: "fine1"}, Want: finding.ReasonPartnerConfirmed, Details: finding.Details{"id": "fine"}},
		{TokenType: "key", Finding: finding.Finding{ID: "f-2", RuleID: "acme-key", Token: "dead2"}, Want: finding.ReasonPartnerRejected},
	}
	run := func(v verify.Verifier, cases []verifiertest.ConcurrentCase) ([]verifiertest.Outcome, []string) {
		var opts partnerhttp.Options
		h := verifiertest.Harness{Def: definition(v, &opts)}
		var out []verifiertest.Outcome
		tb := capture(func(tb testing.TB) { out = h.Concurrent(tb, v, cases) })
		return out, tb.failures
	}
	out, failures := run(crossing(false), cases)
	if len(failures) > 0 {
		t.Errorf("Concurrent failed: %q", failures)
	}
	if len(out) != 3 || out[2].Verdict.Reason != finding.ReasonPartnerRejected || out[1].Verdict.Details["id"] != "fine" {
		t.Errorf("outcomes %+v not in the cases' order", out)
	}
	if _, failures := run(crossing(true), cases); len(failures) != 1 || !strings.Contains(failures[0], "case 1: details") {
		t.Errorf("crossed details: failures %q, want one about case 1's details", failures)
	}
	wrong := append([]verifiertest.ConcurrentCase(nil), cases...)
	wrong[2].Want = finding.ReasonPartnerConfirmed
	if _, failures := run(crossing(false), wrong); len(failures) != 1 || !strings.Contains(failures[0], "case 2:") {
		t.Errorf("a wrong reason: failures %q, want one about case 2", failures)
	}
	wrong = append([]verifiertest.ConcurrentCase(nil), cases...)
	wrong[0].Details = finding.Details{"id": "good", "n": 6}
	if _, failures := run(crossing(false), wrong); len(failures) != 1 || !strings.Contains(failures[0], "case 0: details") {
		t.Errorf("a wrong detail: failures %q, want one about case 0", failures)
	}
}

func TestCancelledIsAFault(t *testing.T) {
	network := &verify.Fault{Kind: verify.PartnerError, Partner: partnerName, Op: "GET /me", Network: true, Msg: "context canceled"}
	tests := []struct {
		name    string
		verdict verify.Verdict
		err     error
		fails   bool
	}{
		{"a network partner error", verify.Verdict{}, network, false},
		{"a verdict", verify.Verdict{Reason: finding.ReasonPartnerConfirmed}, nil, true},
		{"a fault with a verdict", verify.Verdict{Reason: finding.ReasonPartnerRejected}, network, true},
		{"a fault with details", verify.Verdict{Details: finding.Details{"a": 1}}, network, true},
		{"an HTTP fault", verify.Verdict{}, &verify.Fault{Kind: verify.PartnerError, HTTPStatus: 500}, true},
		{"a network rate limit", verify.Verdict{}, &verify.Fault{Kind: verify.RateLimited, Network: true}, true},
		{"an error that is not a fault", verify.Verdict{}, context.Canceled, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var sawCancelled bool
			v := verifierFunc(func(ctx context.Context, _ finding.TokenType, _ finding.Finding) (verify.Verdict, error) {
				sawCancelled = ctx.Err() != nil
				return tc.verdict, tc.err
			})
			tb := capture(func(tb testing.TB) { verifiertest.CancelledIsAFault(tb, v, "key", finding.Finding{Token: "x"}) })
			if !sawCancelled {
				t.Error("the verifier got a live context")
			}
			if failed := len(tb.failures) > 0; failed != tc.fails {
				t.Errorf("failed = %v (%q), want %v", failed, tb.failures, tc.fails)
			}
		})
	}
}
