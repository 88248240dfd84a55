package sandbox

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	awspartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/aws"
	gcppartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/gcp"
	postmanpartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/postman"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

// TestEventsAgreeWithSamples runs every finding of events/ through the real
// verifiers against the sandbox: findings named "...inactive..." must come
// back inactive and "...active..." active, so the sample events and the
// sandbox's registered credentials cannot drift apart.
func TestEventsAgreeWithSamples(t *testing.T) {
	s, err := Start(Addrs{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.RegisterSamples(); err != nil {
		t.Fatal(err)
	}
	awsV, gcpV, pmV := newVerifiers(t, s)
	verifiers := map[finding.Partner]verify.Verifier{finding.PartnerAWS: awsV, finding.PartnerGCP: gcpV, finding.PartnerPostman: pmV}

	files, err := filepath.Glob(filepath.Join("..", "..", "..", "..", "events", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no events found: %v", err)
	}
	checked := map[finding.TokenType]int{}
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var ev struct {
			Records []struct {
				Body string `json:"body"`
			} `json:"Records"`
		}
		if err := json.Unmarshal(raw, &ev); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		for _, rec := range ev.Records {
			b, err := finding.Parse([]byte(rec.Body))
			if err != nil {
				continue // the unparseable sample
			}
			for _, f := range b.Findings {
				want := finding.StatusActive
				switch {
				case strings.Contains(f.ID, "inactive"):
					want = finding.StatusInactive
				case !strings.Contains(f.ID, "active"):
					continue // samples of other outcomes (malformed, unsupported, ...)
				}
				rt, ok := finding.RouteFor(f.RuleID)
				if !ok {
					t.Fatalf("%s: %s: no route", file, f.ID)
				}
				v, err := verifiers[rt.Partner].Verify(context.Background(), rt.TokenType, f)
				if err != nil {
					t.Errorf("%s: %s: %v", filepath.Base(file), f.ID, err)
					continue
				}
				if v.Status() != want {
					t.Errorf("%s: %s = %s (%s), want %s", filepath.Base(file), f.ID, v.Status(), v.Reason, want)
				}
				checked[rt.TokenType]++
			}
		}
	}
	for _, tt := range []finding.TokenType{finding.TokenAWSAccessKey, finding.TokenGCPAPIKey, finding.TokenGCPServiceAccountKey,
		finding.TokenGCPOAuthClientSecret, finding.TokenGCPAccessToken, finding.TokenPostmanAPIKey} {
		if checked[tt] < 2 {
			t.Errorf("events/ has %d active/inactive samples of %s, want both", checked[tt], tt)
		}
	}
}

// newVerifiers returns the real verifiers of the three partners, pointed at s.
func newVerifiers(t *testing.T, s *Sandbox) (awsV, gcpV, pmV verify.Verifier) {
	t.Helper()
	env := s.Env()
	must := func(raw string) *url.URL {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	a, err := awspartner.New(partnerhttp.Options{Endpoints: []*url.URL{must(env["PARTNER_ENDPOINT_AWS_STS"])}})
	if err != nil {
		t.Fatal(err)
	}
	g, err := gcppartner.New(partnerhttp.Options{Endpoints: []*url.URL{must(env["PARTNER_ENDPOINT_GCP_DISCOVERY"]), must(env["PARTNER_ENDPOINT_GCP_OAUTH"])}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := postmanpartner.New(partnerhttp.Options{Endpoints: []*url.URL{must(env["PARTNER_ENDPOINT_POSTMAN"])}})
	if err != nil {
		t.Fatal(err)
	}
	return a, g, p
}
