package anthropicpartner

import (
	"strings"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	partnerdef "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

// Name is Anthropic's partner name (contract §7): queue, function, metric
// dimension and flag key partners.anthropic.
const Name finding.Partner = "anthropic"

// The token types Check returns (contract §7).
const (
	// TokenAPIKey is an API key, sk-ant-api03-….
	TokenAPIKey finding.TokenType = "anthropic_api_key"
	// TokenAdminKey is an Admin API key, sk-ant-admin01-….
	TokenAdminKey finding.TokenType = "anthropic_admin_key"
)

// Key prefixes. The OAuth forms are what Claude's sign-in issues; contract
// §7 gives them no call, so they are not sent anywhere.
const (
	PrefixAPIKey       = "sk-ant-api03-"
	PrefixAdminKey     = "sk-ant-admin01-"
	prefixOAuthAccess  = "sk-ant-oat01-"
	prefixOAuthRefresh = "sk-ant-ort01-"
)

// Definition is Anthropic in the partner registry.
var Definition = partnerdef.Definition{
	Name:  Name,
	Title: "Anthropic",
	Rules: []partnerdef.Rule{
		{ID: "anthropic_key", Scanner: partnerdef.GitLab, TokenType: TokenAPIKey},
		{ID: "anthropic-api-key", Scanner: partnerdef.Gitleaks, TokenType: TokenAPIKey},
		{ID: "anthropic-admin-api-key", Scanner: partnerdef.Gitleaks, TokenType: TokenAdminKey},
	},
	TokenTypes: []finding.TokenType{TokenAPIKey, TokenAdminKey},
	Check:      check,
	Endpoints:  []partnerdef.Endpoint{{Env: EnvEndpoint, Default: DefaultEndpoint}},
	// Anthropic publishes its limits per organization, by usage tier, not
	// per caller or per IP; the lowest published tier allows 50 requests a
	// minute. Every key we check may belong to one small organization (a
	// leak often holds several keys of one org), and our calls spend that
	// organization's own budget, so all instances together stay under 50 a
	// minute: 2 instances x 0.4/s = 0.8/s = 48/min (GitLab also caps each
	// project at 50/min for Anthropic).
	Rate: partnerdef.Rate{PerSecond: 0.4, Burst: 1, Limit: 50.0 / 60,
		Source: "https://docs.anthropic.com/en/api/rate-limits (per-organization limits; the lowest tier allows 50 requests per minute)"},
	New: func(o partnerhttp.Options) (verify.Verifier, error) { return New(o) },
	Details: map[finding.TokenType][]string{
		TokenAPIKey:   {DetailOrganizationID, DetailRestricted},
		TokenAdminKey: {DetailOrganizationID, DetailRestricted},
	},
}

var (
	apiKey   = partnerdef.NewPattern(`^sk-ant-api03-[A-Za-z0-9_-]{93}AA$`)
	adminKey = partnerdef.NewPattern(`^sk-ant-admin01-[A-Za-z0-9_-]{93}AA$`)
)

// check types a key by its prefix, whatever the rule that found it (GitLab's
// anthropic_key rule matches API keys, but a scanner rule can match more):
// admin keys are checked against the Admin API, OAuth tokens are not
// called at all.
func check(t finding.TokenType, f finding.Finding) (finding.TokenType, finding.Reason, string) {
	tok := f.Token.Reveal()
	switch {
	case strings.HasPrefix(tok, PrefixAdminKey):
		return partnerdef.MatchFormat(TokenAdminKey, adminKey, tok, "an Anthropic Admin API key (sk-ant-admin01-<93 of [A-Za-z0-9_-]>AA)")
	case strings.HasPrefix(tok, PrefixAPIKey):
		return partnerdef.MatchFormat(TokenAPIKey, apiKey, tok, "an Anthropic API key (sk-ant-api03-<93 of [A-Za-z0-9_-]>AA)")
	case strings.HasPrefix(tok, prefixOAuthRefresh):
		return partnerdef.Unsupported(t, "Anthropic OAuth refresh tokens (sk-ant-ort01-) are not verified: using one would rotate it")
	case strings.HasPrefix(tok, prefixOAuthAccess):
		return partnerdef.Unsupported(t, "Anthropic OAuth access tokens (sk-ant-oat01-) are not verified: the contract defines no call for them")
	}
	return partnerdef.Malformed(t, "token is not an Anthropic API key (sk-ant-api03-…) or Admin API key (sk-ant-admin01-…)")
}
