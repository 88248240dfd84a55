// Package gitlabpartner verifies GitLab personal access tokens: GET
// /api/v4/personal_access_tokens/self with the token in the PRIVATE-TOKEN
// header, the least a token can ask (it reads only the token's own
// metadata, and any scope may). A 200 carrying GitLab's token document says
// whether the token is active; a 401 with GitLab's {"message":"401
// Unauthorized"} (a token it does not know) or its OAuth-style
// {"error":"invalid_token",…} (expired or revoked) means it is not; a 403
// {"error":"insufficient_scope",…} means GitLab authenticated the token and
// refused it this endpoint, so it is live. Every other answer proves
// nothing and is a *verify.Fault (partnerhttp turns resets, 429s, 5xx and
// HTML pages into faults before this package looks).
//
// inactive means "rejected by the configured instance" (default gitlab.com):
// self-managed instances issue tokens with the same prefix.
package gitlabpartner

import (
	"bytes"
	"context"
	"encoding/json"
	partnerdef "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner"
	"net/http"
	"strconv"
	"strings"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

// EnvEndpoint names the variable holding GitLab's base URL (contract §7).
const EnvEndpoint = "PARTNER_ENDPOINT_GITLAB"

// DefaultEndpoint is GitLab.com; a self-managed instance is configured as
// https://<host> (the request path carries /api/v4).
const DefaultEndpoint = "https://gitlab.com"

// The details keys of a confirmed token (contract §3, §7).
const (
	DetailScopes    = "scopes"
	DetailExpiresAt = "expires_at"
)

// Op names the one call in faults.
const Op = "GET /api/v4/personal_access_tokens/self"

// Verifier checks gitlab_personal_access_token findings. Build one per
// function instance and share it: its HTTP client keeps connections alive.
type Verifier struct{ c *partnerhttp.Client }

var _ verify.Verifier = (*Verifier)(nil)

// New returns a verifier that talks only to o.Endpoints[0], GitLab's base URL.
func New(o partnerhttp.Options) (*Verifier, error) {
	c, err := partnerhttp.NewSingle(o, Name, "gitlab: new verifier", "base URL")
	if err != nil {
		return nil, err
	}
	return &Verifier{c: c}, nil
}

// Verify asks GitLab whether the finding's token is live. It returns a
// Verdict with a nil error, or a *verify.Fault when the answer proves nothing.
func (v *Verifier) Verify(ctx context.Context, tokenType finding.TokenType, f finding.Finding) (verify.Verdict, error) {
	if tokenType != TokenPAT {
		return verify.Unsupported(Name, tokenType, TokenPAT), nil
	}
	tok := f.Token.Reveal()
	r := partnerhttp.Request{Op: Op, Path: "api/v4/personal_access_tokens/self", Secrets: []string{tok},
		Header: http.Header{"Private-Token": {tok}, "Accept": {"application/json"}}}
	a, err := v.c.Do(ctx, r)
	if err != nil {
		return verify.Verdict{}, err
	}
	doc, isDoc := tokenDocument(a.Body, tok)
	code, isOAuthErr := oauthError(a.Body)
	switch {
	case a.Status == http.StatusOK && isDoc && doc.active && !doc.revoked:
		return verify.Verdict{Reason: finding.ReasonPartnerConfirmed, Details: doc.details()}, nil
	case a.Status == http.StatusOK && isDoc:
		// GitLab's own document saying the token is inactive or revoked.
		return verify.Verdict{Reason: finding.ReasonPartnerRejected}, nil
	case a.Status == http.StatusOK:
		return verify.Verdict{}, v.c.Unusable(ctx, r, a, "200 body is not GitLab's personal access token document, which proves nothing")
	case a.Status == http.StatusUnauthorized && (isUnauthorizedMessage(a.Body) || (isOAuthErr && code == "invalid_token")):
		// A token GitLab does not know, or one it knows as expired or revoked.
		return verify.Verdict{Reason: finding.ReasonPartnerRejected}, nil
	case a.Status == http.StatusUnauthorized && isOAuthErr:
		// dpop_error, restricted_language_server_client_error: GitLab found
		// the token but wants a proof or a client we do not send. No verdict.
		return verify.Verdict{}, v.c.Unusable(ctx, r, a, "401 "+knownCode(code)+" is no verdict on the token")
	case a.Status == http.StatusUnauthorized:
		return verify.Verdict{}, v.c.Unusable(ctx, r, a, "401 without GitLab's error body (a proxy's answer?)")
	case a.Status == http.StatusForbidden && isOAuthErr && code == "insufficient_scope":
		// GitLab authenticated the token and refused it this endpoint's
		// scope: the token is live; what it may do is not known.
		return verify.Verdict{Reason: finding.ReasonPartnerConfirmed}, nil
	case a.Status == http.StatusForbidden:
		return verify.Verdict{}, v.c.Unusable(ctx, r, a, "403 without GitLab's insufficient_scope body is no verdict (a blocked user, an IP ban or a policy)")
	default:
		return verify.Verdict{}, v.c.Unusable(ctx, r, a, "unexpected http status "+strconv.Itoa(a.Status))
	}
}

// patDoc is what the verdict needs of GitLab's token document.
type patDoc struct {
	active, revoked bool
	scopes          []string
	expiresAt       string // "" when the token never expires
}

func (d patDoc) details() finding.Details {
	det := finding.Details{DetailScopes: d.scopes}
	if d.expiresAt != "" {
		det[DetailExpiresAt] = d.expiresAt
	}
	return det
}

// scopeName is the form of GitLab's scope names (api, read_user,
// read_repository, k8s_proxy, self_rotate): lower-case words joined by
// underscores. Anything else in the list is not GitLab's document, and it
// could be text we must not copy into a result.
var scopeName = partnerdef.NewPattern(`^[a-z][a-z0-9_]{0,63}$`)

// maxScopes bounds the list: GitLab has a few dozen scopes.
const maxScopes = 100

// tokenDocument reads GitLab's GET /personal_access_tokens/self answer
// (doc/api/personal_access_tokens.md): one JSON object with a positive
// integer "id", booleans "active" and "revoked", a "scopes" array of scope
// names and "expires_at", a date or null. Keys are matched exactly:
// decoding into a struct would also take "Active", which is not GitLab's
// document. A scope naming the token (a reflecting proxy) is not GitLab's
// either. name, description and user_id are never read: a token's name can
// be anything its owner typed.
func tokenDocument(body []byte, tok string) (patDoc, bool) {
	var doc map[string]json.RawMessage
	if !oneObject(body, &doc) {
		return patDoc{}, false
	}
	var d patDoc
	id, err := strconv.ParseInt(string(doc["id"]), 10, 64)
	if err != nil || id <= 0 || !isBool(doc["active"], &d.active) || !isBool(doc["revoked"], &d.revoked) {
		return patDoc{}, false
	}
	raw, ok := doc["scopes"]
	if !ok || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return patDoc{}, false
	}
	if err := json.Unmarshal(raw, &d.scopes); err != nil || len(d.scopes) > maxScopes {
		return patDoc{}, false
	}
	for _, s := range d.scopes {
		if !scopeName.MatchString(s) || hasToken(s, tok) {
			return patDoc{}, false
		}
	}
	if d.scopes == nil {
		d.scopes = []string{}
	}
	d.expiresAt, ok = expiry(doc["expires_at"])
	if !ok {
		return patDoc{}, false
	}
	return d, true
}

// isBool decodes raw into b, only when it is a JSON boolean.
func isBool(raw json.RawMessage, b *bool) bool {
	switch string(bytes.TrimSpace(raw)) {
	case "true":
		*b = true
	case "false":
		*b = false
	default:
		return false
	}
	return true
}

// expiry reads expires_at: absent or null for a token that never expires,
// else a date ("2026-12-31", as GitLab gives it) or an RFC 3339 date-time,
// returned as an RFC 3339 date or a UTC date-time. Any other value is not
// GitLab's document.
func expiry(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return "", true
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil && t.Year() >= 2000 && t.Year() < 10000 {
		return t.Format(time.DateOnly), true
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil && t.Year() >= 2000 && t.Year() < 10000 {
		return t.UTC().Format(time.RFC3339), true
	}
	return "", false
}

// isUnauthorizedMessage reports whether a 401 body is GitLab's API error
// for a token it does not know: {"message":"401 Unauthorized"} (Grape's
// unauthorized!, which the API answers when no token matches).
func isUnauthorizedMessage(body []byte) bool {
	var doc map[string]json.RawMessage
	var msg string
	return oneObject(body, &doc) && json.Unmarshal(doc["message"], &msg) == nil && msg == "401 Unauthorized"
}

// oauthError returns the error code of GitLab's OAuth-style error body
// (lib/api/api_guard.rb, rack-oauth2): one object whose "error" is a string
// code, with a string "error_description" when GitLab gives a reason.
func oauthError(body []byte) (string, bool) {
	var doc map[string]json.RawMessage
	var code, desc string
	if !oneObject(body, &doc) || json.Unmarshal(doc["error"], &code) != nil || !errorCode.MatchString(code) {
		return "", false
	}
	if raw, ok := doc["error_description"]; ok && json.Unmarshal(raw, &desc) != nil {
		return "", false
	}
	return code, true
}

// errorCode is the form of an OAuth error code (invalid_token,
// insufficient_scope).
var errorCode = partnerdef.NewPattern(`^[a-z][a-z_]{0,63}$`)

// knownCode names a 401 error code for fault text: only GitLab's own
// codes are quoted, never text a proxy or an echo put there.
func knownCode(code string) string {
	switch code {
	case "dpop_error", "restricted_language_server_client_error", "unauthorized":
		return code
	}
	return "with another OAuth error"
}

// oneObject decodes body as exactly one JSON object.
func oneObject(body []byte, v *map[string]json.RawMessage) bool {
	dec := json.NewDecoder(bytes.NewReader(body))
	return dec.Decode(v) == nil && !dec.More() && *v != nil
}

// hasToken reports whether s carries the token, or its part after the
// glpat- prefix, which alone is credential material too.
func hasToken(s, tok string) bool {
	rest := strings.TrimPrefix(tok, "glpat-")
	ls := strings.ToLower(s)
	return strings.Contains(s, tok) || (len(rest) >= 8 && strings.Contains(ls, strings.ToLower(rest)))
}
