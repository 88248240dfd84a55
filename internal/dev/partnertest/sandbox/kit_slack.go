package sandbox

import (
	"errors"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/slackdouble"
)

// Sample Slack tokens used by events/. They are fake, in the shape of
// Slack's public samples, and live only in the sandbox's double: the active
// ones are registered live, the inactive ones revoked.
const (
	SampleSlackBotToken          = "xoxb-000000000000-0000000000000-EXAMPLEactiveBot00000000"
	SampleSlackInactiveBotToken  = "xoxb-000000000000-0000000000001-EXAMPLErevokedBot0000000"
	SampleSlackUserToken         = "xoxp-000000000000-000000000000-0000000000000-00000000000000000000000000active"
	SampleSlackInactiveUserToken = "xoxp-000000000000-000000000000-0000000000001-0000000000000000000000000revoked"
)

// The ids the double reports for the active samples.
var (
	sampleSlackBot  = slackdouble.Identity{TeamID: "T0EXAMPLE00", UserID: "U0EXAMPLEBOT", BotID: "B0EXAMPLE00"}
	sampleSlackUser = slackdouble.Identity{TeamID: "T0EXAMPLE00", UserID: "U0EXAMPLEUSR"}
)

// slackKit runs the Slack double on PARTNER_ENDPOINT_SLACK.
var slackKit = Kit{
	Start: func(a []string) (Double, error) {
		s, err := slackdouble.Start(a[0])
		return &slackDouble{s}, err
	},
	NewLive: func() Credential { return Credential{RuleID: "Slack token", Token: slackdouble.NewToken()} },
}

type slackDouble struct{ *slackdouble.Server }

func (d *slackDouble) URLs() []string { return []string{d.URL} }
func (d *slackDouble) Controls() []*partnertest.Controls {
	return []*partnertest.Controls{d.Server.Controls}
}
func (d *slackDouble) RegisterSamples() error {
	d.AddTokenAs(SampleSlackBotToken, sampleSlackBot)
	d.AddTokenAs(SampleSlackUserToken, sampleSlackUser)
	d.RevokeToken(SampleSlackInactiveBotToken)
	d.RevokeToken(SampleSlackInactiveUserToken)
	return nil
}
func (d *slackDouble) Check(c Credential) error {
	if c.Token == "" {
		return errors.New("empty token")
	}
	return nil
}
func (d *slackDouble) Register(c Credential) { d.AddToken(c.Token) }
