package githubpartner

import (
	"strings"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	partnerdef "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

// Name is GitHub's partner name (contract §7): queue, function, metric
// dimension and flag key partners.github.
const Name finding.Partner = "github"

// The token types GitHub tokens are verified as (contract §7), one per
// prefix whatever rule found the token.
const (
	TokenPAT             finding.TokenType = "github_pat"
	TokenFineGrainedPAT  finding.TokenType = "github_fine_grained_pat"
	TokenOAuth           finding.TokenType = "github_oauth_token"
	TokenUser            finding.TokenType = "github_user_token"
	TokenAppInstallation finding.TokenType = "github_app_installation_token"
	TokenRefresh         finding.TokenType = "github_refresh_token"
)

// expectedForm names every GitHub token form, for a token of none.
const expectedForm = "a GitHub token (ghp_ + 36, github_pat_ + 82, or gho_/ghu_/ghs_/ghr_ + 36 to 251 of [A-Za-z0-9_])"

// Definition is GitHub in the partner registry.
var Definition = partnerdef.Definition{
	Name:  Name,
	Title: "GitHub",
	Rules: []partnerdef.Rule{
		{ID: "Github Personal Access Token", Scanner: partnerdef.GitLab, TokenType: TokenPAT},
		{ID: "GithubFineGrainedPersonalAccessToken", Scanner: partnerdef.GitLab, TokenType: TokenFineGrainedPAT},
		{ID: "Github OAuth Access Token", Scanner: partnerdef.GitLab, TokenType: TokenOAuth},
		{ID: "GithubAppInstallationToken", Scanner: partnerdef.GitLab, TokenType: TokenAppInstallation},
		{ID: "Github App Token", Scanner: partnerdef.GitLab, TokenType: TokenAppInstallation},
		{ID: "Github Refresh Token", Scanner: partnerdef.GitLab, TokenType: TokenRefresh},
		{ID: "github-pat", Scanner: partnerdef.Gitleaks, TokenType: TokenPAT},
		{ID: "github-fine-grained-pat", Scanner: partnerdef.Gitleaks, TokenType: TokenFineGrainedPAT},
		{ID: "github-oauth", Scanner: partnerdef.Gitleaks, TokenType: TokenOAuth},
		{ID: "github-app-token", Scanner: partnerdef.Gitleaks, TokenType: TokenAppInstallation},
		{ID: "github-refresh-token", Scanner: partnerdef.Gitleaks, TokenType: TokenRefresh},
	},
	TokenTypes: []finding.TokenType{TokenPAT, TokenFineGrainedPAT, TokenOAuth, TokenUser, TokenAppInstallation, TokenRefresh},
	Check:      check,
	Endpoints:  []partnerdef.Endpoint{{Env: EnvEndpoint, Default: DefaultEndpoint}},
	// Each live token has its own 5,000 requests an hour, but a revoked or
	// unknown token is no user: GitHub charges it to the unauthenticated
	// budget of the calling IP, 60 requests an hour (its 401s carry
	// x-ratelimit-limit: 60), and most leaked tokens we check are dead.
	// All instances leave through one egress IP, so 60/h is the limit that
	// binds us. GitHub counts in a fixed hour, so one instance's worst hour
	// is its burst plus an hour of refill, 4 + 0.0072 × 3600 ≈ 30, and two
	// instances (MaximumConcurrency's minimum) send at most 60. The burst
	// of 4 lets a scan's few GitHub findings pass without a hand-back.
	// Going over only delays verdicts (GitHub then answers 403 with
	// x-ratelimit-remaining: 0, a rate_limited fault), never falsifies one.
	Rate: partnerdef.Rate{PerSecond: 0.0072, Burst: 4, Limit: 60.0 / 3600,
		Source: "https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api#primary-rate-limit-for-unauthenticated-users"},
	New: func(o partnerhttp.Options) (verify.Verifier, error) { return New(o) },
	Details: map[finding.TokenType][]string{
		TokenPAT:             {DetailLogin, DetailScopes, DetailExpiresAt},
		TokenFineGrainedPAT:  {DetailLogin, DetailScopes, DetailExpiresAt},
		TokenOAuth:           {DetailLogin, DetailScopes, DetailExpiresAt},
		TokenUser:            {DetailLogin, DetailScopes, DetailExpiresAt},
		TokenAppInstallation: {DetailScopes, DetailExpiresAt},
		TokenRefresh:         {},
	},
}

// The formats of contract §7 and GitHub's token announcement (github.blog
// changelog 2021-03-31): [A-Za-z0-9_], at most 255 characters. The last
// six characters are a CRC32 checksum, deliberately not checked offline:
// its alphabet order is only reconstructed by third parties (PARTNERS.md).
var (
	classicPAT     = partnerdef.NewPattern(`^ghp_[A-Za-z0-9]{36}$`)
	fineGrainedPAT = partnerdef.NewPattern(`^github_pat_[A-Za-z0-9_]{82}$`)
	serverToken    = partnerdef.NewPattern(`^gh[osur]_[A-Za-z0-9_]{36,251}$`)
)

// serverPrefixes type the tokens GitHub issues to OAuth apps and GitHub
// Apps, which share one format.
var serverPrefixes = []struct {
	prefix string
	tt     finding.TokenType
}{{"gho_", TokenOAuth}, {"ghu_", TokenUser}, {"ghs_", TokenAppInstallation}}

// check types a token by its prefix, whatever the rule that found it, and
// refuses refresh tokens without a call: using one needs the app's client
// secret, and exchanging it would spend (rotate) it.
func check(rule finding.TokenType, f finding.Finding) (finding.TokenType, finding.Reason, string) {
	tok := f.Token.Reveal()
	switch {
	case strings.HasPrefix(tok, "github_pat_"):
		return partnerdef.MatchFormat(TokenFineGrainedPAT, fineGrainedPAT, tok, "a GitHub fine-grained personal access token (github_pat_ + 82 of [A-Za-z0-9_])")
	case strings.HasPrefix(tok, "ghp_"):
		return partnerdef.MatchFormat(TokenPAT, classicPAT, tok, "a GitHub personal access token (ghp_ + 36 letters and digits)")
	case strings.HasPrefix(tok, "ghr_"):
		return partnerdef.Unsupported(TokenRefresh, "GitHub refresh tokens (ghr_) are not verified: no call can check one without the app's client secret and spending it")
	}
	for _, p := range serverPrefixes {
		if strings.HasPrefix(tok, p.prefix) {
			return partnerdef.MatchFormat(p.tt, serverToken, tok, "a GitHub "+p.prefix+" token ("+p.prefix+" + 36 to 251 of [A-Za-z0-9_])")
		}
	}
	return partnerdef.Malformed(rule, "token is not "+expectedForm)
}
