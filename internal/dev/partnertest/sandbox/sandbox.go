// Package sandbox runs all three partner doubles together on loopback, with
// the sample credentials of events/ registered, for `make run`,
// cmd/partner-sandbox, the end-to-end tests and the benchmarks.
package sandbox

import (
	"crypto/rsa"
	"crypto/x509"
	_ "embed"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/googledouble"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/postmandouble"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/stsdouble"
)

// Sample credentials used by events/. They are fake (AWS's documented
// example key pair, placeholder strings, a throw-away RSA key) and live
// only in these doubles: the "active" ones are registered, the "inactive"
// ones are not, so the doubles answer as the partners would for a revoked
// credential.
const (
	SampleAWSKeyID            = "AKIAIOSFODNN7EXAMPLE"
	SampleAWSSecret           = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	SampleAWSAccount          = "123456789012"
	SampleAWSInactiveKeyID    = "AKIAI44QH8DHBEXAMPLE"
	SampleGCPAPIKey           = "AIzaSyEXAMPLE-active-key-00000000000000"
	SampleGCPInactiveAPIKey   = "AIzaSyEXAMPLE-revoked-key-0000000000000"
	SampleGCPClientID         = "100000000000-example.apps.googleusercontent.com"
	SampleGCPClientSecret     = "GOCSPX-EXAMPLE-active-secret-000000"
	SampleGCPInactiveSecret   = "GOCSPX-EXAMPLE-deleted-secret-00000"
	SampleGCPAccessToken      = "ya29.EXAMPLE-active-access-token-000000000000000000"
	SampleGCPInactiveToken    = "ya29.EXAMPLE-expired-access-token-00000000000000000"
	SamplePostmanKey          = "PMAK-0123456789abcdef01234567-0123456789abcdef0123456789abcdef01"
	SamplePostmanInactiveKey  = "PMAK-fedcba9876543210fedcba98-fedcba9876543210fedcba9876543210fe"
	SamplePostmanUserID       = 12345678
	SampleServiceAccountEmail = "sample-sa@example-project.iam.gserviceaccount.com"
	SampleServiceAccountKeyID = "0000000000000000000000000000000000sample"
)

// SampleServiceAccountKey is the key file of the active sample service
// account (events/gcp-service-account-key.json carries it, and a copy
// under an unregistered email as the inactive sample).
//
//go:embed sample-service-account.json
var SampleServiceAccountKey []byte

// Addrs are the listen addresses; empty ones pick free loopback ports.
type Addrs struct {
	STS, GoogleDiscovery, GoogleOAuth, Postman string
}

// Sandbox is the three doubles running together.
type Sandbox struct {
	STS     *stsdouble.Server
	Google  *googledouble.Double
	Postman *postmandouble.Server
}

// Start runs the three doubles; it does not register the samples.
func Start(a Addrs) (*Sandbox, error) {
	s := &Sandbox{}
	var err error
	if s.STS, err = stsdouble.Start(a.STS); err != nil {
		return nil, fmt.Errorf("sandbox: sts: %w", err)
	}
	if s.Google, err = googledouble.Start(a.GoogleDiscovery, a.GoogleOAuth); err != nil {
		s.Close()
		return nil, fmt.Errorf("sandbox: google: %w", err)
	}
	if s.Postman, err = postmandouble.Start(a.Postman); err != nil {
		s.Close()
		return nil, fmt.Errorf("sandbox: postman: %w", err)
	}
	return s, nil
}

// Close stops every double.
func (s *Sandbox) Close() {
	if s.STS != nil {
		s.STS.Close()
	}
	if s.Google != nil {
		s.Google.Close()
	}
	if s.Postman != nil {
		s.Postman.Close()
	}
}

// Env is the functions' partner endpoint configuration (contract §6).
func (s *Sandbox) Env() map[string]string {
	return map[string]string{
		"PARTNER_ENDPOINT_AWS_STS":       s.STS.URL,
		"PARTNER_ENDPOINT_GCP_DISCOVERY": s.Google.Discovery.URL,
		"PARTNER_ENDPOINT_GCP_OAUTH":     s.Google.OAuth.URL,
		"PARTNER_ENDPOINT_POSTMAN":       s.Postman.URL,
	}
}

// Controls returns each double's fault knobs by partner name.
func (s *Sandbox) Controls() map[string][]*partnertest.Controls {
	return map[string][]*partnertest.Controls{
		"aws":     {s.STS.Controls},
		"gcp":     {s.Google.Discovery.Controls, s.Google.OAuth.Controls},
		"postman": {s.Postman.Controls},
	}
}

// Requests is how many requests each partner's doubles received.
func (s *Sandbox) Requests() map[string]int64 {
	out := map[string]int64{}
	for p, cs := range s.Controls() {
		for _, c := range cs {
			out[p] += c.Requests()
		}
	}
	return out
}

// RegisterSamples makes the active sample credentials of events/ valid.
func (s *Sandbox) RegisterSamples() error {
	s.STS.AddKey(SampleAWSKeyID, SampleAWSSecret, SampleAWSAccount)
	s.Google.RegisterAPIKey(SampleGCPAPIKey, googledouble.APIKeyValid)
	s.Google.RegisterOAuthClient(SampleGCPClientID, SampleGCPClientSecret, googledouble.ClientActive)
	s.Google.RegisterAccessToken(SampleGCPAccessToken, googledouble.TokenInfo{
		Azp: SampleGCPClientID, Aud: SampleGCPClientID, Scope: "https://www.googleapis.com/auth/userinfo.email",
		Expiry: time.Now().Add(24 * time.Hour),
	})
	pub, err := samplePublicKey()
	if err != nil {
		return err
	}
	s.Google.RegisterServiceAccountKey(SampleServiceAccountEmail, SampleServiceAccountKeyID, pub)
	s.Postman.AddKey(SamplePostmanKey, SamplePostmanUserID)
	return nil
}

func samplePublicKey() (*rsa.PublicKey, error) {
	var key struct {
		PrivateKey string `json:"private_key"`
	}
	if err := json.Unmarshal(SampleServiceAccountKey, &key); err != nil {
		return nil, fmt.Errorf("sandbox: sample key file: %w", err)
	}
	block, _ := pem.Decode([]byte(key.PrivateKey))
	if block == nil {
		return nil, errors.New("sandbox: sample key file: no PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("sandbox: sample key file: %w", err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("sandbox: sample key file: not an RSA key")
	}
	return &rk.PublicKey, nil
}
