package chaos

import (
	"encoding/json"
	"encoding/pem"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/googledouble"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/postmandouble"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/sandbox"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/stsdouble"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/registry"
)

// Cred is one credential a scenario sends as a finding. The doubles know
// it as live (Active) or as revoked/unknown, so that a fault turning either
// into the wrong verdict shows.
type Cred struct {
	// Name says what the credential is ("aws-active"); finding ids start with it.
	Name    string
	RuleID  string
	Partner finding.Partner
	Token   string
	Context map[string]string
	// Active is what the partner answers when it answers normally.
	Active bool
	// Secrets is the credential material that must never appear anywhere:
	// the token, a secret key, a client secret, a private key's lines.
	Secrets []string
}

// Truth is the reason a normal partner answer gives.
func (c Cred) Truth() finding.Reason {
	if c.Active {
		return finding.ReasonPartnerConfirmed
	}
	return finding.ReasonPartnerRejected
}

var credSeq atomic.Int64

// NewCreds registers a fresh pair (live, dead) of every token type with the
// doubles and returns them. Fresh credentials keep verdict caches from
// answering for a scenario. Service-account key files carry canary as their
// token_uri and other URLs: a verifier must never call them.
func NewCreds(sb *sandbox.Sandbox, canary string) ([]Cred, error) {
	n := credSeq.Add(1)
	var out []Cred
	for _, active := range []bool{true, false} {
		state := map[bool]string{true: "active", false: "inactive"}[active]

		keyID, secret := stsdouble.NewKeyPair()
		if active {
			sb.STS.AddKey(keyID, secret, sandbox.SampleAWSAccount)
		}
		out = append(out, Cred{Name: "aws-" + state, RuleID: "AWS", Partner: finding.PartnerAWS, Token: keyID,
			Context: map[string]string{finding.ContextAWSSecretAccessKey: secret}, Active: active, Secrets: []string{keyID, secret}})

		apiKey := googledouble.NewAPIKey()
		if active {
			sb.Google.RegisterAPIKey(apiKey, googledouble.APIKeyValid)
		}
		out = append(out, Cred{Name: "gcp-api-key-" + state, RuleID: "GCP API key", Partner: finding.PartnerGCP,
			Token: apiKey, Active: active, Secrets: []string{apiKey}})

		email := fmt.Sprintf("chaos-%d-%s@chaos-project.iam.gserviceaccount.com", n, state)
		keyJSON, saKeyID, err := sb.Google.NewServiceAccountKey(email)
		if err != nil {
			return nil, err
		}
		if !active {
			// The account stays, its key is deleted: Google's "Invalid JWT Signature".
			if err := sb.Google.DeleteServiceAccountKey(saKeyID); err != nil {
				return nil, fmt.Errorf("chaos: delete service-account key: %w", err)
			}
		}
		keyFile, pemLines, err := withCanary(keyJSON, canary)
		if err != nil {
			return nil, err
		}
		out = append(out, Cred{Name: "gcp-sa-" + state, RuleID: "Google (GCP) Service-account", Partner: finding.PartnerGCP,
			Token: keyFile, Active: active, Secrets: append([]string{keyFile}, pemLines...)})

		clientID, clientSecret := googledouble.NewClientID(), googledouble.NewClientSecret()
		if active {
			sb.Google.RegisterOAuthClient(clientID, clientSecret, googledouble.ClientActive)
		}
		out = append(out, Cred{Name: "gcp-client-secret-" + state, RuleID: "GCP OAuth client secret", Partner: finding.PartnerGCP,
			Token: clientSecret, Context: map[string]string{finding.ContextGCPClientID: clientID}, Active: active, Secrets: []string{clientSecret}})

		token := googledouble.NewAccessToken()
		if active {
			sb.Google.RegisterAccessToken(token, googledouble.TokenInfo{Azp: clientID, Aud: clientID,
				Scope: "https://www.googleapis.com/auth/userinfo.email", Expiry: time.Now().Add(time.Hour)})
		}
		out = append(out, Cred{Name: "gcp-access-token-" + state, RuleID: "GCP OAuth access token", Partner: finding.PartnerGCP,
			Token: token, Active: active, Secrets: []string{token}})

		pm := postmandouble.NewAPIKey()
		if active {
			sb.Postman.AddKey(pm, sandbox.SamplePostmanUserID)
		}
		out = append(out, Cred{Name: "postman-" + state, RuleID: "Postman API token", Partner: finding.PartnerPostman,
			Token: pm, Active: active, Secrets: []string{pm}})

	}
	// Later partners: a fresh credential of their main token type from the
	// sandbox's kit, registered live, and one the double never heard of.
	for _, p := range registry.Names() {
		if p == finding.PartnerAWS || p == finding.PartnerGCP || p == finding.PartnerPostman {
			continue
		}
		_, creds, err := sandbox.LiveFindings(p, 2, 0)
		if err != nil {
			return nil, err
		}
		live, dead := creds[string(p)][0], creds[string(p)][1]
		if err := sb.Register(sandbox.Credentials{string(p): {live}}); err != nil {
			return nil, err
		}
		for _, c := range []struct {
			sandbox.Credential
			active bool
		}{{live, true}, {dead, false}} {
			state := map[bool]string{true: "active", false: "inactive"}[c.active]
			secrets := []string{c.Token}
			for _, v := range c.Context {
				secrets = append(secrets, v)
			}
			out = append(out, Cred{Name: string(p) + "-" + state, RuleID: c.RuleID, Partner: p, Token: c.Token,
				Context: c.Context, Active: c.active, Secrets: secrets})
		}
	}
	return out, nil
}

// withCanary points every URL of a key file at the canary and returns the
// file and the lines of its private key (each one secret on its own).
func withCanary(keyJSON []byte, canary string) (string, []string, error) {
	var key map[string]any
	if err := json.Unmarshal(keyJSON, &key); err != nil {
		return "", nil, fmt.Errorf("chaos: key file: %w", err)
	}
	for _, k := range []string{"token_uri", "auth_uri", "auth_provider_x509_cert_url", "client_x509_cert_url"} {
		key[k] = canary + "/" + k
	}
	b, err := json.Marshal(key)
	if err != nil {
		return "", nil, fmt.Errorf("chaos: key file: %w", err)
	}
	pk, _ := key["private_key"].(string)
	block, _ := pem.Decode([]byte(pk))
	if block == nil {
		return "", nil, fmt.Errorf("chaos: key file: no PEM private key")
	}
	var lines []string
	for _, l := range strings.Split(pk, "\n") {
		if l != "" && !strings.HasPrefix(l, "-----") {
			lines = append(lines, l)
		}
	}
	return string(b), lines, nil
}

// Only returns the credentials of one partner.
func Only(creds []Cred, p finding.Partner) []Cred {
	var out []Cred
	for _, c := range creds {
		if c.Partner == p {
			out = append(out, c)
		}
	}
	return out
}
