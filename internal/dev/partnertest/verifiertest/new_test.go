package verifiertest_test

import (
	"errors"
	"strings"
	"testing"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/verifiertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
)

type acmeVerifier struct{}

// newAcme is a partner's New: it wants one absolute https endpoint; lax
// accepts any one endpoint, leaky returns its verifier with the error, and
// prefix names its operation in errors.
func newAcme(prefix string, lax, leaky bool) func(partnerhttp.Options) (*acmeVerifier, error) {
	return func(o partnerhttp.Options) (*acmeVerifier, error) {
		fail := func(msg string) (*acmeVerifier, error) {
			if leaky {
				return &acmeVerifier{}, errors.New(prefix + msg)
			}
			return nil, errors.New(prefix + msg)
		}
		if len(o.Endpoints) != 1 {
			return fail("want one endpoint")
		}
		if u := o.Endpoints[0]; !lax && (u == nil || u.Scheme != "https") {
			return fail("want an https endpoint")
		}
		return &acmeVerifier{}, nil
	}
}

func TestRefusesEndpoints(t *testing.T) {
	const prefix = "acme: new verifier: "
	tests := []struct {
		name  string
		newV  func(partnerhttp.Options) (*acmeVerifier, error)
		fails string // a substring of the first failure; "" when the check must pass
	}{
		{"refused as it must be", newAcme(prefix, false, false), ""},
		{"a bad endpoint accepted", newAcme(prefix, true, false), `endpoint ""`},
		{"a verifier with the error", newAcme(prefix, false, true), "returned a verifier"},
		{"an error naming no operation", newAcme("acme: ", false, false), "does not start"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tb := capture(func(tb testing.TB) {
				verifiertest.RefusesEndpoints(tb, tc.newV, prefix, "https://api.acme.example", "", "ftp://api.acme.example", "/v1")
			})
			expectFailure(t, "the check", tb.failures, tc.fails)
		})
	}
	// Two endpoints must be refused even where one of any kind is taken.
	oneOrTwo := func(o partnerhttp.Options) (*acmeVerifier, error) {
		if len(o.Endpoints) == 0 || (len(o.Endpoints) == 1 && (o.Endpoints[0] == nil || o.Endpoints[0].Scheme != "https")) {
			return nil, errors.New(prefix + "no")
		}
		return &acmeVerifier{}, nil
	}
	tb := capture(func(tb testing.TB) {
		verifiertest.RefusesEndpoints(tb, oneOrTwo, prefix, "https://api.acme.example", "")
	})
	if len(tb.failures) != 1 || !strings.Contains(tb.failures[0], "two endpoints") {
		t.Errorf("two endpoints accepted: failures %q, want one about two endpoints", tb.failures)
	}
}
