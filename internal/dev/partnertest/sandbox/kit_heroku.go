package sandbox

import (
	"errors"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/herokudouble"
)

// Heroku samples of events/heroku-api-key.json and events/ingress-scan.json.
// They are fake and live only in the Heroku double: the active ones are
// registered, the inactive ones are not (Heroku answers 401 unauthorized
// for a revoked token as for an unknown one).
const (
	SampleHerokuToken          = "HRKU-AA0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN_-sample"
	SampleHerokuInactiveToken  = "HRKU-AAzyxwvutsrqponmlkjihgfedcbaZYXWVUTSRQPONMLKJIHGFED_-revoked"
	SampleHerokuLegacyKey      = "01234567-89ab-4cde-8f01-23456789abcd"
	SampleHerokuInactiveLegacy = "fedcba98-7654-4321-8fed-cba987654321"
	SampleHerokuAccountID      = "5a5e0000-0000-4000-8000-00000000beef"
)

// herokuKit starts the Heroku double on its one endpoint.
var herokuKit = Kit{
	Start: func(a []string) (Double, error) {
		s, err := herokudouble.Start(a[0])
		return &herokuDouble{s}, err
	},
	NewLive: func() Credential { return Credential{RuleID: "heroku-api-key-v2", Token: herokudouble.NewToken()} },
}

type herokuDouble struct{ *herokudouble.Server }

func (d *herokuDouble) URLs() []string { return []string{d.URL} }
func (d *herokuDouble) Controls() []*partnertest.Controls {
	return []*partnertest.Controls{d.Server.Controls}
}
func (d *herokuDouble) RegisterSamples() error {
	d.AddToken(SampleHerokuToken, SampleHerokuAccountID)
	d.AddToken(SampleHerokuLegacyKey, SampleHerokuAccountID)
	return nil
}
func (d *herokuDouble) Check(c Credential) error {
	if c.Token == "" {
		return errors.New("empty API key")
	}
	return nil
}
func (d *herokuDouble) Register(c Credential) { d.AddToken(c.Token, SampleHerokuAccountID) }
