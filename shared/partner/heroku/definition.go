package herokupartner

import (
	"strings"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	partnerdef "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

// Name is Heroku's partner name (contract §7): queue, function, metric
// dimension and flag key partners.heroku.
const Name finding.Partner = "heroku"

// TokenAPIKey is the token type of every Heroku credential: the prefixed
// HRKU-AA tokens and the legacy UUID API keys are verified the same way.
const TokenAPIKey finding.TokenType = "heroku_api_key"

// RateSource is where Heroku publishes its Platform API rate limit.
const RateSource = "https://devcenter.heroku.com/articles/platform-api-reference#rate-limits"

// Definition is Heroku in the partner registry.
var Definition = partnerdef.Definition{
	Name:  Name,
	Title: "Heroku",
	Rules: []partnerdef.Rule{
		{ID: "Heroku API Key", Scanner: partnerdef.GitLab, TokenType: TokenAPIKey},
		{ID: "heroku-api-key", Scanner: partnerdef.Gitleaks, TokenType: TokenAPIKey},
		{ID: "heroku-api-key-v2", Scanner: partnerdef.Gitleaks, TokenType: TokenAPIKey},
	},
	TokenTypes: []finding.TokenType{TokenAPIKey},
	Check:      check,
	Endpoints:  []partnerdef.Endpoint{{Env: EnvEndpoint, Default: DefaultEndpoint}},
	// Heroku publishes one limit, per account: a pool of 4,500 request
	// tokens refilled at about 75 a minute (1.25/s). We verify many distinct
	// tokens, so each call draws from its owner's pool, but the rejected
	// ones belong to no account and Heroku publishes nothing about how it
	// limits them per source address (ours is one egress IP). The one
	// published sustained rate, 75/min, is therefore our ceiling for all
	// instances together, as if every call drew from one pool; it is also
	// what GitLab allows one project against Heroku. Two instances (the
	// least MaximumConcurrency) at 0.6/s give 1.2/s, burst 1 each.
	Rate: partnerdef.Rate{PerSecond: 0.6, Burst: 1, Limit: 1.25, Source: RateSource},
	New:  func(o partnerhttp.Options) (verify.Verifier, error) { return New(o) },
	Details: map[finding.TokenType][]string{
		TokenAPIKey: {DetailAccountID},
	},
}

// Token formats: Heroku's prefixed tokens (gitleaks heroku-api-key-v2) and
// the legacy API keys, which are UUIDs (the GitLab rule and gitleaks'
// heroku-api-key find them near the word heroku; either case of hex, as
// those rules match case-insensitively).
var (
	prefixedToken = partnerdef.NewPattern(`^HRKU-AA[0-9A-Za-z_-]{58}$`)
	uuidToken     = partnerdef.NewPattern(`^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$`)
)

// check types the token by its form, whatever the rule: a token starting
// with HRKU- must be the whole prefixed form, anything else a UUID. Heroku
// has no test-mode keys, and its OAuth refresh tokens cannot be told from
// access tokens by form, so nothing is unsupported here.
func check(t finding.TokenType, f finding.Finding) (finding.TokenType, finding.Reason, string) {
	tok := f.Token.Reveal()
	if strings.HasPrefix(tok, "HRKU-") {
		return partnerdef.MatchFormat(TokenAPIKey, prefixedToken, tok, "a Heroku API token (HRKU-AA + 58 of [0-9A-Za-z_-])")
	}
	return partnerdef.MatchFormat(TokenAPIKey, uuidToken, tok, "a Heroku API key (HRKU-AA + 58 of [0-9A-Za-z_-], or a legacy UUID)")
}
