// Package gcppartner verifies Google Cloud credentials (API keys,
// service-account keys, OAuth client secrets, OAuth access tokens) against
// Google's own endpoints, classifying every answer into a verdict or a
// fault. Endpoints come only from configuration: a service-account key's
// token_uri is never contacted.
package gcppartner

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

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

const partner = string(finding.PartnerGCP)

// Config configures a Verifier.
type Config struct {
	// Discovery is the base URL of the API-key probe (PARTNER_ENDPOINT_GCP_DISCOVERY).
	Discovery *url.URL
	// OAuth is the base URL of /token and /tokeninfo (PARTNER_ENDPOINT_GCP_OAUTH).
	OAuth *url.URL
	// Timeout bounds one request; 0 means partnerhttp.DefaultTimeout.
	Timeout time.Duration
	// Transport overrides the network transport (tests observe or break requests here).
	Transport http.RoundTripper
}

// FromEnv reads the endpoints from the environment, with Google's defaults.
func FromEnv() (Config, error) {
	disc, err := partnerhttp.Endpoint(EnvDiscovery, DefaultDiscovery)
	if err != nil {
		return Config{}, err
	}
	oauth, err := partnerhttp.Endpoint(EnvOAuth, DefaultOAuth)
	if err != nil {
		return Config{}, err
	}
	return Config{Discovery: disc, OAuth: oauth}, nil
}

// Verifier verifies the four GCP token types. Build one per function
// instance: it holds the one HTTP client whose connections are reused.
type Verifier struct {
	client       *http.Client
	discoveryURL string
	tokenURL     string
	tokenInfoURL string
}

var _ verify.Verifier = (*Verifier)(nil)

// New returns a verifier that talks only to cfg's two endpoints.
func New(cfg Config) (*Verifier, error) {
	if err := checkBase(cfg.Discovery); err != nil {
		return nil, fmt.Errorf("gcppartner: new verifier: discovery endpoint: %w", err)
	}
	if err := checkBase(cfg.OAuth); err != nil {
		return nil, fmt.Errorf("gcppartner: new verifier: oauth endpoint: %w", err)
	}
	disc := cfg.Discovery.JoinPath("discovery", "v1", "apis")
	disc.RawQuery = url.Values{"name": {"discovery"}, "preferred": {"true"}}.Encode()
	return &Verifier{
		client: partnerhttp.NewClient(partnerhttp.Options{
			Partner:   partner,
			Endpoints: []*url.URL{cfg.Discovery, cfg.OAuth},
			Timeout:   cfg.Timeout,
			Transport: cfg.Transport,
		}),
		discoveryURL: disc.String(),
		tokenURL:     cfg.OAuth.JoinPath("token").String(),
		tokenInfoURL: cfg.OAuth.JoinPath("tokeninfo").String(),
	}, nil
}

// checkBase refuses base URLs that could smuggle credentials or parameters
// into every request.
func checkBase(u *url.URL) error {
	switch {
	case u == nil:
		return errors.New("not set")
	case (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return errors.New("not an absolute http(s) URL")
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return errors.New("must not carry user info, a query or a fragment")
	}
	return nil
}

// Verify asks Google whether the finding's credential is live. Findings
// that fail finding.Check get their verdict without a call.
func (v *Verifier) Verify(ctx context.Context, tokenType finding.TokenType, f finding.Finding) (verify.Verdict, error) {
	if _, reason, msg := check(tokenType, f); reason != "" {
		return verify.Verdict{Reason: reason, Message: msg}, nil
	}
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
		return verify.Verdict{
			Reason:  finding.ReasonUnsupportedTokenType,
			Message: "gcp verifier: token type " + string(tokenType) + " is not verified",
		}, nil
	}
}
