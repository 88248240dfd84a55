// Package slackpartner verifies Slack bot and user tokens: POST /auth.test
// with the token as a Bearer token and an empty form body. Slack answers
// HTTP 200 whatever happens and puts the verdict in the body: {"ok":true,…}
// means the token is live, {"ok":false,"error":…} with one of Slack's
// authentication errors means it is not, "ratelimited" is a rate limit, and
// every other error or body proves nothing and is a *verify.Fault
// (partnerhttp turns resets, 429s, 5xx and HTML pages into faults before
// this package looks).
package slackpartner

import (
	"bytes"
	"context"
	"encoding/json"
	partnerdef "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner"
	"net/http"
	"net/url"
	"strconv"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

// EnvEndpoint names the variable holding Slack's Web API base URL (contract §7).
const EnvEndpoint = "PARTNER_ENDPOINT_SLACK"

// DefaultEndpoint is Slack's Web API base URL; methods are joined onto its /api path.
const DefaultEndpoint = "https://slack.com/api"

// Details keys of a confirmed token: the workspace and user ids (never
// names, which a person chose, and never the workspace URL).
const (
	DetailTeamID = "slack_team_id"
	DetailUserID = "slack_user_id"
)

// Op names the one call in faults.
const Op = "POST /auth.test"

// rejections are the auth.test errors that say the token itself is dead:
// unknown or malformed (invalid_auth), none sent (not_authed — we always
// send one, so Slack did not read it as a token), its user or workspace
// deactivated (account_inactive), revoked (token_revoked) or expired
// (token_expired). Source: ../shared/PARTNERS.md, Slack; api.slack.com/methods/auth.test.
var rejections = map[string]bool{
	"invalid_auth":     true,
	"not_authed":       true,
	"account_inactive": true,
	"token_revoked":    true,
	"token_expired":    true,
}

// errorCode is the form of Slack's error strings (snake_case words); only a
// code of this form is quoted in a fault.
var errorCode = partnerdef.NewPattern(`^[a-z][a-z0-9_]{0,63}$`)

// slackID is the form of Slack's team and user ids (T…, E…, U…, W…, B…):
// upper-case letters and digits. Anything else is not Slack's id, and
// could be text we must not copy into a result.
var slackID = partnerdef.NewPattern(`^[A-Z][A-Z0-9]{2,31}$`)

// Verifier checks slack_bot_token and slack_user_token findings. Build one
// per function instance and share it: its HTTP client keeps connections alive.
type Verifier struct{ c *partnerhttp.Client }

var _ verify.Verifier = (*Verifier)(nil)

// New returns a verifier that talks only to o.Endpoints[0], Slack's Web API.
func New(o partnerhttp.Options) (*Verifier, error) {
	c, err := partnerhttp.NewSingle(o, Name, "slack: new verifier", "web api")
	if err != nil {
		return nil, err
	}
	return &Verifier{c: c}, nil
}

// Verify asks Slack whether the finding's token is live. It returns a
// Verdict with a nil error, or a *verify.Fault when the answer proves nothing.
func (v *Verifier) Verify(ctx context.Context, tokenType finding.TokenType, f finding.Finding) (verify.Verdict, error) {
	if tokenType != TokenBot && tokenType != TokenUser {
		return verify.Unsupported(Name, tokenType, TokenBot, TokenUser), nil
	}
	tok := f.Token.Reveal()
	// auth.test takes its arguments as a form; it has none but the token,
	// which goes in the header, so the form is empty.
	r := partnerhttp.Request{Op: Op, Method: http.MethodPost, Path: "auth.test", Form: url.Values{}, Secrets: []string{tok},
		Header: http.Header{"Authorization": {"Bearer " + tok}}}
	a, err := v.c.Do(ctx, r)
	if err != nil {
		return verify.Verdict{}, err
	}
	ans, ok := parse(a.Body)
	switch {
	case !ok:
		return verify.Verdict{}, v.c.Unusable(ctx, r, a, "http "+strconv.Itoa(a.Status)+" body is not Slack's {\"ok\":…} document, which proves nothing")
	case ans.ok && a.Status == http.StatusOK && ans.userID != "":
		d := finding.Details{DetailUserID: ans.userID}
		if ans.teamID != "" {
			d[DetailTeamID] = ans.teamID
		}
		return verify.Verdict{Reason: finding.ReasonPartnerConfirmed, Details: d}, nil
	case ans.ok:
		return verify.Verdict{}, v.c.Unusable(ctx, r, a, "http "+strconv.Itoa(a.Status)+" \"ok\":true without Slack's user id, which proves nothing")
	case ans.err == "ratelimited":
		// Slack's rate limit, with HTTP 429 (which partnerhttp classified
		// before) or inside a 200; Retry-After, when sent, is in seconds.
		return verify.Verdict{}, v.c.RateLimited(ctx, r, a, "rate limited (Slack's \"ratelimited\" error)")
	case rejections[ans.err] && (a.Status == http.StatusOK || a.Status == http.StatusUnauthorized):
		// Slack sends its errors with HTTP 200; a 401 is admitted too, as
		// contract §7 reads any partner's non-HTML 401 (that Slack never
		// sends one is UNCONFIRMED).
		return verify.Verdict{Reason: finding.ReasonPartnerRejected}, nil
	case rejections[ans.err]:
		return verify.Verdict{}, v.c.Unusable(ctx, r, a, "Slack error "+ans.err+" with http "+strconv.Itoa(a.Status)+", a status Slack does not answer with")
	case ans.err == "":
		return verify.Verdict{}, v.c.Unusable(ctx, r, a, "http "+strconv.Itoa(a.Status)+" \"ok\":false without Slack's error code, which proves nothing")
	default:
		// team_added_to_org, request-format errors, fatal_error,
		// internal_error, service_unavailable, codes Slack adds later: none
		// says the token is dead.
		return verify.Verdict{}, v.c.Unusable(ctx, r, a, "http "+strconv.Itoa(a.Status)+" Slack error "+ans.err+", which says nothing of the token")
	}
}

// answer is what of an auth.test body the verdict rests on.
type answer struct {
	ok     bool
	err    string // Slack's error code, "" or "unrecognised" when not of its form
	teamID string // "" when absent or not an id
	userID string
}

// parse reads one JSON object with, under exactly the key "ok", a boolean:
// Slack's Web API envelope. Keys are matched exactly (decoding into a
// struct would also take "OK", which is not Slack's document); one object
// and nothing after it.
func parse(body []byte) (answer, bool) {
	var doc map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&doc); err != nil || dec.More() || doc == nil {
		return answer{}, false
	}
	var a answer
	if err := json.Unmarshal(doc["ok"], &a.ok); err != nil || !isBool(doc["ok"]) {
		return answer{}, false
	}
	if a.ok {
		a.teamID, a.userID = id(doc["team_id"]), id(doc["user_id"])
		return a, true
	}
	var code string
	if raw, present := doc["error"]; present {
		if json.Unmarshal(raw, &code) != nil || !errorCode.MatchString(code) {
			code = "unrecognised"
		}
	}
	a.err = code
	return a, true
}

func isBool(raw json.RawMessage) bool {
	s := string(bytes.TrimSpace(raw))
	return s == "true" || s == "false"
}

// id returns a Slack id held as a JSON string, "" for anything else.
func id(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) != nil || !slackID.MatchString(s) {
		return ""
	}
	return s
}
