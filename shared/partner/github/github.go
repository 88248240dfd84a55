// Package githubpartner verifies GitHub tokens: GET /user (installation
// tokens: GET /installation/repositories?per_page=1) with the token as a
// Bearer credential. A 200 carrying GitHub's document, or a 403/404
// "Resource not accessible by …" (a restricted token that did
// authenticate), means the token is live; a 401 with GitHub's JSON error
// means it is not. Every other answer proves nothing and is a
// *verify.Fault: notably the 403 GitHub sends to every credential of a user
// after repeated bad attempts, valid ones included, and its secondary rate
// limits (partnerhttp turns resets, 429s, documented rate-limit 403s, 5xx
// and HTML pages into faults before this package looks).
package githubpartner

import (
	"bytes"
	"context"
	"encoding/json"
	partnerdef "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

// EnvEndpoint names the variable holding GitHub's API base URL (contract §7).
const EnvEndpoint = "PARTNER_ENDPOINT_GITHUB"

// DefaultEndpoint is GitHub.com's REST API; a GitHub Enterprise Server
// instance is configured as https://<host>/api/v3.
const DefaultEndpoint = "https://api.github.com"

// APIVersion is the REST API version asked for; GitHub answers 400 to a
// version it does not know, so it is pinned rather than left to change.
const APIVersion = "2022-11-28"

// The details keys of a confirmed token (contract §3, §7).
const (
	DetailLogin     = "github_login"
	DetailScopes    = "scopes"
	DetailExpiresAt = "expires_at"
)

// SecondaryLimitWait is the least wait after a secondary rate limit that
// names no wait: GitHub asks for at least a minute then.
const SecondaryLimitWait = time.Minute

// Verifier checks GitHub token findings. Build one per function instance
// and share it: its HTTP client keeps connections alive.
type Verifier struct{ c *partnerhttp.Client }

var _ verify.Verifier = (*Verifier)(nil)

// New returns a verifier that talks only to o.Endpoints[0], GitHub's API.
func New(o partnerhttp.Options) (*Verifier, error) {
	c, err := partnerhttp.NewSingle(o, Name, "github: new verifier", "api")
	if err != nil {
		return nil, err
	}
	return &Verifier{c: c}, nil
}

// request is the call for one token type: the least intrusive read its
// token may make. An installation token is no user, so GET /user refuses it.
func request(tt finding.TokenType, tok string) partnerhttp.Request {
	r := partnerhttp.Request{Op: "GET /user", Path: "user", Secrets: []string{tok},
		Header: http.Header{
			"Authorization":        {"Bearer " + tok},
			"Accept":               {"application/vnd.github+json"},
			"X-Github-Api-Version": {APIVersion},
		}}
	if tt == TokenAppInstallation {
		r.Op, r.Path, r.Query = "GET /installation/repositories", "installation/repositories", url.Values{"per_page": {"1"}}
	}
	return r
}

// Verify asks GitHub whether the finding's token is live. It returns a
// Verdict with a nil error, or a *verify.Fault when the answer proves nothing.
func (v *Verifier) Verify(ctx context.Context, tokenType finding.TokenType, f finding.Finding) (verify.Verdict, error) {
	switch tokenType {
	case TokenPAT, TokenFineGrainedPAT, TokenOAuth, TokenUser, TokenAppInstallation:
	default:
		return verify.Unsupported(Name, tokenType, TokenPAT, TokenFineGrainedPAT, TokenOAuth, TokenUser, TokenAppInstallation), nil
	}
	r := request(tokenType, f.Token.Reveal())
	a, err := v.c.Do(ctx, r)
	if err != nil {
		// A rate limit without a wait (a 429 or 403 without retry-after or
		// a future reset) is a secondary limit: GitHub asks for a minute.
		if fault, ok := verify.AsFault(err); ok && fault.Kind == verify.RateLimited && fault.RetryAfter == 0 {
			fault.RetryAfter = SecondaryLimitWait
		}
		return verify.Verdict{}, err
	}
	msg, isErr := errorMessage(a.Body)
	switch {
	case a.Status == http.StatusOK:
		login, ok := document(tokenType, a.Body)
		if ok && hasToken(login, r.Secrets[0]) {
			// An echo of the token is not GitHub's user; never a detail.
			ok = false
		}
		if !ok {
			return verify.Verdict{}, v.c.Unusable(ctx, r, a, "200 body is not GitHub's "+r.Op+" document, which proves nothing")
		}
		return verify.Verdict{Reason: finding.ReasonPartnerConfirmed, Details: details(a.Header, login, r.Secrets)}, nil
	case a.Status == http.StatusUnauthorized && isErr:
		// Judged by status and shape, not wording: github.com says "Bad
		// credentials", Enterprise Server "Must authenticate to access this API".
		return verify.Verdict{Reason: finding.ReasonPartnerRejected}, nil
	case (a.Status == http.StatusForbidden || a.Status == http.StatusNotFound) && isErr && strings.HasPrefix(msg, "Resource not accessible by "):
		// GitHub authenticated the token and refused it this resource: a
		// fine-grained or app token without that permission is live.
		return verify.Verdict{Reason: finding.ReasonPartnerConfirmed, Details: details(a.Header, "", r.Secrets)}, nil
	case (a.Status == http.StatusForbidden || a.Status == http.StatusTooManyRequests) && isErr && isSecondaryLimit(msg):
		fault := v.c.RateLimited(ctx, r, a, "secondary rate limit")
		fault.RetryAfter = max(fault.RetryAfter, SecondaryLimitWait)
		return verify.Verdict{}, fault
	case a.Status == http.StatusUnauthorized:
		return verify.Verdict{}, v.c.Unusable(ctx, r, a, "401 without GitHub's JSON error (a proxy's answer?)")
	case a.Status == http.StatusForbidden:
		// GitHub answers 403 to every credential of a user, valid or not,
		// after repeated bad attempts: a 403 never says a token is dead.
		return verify.Verdict{}, v.c.Unusable(ctx, r, a, "403 is no verdict (a lockout after failed logins, a missing User-Agent or a policy)")
	default:
		return verify.Verdict{}, v.c.Unusable(ctx, r, a, "unexpected http status "+strconv.Itoa(a.Status))
	}
}

// errorMessage returns the message of GitHub's JSON error document,
// {"message":"…","documentation_url":"…"}: one object whose "message" (the
// exact key) is a string.
func errorMessage(body []byte) (string, bool) {
	var doc map[string]json.RawMessage
	var msg string
	if !oneObject(body, &doc) || json.Unmarshal(doc["message"], &msg) != nil {
		return "", false
	}
	return msg, true
}

// isSecondaryLimit spots GitHub's secondary rate limit message (and its
// older "abuse detection" wording), which can come without any header.
func isSecondaryLimit(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "secondary rate limit") || strings.Contains(m, "abuse detection")
}

// login is a GitHub login as /user returns it: letters, digits and
// hyphens on github.com; Enterprise Server also allows '_' and '.' for
// logins synchronised from LDAP or SAML.
var login = partnerdef.NewPattern(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$`)

// document checks a 200 body: /user answers a user object with a login and
// a positive integer id; /installation/repositories an object with an
// integer total_count and a repositories list. It returns the login of a
// user document.
func document(tt finding.TokenType, body []byte) (string, bool) {
	var doc map[string]json.RawMessage
	if !oneObject(body, &doc) {
		return "", false
	}
	if tt == TokenAppInstallation {
		var repos []json.RawMessage
		n, err := strconv.ParseInt(string(doc["total_count"]), 10, 64)
		return "", err == nil && n >= 0 && json.Unmarshal(doc["repositories"], &repos) == nil && repos != nil
	}
	var name string
	id, err := strconv.ParseInt(string(doc["id"]), 10, 64)
	if err != nil || id <= 0 || json.Unmarshal(doc["login"], &name) != nil || !login.MatchString(name) {
		return "", false
	}
	return name, true
}

// hasToken reports whether s carries the token, or its part after the
// prefix, which alone is credential material too.
func hasToken(s, tok string) bool {
	body := strings.TrimPrefix(tok, "github_pat_")
	if len(body) == len(tok) && len(tok) > 4 {
		body = tok[4:]
	}
	return strings.Contains(s, tok) || (len(body) >= 8 && strings.Contains(s, body))
}

// oneObject decodes body as exactly one JSON object.
func oneObject(body []byte, v *map[string]json.RawMessage) bool {
	dec := json.NewDecoder(bytes.NewReader(body))
	return dec.Decode(v) == nil && !dec.More() && *v != nil
}

// scope is a scope name as GitHub lists them (repo, admin:org,
// read:packages); anything else in the header is dropped, so that the
// details never carry text a proxy put there.
var scope = partnerdef.NewPattern(`^[a-z][a-z0-9:_-]{0,63}$`)

// details are a live token's non-secret metadata: the login (from /user),
// the classic token's scopes when GitHub lists them (an empty header is a
// token without scopes), and its expiry when it has one.
func details(h http.Header, login string, secrets []string) finding.Details {
	d := finding.Details{}
	if login != "" {
		d[DetailLogin] = login
	}
	if vs, ok := h[http.CanonicalHeaderKey("X-OAuth-Scopes")]; ok {
		scopes := []string{}
		for _, v := range vs {
			for _, s := range strings.Split(v, ",") {
				if s = strings.TrimSpace(s); scope.MatchString(s) && !hasToken(s, secrets[0]) && len(scopes) < 64 {
					scopes = append(scopes, s)
				}
			}
		}
		d[DetailScopes] = scopes
	}
	if t, ok := expiry(h.Get("GitHub-Authentication-Token-Expiration")); ok {
		d[DetailExpiresAt] = t.UTC().Format(time.RFC3339)
	}
	if len(d) == 0 {
		return nil
	}
	return d
}

// expiry reads GitHub-Authentication-Token-Expiration, "2021-10-07
// 19:07:53 UTC"; a numeric zone is taken too. An unreadable value is left
// out: the token is live either way.
func expiry(v string) (time.Time, bool) {
	v = strings.TrimSpace(v)
	for _, layout := range []string{"2006-01-02 15:04:05 MST", "2006-01-02 15:04:05 -0700", time.RFC3339} {
		if t, err := time.Parse(layout, v); err == nil && t.Year() >= 2000 && t.Year() < 10000 {
			if strings.HasSuffix(layout, "MST") && !strings.HasSuffix(v, " UTC") && !strings.HasSuffix(v, " GMT") {
				continue // Go takes an unknown zone abbreviation as UTC, which may be wrong
			}
			return t, true
		}
	}
	return time.Time{}, false
}
