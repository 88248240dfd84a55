// Package sandbox runs every partner's double together on loopback, with
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

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/googledouble"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/postmandouble"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/stsdouble"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/registry"
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

// AWS samples of key ids that encode their account (events/aws-access-key.json
// and events/ingress-scan.json).
const (
	// SampleAWSCanaryKeyID is a key id of a Thinkst Canarytokens account,
	// SampleAWSCanaryAccount, live in the double: never sent, it must come
	// back unknown/canary_token, not active.
	SampleAWSCanaryKeyID   = "AKIAQYLPMN5HF5A7424C"
	SampleAWSCanaryAccount = "052310077262"
	// SampleAWSSessionKeyID is a current-format ASIA key id of
	// SampleAWSAccount: unsupported, yet its result names the account.
	SampleAWSSessionKeyID = "ASIARZPUZDIKGZQDDUF7"
)

// SampleServiceAccountKey is the key file of the active sample service
// account (events/gcp-service-account-key.json carries it, and a copy
// under an unregistered email as the inactive sample).
//
//go:embed sample-service-account.json
var SampleServiceAccountKey []byte

// Addrs are the listen addresses by endpoint variable (PARTNER_ENDPOINT_…);
// a missing or empty one picks a free loopback port.
type Addrs map[string]string

// Sandbox is every partner's double running together: one per partner of
// the registry (kits lists them; a test fails when a partner has none).
type Sandbox struct {
	// The first partners' doubles, typed, for tests that drive their knobs.
	STS     *stsdouble.Server
	Google  *googledouble.Double
	Postman *postmandouble.Server

	doubles map[finding.Partner]Double
}

// Start runs every partner's double; it does not register the samples.
func Start(a Addrs) (*Sandbox, error) {
	s := &Sandbox{doubles: map[finding.Partner]Double{}}
	for _, def := range registry.All() {
		kit, ok := kits[def.Name]
		if !ok {
			s.Close()
			return nil, fmt.Errorf("sandbox: no double for partner %s", def.Name)
		}
		addrs := make([]string, len(def.Endpoints))
		for i, e := range def.Endpoints {
			addrs[i] = a[e.Env]
		}
		d, err := kit.Start(addrs)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("sandbox: %s: %w", def.Name, err)
		}
		s.doubles[def.Name] = d
	}
	s.STS = s.doubles[finding.PartnerAWS].(*stsDouble).Server
	s.Google = s.doubles[finding.PartnerGCP].(*googleDouble).Double
	s.Postman = s.doubles[finding.PartnerPostman].(*postmanDouble).Server
	return s, nil
}

// Double returns a partner's running double.
func (s *Sandbox) Double(p finding.Partner) Double { return s.doubles[p] }

// Close stops every double.
func (s *Sandbox) Close() {
	for _, d := range s.doubles {
		d.Close()
	}
}

// Env is the functions' partner endpoint configuration (contract §6): each
// partner's endpoint variables pointed at its double.
func (s *Sandbox) Env() map[string]string {
	env := map[string]string{}
	for _, def := range registry.All() {
		urls := s.doubles[def.Name].URLs()
		for i, e := range def.Endpoints {
			env[e.Env] = urls[i]
		}
	}
	return env
}

// Controls returns each double's fault knobs by partner name.
func (s *Sandbox) Controls() map[string][]*partnertest.Controls {
	out := map[string][]*partnertest.Controls{}
	for p, d := range s.doubles {
		out[string(p)] = d.Controls()
	}
	return out
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

// RegisterSamples makes the active sample credentials of events/ valid in
// every double.
func (s *Sandbox) RegisterSamples() error {
	for _, def := range registry.All() {
		if err := s.doubles[def.Name].RegisterSamples(); err != nil {
			return fmt.Errorf("sandbox: %s samples: %w", def.Name, err)
		}
	}
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
