package npmpartner

import (
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	partnerdef "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

// Name is npm's partner name (contract §7): function, queue, metric
// dimension and flag key.
const Name finding.Partner = "npm"

// TokenAccessToken is the one token type the npm rules find: npm_ + 36
// alphanumerics (granular and legacy access tokens share that form).
const TokenAccessToken finding.TokenType = "npm_access_token"

// RateSource is where npm publishes the only number that bounds a caller
// of the public registry: its acceptable-use threshold.
const RateSource = "https://blog.npmjs.org/post/187698412060/acceptible-use"

// Definition is npm in the partner registry.
var Definition = partnerdef.Definition{
	Name:  Name,
	Title: "npm",
	Rules: []partnerdef.Rule{
		{ID: "npm access token", Scanner: partnerdef.GitLab, TokenType: TokenAccessToken},
		{ID: "npm-access-token", Scanner: partnerdef.Gitleaks, TokenType: TokenAccessToken},
	},
	TokenTypes: []finding.TokenType{TokenAccessToken},
	// npm has no test-mode tokens and no refresh tokens of this form, so
	// nothing of the form is unsupported. The last 6 characters are a
	// CRC32 checksum (github.blog, 2021-09-23), but as for GitHub's tokens
	// its alphabet order is reconstructed by third parties, so a token is
	// never rejected offline on it: npm judges. Legacy UUID tokens are not
	// found by the npm rules, so they are malformed here.
	Check: func(t finding.TokenType, f finding.Finding) (finding.TokenType, finding.Reason, string) {
		return partnerdef.MatchFormat(t, accessToken, f.Token.Reveal(), "an npm access token (npm_ + 36 of [A-Za-z0-9])")
	},
	Endpoints: []partnerdef.Endpoint{{Env: EnvEndpoint, Default: DefaultEndpoint}},
	// npm publishes no per-token or per-second limit for GET /-/whoami. The
	// registry throttles per source address at its edge (429, or a 403 ban
	// page) without publishing a threshold, and the one number npm does
	// publish is its acceptable use of the public registry: up to five
	// million requests a month, about 1.9 a second on average, per user of
	// the registry. Every call of ours comes from one egress IP and most
	// tokens we check are revoked, a stream of 401s that looks like token
	// guessing to an edge filter. So Limit is our own ceiling at about half
	// that average, 1 request per second (60 a minute, the cap GitLab puts
	// on SendGrid checks per project). The template runs 2 instances at
	// 0.5/s with burst 1 (1/s in all).
	Details: map[finding.TokenType][]string{TokenAccessToken: {DetailUsername}},
	Rate:    partnerdef.Rate{PerSecond: 0.5, Burst: 1, Limit: 1, Source: RateSource},
	New:     func(o partnerhttp.Options) (verify.Verifier, error) { return New(o) },
}

// accessToken is npm's token form: npm_ and 36 ASCII letters and digits
// (the last 6 a checksum npm alone judges).
var accessToken = partnerdef.NewPattern(`^npm_[A-Za-z0-9]{36}$`)
