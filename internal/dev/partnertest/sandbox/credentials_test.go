package sandbox

import (
	"context"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/registry"
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
		{"aws key without secret", Credentials{"aws": {{RuleID: "AWS", Token: awsID}}, "postman": {{Token: pmKey}}}},
		{"empty gcp key", Credentials{"gcp": {{RuleID: "GCP API key", Token: gcpKey}, {RuleID: "GCP API key"}}}},
		{"empty postman key", Credentials{"postman": {{Token: pmKey}, {}}}},
		{"unknown partner", Credentials{"nosuch": {{Token: pmKey}}}},
		{"too many", Credentials{"postman": make([]Credential, MaxCredentials+1)}},
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

	if err := s.Register(Credentials{
		"aws":     {{RuleID: "AWS", Token: awsID, Context: map[string]string{finding.ContextAWSSecretAccessKey: awsSecret}}},
		"gcp":     {{RuleID: "GCP API key", Token: gcpKey}},
		"postman": {{RuleID: "Postman API token", Token: pmKey}},
	}); err != nil {
		t.Fatal(err)
	}
	for i, st := range statuses() {
		if st != finding.StatusActive {
			t.Errorf("%s after Register = %s, want active", findings[i].f.ID, st)
		}
	}
}

// TestLiveFindingsOfEveryPartner: every partner of the registry has a kit
// whose fresh credentials pass the partner's format check, are inactive
// until registered and active after.
func TestLiveFindingsOfEveryPartner(t *testing.T) {
	s, err := Start(Addrs{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	vs := newVerifiers(t, s)
	for _, def := range registry.All() {
		fs, creds, err := LiveFindings(def.Name, 2, 1)
		if err != nil {
			t.Fatalf("%s: %v", def.Name, err)
		}
		status := func() []finding.Status {
			var out []finding.Status
			for _, f := range fs {
				rt, reason, msg := registry.Check(f)
				if reason != "" || rt.Partner != def.Name {
					t.Fatalf("%s: a live finding fails the gate: %s %s (%s)", def.Name, reason, msg, rt.Partner)
				}
				v, err := vs[def.Name].Verify(context.Background(), rt.TokenType, f)
				if err != nil {
					t.Fatalf("%s: %v", def.Name, err)
				}
				out = append(out, v.Status())
			}
			return out
		}
		for _, st := range status() {
			if st != finding.StatusInactive {
				t.Errorf("%s: unregistered credential is %s", def.Name, st)
			}
		}
		if err := s.Register(creds); err != nil {
			t.Fatalf("%s: %v", def.Name, err)
		}
		for _, st := range status() {
			if st != finding.StatusActive {
				t.Errorf("%s: registered credential is %s", def.Name, st)
			}
		}
	}
}
