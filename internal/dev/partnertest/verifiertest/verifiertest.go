// Package verifiertest is the harness every partner verifier's tests share:
// it verifies a finding as pipeline.Worker does (the partner's gate first),
// records the metrics the call left under the partner's name, and holds the
// outcome to the contract (a fault is never a verdict, and never inactive);
// it also holds the checks every partner's tests make the same way: the
// fuzz targets' common contract (FuzzContract) and seeded credentials
// (FuzzToken), the leak sweep (LeakSweep), concurrent and cancelled
// verifications, and New's refusals (RefusesEndpoints). What differs
// between partners (the double, the rows, the operation a fault names, the
// fuzz oracle) stays in each partner's own tests.
package verifiertest

import (
	"context"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/metrics"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

// NewVerifier builds def's verifier through def.New, as the partner
// function does, against the given endpoints (in def.Endpoints' order).
func NewVerifier(t testing.TB, def partner.Definition, timeout time.Duration, tr http.RoundTripper, endpoints ...string) verify.Verifier {
	t.Helper()
	urls := make([]*url.URL, len(endpoints))
	for i, ep := range endpoints {
		u, err := url.Parse(ep)
		if err != nil {
			t.Fatal(err)
		}
		urls[i] = u
	}
	v, err := def.New(partnerhttp.Options{Endpoints: urls, Timeout: timeout, Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Outcome is what one verification produced, with the metrics it recorded.
type Outcome struct {
	// Partner is the name the metrics were read under and every fault must name.
	Partner finding.Partner
	// Verdict is the verdict returned; zero with a fault.
	Verdict verify.Verdict
	// Err is the fault returned, if any.
	Err error
	// Metrics is the partner's metrics summary, latencies left out (they vary).
	Metrics metrics.Summary
}

// CallerVerify verifies f as pipeline.Worker does: a finding reaches Verify
// only routed to its own token type and past the partner's gate
// (Definition.Examine), so the rows that test that gate get their verdict
// here, without a call. tt is the token type the finding was routed as;
// "" takes the gate's.
func CallerVerify(ctx context.Context, def partner.Definition, v verify.Verifier, tt finding.TokenType, f finding.Finding) (verify.Verdict, error) {
	rt, reason, msg := def.Examine(f)
	if reason != "" {
		return verify.Verdict{Reason: reason, Message: msg}, nil
	}
	if tt == "" {
		tt = rt.TokenType
	}
	if rt.TokenType != tt {
		return verify.Verdict{Reason: finding.ReasonUnsupportedTokenType, Message: "rule_id is routed to " + string(rt.TokenType) + ", not " + string(tt)}, nil
	}
	return v.Verify(ctx, tt, f)
}

// Run verifies f as CallerVerify does and returns the outcome with the
// metrics recorded under def.Name.
func Run(def partner.Definition, v verify.Verifier, tt finding.TokenType, f finding.Finding) Outcome {
	return record(def, func(ctx context.Context) (verify.Verdict, error) { return CallerVerify(ctx, def, v, tt, f) })
}

// RunAs is Run for the rows that hand the verifier a token type the gate
// did not choose (a routing bug): past the gate, Verify gets tt as it is,
// so that the verifier's own refusal is what is tested. "" takes the gate's.
func RunAs(def partner.Definition, v verify.Verifier, tt finding.TokenType, f finding.Finding) Outcome {
	return record(def, func(ctx context.Context) (verify.Verdict, error) {
		rt, reason, msg := def.Examine(f)
		if reason != "" {
			return verify.Verdict{Reason: reason, Message: msg}, nil
		}
		if tt == "" {
			tt = rt.TokenType
		}
		return v.Verify(ctx, tt, f)
	})
}

func record(def partner.Definition, verifyFn func(context.Context) (verify.Verdict, error)) Outcome {
	rec := metrics.New()
	verdict, err := verifyFn(metrics.NewContext(context.Background(), rec))
	m := rec.Snapshot()[string(def.Name)]
	m.LatencyMS = nil
	return Outcome{Partner: def.Name, Verdict: verdict, Err: err, Metrics: m}
}

// Want describes the expected outcome of a row: a verdict (Reason set) or a fault.
type Want struct {
	// Reason is the verdict's reason; "" when a fault is expected.
	Reason finding.Reason
	// Details are the verdict's details, compared exactly unless AnyDetails.
	Details finding.Details
	// AnyDetails leaves a verdict's details to the caller (a fault must still carry none).
	AnyDetails bool
	// Kind, HTTPStatus and Network are the fault's.
	Kind       verify.FaultKind
	HTTPStatus int
	Network    bool
	// Op is the operation a fault must name exactly; OpPrefix, when Op is
	// "", a prefix of it (a partner with one operation per token type).
	Op       string
	OpPrefix string
	// RetryMin and RetryMax bound the fault's RetryAfter.
	RetryMin time.Duration
	RetryMax time.Duration
	// Msg is a substring of the verdict's message or the fault's text.
	Msg string
	// Metrics is the partner's expected metrics summary, latencies left out.
	Metrics metrics.Summary
	// Calls is how many requests the double must have seen; Check leaves it
	// to the caller, who owns the double.
	Calls int64
}

// Check holds got to w, failing t with what differs.
func Check(t testing.TB, got Outcome, w Want) {
	t.Helper()
	if got.Verdict.Status() == finding.StatusInactive && got.Err != nil {
		t.Fatal("a fault came with an inactive verdict")
	}
	if w.Reason != "" {
		checkVerdict(t, got, w)
	} else {
		checkFault(t, got, w)
	}
	if !reflect.DeepEqual(got.Metrics, w.Metrics) {
		t.Errorf("metrics = %+v, want %+v", got.Metrics, w.Metrics)
	}
}

func checkVerdict(t testing.TB, got Outcome, w Want) {
	t.Helper()
	if got.Err != nil {
		t.Fatalf("Verify error = %v, want verdict %s", got.Err, w.Reason)
	}
	if got.Verdict.Reason != w.Reason {
		t.Fatalf("reason = %q (%s), want %q", got.Verdict.Reason, got.Verdict.Message, w.Reason)
	}
	if got.Verdict.Status() != finding.StatusOf(w.Reason) {
		t.Errorf("status = %q", got.Verdict.Status())
	}
	if !strings.Contains(got.Verdict.Message, w.Msg) {
		t.Errorf("message = %q, want it to contain %q", got.Verdict.Message, w.Msg)
	}
	if !w.AnyDetails && !reflect.DeepEqual(got.Verdict.Details, w.Details) {
		t.Errorf("details = %#v, want %#v", got.Verdict.Details, w.Details)
	}
}

func checkFault(t testing.TB, got Outcome, w Want) {
	t.Helper()
	if got.Err == nil {
		t.Fatalf("verdict %+v (status %s), want a fault; a fault must never be an answer", got.Verdict, got.Verdict.Status())
	}
	if got.Verdict.Reason != "" || got.Verdict.Details != nil {
		t.Errorf("a fault came with verdict %q %v", got.Verdict.Reason, got.Verdict.Details)
	}
	f, ok := verify.AsFault(got.Err)
	if !ok {
		t.Fatalf("error %v is not a *verify.Fault", got.Err)
	}
	if f.Kind != w.Kind || f.HTTPStatus != w.HTTPStatus || f.Network != w.Network {
		t.Errorf("fault = %+v, want kind %v, http %d, network %v", *f, w.Kind, w.HTTPStatus, w.Network)
	}
	if f.Kind.Reason() == finding.ReasonPartnerRejected || finding.StatusOf(f.Kind.Reason()) != finding.StatusUnknown {
		t.Errorf("fault ends in %q, want an unknown reason", f.Kind.Reason())
	}
	switch {
	case w.Op == "" && w.OpPrefix == "":
		t.Errorf("the row names no operation for its fault (Want.Op)")
	case f.Partner != got.Partner:
		t.Errorf("fault names partner %q, want %q", f.Partner, got.Partner)
	case w.Op != "" && f.Op != w.Op:
		t.Errorf("fault names operation %q, want %q", f.Op, w.Op)
	case w.Op == "" && !strings.HasPrefix(f.Op, w.OpPrefix):
		t.Errorf("fault names operation %q, want one starting %q", f.Op, w.OpPrefix)
	}
	if f.RetryAfter < w.RetryMin || f.RetryAfter > w.RetryMax {
		t.Errorf("RetryAfter = %v, want within [%v, %v]", f.RetryAfter, w.RetryMin, w.RetryMax)
	}
	if !strings.Contains(got.Err.Error(), w.Msg) {
		t.Errorf("error = %q, want it to contain %q", got.Err, w.Msg)
	}
}

// Harness binds the helpers to one partner, so that its rows say only what
// differs: the definition, the operation its faults name by default, and
// whether Check leaves a verdict's details to the test.
type Harness struct {
	// Def is the partner's definition.
	Def partner.Definition
	// Op and OpPrefix fill a Want that names no operation.
	Op       string
	OpPrefix string
	// AnyDetails is set on every Want: the tests check details themselves.
	AnyDetails bool
}

// NewVerifier is NewVerifier for h.Def.
func (h Harness) NewVerifier(t testing.TB, timeout time.Duration, tr http.RoundTripper, endpoints ...string) verify.Verifier {
	t.Helper()
	return NewVerifier(t, h.Def, timeout, tr, endpoints...)
}

// CallerVerify is CallerVerify for h.Def.
func (h Harness) CallerVerify(ctx context.Context, v verify.Verifier, tt finding.TokenType, f finding.Finding) (verify.Verdict, error) {
	return CallerVerify(ctx, h.Def, v, tt, f)
}

// Run is Run for h.Def.
func (h Harness) Run(v verify.Verifier, tt finding.TokenType, f finding.Finding) Outcome {
	return Run(h.Def, v, tt, f)
}

// RunAs is RunAs for h.Def.
func (h Harness) RunAs(v verify.Verifier, tt finding.TokenType, f finding.Finding) Outcome {
	return RunAs(h.Def, v, tt, f)
}

// Check is Check with h's defaults filled into w.
func (h Harness) Check(t testing.TB, got Outcome, w Want) {
	t.Helper()
	if w.Op == "" && w.OpPrefix == "" {
		w.Op, w.OpPrefix = h.Op, h.OpPrefix
	}
	w.AnyDetails = w.AnyDetails || h.AnyDetails
	Check(t, got, w)
}
