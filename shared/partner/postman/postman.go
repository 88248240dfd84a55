// Package postmanpartner verifies Postman API keys: GET /me with the key in
// the X-API-Key header. A 200 carrying a user object means the key is live,
// a 401 whose JSON body names AuthenticationError means it is not; every
// other answer proves nothing and is a *verify.Fault (partnerhttp turns
// resets, 429s, 5xx and HTML pages into faults before this package looks).
package postmanpartner

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

// EnvEndpoint names the variable holding Postman's base URL (contract §6).
const EnvEndpoint = "PARTNER_ENDPOINT_POSTMAN"

// DefaultEndpoint is Postman's API base URL.
const DefaultEndpoint = "https://api.getpostman.com"

// DetailUserID is the details key of a confirmed key's (non-secret) user id.
const DetailUserID = "postman_user_id"

// Verifier checks postman_api_key findings. Build one per function instance
// and share it: its HTTP client keeps connections alive.
type Verifier struct{ c *partnerhttp.Client }

var _ verify.Verifier = (*Verifier)(nil)

// New returns a verifier that talks only to o.Endpoints[0], Postman's API.
func New(o partnerhttp.Options) (*Verifier, error) {
	c, err := partnerhttp.NewSingle(o, finding.PartnerPostman, "postman: new verifier", "api")
	if err != nil {
		return nil, err
	}
	return &Verifier{c: c}, nil
}

// Verify asks Postman whether the finding's API key is live. It returns a
// Verdict with a nil error, or a *verify.Fault when the answer proves nothing.
func (v *Verifier) Verify(ctx context.Context, tokenType finding.TokenType, f finding.Finding) (verify.Verdict, error) {
	if tokenType != finding.TokenPostmanAPIKey {
		return verify.Unsupported(finding.PartnerPostman, tokenType, finding.TokenPostmanAPIKey), nil
	}
	key := f.Token.Reveal()
	r := partnerhttp.Request{Op: "GET /me", Path: "me", Secrets: []string{key},
		Header: http.Header{"X-Api-Key": {key}, "Accept": {"application/json"}}}
	a, err := v.c.Do(ctx, r)
	if err != nil {
		return verify.Verdict{}, err
	}
	switch id, ok := userID(a.Body); {
	case a.Status == http.StatusOK && ok:
		return verify.Verdict{Reason: finding.ReasonPartnerConfirmed, Details: finding.Details{DetailUserID: id}}, nil
	case a.Status == http.StatusOK:
		return verify.Verdict{}, v.c.Unusable(ctx, r, a, "200 body is not a Postman user document, which proves nothing")
	case a.Status == http.StatusUnauthorized && isAuthenticationError(a.Body):
		return verify.Verdict{Reason: finding.ReasonPartnerRejected}, nil
	case a.Status == http.StatusUnauthorized:
		return verify.Verdict{}, v.c.Unusable(ctx, r, a, "401 without Postman's AuthenticationError body (a proxy's answer?)")
	default:
		return verify.Verdict{}, v.c.Unusable(ctx, r, a, "unexpected http status "+strconv.Itoa(a.Status))
	}
}

// userID returns the id of the body's user object: Postman's /me answer is
// {"user":{"id":<positive integer>,...},...}; anything else proves nothing.
func userID(body []byte) (string, bool) {
	var doc struct {
		User *struct {
			ID json.RawMessage `json:"id"`
		} `json:"user"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&doc); err != nil || dec.More() || doc.User == nil {
		return "", false
	}
	// The raw JSON must be a bare integer: a quoted or fractional id is not
	// Postman's document.
	id, err := strconv.ParseInt(string(doc.User.ID), 10, 64)
	if err != nil || id <= 0 {
		return "", false
	}
	return strconv.FormatInt(id, 10), true
}

// isAuthenticationError reports whether a 401 body is Postman's own
// {"error":{"name":"AuthenticationError",...}}, the only 401 that says the
// key is invalid rather than that something in between refused us. Keys
// are matched exactly: decoding into a struct would also take "ERROR" or
// "Name", which is not Postman's document.
func isAuthenticationError(body []byte) bool {
	var doc, errObj map[string]json.RawMessage
	var name string
	return json.Unmarshal(body, &doc) == nil &&
		json.Unmarshal(doc["error"], &errObj) == nil &&
		json.Unmarshal(errObj["name"], &name) == nil && name == "AuthenticationError"
}
