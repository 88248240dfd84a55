package sandbox

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/registry"
)

// TestLiveDetailsAreDeclared: a fresh live credential of every partner,
// and every sample of events/, verified against the sandbox: an active
// result carries only the details keys its partner declares for its token
// type (partner.Definition.Details), with what is known without a call;
// no details value, active or not, looks like a person's e-mail address
// or holds the credential.
func TestLiveDetailsAreDeclared(t *testing.T) {
	s, err := Start(Addrs{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.RegisterSamples(); err != nil {
		t.Fatal(err)
	}
	verifiers := newVerifiers(t, s)
	var fs []finding.Finding
	for _, d := range registry.All() {
		live, creds, err := LiveFindings(d.Name, 1, 1)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Register(creds); err != nil {
			t.Fatal(err)
		}
		live[0].ID = string(d.Name) + "-fresh-live"
		fs = append(fs, live...)
	}
	fs = append(fs, eventFindings(t)...)
	active := map[finding.Partner]int{}
	for _, f := range fs {
		rt, reason, _ := registry.Check(f)
		if rt.Partner == "" {
			continue
		}
		details := registry.Known(rt, f)
		if reason == "" {
			v, err := verifiers[rt.Partner].Verify(context.Background(), rt.TokenType, f)
			if err != nil {
				t.Errorf("%s: %v", f.ID, err)
				continue
			}
			for k, val := range v.Details {
				if details == nil {
					details = finding.Details{}
				}
				details[k] = val
			}
			if v.Status() == finding.StatusActive {
				active[rt.Partner]++
				def, _ := registry.Lookup(string(rt.Partner))
				declared, ok := def.Details[rt.TokenType]
				for k := range details {
					if !ok || !slices.Contains(declared, k) {
						t.Errorf("%s: %s result carries details.%s, which %s does not declare for %s: add it to Details[%q] in shared/partner/%s",
							f.ID, v.Reason, k, rt.Partner, rt.TokenType, rt.TokenType, rt.Partner)
					}
				}
			}
		}
		if err := safeDetails(details, f); err != nil {
			t.Errorf("%s: %v", f.ID, err)
		}
	}
	for _, d := range registry.All() {
		if active[d.Name] == 0 {
			t.Errorf("no active result of %s was checked", d.Name)
		}
	}
}

// personEmail is an e-mail address; a service account's
// (…@….iam.gserviceaccount.com) is the one kind details may hold.
var (
	email          = regexp.MustCompile(`(?i)[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}`)
	serviceAccount = regexp.MustCompile(`(?i)^[a-z0-9._%+-]+@[a-z0-9.-]+\.iam\.gserviceaccount\.com$`)
)

// safeDetails says which details value looks like a person's e-mail or
// holds the finding's token or a context value, without quoting either.
func safeDetails(d finding.Details, f finding.Finding) error {
	secrets := []string{f.Token.Reveal()}
	for _, v := range f.Context {
		secrets = append(secrets, v.Reveal())
	}
	for k, v := range d {
		var values []string
		switch x := v.(type) {
		case string:
			values = []string{x}
		case []string:
			values = x
		case bool, int, int64, float64:
		default:
			return fmt.Errorf("details.%s is a %T, not a string, a list of strings or a scalar", k, v)
		}
		for _, s := range values {
			if email.MatchString(s) && !serviceAccount.MatchString(s) {
				return fmt.Errorf("details.%s looks like a person's e-mail address", k)
			}
			for _, sec := range secrets {
				if len(sec) >= 8 && strings.Contains(s, sec) {
					return fmt.Errorf("details.%s holds credential material", k)
				}
			}
		}
	}
	return nil
}

func TestSafeDetails(t *testing.T) {
	f := finding.Finding{Token: "ghp_secretsecretsecret", Context: map[string]finding.Secret{"k": "contextsecret"}}
	for _, tc := range []struct {
		d    finding.Details
		want string
	}{
		{finding.Details{"gcp_client_email": "sa@p.iam.gserviceaccount.com", "scopes": []string{"repo"}, "canary": true}, ""},
		{finding.Details{"owner": "Jane.Doe@example.com"}, "e-mail"},
		{finding.Details{"scopes": []string{"repo", "mail me at a@b.io"}}, "e-mail"},
		{finding.Details{"echo": "x ghp_secretsecretsecret"}, "credential"},
		{finding.Details{"echo": "contextsecret"}, "credential"},
		{finding.Details{"odd": map[string]string{}}, "not a string"},
	} {
		err := safeDetails(tc.d, f)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("safeDetails(%v) = %v, want %q", tc.d, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") && !strings.Contains(err.Error(), "credential") {
			t.Errorf("the error quotes a secret: %v", err)
		}
	}
}
