// Package npmpartner verifies npm access tokens: GET /-/whoami on the
// registry with the token as a Bearer token. A 200 carrying
// {"username":"…"} means the token is live; a 401 means npm does not take
// it, unless npm's own client would read that 401 as a challenge to a
// token it knows (WWW-Authenticate naming "ipaddress" for a token bound to
// other addresses, or "otp" for a one-time password): those prove nothing.
// Every other answer proves nothing and is a *verify.Fault (partnerhttp
// turns resets, 429s, 5xx and HTML pages into faults before this package
// looks).
package npmpartner

import (
	"bytes"
	"context"
	"encoding/json"
	partnerdef "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner"
	"net/http"
	"strconv"
	"strings"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

// EnvEndpoint names the variable holding npm's registry base URL (contract §7).
const EnvEndpoint = "PARTNER_ENDPOINT_NPM"

// DefaultEndpoint is the public npm registry.
const DefaultEndpoint = "https://registry.npmjs.org"

// DetailUsername is the details key of a confirmed token's npm user name,
// public on every package page; the account's e-mail is never asked for.
const DetailUsername = "npm_username"

// Op names the one call in faults.
const Op = "GET /-/whoami"

// Verifier checks npm_access_token findings. Build one per function
// instance and share it: its HTTP client keeps connections alive.
type Verifier struct{ c *partnerhttp.Client }

var _ verify.Verifier = (*Verifier)(nil)

// New returns a verifier that talks only to o.Endpoints[0], npm's registry.
func New(o partnerhttp.Options) (*Verifier, error) {
	c, err := partnerhttp.NewSingle(o, Name, "npm: new verifier", "registry")
	if err != nil {
		return nil, err
	}
	return &Verifier{c: c}, nil
}

// Verify asks npm whose the finding's token is. It returns a Verdict with a
// nil error, or a *verify.Fault when the answer proves nothing.
func (v *Verifier) Verify(ctx context.Context, tokenType finding.TokenType, f finding.Finding) (verify.Verdict, error) {
	if tokenType != TokenAccessToken {
		return verify.Unsupported(Name, tokenType, TokenAccessToken), nil
	}
	tok := f.Token.Reveal()
	r := partnerhttp.Request{Op: Op, Path: "-/whoami", Secrets: []string{tok},
		Header: http.Header{"Authorization": {"Bearer " + tok}, "Accept": {"application/json"}}}
	a, err := v.c.Do(ctx, r)
	if err != nil {
		return verify.Verdict{}, err
	}
	switch name, ok := username(a.Body, tok); {
	case a.Status == http.StatusOK && ok:
		return verify.Verdict{Reason: finding.ReasonPartnerConfirmed, Details: finding.Details{DetailUsername: name}}, nil
	case a.Status == http.StatusOK:
		return verify.Verdict{}, v.c.Unusable(ctx, r, a, "200 body is not npm's whoami document with a username, which proves nothing")
	case a.Status == http.StatusUnauthorized && challenges(a, "ipaddress"):
		return verify.Verdict{}, v.c.Unusable(ctx, r, a, "401 ipaddress challenge: the token is bound to other IP addresses, npm does not say it is live")
	case a.Status == http.StatusUnauthorized && (challenges(a, "otp") || bytes.Contains(a.Body, []byte("one-time pass"))):
		return verify.Verdict{}, v.c.Unusable(ctx, r, a, "401 otp challenge: npm asks for a one-time password, which proves nothing of the token")
	case a.Status == http.StatusUnauthorized:
		// Contract §7: any non-HTML 401 (partnerhttp has already turned HTML
		// pages and unreadable bodies into faults) is npm's rejection; its
		// body is unconfirmed, so it is not judged.
		return verify.Verdict{Reason: finding.ReasonPartnerRejected}, nil
	case a.Status == http.StatusForbidden:
		// Public reports show 403 on /-/whoami when the edge bans an address
		// range (npm/cli#1358, #1716), and no source says npm answers 403 to
		// a valid but restricted token: it says nothing of the token.
		return verify.Verdict{}, v.c.Unusable(ctx, r, a, "403: npm or its edge refused the request, which says nothing of the token")
	default:
		return verify.Verdict{}, v.c.Unusable(ctx, r, a, "unexpected http status "+strconv.Itoa(a.Status))
	}
}

// challenges reports whether the answer's WWW-Authenticate names scheme, as
// npm's own client (npm-registry-fetch, check-response.js) reads it: a
// comma-separated list compared without case.
func challenges(a *partnerhttp.Answer, scheme string) bool {
	for _, h := range a.Header.Values("Www-Authenticate") {
		for _, s := range strings.Split(h, ",") {
			if strings.EqualFold(strings.TrimSpace(s), scheme) {
				return true
			}
		}
	}
	return false
}

// userName is the form of npm user names: URL-safe, at most 214 characters
// (npm-user-validate), never an e-mail address.
var userName = partnerdef.NewPattern(`^[A-Za-z0-9._~-]{1,214}$`)

// username returns the name of npm's whoami answer, one JSON object with,
// under exactly the key "username", a user name string. Anything else (a
// document of another shape, trailing data, an empty name, a name that
// carries the token's secret part as a reflecting proxy would) proves
// nothing.
func username(body []byte, tok string) (string, bool) {
	var doc map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&doc); err != nil || doc == nil {
		return "", false
	}
	if len(bytes.TrimSpace(body[dec.InputOffset():])) != 0 {
		return "", false
	}
	raw := bytes.TrimSpace(doc["username"])
	var name string
	if !bytes.HasPrefix(raw, []byte(`"`)) || json.Unmarshal(raw, &name) != nil || !userName.MatchString(name) {
		return "", false
	}
	secret := strings.ToLower(strings.TrimPrefix(tok, "npm_"))
	if secret != "" && strings.Contains(strings.ToLower(name), secret) {
		return "", false
	}
	return name, true
}
