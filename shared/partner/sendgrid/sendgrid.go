// Package sendgridpartner verifies SendGrid API keys: GET /v3/scopes with
// the key as a Bearer token. A 200 carrying SendGrid's {"scopes":[...]}
// means the key is live (any key may read its own scopes, however
// restricted); a 401 with SendGrid's {"errors":[{"field":…,"message":…}]}
// body means it is not. SendGrid's 403 is a temporary block after too many
// bad requests, a rate limit that says nothing of the key; every other
// answer proves nothing and is a *verify.Fault (partnerhttp turns resets,
// 429s, 5xx and HTML pages into faults before this package looks).
package sendgridpartner

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

// EnvEndpoint names the variable holding SendGrid's base URL (contract §7).
const EnvEndpoint = "PARTNER_ENDPOINT_SENDGRID"

// DefaultEndpoint is SendGrid's API base URL.
const DefaultEndpoint = "https://api.sendgrid.com"

// DetailScopes is the details key of a confirmed key's scopes (a []string).
const DetailScopes = "scopes"

// Op names the one call in faults.
const Op = "GET /v3/scopes"

// Verifier checks sendgrid_api_key findings. Build one per function
// instance and share it: its HTTP client keeps connections alive.
type Verifier struct{ c *partnerhttp.Client }

var _ verify.Verifier = (*Verifier)(nil)

// New returns a verifier that talks only to o.Endpoints[0], SendGrid's API.
func New(o partnerhttp.Options) (*Verifier, error) {
	c, err := partnerhttp.NewSingle(o, Name, "sendgrid: new verifier", "api")
	if err != nil {
		return nil, err
	}
	return &Verifier{c: c}, nil
}

// Verify asks SendGrid whether the finding's API key is live. It returns a
// Verdict with a nil error, or a *verify.Fault when the answer proves nothing.
func (v *Verifier) Verify(ctx context.Context, tokenType finding.TokenType, f finding.Finding) (verify.Verdict, error) {
	if tokenType != TokenAPIKey {
		return verify.Unsupported(Name, tokenType, TokenAPIKey), nil
	}
	key := f.Token.Reveal()
	// SendGrid answers 406 to a request without Accept (Go sends none).
	r := partnerhttp.Request{Op: Op, Path: "v3/scopes", Secrets: []string{key},
		Header: http.Header{"Authorization": {"Bearer " + key}, "Accept": {"application/json"}}}
	a, err := v.c.Do(ctx, r)
	if err != nil {
		return verify.Verdict{}, err
	}
	switch scopes, ok := scopesOf(a.Body, key); {
	case a.Status == http.StatusOK && ok:
		return verify.Verdict{Reason: finding.ReasonPartnerConfirmed, Details: finding.Details{DetailScopes: scopes}}, nil
	case a.Status == http.StatusOK:
		return verify.Verdict{}, v.c.Unusable(ctx, r, a, "200 body is not SendGrid's scopes document, which proves nothing")
	case a.Status == http.StatusUnauthorized && isErrors(a.Body):
		return verify.Verdict{Reason: finding.ReasonPartnerRejected}, nil
	case a.Status == http.StatusUnauthorized:
		return verify.Verdict{}, v.c.Unusable(ctx, r, a, "401 without SendGrid's errors body (a proxy's answer?)")
	case a.Status == http.StatusForbidden && isErrors(a.Body):
		// SendGrid's documented 403: too many bad requests from us, a
		// temporary block. It throttles the caller and says nothing of the key.
		return verify.Verdict{}, v.c.RateLimited(ctx, r, a, "403: SendGrid's temporary block after too many bad requests")
	case a.Status == http.StatusNotAcceptable:
		return verify.Verdict{}, v.c.Unusable(ctx, r, a, "406: SendGrid refused the request's Accept header")
	default:
		return verify.Verdict{}, v.c.Unusable(ctx, r, a, "unexpected http status "+strconv.Itoa(a.Status))
	}
}

// scopeName is the form of SendGrid's scope names ("mail.send",
// "2fa_required", "user.profile.read"): lower-case dotted words. Anything
// else in the list is not SendGrid's document, and it could be text we must
// not copy into a result.
var scopeName = partnerdef.NewPattern(`^[a-z0-9][a-z0-9_.-]{0,99}$`)

// maxScopes bounds the list: a full-access key has a few hundred scopes.
const maxScopes = 1000

// scopesOf returns the scopes of SendGrid's GET /v3/scopes answer, one JSON
// object with, under exactly the key "scopes", an array of scope names.
// An empty list is still SendGrid's answer to a key it accepted. A list
// naming the key itself (a reflecting proxy) is not SendGrid's.
func scopesOf(body []byte, key string) ([]string, bool) {
	var doc map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&doc); err != nil || dec.More() {
		return nil, false
	}
	raw, ok := doc["scopes"]
	if !ok || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return nil, false
	}
	var scopes []string
	if err := json.Unmarshal(raw, &scopes); err != nil || len(scopes) > maxScopes {
		return nil, false
	}
	// Scope names are lower case, so the key's parts are compared so too.
	id, secret, _ := strings.Cut(strings.ToLower(strings.TrimPrefix(key, "SG.")), ".")
	for _, s := range scopes {
		if !scopeName.MatchString(s) || (id != "" && strings.Contains(s, id)) || (secret != "" && strings.Contains(s, secret)) {
			return nil, false
		}
	}
	if scopes == nil {
		scopes = []string{}
	}
	return scopes, true
}

// isErrors reports whether a body is SendGrid's error document, one JSON
// object with, under exactly the key "errors", a non-empty array of objects
// each carrying a string "message" ("field" is null or names a field).
// Keys are matched exactly: decoding into a struct would also take
// "Errors", which is not SendGrid's document.
func isErrors(body []byte) bool {
	var doc map[string]json.RawMessage
	var list []map[string]json.RawMessage
	if json.Unmarshal(body, &doc) != nil || json.Unmarshal(doc["errors"], &list) != nil || len(list) == 0 {
		return false
	}
	for _, e := range list {
		var msg string
		raw := bytes.TrimSpace(e["message"])
		if !bytes.HasPrefix(raw, []byte(`"`)) || json.Unmarshal(raw, &msg) != nil {
			return false
		}
	}
	return true
}
