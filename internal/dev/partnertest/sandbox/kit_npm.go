package sandbox

import (
	"errors"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/npmdouble"
)

// Sample npm tokens of events/npm-access-token.json and
// events/ingress-scan.json. They are fake, in npm's form (npm_ + 36
// alphanumerics), and live only in the sandbox's double: the active one is
// registered, the inactive one is revoked (npm answers 401 as for any
// unknown token).
const (
	SampleNpmToken         = "npm_EXAMPLEactiveSampleToken000000000001"
	SampleNpmInactiveToken = "npm_EXAMPLErevokedSampleToken00000000002"
	SampleNpmUsername      = "sample-npm-user"
)

// npmKit runs the npm registry double on PARTNER_ENDPOINT_NPM.
var npmKit = Kit{
	Start: func(a []string) (Double, error) {
		s, err := npmdouble.Start(a[0])
		return &npmDouble{s}, err
	},
	NewLive: func() Credential { return Credential{RuleID: "npm access token", Token: npmdouble.NewToken()} },
}

type npmDouble struct{ *npmdouble.Server }

func (d *npmDouble) URLs() []string { return []string{d.URL} }
func (d *npmDouble) Controls() []*partnertest.Controls {
	return []*partnertest.Controls{d.Server.Controls}
}
func (d *npmDouble) RegisterSamples() error {
	d.AddToken(SampleNpmToken, SampleNpmUsername)
	d.RevokeToken(SampleNpmInactiveToken)
	return nil
}
func (d *npmDouble) Check(c Credential) error {
	if c.Token == "" {
		return errors.New("empty access token")
	}
	return nil
}
func (d *npmDouble) Register(c Credential) { d.AddToken(c.Token, SampleNpmUsername) }
