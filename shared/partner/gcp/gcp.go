// Package gcppartner verifies Google Cloud credentials (API keys,
// service-account keys, OAuth client secrets, OAuth access tokens) against
// Google's own endpoints, classifying every answer into a verdict or a
// fault. Endpoints come only from configuration: a service-account key's
// token_uri is never contacted.
package gcppartner

import (
	"context"
	"fmt"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

// Environment variables and defaults of contract §6.
const (
	EnvDiscovery     = "PARTNER_ENDPOINT_GCP_DISCOVERY"
	EnvOAuth         = "PARTNER_ENDPOINT_GCP_OAUTH"
	DefaultDiscovery = "https://www.googleapis.com"
	DefaultOAuth     = "https://oauth2.googleapis.com"
)

// What the verifier sends; fixed so that no part of a request comes from a message.
const (
	// ServiceAccountScope is requested in the JWT-bearer grant: Google
	// insists on a scope, and this one grants next to nothing.
	ServiceAccountScope = "https://www.googleapis.com/auth/userinfo.email"
	// ProbeRedirectURI and probeCode make the authorization_code exchange
	// that tests a client secret: the code is never valid, so a correct
	// client id/secret pair gets invalid_grant and a wrong one invalid_client.
	ProbeRedirectURI = "http://localhost"
	probeCode        = "gitlab-secret-detection-probe-invalid-code"
)

// DetailClientEmail is the details key naming a service account's email.
const DetailClientEmail = "gcp_client_email"

// Details keys of a live access token, from tokeninfo.
const (
	// DetailScopes are the token's OAuth scopes.
	DetailScopes = "scopes"
	// DetailExpiresAt is when the token expires, RFC 3339.
	DetailExpiresAt = "expires_at"
)

// DetailErrorReason is the details key of the Google reason (SERVICE_DISABLED,
// API_KEY_*_BLOCKED) that showed an API key is live although the call failed.
const DetailErrorReason = "gcp_error_reason"

// Operation names used in faults.
const (
	opDiscovery = "GET /discovery/v1/apis"
	opJWT       = "POST /token (jwt-bearer)"
	opAuthCode  = "POST /token (authorization_code)"
	opTokenInfo = "POST /tokeninfo"
)

// The order of partnerhttp.Options.Endpoints.
const (
	endpointDiscovery = iota
	endpointOAuth
)

// Verifier verifies the four GCP token types. Build one per function
// instance: it holds the one partner client whose connections are reused.
type Verifier struct{ c *partnerhttp.Client }

var _ verify.Verifier = (*Verifier)(nil)

// New returns a verifier that talks only to o.Endpoints: [discovery, oauth]
// (the API-key probe's base, and the base of /token and /tokeninfo).
func New(o partnerhttp.Options) (*Verifier, error) {
	o.Partner = finding.PartnerGCP
	if len(o.Endpoints) != 2 {
		return nil, fmt.Errorf("gcppartner: new verifier: want 2 endpoints (discovery, oauth), got %d", len(o.Endpoints))
	}
	c, err := partnerhttp.New(o)
	if err != nil {
		return nil, fmt.Errorf("gcppartner: new verifier: %w", err)
	}
	return &Verifier{c: c}, nil
}

// Verify asks Google whether the finding's credential is live. The caller
// has passed the finding through finding.Check and routed it to tokenType.
func (v *Verifier) Verify(ctx context.Context, tokenType finding.TokenType, f finding.Finding) (verify.Verdict, error) {
	switch tokenType {
	case finding.TokenGCPAPIKey:
		return v.verifyAPIKey(ctx, f.Token.Reveal())
	case finding.TokenGCPServiceAccountKey:
		return v.verifyServiceAccountKey(ctx, f.Token.Reveal())
	case finding.TokenGCPOAuthClientSecret:
		return v.verifyClientSecret(ctx, f.ContextValue(finding.ContextGCPClientID), f.Token.Reveal())
	case finding.TokenGCPAccessToken:
		return v.verifyAccessToken(ctx, f.Token.Reveal())
	default:
		return verify.Unsupported(Definition.Name, tokenType, Definition.TokenTypes...), nil
	}
}
