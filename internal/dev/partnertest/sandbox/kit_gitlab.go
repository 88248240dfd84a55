package sandbox

import (
	"errors"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/gitlabdouble"
)

// Sample GitLab tokens used by events/. They are fake, in GitLab's legacy
// form (glpat- + 20), and live only in the sandbox's double: the active one
// is registered with read_api and an expiry date, the inactive one is revoked.
const (
	SampleGitlabToken         = "glpat-EXAMPLEactive0000000"
	SampleGitlabInactiveToken = "glpat-EXAMPLErevoked000000"
	// SampleGitlabExpiresAt is the active sample's expires_at.
	SampleGitlabExpiresAt = "2030-12-31"
)

// gitlabKit runs the GitLab double on PARTNER_ENDPOINT_GITLAB.
var gitlabKit = Kit{
	Start: func(a []string) (Double, error) {
		s, err := gitlabdouble.Start(a[0])
		return &gitlabDouble{s}, err
	},
	NewLive: func() Credential {
		return Credential{RuleID: "gitlab_personal_access_token", Token: gitlabdouble.NewToken()}
	},
}

type gitlabDouble struct{ *gitlabdouble.Server }

func (d *gitlabDouble) URLs() []string { return []string{d.URL} }
func (d *gitlabDouble) Controls() []*partnertest.Controls {
	return []*partnertest.Controls{d.Server.Controls}
}
func (d *gitlabDouble) RegisterSamples() error {
	d.SetToken(SampleGitlabToken, gitlabdouble.Active, []string{"read_api"}, SampleGitlabExpiresAt)
	d.RevokeToken(SampleGitlabInactiveToken)
	return nil
}
func (d *gitlabDouble) Check(c Credential) error {
	if c.Token == "" {
		return errors.New("empty token")
	}
	return nil
}
func (d *gitlabDouble) Register(c Credential) { d.AddToken(c.Token) }
