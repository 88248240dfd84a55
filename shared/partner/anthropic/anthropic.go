// Package anthropicpartner verifies Anthropic API keys and Admin API keys:
// GET /v1/models (admin keys: GET /v1/organizations/api_keys?limit=1) with
// the key in the x-api-key header and anthropic-version: 2023-06-01. A 200
// carrying a list document means the key is live; a 401 whose JSON body is
// Anthropic's authentication_error means it is not; a 403 permission_error
// means Anthropic knows the key but will not let it make this call, so it
// is live. Every other answer proves nothing and is a *verify.Fault
// (partnerhttp turns resets, 429s, 529 overloaded, other 5xx and HTML
// pages into faults before this package looks).
package anthropicpartner

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

// EnvEndpoint names the variable holding Anthropic's base URL (contract §7).
const EnvEndpoint = "PARTNER_ENDPOINT_ANTHROPIC"

// DefaultEndpoint is Anthropic's API base URL.
const DefaultEndpoint = "https://api.anthropic.com"

// APIVersion is the anthropic-version header every request must carry;
// without it Anthropic answers 400.
const APIVersion = "2023-06-01"

// Details keys of a confirmed key.
const (
	// DetailOrganizationID is the key's organization (a UUID), from the
	// anthropic-organization-id response header when Anthropic sends it.
	DetailOrganizationID = "anthropic_organization_id"
	// DetailRestricted is true when Anthropic authenticated the key but
	// refused it this call (403 permission_error).
	DetailRestricted = "anthropic_restricted"
)

// Verifier checks anthropic_api_key and anthropic_admin_key findings. Build
// one per function instance and share it: its HTTP client keeps
// connections alive.
type Verifier struct{ c *partnerhttp.Client }

var _ verify.Verifier = (*Verifier)(nil)

// New returns a verifier that talks only to o.Endpoints[0], Anthropic's API.
func New(o partnerhttp.Options) (*Verifier, error) {
	c, err := partnerhttp.NewSingle(o, Name, "anthropic: new verifier", "api")
	if err != nil {
		return nil, err
	}
	return &Verifier{c: c}, nil
}

// request is the least intrusive authenticated read for each key type: a
// list of models (a standard key can always read it, and it costs no
// tokens), or the first API key of the organization for an Admin key,
// which cannot call the regular API.
func request(tt finding.TokenType, key string) (partnerhttp.Request, bool) {
	h := http.Header{"X-Api-Key": {key}, "Anthropic-Version": {APIVersion}, "Accept": {"application/json"}}
	switch tt {
	case TokenAPIKey:
		return partnerhttp.Request{Op: "GET /v1/models", Path: "v1/models", Header: h, Secrets: []string{key}}, true
	case TokenAdminKey:
		return partnerhttp.Request{Op: "GET /v1/organizations/api_keys", Path: "v1/organizations/api_keys",
			Query: url.Values{"limit": {"1"}}, Header: h, Secrets: []string{key}}, true
	}
	return partnerhttp.Request{}, false
}

// Verify asks Anthropic whether the finding's key is live. It returns a
// Verdict with a nil error, or a *verify.Fault when the answer proves nothing.
func (v *Verifier) Verify(ctx context.Context, tokenType finding.TokenType, f finding.Finding) (verify.Verdict, error) {
	r, ok := request(tokenType, f.Token.Reveal())
	if !ok {
		return verify.Unsupported(Name, tokenType, TokenAPIKey, TokenAdminKey), nil
	}
	a, err := v.c.Do(ctx, r)
	if err != nil {
		return verify.Verdict{}, err
	}
	errType := errorType(a.Body)
	switch {
	case a.Status == http.StatusOK && isList(a.Body):
		return verify.Verdict{Reason: finding.ReasonPartnerConfirmed, Details: details(a.Header, false)}, nil
	case a.Status == http.StatusUnauthorized && errType == "authentication_error":
		return verify.Verdict{Reason: finding.ReasonPartnerRejected}, nil
	case a.Status == http.StatusForbidden && errType == "permission_error":
		// Anthropic answers 401 to a key it does not know; a 403
		// permission_error comes after it has authenticated the key (a
		// workspace or role that may not make this call), so the key is live.
		return verify.Verdict{Reason: finding.ReasonPartnerConfirmed, Details: details(a.Header, true)}, nil
	case a.Status == http.StatusOK:
		return verify.Verdict{}, v.c.Unusable(ctx, r, a, "200 body is not an Anthropic list document, which proves nothing")
	case a.Status == http.StatusUnauthorized || a.Status == http.StatusForbidden:
		return verify.Verdict{}, v.c.Unusable(ctx, r, a, "http "+strconv.Itoa(a.Status)+" without Anthropic's error body (a proxy's answer?)")
	default:
		return verify.Verdict{}, v.c.Unusable(ctx, r, a, "unexpected http status "+strconv.Itoa(a.Status))
	}
}

// isList reports whether a 200 body is one of Anthropic's list documents,
// {"data":[…],"has_more":…,…}, which both calls answer with.
func isList(body []byte) bool {
	var doc map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&doc); err != nil || dec.More() {
		return false
	}
	var data []json.RawMessage
	var hasMore bool
	return json.Unmarshal(doc["data"], &data) == nil && data != nil &&
		json.Unmarshal(doc["has_more"], &hasMore) == nil && doc["has_more"] != nil
}

// errorType returns error.type of Anthropic's error document,
// {"type":"error","error":{"type":…,"message":…},…}, or "" for any other
// body. Keys are matched exactly: decoding into a struct would also take
// "Error" or "TYPE", which is not Anthropic's document.
func errorType(body []byte) string {
	var doc, errObj map[string]json.RawMessage
	var top, typ string
	if json.Unmarshal(body, &doc) != nil || json.Unmarshal(doc["type"], &top) != nil || top != "error" ||
		json.Unmarshal(doc["error"], &errObj) != nil || json.Unmarshal(errObj["type"], &typ) != nil {
		return ""
	}
	return typ
}

var uuidForm = partnerdef.NewPattern(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// details keeps only non-secret metadata: the organization id when the
// header holds a UUID (anything else is not Anthropic's and is dropped),
// and whether the key was restricted.
func details(h http.Header, restricted bool) finding.Details {
	d := finding.Details{}
	if org := h.Get("Anthropic-Organization-Id"); uuidForm.MatchString(org) {
		d[DetailOrganizationID] = org
	}
	if restricted {
		d[DetailRestricted] = true
	}
	if len(d) == 0 {
		return nil
	}
	return d
}
