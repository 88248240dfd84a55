package gitlabpartner

import (
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	partnerdef "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

// Name is GitLab's partner name (contract §7): function, queue, metric
// dimension and flag key.
const Name finding.Partner = "gitlab"

// TokenPAT is the one token type GitLab tokens are verified as: legacy and
// routable personal access tokens share the glpat- prefix and the call.
const TokenPAT finding.TokenType = "gitlab_personal_access_token"

// Definition is GitLab in the partner registry.
var Definition = partnerdef.Definition{
	Name:  Name,
	Title: "GitLab",
	Rules: []partnerdef.Rule{
		{ID: "gitlab_personal_access_token", Scanner: partnerdef.GitLab, TokenType: TokenPAT},
		{ID: "gitlab_personal_access_token_routable", Scanner: partnerdef.GitLab, TokenType: TokenPAT},
		{ID: "gitlab-pat", Scanner: partnerdef.Gitleaks, TokenType: TokenPAT},
		{ID: "gitlab-pat-routable", Scanner: partnerdef.Gitleaks, TokenType: TokenPAT},
	},
	TokenTypes: []finding.TokenType{TokenPAT},
	// A personal access token has no refresh or test-mode form: every token
	// of the glpat- form can be asked about, so nothing here is unsupported.
	Check: func(t finding.TokenType, f finding.Finding) (finding.TokenType, finding.Reason, string) {
		return partnerdef.MatchFormat(TokenPAT, pat, f.Token.Reveal(), "a GitLab personal access token (glpat- + 20 or more of [0-9A-Za-z_.-])")
	},
	Endpoints: []partnerdef.Endpoint{{Env: EnvEndpoint, Default: DefaultEndpoint}},
	// GitLab.com allows an authenticated user 2,000 API requests a minute,
	// but that budget is each token's owner's, and every leaked token is
	// another owner. A token GitLab does not accept (most of what we check)
	// authenticates nobody, so GitLab.com counts it as unauthenticated
	// traffic of the calling IP: 500 requests a minute per IP, and all our
	// instances leave through one egress IP. GitLab also announces lower,
	// not yet published, allowances for anonymous requests (the "rate
	// limits by plan" on the same page). So Limit is 2 requests per second
	// (120 a minute, under a quarter of the per-IP figure), leaving the
	// rest of that IP's budget to its other users. The template runs 2
	// instances at 1/s with burst 1 (2/s in all). Going over only delays
	// verdicts (a 429 with Retry-After is rate_limited), never falsifies one.
	Rate:    partnerdef.Rate{PerSecond: 1, Burst: 1, Limit: 2, Source: "https://docs.gitlab.com/user/gitlab_com/rate_limits/"},
	Details: map[finding.TokenType][]string{TokenPAT: {DetailScopes, DetailExpiresAt}},
	New:     func(o partnerhttp.Options) (verify.Verifier, error) { return New(o) },
}

// pat is contract §7's form, which both GitLab token formats satisfy: the
// legacy glpat- + 20 characters, and the routable glpat- + base64url
// payload + ".01." + a base-36 length and CRC32 (43 to 316 characters).
// The routable token's CRC is deliberately not checked offline: a
// self-managed instance (the configured endpoint may be one) may issue
// tokens another way, and a false malformed_token would hide a live token.
// No upper bound either (§7 says "20 or more"); a finding's token is
// bounded by finding.MaxTokenBytes.
var pat = partnerdef.NewPattern(`^glpat-[0-9A-Za-z_.-]{20,}$`)
