package sandbox

import (
	"context"
	"strings"
	"testing"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/googledouble"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/postmandouble"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/stsdouble"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

// TestRegister registers generated credentials and has the real verifiers
// check them: registered ones are active, unregistered ones stay inactive,
// and a bad registration registers nothing and quotes no credential.
func TestRegister(t *testing.T) {
	s, err := Start(Addrs{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	vs := newVerifiers(t, s)
	awsV, gcpV, pmV := vs[finding.PartnerAWS], vs[finding.PartnerGCP], vs[finding.PartnerPostman]

	awsID, awsSecret := stsdouble.NewKeyPair()
	gcpKey := googledouble.NewAPIKey()
	pmKey := postmandouble.NewAPIKey()
	findings := []struct {
		v  verify.Verifier
		tt finding.TokenType
		f  finding.Finding
	}{
		{awsV, finding.TokenAWSAccessKey, finding.Finding{ID: "aws", RuleID: "AWS", Token: finding.Secret(awsID),
			Context: map[string]finding.Secret{finding.ContextAWSSecretAccessKey: finding.Secret(awsSecret)}}},
		{gcpV, finding.TokenGCPAPIKey, finding.Finding{ID: "gcp", RuleID: "GCP API key", Token: finding.Secret(gcpKey)}},
		{pmV, finding.TokenPostmanAPIKey, finding.Finding{ID: "postman", RuleID: "Postman API token", Token: finding.Secret(pmKey)}},
	}
	statuses := func() []finding.Status {
		var out []finding.Status
		for _, f := range findings {
			v, err := f.v.Verify(context.Background(), f.tt, f.f)
			if err != nil {
				t.Fatalf("%s: %v", f.f.ID, err)
			}
			out = append(out, v.Status())
		}
		return out
	}

	bad := []struct {
		name string
		c    Credentials
	}{
		{"aws key without secret", Credentials{AWS: []AWSKey{{AccessKeyID: awsID}}, PostmanAPIKeys: []string{pmKey}}},
		{"empty gcp key", Credentials{GCPAPIKeys: []string{gcpKey, ""}}},
		{"empty postman key", Credentials{PostmanAPIKeys: []string{pmKey, ""}}},
		{"too many", Credentials{PostmanAPIKeys: make([]string, MaxCredentials+1)}},
	}
	for _, tt := range bad {
		err := s.Register(tt.c)
		if err == nil {
			t.Fatalf("%s: Register succeeded", tt.name)
		}
		for _, secret := range []string{awsID, awsSecret, gcpKey, pmKey} {
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("%s: error quotes a credential", tt.name)
			}
		}
	}
	for i, st := range statuses() {
		if st != finding.StatusInactive {
			t.Errorf("%s after failed registrations = %s, want inactive", findings[i].f.ID, st)
		}
	}

	if err := s.Register(Credentials{AWS: []AWSKey{{awsID, awsSecret}}, GCPAPIKeys: []string{gcpKey}, PostmanAPIKeys: []string{pmKey}}); err != nil {
		t.Fatal(err)
	}
	for i, st := range statuses() {
		if st != finding.StatusActive {
			t.Errorf("%s after Register = %s, want active", findings[i].f.ID, st)
		}
	}
}
