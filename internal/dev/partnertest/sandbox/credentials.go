package sandbox

import (
	"errors"
	"fmt"
	"strconv"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/googledouble"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/postmandouble"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/stsdouble"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
)

// AWSKey is one access key pair to register as live.
type AWSKey struct {
	AccessKeyID     string `json:"access_key_id"`
	SecretAccessKey string `json:"secret_access_key"`
}

// Credentials are generated credentials to register as live in a running
// sandbox (cmd/partner-sandbox's POST /credentials), so that a benchmark in
// another process can verify many distinct tokens that all come back active.
type Credentials struct {
	AWS            []AWSKey `json:"aws,omitempty"`
	GCPAPIKeys     []string `json:"gcp_api_keys,omitempty"`
	PostmanAPIKeys []string `json:"postman_api_keys,omitempty"`
}

// MaxCredentials bounds one registration, so a stray request cannot make
// the sandbox hold unbounded memory.
const MaxCredentials = 100000

// Register makes every credential in c live: AWS keys in the sample
// account, GCP API keys valid, Postman keys owned by the sample user. It
// checks every entry before registering any, and its errors never quote a
// credential.
func (s *Sandbox) Register(c Credentials) error {
	if n := len(c.AWS) + len(c.GCPAPIKeys) + len(c.PostmanAPIKeys); n > MaxCredentials {
		return fmt.Errorf("sandbox: register: %d credentials, at most %d", n, MaxCredentials)
	}
	for i, k := range c.AWS {
		if k.AccessKeyID == "" || k.SecretAccessKey == "" {
			return fmt.Errorf("sandbox: register: aws[%d]: access key id and secret are required", i)
		}
	}
	for i, k := range c.GCPAPIKeys {
		if k == "" {
			return fmt.Errorf("sandbox: register: gcp_api_keys[%d]: empty", i)
		}
	}
	for i, k := range c.PostmanAPIKeys {
		if k == "" {
			return fmt.Errorf("sandbox: register: postman_api_keys[%d]: empty", i)
		}
	}
	if s.STS == nil || s.Google == nil || s.Postman == nil {
		return errors.New("sandbox: register: not started")
	}
	for _, k := range c.AWS {
		s.STS.AddKey(k.AccessKeyID, k.SecretAccessKey, SampleAWSAccount)
	}
	for _, k := range c.GCPAPIKeys {
		s.Google.RegisterAPIKey(k, googledouble.APIKeyValid)
	}
	for _, k := range c.PostmanAPIKeys {
		s.Postman.AddKey(k, SamplePostmanUserID)
	}
	return nil
}

// LiveFindings generates n findings for partner p, each with its own random
// token (an AWS key pair, a GCP API key, a Postman API key), ids from
// firstID on, and the Credentials that make every one of them live once
// registered. Benchmarks use it to make distinct, successful verifications.
func LiveFindings(p finding.Partner, n, firstID int) ([]finding.Finding, Credentials, error) {
	var creds Credentials
	out := make([]finding.Finding, n)
	for i := range out {
		f := finding.Finding{ID: "f-" + strconv.Itoa(firstID+i)}
		switch p {
		case finding.PartnerAWS:
			id, secret := stsdouble.NewKeyPair()
			f.RuleID, f.Token = "AWS", finding.Secret(id)
			f.Context = map[string]finding.Secret{finding.ContextAWSSecretAccessKey: finding.Secret(secret)}
			creds.AWS = append(creds.AWS, AWSKey{AccessKeyID: id, SecretAccessKey: secret})
		case finding.PartnerGCP:
			key := googledouble.NewAPIKey()
			f.RuleID, f.Token = "GCP API key", finding.Secret(key)
			creds.GCPAPIKeys = append(creds.GCPAPIKeys, key)
		case finding.PartnerPostman:
			key := postmandouble.NewAPIKey()
			f.RuleID, f.Token = "Postman API token", finding.Secret(key)
			creds.PostmanAPIKeys = append(creds.PostmanAPIKeys, key)
		default:
			return nil, creds, fmt.Errorf("sandbox: live findings: unknown partner %q", p)
		}
		out[i] = f
	}
	return out, creds, nil
}
