package sandbox

import (
	"errors"
	"fmt"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnertest/googledouble"
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
