package slackpartner

import (
	"strings"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	partnerdef "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

// Name is Slack's partner name (contract §7): queue, function, metric
// dimension and flag key partners.slack.
const Name finding.Partner = "slack"

// Slack's token types (contract §7; session tokens named here so that a
// result says what it was).
const (
	// TokenBot is a bot token, xoxb- or rotating xoxe.xoxb-.
	TokenBot finding.TokenType = "slack_bot_token"
	// TokenUser is a user token, xoxp- or rotating xoxe.xoxp-.
	TokenUser finding.TokenType = "slack_user_token"
	// TokenRefresh is a refresh token of token rotation, xoxe-.
	TokenRefresh finding.TokenType = "slack_refresh_token"
	// TokenSession is a browser session token, xoxc- (or the xoxd- value
	// of its d cookie).
	TokenSession finding.TokenType = "slack_session_token"
)

// Definition is Slack in the partner registry.
var Definition = partnerdef.Definition{
	Name:  Name,
	Title: "Slack",
	Rules: []partnerdef.Rule{
		// GitLab's one rule matches xoxb-, xoxp- and others alike; Check types by prefix.
		{ID: "Slack token", Scanner: partnerdef.GitLab, TokenType: TokenBot},
		{ID: "slack-bot-token", Scanner: partnerdef.Gitleaks, TokenType: TokenBot},
		{ID: "slack-user-token", Scanner: partnerdef.Gitleaks, TokenType: TokenUser},
	},
	TokenTypes: []finding.TokenType{TokenBot, TokenUser, TokenRefresh, TokenSession},
	Check:      check,
	Endpoints:  []partnerdef.Endpoint{{Env: EnvEndpoint, Default: DefaultEndpoint}},
	// auth.test is a "special" rate-limit tier method: Slack allows
	// "hundreds of requests per minute", counted per app and workspace (or
	// per user token), and publishes no per-IP figure. Each leaked token
	// spends its own workspace's budget, so that budget does not bound us
	// in general, but one scan often leaks several tokens of the same
	// workspace, and those calls share one budget. Limit is therefore our
	// own ceiling below the floor of "hundreds per minute": 1.5 requests
	// per second (90 a minute), which even a single workspace absorbs with
	// room for its owner's own auth.test calls. The template runs 2
	// instances at 0.75/s with burst 1.
	Rate: partnerdef.Rate{PerSecond: 0.75, Burst: 1, Limit: 1.5, Source: "https://api.slack.com/docs/rate-limits"},
	Details: map[finding.TokenType][]string{
		TokenBot:     {DetailTeamID, DetailUserID},
		TokenUser:    {DetailTeamID, DetailUserID},
		TokenRefresh: {},
		TokenSession: {},
	},
	New: func(o partnerhttp.Options) (verify.Verifier, error) { return New(o) },
}

// The prefixes Check types tokens by. The rotating forms come first: they
// start with the refresh prefix's "xoxe".
const (
	prefixRotatingBot  = "xoxe.xoxb-"
	prefixRotatingUser = "xoxe.xoxp-"
	prefixBot          = "xoxb-"
	prefixUser         = "xoxp-"
	prefixRefresh      = "xoxe-"
	prefixSessionC     = "xoxc-"
	prefixSessionD     = "xoxd-"
)

// tokenBody is what follows a bot or user prefix: a numeric segment (a
// team id, or the rotation version "1"), a dash, and at least 8 more
// letters, digits or dashes. Slack documents no format; every public
// sample and the gitleaks rules have this shape. A bare "xoxb-<digits>",
// which the GitLab rule's older pattern cuts a modern token down to, is a
// fragment: asking Slack about it would be answered invalid_auth and
// misreport a live token as inactive, so it is malformed, with no call.
var tokenBody = partnerdef.NewPattern(`^[0-9]{1,20}-[0-9A-Za-z-]{8,250}$`)

const (
	botForm  = "a Slack bot token (xoxb-<digits>-… or xoxe.xoxb-<digits>-…)"
	userForm = "a Slack user token (xoxp-<digits>-… or xoxe.xoxp-<digits>-…)"
)

// check types the token by its prefix, whatever the Slack rule: bot and
// user tokens are asked about; refresh tokens (they only buy access tokens
// with the app's client secret) and browser session tokens (auth.test
// needs the user's d cookie with them, which a finding never carries, so
// its invalid_auth would prove nothing) are unsupported, with no call;
// anything else is malformed.
func check(t finding.TokenType, f finding.Finding) (finding.TokenType, finding.Reason, string) {
	tok := f.Token.Reveal()
	switch {
	case strings.HasPrefix(tok, prefixRotatingBot):
		return partnerdef.MatchFormat(TokenBot, tokenBody, tok[len(prefixRotatingBot):], botForm)
	case strings.HasPrefix(tok, prefixRotatingUser):
		return partnerdef.MatchFormat(TokenUser, tokenBody, tok[len(prefixRotatingUser):], userForm)
	case strings.HasPrefix(tok, prefixBot):
		return partnerdef.MatchFormat(TokenBot, tokenBody, tok[len(prefixBot):], botForm)
	case strings.HasPrefix(tok, prefixUser):
		return partnerdef.MatchFormat(TokenUser, tokenBody, tok[len(prefixUser):], userForm)
	case strings.HasPrefix(tok, prefixRefresh):
		return partnerdef.Unsupported(TokenRefresh, "Slack refresh tokens (xoxe-) are not verified: only the app's client secret can use one, and using it would spend it")
	case strings.HasPrefix(tok, prefixSessionC), strings.HasPrefix(tok, prefixSessionD):
		return partnerdef.Unsupported(TokenSession, "Slack browser session tokens (xoxc-, xoxd-) are not verified: Slack accepts them only with the user's d cookie, which a finding does not carry")
	}
	return partnerdef.Malformed(t, "token is not a Slack bot or user token (xoxb-, xoxp-, xoxe.xoxb- or xoxe.xoxp-, then <digits>-…)")
}
