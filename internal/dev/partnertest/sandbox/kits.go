package sandbox

import (
	"errors"
	"fmt"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/googledouble"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/postmandouble"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/stsdouble"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	githubpartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/github"
	herokupartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/heroku"
	openaipartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/openai"
)

// Kit is one partner's double as the sandbox runs it. Adding a partner
// adds its kit here (docs/adding-a-partner.md).
type Kit struct {
	// Start serves the double on addrs, one per endpoint of the partner's
	// Definition in its order ("" picks a free loopback port).
	Start func(addrs []string) (Double, error)
	// NewLive returns a fresh, well-formed credential of the partner's main
	// token type, for the benchmarks and POST /credentials.
	NewLive func() Credential
}

// Double is a running partner double.
type Double interface {
	// URLs are the base URLs, in the order of the partner's Definition.Endpoints.
	URLs() []string
	// Controls are the fault, latency and rate-limit knobs of each server.
	Controls() []*partnertest.Controls
	// RegisterSamples makes the double's active samples of events/ live.
	RegisterSamples() error
	// Check says what is wrong with a credential to register, without
	// quoting it; Register makes a checked credential live.
	Check(c Credential) error
	Register(c Credential)
	// Close stops the double.
	Close()
}

// Credential is one credential to make live: the rule id it is found under,
// the token and its context values.
type Credential struct {
	RuleID  string            `json:"rule_id"`
	Token   string            `json:"token"`
	Context map[string]string `json:"context,omitempty"`
}

// Finding is the credential as a finding with id.
func (c Credential) Finding(id string) finding.Finding {
	f := finding.Finding{ID: id, RuleID: c.RuleID, Token: finding.Secret(c.Token)}
	if len(c.Context) > 0 {
		f.Context = map[string]finding.Secret{}
		for k, v := range c.Context {
			f.Context[k] = finding.Secret(v)
		}
	}
	return f
}

// kits has one kit per partner of the registry.
var kits = map[finding.Partner]Kit{
	finding.PartnerAWS: {
		Start: func(a []string) (Double, error) {
			s, err := stsdouble.Start(a[0])
			return &stsDouble{s}, err
		},
		NewLive: func() Credential {
			id, secret := stsdouble.NewKeyPair()
			return Credential{RuleID: "AWS", Token: id, Context: map[string]string{finding.ContextAWSSecretAccessKey: secret}}
		},
	},
	finding.PartnerGCP: {
		Start: func(a []string) (Double, error) {
			d, err := googledouble.Start(a[0], a[1])
			return &googleDouble{d}, err
		},
		NewLive: func() Credential { return Credential{RuleID: "GCP API key", Token: googledouble.NewAPIKey()} },
	},
	finding.PartnerPostman: {
		Start: func(a []string) (Double, error) {
			s, err := postmandouble.Start(a[0])
			return &postmanDouble{s}, err
		},
		NewLive: func() Credential { return Credential{RuleID: "Postman API token", Token: postmandouble.NewAPIKey()} },
	},
	herokupartner.Name: herokuKit,
	openaipartner.Name: openaiKit,
	"stripe":           stripeKit,
	githubpartner.Name: githubKit,
	anthropicPartner:   anthropicKit,
	"sendgrid":         sendgridKit,
	"npm":              npmKit,
	"slack":            slackKit,
	"gitlab":           gitlabKit,
}

type stsDouble struct{ *stsdouble.Server }

func (d *stsDouble) URLs() []string { return []string{d.URL} }
func (d *stsDouble) Controls() []*partnertest.Controls {
	return []*partnertest.Controls{d.Server.Controls}
}
func (d *stsDouble) RegisterSamples() error {
	d.AddKey(SampleAWSKeyID, SampleAWSSecret, SampleAWSAccount)
	d.AddKey(SampleAWSCanaryKeyID, SampleAWSSecret, "")
	return nil
}
func (d *stsDouble) Check(c Credential) error {
	if c.Token == "" || c.Context[finding.ContextAWSSecretAccessKey] == "" {
		return errors.New("access key id and context.aws_secret_access_key are required")
	}
	return nil
}
func (d *stsDouble) Register(c Credential) {
	d.AddKey(c.Token, c.Context[finding.ContextAWSSecretAccessKey], SampleAWSAccount)
}

type googleDouble struct{ *googledouble.Double }

func (d *googleDouble) URLs() []string { return []string{d.Discovery.URL, d.OAuth.URL} }
func (d *googleDouble) Controls() []*partnertest.Controls {
	return []*partnertest.Controls{d.Discovery.Controls, d.OAuth.Controls}
}
func (d *googleDouble) RegisterSamples() error {
	d.RegisterAPIKey(SampleGCPAPIKey, googledouble.APIKeyValid)
	d.RegisterOAuthClient(SampleGCPClientID, SampleGCPClientSecret, googledouble.ClientActive)
	d.RegisterAccessToken(SampleGCPAccessToken, googledouble.TokenInfo{
		Azp: SampleGCPClientID, Aud: SampleGCPClientID, Scope: "https://www.googleapis.com/auth/userinfo.email",
		Expiry: time.Now().Add(24 * time.Hour),
	})
	pub, err := samplePublicKey()
	if err != nil {
		return err
	}
	d.RegisterServiceAccountKey(SampleServiceAccountEmail, SampleServiceAccountKeyID, pub)
	return nil
}
func (d *googleDouble) Check(c Credential) error {
	if c.RuleID != "GCP API key" && c.RuleID != "gcp-api-key" {
		return fmt.Errorf("only API keys can be registered, not rule %q", c.RuleID)
	}
	if c.Token == "" {
		return errors.New("empty API key")
	}
	return nil
}
func (d *googleDouble) Register(c Credential) { d.RegisterAPIKey(c.Token, googledouble.APIKeyValid) }

type postmanDouble struct{ *postmandouble.Server }

func (d *postmanDouble) URLs() []string { return []string{d.URL} }
func (d *postmanDouble) Controls() []*partnertest.Controls {
	return []*partnertest.Controls{d.Server.Controls}
}
func (d *postmanDouble) RegisterSamples() error {
	d.AddKey(SamplePostmanKey, SamplePostmanUserID)
	return nil
}
func (d *postmanDouble) Check(c Credential) error {
	if c.Token == "" {
		return errors.New("empty API key")
	}
	return nil
}
func (d *postmanDouble) Register(c Credential) { d.AddKey(c.Token, SamplePostmanUserID) }
