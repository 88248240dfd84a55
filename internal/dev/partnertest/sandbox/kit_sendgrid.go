package sandbox

import (
	"errors"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/sendgriddouble"
)

// Sample SendGrid keys used by events/. They are fake, in SendGrid's form
// (SG.<22>.<43>), and live only in the sandbox's double: the active one is
// registered with a restricted key's scopes, the inactive one is revoked.
const (
	SampleSendgridKey         = "SG.EXAMPLE-active-key-000.EXAMPLE-active-secret-000000000000000000000"
	SampleSendgridInactiveKey = "SG.EXAMPLE-revoked-key-00.EXAMPLE-revoked-secret-00000000000000000000"
)

// sendgridKit runs the SendGrid double on PARTNER_ENDPOINT_SENDGRID.
var sendgridKit = Kit{
	Start: func(a []string) (Double, error) {
		s, err := sendgriddouble.Start(a[0])
		return &sendgridDouble{s}, err
	},
	NewLive: func() Credential { return Credential{RuleID: "Sendgrid API token", Token: sendgriddouble.NewToken()} },
}

type sendgridDouble struct{ *sendgriddouble.Server }

func (d *sendgridDouble) URLs() []string { return []string{d.URL} }
func (d *sendgridDouble) Controls() []*partnertest.Controls {
	return []*partnertest.Controls{d.Server.Controls}
}
func (d *sendgridDouble) RegisterSamples() error {
	d.AddToken(SampleSendgridKey, sendgriddouble.RestrictedScopes...)
	d.RevokeToken(SampleSendgridInactiveKey)
	return nil
}
func (d *sendgridDouble) Check(c Credential) error {
	if c.Token == "" {
		return errors.New("empty API key")
	}
	return nil
}
func (d *sendgridDouble) Register(c Credential) { d.AddToken(c.Token) }
