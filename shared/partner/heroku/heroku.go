// Package herokupartner verifies Heroku API keys: GET /account on the
// Platform API with the key as a Bearer token and the version-3 Accept
// header. A 200 carrying an account document means the key is live, a 401
// whose JSON body has Heroku's error id "unauthorized" (a missing, invalid
// or expired token) means it is not; every other answer proves nothing and
// is a *verify.Fault (partnerhttp turns resets, 429s, 5xx and HTML pages
// into faults before this package looks).
package herokupartner

import (
	"bytes"
	"context"
	"encoding/json"
	partnerdef "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner"
	"net/http"
	"strconv"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

// EnvEndpoint names the variable holding Heroku's base URL (contract §7).
const EnvEndpoint = "PARTNER_ENDPOINT_HEROKU"

// DefaultEndpoint is Heroku's Platform API base URL.
const DefaultEndpoint = "https://api.heroku.com"

// DetailAccountID is the details key of a confirmed key's account id, a
// UUID; the account's e-mail address, also in the answer, is never kept.
const DetailAccountID = "heroku_account_id"

// AcceptV3 is the Accept header the Platform API requires; without it
// Heroku answers 406 not_acceptable.
const AcceptV3 = "application/vnd.heroku+json; version=3"

// op names the call in faults.
const op = "GET /account"

// Verifier checks heroku_api_key findings. Build one per function instance
// and share it: its HTTP client keeps connections alive.
type Verifier struct{ c *partnerhttp.Client }

var _ verify.Verifier = (*Verifier)(nil)

// New returns a verifier that talks only to o.Endpoints[0], Heroku's API.
func New(o partnerhttp.Options) (*Verifier, error) {
	c, err := partnerhttp.NewSingle(o, Name, "heroku: new verifier", "api")
	if err != nil {
		return nil, err
	}
	return &Verifier{c: c}, nil
}

// Verify asks Heroku whether the finding's API key is live. It returns a
// Verdict with a nil error, or a *verify.Fault when the answer proves nothing.
func (v *Verifier) Verify(ctx context.Context, tokenType finding.TokenType, f finding.Finding) (verify.Verdict, error) {
	if tokenType != TokenAPIKey {
		return verify.Unsupported(Name, tokenType, TokenAPIKey), nil
	}
	key := f.Token.Reveal()
	r := partnerhttp.Request{Op: op, Path: "account", Secrets: []string{key},
		Header: http.Header{"Authorization": {"Bearer " + key}, "Accept": {AcceptV3}}}
	a, err := v.c.Do(ctx, r)
	if err != nil {
		return verify.Verdict{}, err
	}
	id, ok := accountID(a.Body)
	errID := errorID(a.Body)
	switch {
	case a.Status == http.StatusOK && ok:
		return verify.Verdict{Reason: finding.ReasonPartnerConfirmed, Details: finding.Details{DetailAccountID: id}}, nil
	case a.Status == http.StatusOK:
		return verify.Verdict{}, v.c.Unusable(ctx, r, a, "200 body is not a Heroku account document, which proves nothing")
	case a.Status == http.StatusUnauthorized && errID == "unauthorized":
		return verify.Verdict{Reason: finding.ReasonPartnerRejected}, nil
	case a.Status == http.StatusUnauthorized:
		return verify.Verdict{}, v.c.Unusable(ctx, r, a, "401 without Heroku's unauthorized error id (a proxy's answer?)")
	case a.Status == http.StatusForbidden && errID == "forbidden":
		// A key whose OAuth scope does not reach /account, or (help.heroku.com)
		// an expired one: Heroku's id does not say which.
		return verify.Verdict{}, v.c.Unusable(ctx, r, a, "403 forbidden: a scoped or an expired key, Heroku does not say which")
	case a.Status == http.StatusForbidden && errID == "suspended":
		// The key was recognised, but its account is suspended and may be
		// reinstated: the key is neither proven live nor revoked.
		return verify.Verdict{}, v.c.Unusable(ctx, r, a, "403 suspended: the key's account is suspended")
	case a.Status == http.StatusPaymentRequired && errID == "delinquent":
		return verify.Verdict{}, v.c.Unusable(ctx, r, a, "402 delinquent: the key's account must settle its payment")
	case a.Status == http.StatusNotAcceptable:
		return verify.Verdict{}, v.c.Unusable(ctx, r, a, "406 not acceptable: Heroku refused the API version we asked for")
	default:
		return verify.Verdict{}, v.c.Unusable(ctx, r, a, "unexpected http status "+strconv.Itoa(a.Status))
	}
}

// uuid is the form of Heroku's resource ids.
var uuid = partnerdef.NewPattern(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// accountID returns the id of Heroku's account document: one JSON object
// whose "id" (exactly that key) is a lower-case UUID string. Anything else,
// a document of another shape or trailing data, proves nothing.
func accountID(body []byte) (string, bool) {
	doc, ok := object(body)
	if !ok {
		return "", false
	}
	var id string
	if json.Unmarshal(doc["id"], &id) != nil || !uuid.MatchString(id) {
		return "", false
	}
	return id, true
}

// errorID returns the id of Heroku's error document
// {"id":"unauthorized","message":"…"}: one JSON object whose "id" (exactly
// that key) is a string and which carries a "message"; "" for anything else.
func errorID(body []byte) string {
	doc, ok := object(body)
	if !ok {
		return ""
	}
	var id, msg string
	if json.Unmarshal(doc["id"], &id) != nil || json.Unmarshal(doc["message"], &msg) != nil {
		return ""
	}
	return id
}

// object decodes a body that is exactly one JSON object. Keys are matched
// exactly afterwards: decoding into a struct would also take "ID", which is
// not Heroku's document.
func object(body []byte) (map[string]json.RawMessage, bool) {
	var doc map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&doc); err != nil || doc == nil {
		return nil, false
	}
	if len(bytes.TrimSpace(body[dec.InputOffset():])) != 0 {
		return nil, false // anything after the one document
	}
	return doc, true
}
