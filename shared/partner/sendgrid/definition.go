package sendgridpartner

import (
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	partnerdef "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

// Name is SendGrid's partner name (contract §7): function, queue, metric
// dimension and flag key.
const Name finding.Partner = "sendgrid"

// TokenAPIKey is the one token type SendGrid issues that a scan finds.
const TokenAPIKey finding.TokenType = "sendgrid_api_key"

// Definition is SendGrid in the partner registry.
var Definition = partnerdef.Definition{
	Name:  Name,
	Title: "SendGrid",
	Rules: []partnerdef.Rule{
		{ID: "Sendgrid API token", Scanner: partnerdef.GitLab, TokenType: TokenAPIKey},
		{ID: "sendgrid-api-token", Scanner: partnerdef.Gitleaks, TokenType: TokenAPIKey},
	},
	TokenTypes: []finding.TokenType{TokenAPIKey},
	// SendGrid has no test-mode keys and no refresh tokens: every key of the
	// documented form can be asked about, so nothing here is unsupported.
	Check: func(t finding.TokenType, f finding.Finding) (finding.TokenType, finding.Reason, string) {
		return partnerdef.MatchFormat(t, apiKey, f.Token.Reveal(), "a SendGrid API key (SG.<22>.<43> of [A-Za-z0-9_-])")
	},
	Endpoints: []partnerdef.Endpoint{{Env: EnvEndpoint, Default: DefaultEndpoint}},
	// SendGrid publishes 600 requests per minute per user for the v3 API
	// (mail/send aside; GET /v3/scopes announces X-RateLimit-Limit: 600).
	// That budget belongs to each key's account, and every leaked key is
	// another account, so it does not bound a caller like us. What does is
	// the 403 "too many bad requests, temporary block": most keys we check
	// are revoked, all from one egress IP, and SendGrid does not publish
	// that threshold. So Limit is our own ceiling, 1 request per second
	// (60 a minute, a tenth of the per-user figure and the cap GitLab puts
	// on SendGrid checks per project). The template runs 2 instances at
	// 0.5/s with burst 1 (1/s in all).
	Rate: partnerdef.Rate{PerSecond: 0.5, Burst: 1, Limit: 1, Source: "https://www.twilio.com/docs/sendgrid/api-reference/how-to-use-the-sendgrid-v3-api/rate-limits"},
	New:  func(o partnerhttp.Options) (verify.Verifier, error) { return New(o) },
	Details: map[finding.TokenType][]string{
		TokenAPIKey: {DetailScopes},
	},
}

// apiKey is SendGrid's key form: "SG.", a 22-character key id, ".", a
// 43-character secret, both base64url (69 characters in all).
var apiKey = partnerdef.NewPattern(`^SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}$`)
