package sandbox

import (
	"errors"
	"strings"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/githubdouble"
)

// Sample GitHub tokens used by events/: fake, well-formed (an EXAMPLE
// marker and zeros), and live only in the GitHub double. The inactive
// ones are registered and revoked; the refresh token is never sent.
const (
	SampleGithubPAT                       = "ghp_EXAMPLEactivePAT00000000000000000000"
	SampleGithubInactivePAT               = "ghp_EXAMPLErevokedPAT0000000000000000000"
	SampleGithubFineGrainedPAT            = "github_pat_EXAMPLEactiveFine00000_EXAMPLEactive0000000000000000000000000000000000000000000000"
	SampleGithubInactiveFineGrainedPAT    = "github_pat_EXAMPLErevokedFine0000_EXAMPLErevoked000000000000000000000000000000000000000000000"
	SampleGithubOAuthToken                = "gho_EXAMPLEactiveOAuth000000000000000000"
	SampleGithubInactiveOAuthToken        = "gho_EXAMPLErevokedOAuth00000000000000000"
	SampleGithubUserToken                 = "ghu_EXAMPLEactiveUserToServer00000000000"
	SampleGithubInactiveUserToken         = "ghu_EXAMPLErevokedUserToServer0000000000"
	SampleGithubInstallationToken         = "ghs_EXAMPLEactiveInstallation00000000000"
	SampleGithubInactiveInstallationToken = "ghs_EXAMPLErevokedInstallation0000000000"
	SampleGithubRefreshToken              = "ghr_EXAMPLErefresh00000000000000000000000000000000000000000000000000000000000000"
	SampleGithubLogin                     = "sample-octocat"
	SampleGithubUserID                    = 583231
)

// githubKit starts the GitHub double; a fresh live credential is a classic
// personal access token.
var githubKit = Kit{
	Start: func(a []string) (Double, error) {
		s, err := githubdouble.Start(a[0])
		return &githubDouble{s}, err
	},
	NewLive: func() Credential {
		return Credential{RuleID: "Github Personal Access Token", Token: githubdouble.NewToken("ghp_")}
	},
}

type githubDouble struct{ *githubdouble.Server }

func (d *githubDouble) URLs() []string { return []string{d.URL} }
func (d *githubDouble) Controls() []*partnertest.Controls {
	return []*partnertest.Controls{d.Server.Controls}
}

// RegisterSamples makes the active samples live with what GitHub sends for
// each kind: scopes for classic and OAuth tokens, an expiry for
// fine-grained and installation tokens.
func (d *githubDouble) RegisterSamples() error {
	user := githubdouble.Token{Login: SampleGithubLogin, UserID: SampleGithubUserID}
	classic := user
	classic.Scopes = []string{"repo", "read:org"}
	expiring := user
	expiring.Expires = time.Now().Add(30 * 24 * time.Hour).Truncate(time.Second)
	app := githubdouble.Token{Login: "sample-app[bot]", UserID: 41898282, Expires: time.Now().Add(time.Hour).Truncate(time.Second)}
	for tok, t := range map[string]githubdouble.Token{
		SampleGithubPAT: classic, SampleGithubOAuthToken: classic, SampleGithubUserToken: user,
		SampleGithubFineGrainedPAT: expiring, SampleGithubInstallationToken: app,
	} {
		d.AddToken(tok, t)
	}
	for _, tok := range []string{SampleGithubInactivePAT, SampleGithubInactiveFineGrainedPAT, SampleGithubInactiveOAuthToken,
		SampleGithubInactiveUserToken, SampleGithubInactiveInstallationToken} {
		d.AddToken(tok, user)
		d.RevokeToken(tok)
	}
	return nil
}

func (d *githubDouble) Check(c Credential) error {
	for _, p := range []string{"ghp_", "github_pat_", "gho_", "ghu_", "ghs_"} {
		if strings.HasPrefix(c.Token, p) {
			return nil
		}
	}
	return errors.New("token must start with ghp_, github_pat_, gho_, ghu_ or ghs_")
}

func (d *githubDouble) Register(c Credential) {
	d.AddToken(c.Token, githubdouble.Token{Login: SampleGithubLogin, UserID: SampleGithubUserID, Scopes: []string{"repo"}})
}
