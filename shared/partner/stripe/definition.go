package stripepartner

import (
	"strings"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	partnerdef "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

// Name is Stripe's partner name (contract §7): queue, function, metric
// dimension and flag key partners.stripe.
const Name finding.Partner = "stripe"

// Stripe's token types (contract §7).
const (
	TokenSecretKey     finding.TokenType = "stripe_secret_key"
	TokenRestrictedKey finding.TokenType = "stripe_restricted_key"
)

// Definition is Stripe in the partner registry.
var Definition = partnerdef.Definition{
	Name:  Name,
	Title: "Stripe",
	Rules: []partnerdef.Rule{
		{ID: "StripeLiveSecretKey", Scanner: partnerdef.GitLab, TokenType: TokenSecretKey},
		{ID: "StripeLiveRestrictedKey", Scanner: partnerdef.GitLab, TokenType: TokenRestrictedKey},
		{ID: "StripeLiveShortSecretKey", Scanner: partnerdef.GitLab, TokenType: TokenSecretKey},
		// gitleaks' one rule matches sk_ and rk_ keys alike; Check types by prefix.
		{ID: "stripe-access-token", Scanner: partnerdef.Gitleaks, TokenType: TokenSecretKey},
	},
	TokenTypes: []finding.TokenType{TokenSecretKey, TokenRestrictedKey},
	Check:      check,
	Endpoints:  []partnerdef.Endpoint{{Env: EnvEndpoint, Default: DefaultEndpoint}},
	// Stripe's published limits are per Stripe account, not per caller: 100
	// operations/s in live mode overall and, unless documented otherwise, 25
	// requests/s per endpoint (GET /v1/balance is one); it publishes no
	// per-IP limit. Every call we make spends the budget of the leaked key's
	// own account, so the ceiling is 20/s across instances: even if every
	// call of one second hit the same account's /v1/balance, its owner keeps
	// at least 5/s of that endpoint. The template's default is 2 instances x
	// 5/s = 10/s; burst 2 keeps one instance from spending a second's worth
	// at once.
	Rate: partnerdef.Rate{PerSecond: 5, Burst: 2, Limit: 20, Source: "https://docs.stripe.com/rate-limits"},
	New:  func(o partnerhttp.Options) (verify.Verifier, error) { return New(o) },
	Details: map[finding.TokenType][]string{
		TokenSecretKey:     {DetailLivemode},
		TokenRestrictedKey: {DetailLivemode},
	},
}

// keyBody is what follows a key's mode prefix: letters and digits. Stripe
// documents no fixed length and asks integrations to allow longer keys; the
// oldest secret keys have 24 characters after the prefix (GitLab's
// StripeLiveShortSecretKey rule), the keys quoted in public answers about
// 99. We accept up to 255 in all (sk_live_ + 247), the bound the scanners'
// rules and the project's contract use.
var keyBody = partnerdef.NewPattern(`^[0-9A-Za-z]{24,247}$`)

// The live-mode prefixes Stripe verifies, and the test-mode ones it does not.
const (
	prefixSecretLive     = "sk_live_"
	prefixRestrictedLive = "rk_live_"
	prefixSecretTest     = "sk_test_"
	prefixRestrictedTest = "rk_test_"
)

const keyForm = "a Stripe live-mode key (sk_live_ or rk_live_ + 24 to 247 letters and digits)"

// check types the key by its prefix, whatever the rule: a test-mode key
// reaches no real money and is not worth a call (unsupported_token_type),
// anything else but a live-mode key of the documented form is malformed.
func check(t finding.TokenType, f finding.Finding) (finding.TokenType, finding.Reason, string) {
	tok := f.Token.Reveal()
	switch {
	case strings.HasPrefix(tok, prefixSecretTest):
		return partnerdef.Unsupported(TokenSecretKey, "Stripe test-mode keys (sk_test_) are not verified: they reach no live data")
	case strings.HasPrefix(tok, prefixRestrictedTest):
		return partnerdef.Unsupported(TokenRestrictedKey, "Stripe test-mode keys (rk_test_) are not verified: they reach no live data")
	case strings.HasPrefix(tok, prefixSecretLive):
		return partnerdef.MatchFormat(TokenSecretKey, keyBody, tok[len(prefixSecretLive):], keyForm)
	case strings.HasPrefix(tok, prefixRestrictedLive):
		return partnerdef.MatchFormat(TokenRestrictedKey, keyBody, tok[len(prefixRestrictedLive):], keyForm)
	}
	return partnerdef.Malformed(t, "token is not "+keyForm)
}
