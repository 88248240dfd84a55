package postmanpartner

import (
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	partnerdef "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

// Definition is Postman in the partner registry.
var Definition = partnerdef.Definition{
	Name:  finding.PartnerPostman,
	Title: "Postman",
	Rules: []partnerdef.Rule{
		{ID: "Postman API token", Scanner: partnerdef.GitLab, TokenType: finding.TokenPostmanAPIKey},
		{ID: "postman-api-token", Scanner: partnerdef.Gitleaks, TokenType: finding.TokenPostmanAPIKey},
	},
	TokenTypes: []finding.TokenType{finding.TokenPostmanAPIKey},
	Check: func(t finding.TokenType, f finding.Finding) (finding.TokenType, finding.Reason, string) {
		return partnerdef.MatchFormat(t, apiKey, f.Token.Reveal(), "a Postman API key (PMAK-<24 hex>-<34 hex>)")
	},
	Endpoints: []partnerdef.Endpoint{{Env: EnvEndpoint, Default: DefaultEndpoint}},
	// The Postman API allows 300 requests per minute per API key and
	// answers 429 sooner once clients share a public IP; the template sets
	// 1.5/s with burst 1 for two instances (3/s in all).
	Rate: partnerdef.Rate{PerSecond: 3, Burst: 3, Limit: 5, Source: "https://learning.postman.com/docs/developer/postman-api/postman-api-rate-limits/"},
	New:  func(o partnerhttp.Options) (verify.Verifier, error) { return New(o) },
	Details: map[finding.TokenType][]string{
		finding.TokenPostmanAPIKey: {DetailUserID},
	},
}

var apiKey = partnerdef.NewPattern(`^PMAK-[0-9a-f]{24}-[0-9a-f]{34}$`)
