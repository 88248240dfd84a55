package openaipartner

import (
	"strings"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	partnerdef "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

// Name is OpenAI's partner name (contract §7).
const Name finding.Partner = "openai"

// The token types of contract §7.
const (
	TokenAPIKey   finding.TokenType = "openai_api_key"
	TokenAdminKey finding.TokenType = "openai_admin_key"
)

// Key prefixes: OpenAI types its keys by prefix, whatever rule found them.
const (
	prefixAdmin   = "sk-admin-"
	prefixProject = "sk-proj-"
	prefixService = "sk-svcacct-"
	// legacyMarker is inside every legacy sk- key (base64 of "OpenAI").
	legacyMarker = "T3BlbkFJ"
)

// keyForm is the shape of the part after the prefix: OpenAI keys use the
// URL-safe base64 alphabet; the bounds keep a line of garbage out.
var (
	modernKey = partnerdef.NewPattern(`^sk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{20,300}$`)
	legacyKey = partnerdef.NewPattern(`^sk-[A-Za-z0-9_-]{20,300}$`)
)

const form = "an OpenAI key (sk-proj-…, sk-svcacct-…, sk-admin-…, or a legacy sk-… key containing T3BlbkFJ)"

// Definition is OpenAI in the partner registry.
var Definition = partnerdef.Definition{
	Name:  Name,
	Title: "OpenAI",
	Rules: []partnerdef.Rule{
		{ID: "open ai token", Scanner: partnerdef.GitLab, TokenType: TokenAPIKey},
		{ID: "openai-api-key", Scanner: partnerdef.Gitleaks, TokenType: TokenAPIKey},
	},
	TokenTypes: []finding.TokenType{TokenAPIKey, TokenAdminKey},
	Check: func(_ finding.TokenType, f finding.Finding) (finding.TokenType, finding.Reason, string) {
		return check(f.Token.Reveal())
	},
	Endpoints: []partnerdef.Endpoint{{Env: EnvEndpoint, Default: DefaultEndpoint}},
	// OpenAI publishes its limits per organization and project (requests
	// and tokens per minute, per model and usage tier), never per caller
	// or IP. Every leaked key belongs to its own organization, and one
	// GET /v1/models per key spends a request of that organization's
	// quota, so no published figure binds the sum of our calls; but they
	// all leave from one egress IP, and OpenAI does not say what its edge
	// tolerates from one address. Limit is therefore our own ceiling:
	// 5 requests/s (300/min), six times the 50/min GitLab lets each project
	// send to OpenAI, so a full scan of one project never waits on it,
	// while staying well below the lowest paid tier's 500 RPM
	// (usage tier 1) had OpenAI counted all our calls as one caller. The
	// template's default is 2 instances × 2.5/s = 5.
	Rate: partnerdef.Rate{PerSecond: 2.5, Burst: 1, Limit: 5,
		Source: "https://platform.openai.com/docs/guides/rate-limits (per organization and project, no per-caller limit: our own ceiling)"},
	New: func(o partnerhttp.Options) (verify.Verifier, error) { return New(o) },
	Details: map[finding.TokenType][]string{
		TokenAPIKey:   {DetailOrganization},
		TokenAdminKey: {DetailOrganization},
	},
}

// check types a key by prefix and checks its shape. The message names the
// expected form, never the key.
func check(tok string) (finding.TokenType, finding.Reason, string) {
	switch {
	case strings.HasPrefix(tok, prefixAdmin):
		if !modernKey.MatchString(tok) {
			return partnerdef.Malformed(TokenAdminKey, "token is not an OpenAI admin key (sk-admin- + 20 to 300 of [A-Za-z0-9_-])")
		}
		return partnerdef.Pass(TokenAdminKey)
	case strings.HasPrefix(tok, prefixProject), strings.HasPrefix(tok, prefixService):
		if !modernKey.MatchString(tok) {
			return partnerdef.Malformed(TokenAPIKey, "token is not an OpenAI project or service-account key (sk-proj-/sk-svcacct- + 20 to 300 of [A-Za-z0-9_-])")
		}
		return partnerdef.Pass(TokenAPIKey)
	case legacyKey.MatchString(tok) && strings.Contains(tok, legacyMarker):
		return partnerdef.Pass(TokenAPIKey)
	}
	return partnerdef.Malformed(TokenAPIKey, "token is not "+form)
}
