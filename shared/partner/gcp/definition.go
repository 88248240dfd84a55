package gcppartner

import (
	"encoding/json"
	"strings"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	partnerdef "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

// Definition is Google Cloud in the partner registry.
var Definition = partnerdef.Definition{
	Name:  finding.PartnerGCP,
	Title: "GCP",
	Rules: []partnerdef.Rule{
		{ID: "GCP API key", Scanner: partnerdef.GitLab, TokenType: finding.TokenGCPAPIKey},
		{ID: "Google (GCP) Service-account", Scanner: partnerdef.GitLab, TokenType: finding.TokenGCPServiceAccountKey},
		{ID: "GCP OAuth client secret", Scanner: partnerdef.GitLab, TokenType: finding.TokenGCPOAuthClientSecret},
		{ID: "GCP OAuth access token", Scanner: partnerdef.GitLab, TokenType: finding.TokenGCPAccessToken},
		{ID: "gcp-api-key", Scanner: partnerdef.Gitleaks, TokenType: finding.TokenGCPAPIKey},
	},
	TokenTypes: []finding.TokenType{finding.TokenGCPAPIKey, finding.TokenGCPServiceAccountKey, finding.TokenGCPOAuthClientSecret, finding.TokenGCPAccessToken},
	Check:      check,
	Endpoints: []partnerdef.Endpoint{
		{Env: EnvDiscovery, Default: DefaultDiscovery},
		{Env: EnvOAuth, Default: DefaultOAuth},
	},
	// The googleapis endpoints (API discovery with a key, OAuth token and
	// tokeninfo) enforce per-project and per-IP quotas measured in
	// thousands per minute; the limit is our own ceiling of 50/s across
	// instances, well inside them.
	Rate: partnerdef.Rate{PerSecond: 20, Burst: 10, Limit: 50, Source: "https://cloud.google.com/apis/docs/capping-api-usage"},
	New:  func(o partnerhttp.Options) (verify.Verifier, error) { return New(o) },
	Details: map[finding.TokenType][]string{
		finding.TokenGCPAPIKey:            {DetailErrorReason},
		finding.TokenGCPServiceAccountKey: {DetailClientEmail},
		finding.TokenGCPOAuthClientSecret: {},
		finding.TokenGCPAccessToken:       {DetailClientEmail, DetailScopes, DetailExpiresAt},
	},
}

var (
	apiKeyFormat       = partnerdef.NewPattern(`^AIza[0-9A-Za-z_-]{35}$`)
	clientSecretFormat = partnerdef.NewPattern(`^GOCSPX-[0-9A-Za-z_-]{28}$`)
	clientIDFormat     = partnerdef.NewPattern(`^[0-9A-Za-z_.-]{1,200}\.apps\.googleusercontent\.com$`)
	accessTokenFormat  = partnerdef.NewPattern(`^ya29\.[0-9A-Za-z_.-]+$`) // service-account tokens read ya29.c.…
)

// check applies each Google token type's format; an OAuth client secret
// also needs its client id from the finding's context.
func check(t finding.TokenType, f finding.Finding) (finding.TokenType, finding.Reason, string) {
	tok := f.Token.Reveal()
	switch t {
	case finding.TokenGCPAPIKey:
		return partnerdef.MatchFormat(t, apiKeyFormat, tok, "a GCP API key (AIza + 35 characters)")
	case finding.TokenGCPServiceAccountKey:
		if msg := checkServiceAccountKey(tok); msg != "" {
			return partnerdef.Malformed(t, msg)
		}
	case finding.TokenGCPOAuthClientSecret:
		if !clientSecretFormat.MatchString(tok) {
			return partnerdef.Malformed(t, "token is not a GCP OAuth client secret (GOCSPX- + 28 characters)")
		}
		id := f.ContextValue(finding.ContextGCPClientID)
		if id == "" {
			return t, finding.ReasonMissingContext, "context.gcp_client_id is needed to verify an OAuth client secret"
		}
		if !clientIDFormat.MatchString(id) {
			return partnerdef.Malformed(t, "context.gcp_client_id is not an OAuth client id (*.apps.googleusercontent.com)")
		}
	case finding.TokenGCPAccessToken:
		return partnerdef.MatchFormat(t, accessTokenFormat, tok, "a GCP OAuth access token (ya29.)")
	}
	return partnerdef.Pass(t)
}

// checkServiceAccountKey checks the shape of a key file; the PEM itself is
// parsed by the verifier, which has the library that signs with it.
func checkServiceAccountKey(tok string) string {
	var key struct {
		Type         string `json:"type"`
		ClientEmail  string `json:"client_email"`
		PrivateKey   string `json:"private_key"`
		PrivateKeyID string `json:"private_key_id"`
	}
	if err := json.Unmarshal([]byte(tok), &key); err != nil {
		return "token is not a service-account key file: " + finding.DescribeJSONError(err)
	}
	switch {
	case key.Type != "service_account":
		return "service-account key: type is not service_account"
	case key.ClientEmail == "":
		return "service-account key: client_email missing"
	case !strings.Contains(key.PrivateKey, "PRIVATE KEY"):
		return "service-account key: private_key missing or not PEM"
	}
	return ""
}
