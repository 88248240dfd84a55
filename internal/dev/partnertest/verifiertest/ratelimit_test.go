package verifiertest_test

import (
	"testing"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/herokudouble"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/verifiertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	herokupartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/heroku"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

// TestEnforcedRateLimit runs the check on a real partner (heroku) and its
// double: it passes with the verifier and the wait the double sends, and
// fails with a verifier that never asks or with another wait.
func TestEnforcedRateLimit(t *testing.T) {
	h := verifiertest.Harness{Def: herokupartner.Definition, Op: "GET /account", AnyDetails: true}
	tests := []struct {
		name    string
		v       func(srv *herokudouble.Server) verify.Verifier
		limited verifiertest.Want
		fails   string // a substring of the first failure; "" when the check must pass
	}{
		{"the verifier against its double", func(srv *herokudouble.Server) verify.Verifier { return h.NewVerifier(t, 0, nil, srv.URL) },
			verifiertest.Want{RetryMin: 2 * time.Second, RetryMax: 2 * time.Second}, ""},
		{"another wait", func(srv *herokudouble.Server) verify.Verifier { return h.NewVerifier(t, 0, nil, srv.URL) },
			verifiertest.Want{RetryMin: 5 * time.Second, RetryMax: 5 * time.Second}, "RetryAfter"},
		{"a verifier that never asks", func(*herokudouble.Server) verify.Verifier { return &fakeVerifier{} },
			verifiertest.Want{RetryMin: 2 * time.Second, RetryMax: 2 * time.Second}, "metrics"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := partnertest.StartDouble(t, herokudouble.Start)
			key := herokudouble.NewToken()
			srv.AddToken(key, herokudouble.NewUUID())
			srv.Controls.SetRetryAfter("2")
			f := finding.Finding{ID: "f-1", RuleID: "heroku-api-key-v2", Token: finding.Secret(key)}
			v := tc.v(srv)
			tb := capture(func(tb testing.TB) {
				h.EnforcedRateLimit(tb, v, srv.Controls, herokupartner.TokenAPIKey, f, verifiertest.Want{}, tc.limited)
			})
			expectFailure(t, "the check", tb.failures, tc.fails)
		})
	}
}
