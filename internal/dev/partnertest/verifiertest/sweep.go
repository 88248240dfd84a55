package verifiertest

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/metrics"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

// LeakSweep collects the outcomes of verifications run through every class
// of answer (each fault, each state of a credential, the findings the gate
// stops) and then checks that no verdict, error or log line of theirs
// carries a secret or a part of one. The outcomes are logged as a service
// would log them, through slog's JSON handler, finding and token included,
// so that the check covers the redaction of both.
type LeakSweep struct {
	t       testing.TB
	def     partner.Definition
	v       verify.Verifier
	buf     bytes.Buffer
	log     *slog.Logger
	texts   []string
	secrets []string
}

// NewLeakSweep starts a sweep of v, which Verify calls as def's caller does.
func NewLeakSweep(t testing.TB, def partner.Definition, v verify.Verifier) *LeakSweep {
	s := &LeakSweep{t: t, def: def, v: v}
	s.log = slog.New(slog.NewJSONHandler(&s.buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return s
}

// LeakSweep is NewLeakSweep for h.Def.
func (h Harness) LeakSweep(t testing.TB, v verify.Verifier) *LeakSweep {
	return NewLeakSweep(t, h.Def, v)
}

// Verify verifies f as CallerVerify does, routed as tt ("" takes the
// gate's), and records the outcome under label.
func (s *LeakSweep) Verify(label string, tt finding.TokenType, f finding.Finding) (verify.Verdict, error) {
	verdict, err := CallerVerify(context.Background(), s.def, s.v, tt, f)
	s.Record(label, f, verdict, err)
	return verdict, err
}

// Record records an outcome obtained otherwise; f's token joins the
// secrets looked for.
func (s *LeakSweep) Record(label string, f finding.Finding, verdict verify.Verdict, err error) {
	s.secrets = append(s.secrets, f.Token.Reveal())
	errText := ""
	if err != nil {
		errText = err.Error()
	}
	s.texts = append(s.texts, fmt.Sprintf("%v|%+v|%#v|%s|%v|%+v|%#v", verdict, verdict, verdict, errText, err, err, err))
	s.log.Info("verification", "case", label, "finding", f, "token", f.Token, "fingerprint", f.Fingerprint(),
		"status", verdict.Status(), "reason", verdict.Reason, "details", verdict.Details, "message", verdict.Message,
		"verdict", verdict, "error", err)
}

// Secret adds credentials to look for besides the findings' tokens (a
// secret carried in a finding's context).
func (s *LeakSweep) Secret(secrets ...string) {
	s.secrets = append(s.secrets, secrets...)
}

// Check first fails t unless the log holds every string of mustLog, the
// outcomes the sweep must have produced for its check to prove anything;
// then it fails t for every text or log that contains a secret or one of
// parts(secret), the fragments that identify it (nil: none but the whole).
func (s *LeakSweep) Check(mustLog []string, parts func(secret string) []string) {
	s.t.Helper()
	logged := s.buf.String()
	for _, m := range mustLog {
		if !strings.Contains(logged, m) {
			s.t.Fatalf("the leak sweep's log lacks %q; the leak check would prove nothing", m)
		}
	}
	texts := append(s.texts[:len(s.texts):len(s.texts)], logged)
	for _, secret := range s.secrets {
		if secret == "" {
			continue
		}
		fragments := []string{secret}
		if parts != nil {
			fragments = append(fragments, parts(secret)...)
		}
		for i, text := range texts {
			for _, p := range fragments {
				if p != "" && strings.Contains(text, p) {
					s.t.Errorf("text %d of %d contains a secret (%d bytes) or part of one", i, len(texts), len(secret))
				}
			}
		}
	}
}

// ConcurrentCase is one of the verifications Concurrent runs at once.
type ConcurrentCase struct {
	// TokenType is the type the finding is routed as; "" takes the gate's.
	TokenType finding.TokenType
	// Finding is the finding verified.
	Finding finding.Finding
	// Want is the verdict's reason.
	Want finding.Reason
	// Details are values the verdict's details must hold under their
	// keys (others are not compared): another case's value there means
	// the answers crossed.
	Details finding.Details
}

// Concurrent runs every case at the same time on the one verifier v, as
// Run does, and fails t for each case whose outcome is not its own reason
// and details. It returns the outcomes in the cases' order, for the
// caller's checks of its double.
func (h Harness) Concurrent(t testing.TB, v verify.Verifier, cases []ConcurrentCase) []Outcome {
	t.Helper()
	results := make([]Outcome, len(cases))
	var wg sync.WaitGroup
	for i, c := range cases {
		wg.Go(func() { results[i] = h.Run(v, c.TokenType, c.Finding) })
	}
	wg.Wait()
	for i, r := range results {
		c := cases[i]
		if r.Err != nil || r.Verdict.Reason != c.Want {
			t.Errorf("case %d: %+v, %v; want %s", i, r.Verdict, r.Err, c.Want)
			continue
		}
		for k, want := range c.Details {
			if !reflect.DeepEqual(r.Verdict.Details[k], want) {
				t.Errorf("case %d: details %v belong to another case (want %s = %v)", i, r.Verdict.Details, k, want)
			}
		}
	}
	return results
}

// CancelledIsAFault verifies f, routed as tt, on a context cancelled
// before the call, and fails t unless the outcome is a network partner
// error without a verdict: a caller that gave up learns nothing.
func CancelledIsAFault(t testing.TB, v verify.Verifier, tt finding.TokenType, f finding.Finding) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	verdict, err := v.Verify(ctx, tt, f)
	fault, ok := verify.AsFault(err)
	if !ok || fault.Kind != verify.PartnerError || !fault.Network || verdict.Reason != "" || verdict.Details != nil {
		t.Errorf("Verify on a cancelled context = %+v, %v; want a network partner error and no verdict", verdict, err)
	}
}

// EnforcedRateLimit drives a double's own limiter (c) rather than a
// scripted 429: with room for one request in a long window, the first
// verification of f (routed as tt) must give the confirmed verdict with
// confirmed's details, and the second a 429 rate limit with limited's
// wait and message; each makes one request, and the double refuses
// exactly one. The partner's wait headers are set on c beforehand.
func (h Harness) EnforcedRateLimit(t testing.TB, v verify.Verifier, c *partnertest.Controls, tt finding.TokenType, f finding.Finding, confirmed, limited Want) {
	t.Helper()
	c.SetRateLimit(0.001, 1)
	confirmed.Reason, confirmed.Metrics = finding.ReasonPartnerConfirmed, metrics.Summary{Requests: 1}
	h.Check(t, h.Run(v, tt, f), confirmed)
	limited.Kind, limited.HTTPStatus, limited.Metrics = verify.RateLimited, http.StatusTooManyRequests, metrics.Summary{Requests: 1, RateLimitHits: 1}
	h.Check(t, h.Run(v, tt, f), limited)
	if n := c.RateLimited(); n != 1 {
		t.Errorf("double sent %d 429s, want 1", n)
	}
}
