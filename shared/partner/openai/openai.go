// Package openaipartner verifies OpenAI API keys: GET /v1/models (admin
// keys: GET /v1/organization/admin_api_keys?limit=1) with the key as a
// Bearer token. A 200 list means the key is live; so does OpenAI's 401
// saying a restricted key lacks a scope, since OpenAI only says that of a
// key it authenticated. A 401 whose error code is invalid_api_key means the
// key is not; every other answer proves nothing and is a *verify.Fault
// (partnerhttp turns resets, 429s, 5xx and HTML pages into faults before
// this package looks).
package openaipartner

import (
	"bytes"
	"context"
	"encoding/json"
	partnerdef "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

// EnvEndpoint names the variable holding OpenAI's base URL (contract §7).
const EnvEndpoint = "PARTNER_ENDPOINT_OPENAI"

// DefaultEndpoint is OpenAI's API base URL.
const DefaultEndpoint = "https://api.openai.com"

// DetailOrganization is the details key of the organization a confirmed
// key belongs to, from the openai-organization response header when sent.
const DetailOrganization = "openai_organization"

// RestrictedMessage is how OpenAI's 401 for a restricted key that lacks a
// scope begins (observed; see ../shared/PARTNERS.md, OpenAI).
const RestrictedMessage = "You have insufficient permissions for this operation."

// CodeInvalidAPIKey is the error code of OpenAI's 401 for a wrong, revoked
// or deleted key.
const CodeInvalidAPIKey = "invalid_api_key"

// Verifier checks openai_api_key and openai_admin_key findings. Build one
// per function instance and share it: its HTTP client keeps connections alive.
type Verifier struct{ c *partnerhttp.Client }

var _ verify.Verifier = (*Verifier)(nil)

// New returns a verifier that talks only to o.Endpoints[0], OpenAI's API.
func New(o partnerhttp.Options) (*Verifier, error) {
	c, err := partnerhttp.NewSingle(o, Name, "openai: new verifier", "api")
	if err != nil {
		return nil, err
	}
	return &Verifier{c: c}, nil
}

// request is the least intrusive call that authenticates each key type:
// listing models reads nothing of the key's owner; an admin key cannot
// list models, so it lists one admin key (names and redacted values only,
// which this package never reads).
func request(tokenType finding.TokenType, key string) (partnerhttp.Request, bool) {
	h := http.Header{"Authorization": {"Bearer " + key}, "Accept": {"application/json"}}
	switch tokenType {
	case TokenAPIKey:
		return partnerhttp.Request{Op: "GET /v1/models", Path: "v1/models", Header: h, Secrets: []string{key}}, true
	case TokenAdminKey:
		return partnerhttp.Request{Op: "GET /v1/organization/admin_api_keys", Path: "v1/organization/admin_api_keys",
			Query: url.Values{"limit": {"1"}}, Header: h, Secrets: []string{key}}, true
	}
	return partnerhttp.Request{}, false
}

// Verify asks OpenAI whether the finding's key is live. It returns a
// Verdict with a nil error, or a *verify.Fault when the answer proves nothing.
func (v *Verifier) Verify(ctx context.Context, tokenType finding.TokenType, f finding.Finding) (verify.Verdict, error) {
	key := f.Token.Reveal()
	r, ok := request(tokenType, key)
	if !ok {
		return verify.Unsupported(Name, tokenType, TokenAPIKey, TokenAdminKey), nil
	}
	a, err := v.c.Do(ctx, r)
	if err != nil {
		return verify.Verdict{}, err
	}
	switch e := parseError(a.Body); {
	case a.Status == http.StatusOK && isList(a.Body):
		return verify.Verdict{Reason: finding.ReasonPartnerConfirmed, Details: details(a.Header, key)}, nil
	case a.Status == http.StatusOK:
		return verify.Verdict{}, v.c.Unusable(ctx, r, a, "200 body is not an OpenAI list, which proves nothing")
	case a.Status == http.StatusUnauthorized && e.invalidKey:
		return verify.Verdict{Reason: finding.ReasonPartnerRejected}, nil
	case a.Status == http.StatusUnauthorized && e.restricted:
		// Only a key OpenAI authenticated is told which scopes it lacks.
		return verify.Verdict{Reason: finding.ReasonPartnerConfirmed, Details: details(a.Header, key)}, nil
	case a.Status == http.StatusUnauthorized:
		return verify.Verdict{}, v.c.Unusable(ctx, r, a, "401 that is neither OpenAI's invalid_api_key nor its missing-scopes answer")
	case a.Status == http.StatusForbidden:
		return verify.Verdict{}, v.c.Unusable(ctx, r, a, "403 (an unsupported region or a blocked caller) says nothing of the key")
	default:
		return verify.Verdict{}, v.c.Unusable(ctx, r, a, "unexpected http status "+strconv.Itoa(a.Status))
	}
}

// apiError is what a 401 body says, judged by keys matched exactly:
// decoding into a struct would also take "ERROR" or "Code", which is not
// OpenAI's document.
type apiError struct {
	invalidKey bool // {"error":{…,"code":"invalid_api_key"}}
	restricted bool // the missing-scopes message, with code null or absent, or as a bare string
}

func parseError(body []byte) apiError {
	doc, ok := object(body)
	if !ok {
		return apiError{}
	}
	raw, ok := doc["error"]
	if !ok {
		return apiError{}
	}
	// Observed at /v1/models for tokens without api.model.read: the message
	// as the bare value of "error".
	var flat string
	if json.Unmarshal(raw, &flat) == nil {
		return apiError{restricted: strings.HasPrefix(flat, RestrictedMessage)}
	}
	e, ok := object(raw)
	if !ok {
		return apiError{}
	}
	var code *string
	if c, ok := e["code"]; ok && json.Unmarshal(c, &code) != nil {
		return apiError{}
	}
	if code != nil {
		return apiError{invalidKey: *code == CodeInvalidAPIKey}
	}
	var msg string
	return apiError{restricted: json.Unmarshal(e["message"], &msg) == nil && strings.HasPrefix(msg, RestrictedMessage)}
}

// isList reports OpenAI's list document, {"object":"list","data":[…],…},
// the answer of both calls.
func isList(body []byte) bool {
	doc, ok := object(body)
	if !ok {
		return false
	}
	var kind string
	var data []json.RawMessage
	return json.Unmarshal(doc["object"], &kind) == nil && kind == "list" &&
		json.Unmarshal(doc["data"], &data) == nil && data != nil
}

// object decodes exactly one JSON object.
func object(b []byte) (map[string]json.RawMessage, bool) {
	var m map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&m); err != nil || m == nil || dec.More() {
		return nil, false
	}
	return m, true
}

// orgName is what an organization's identifier looks like (org-…, or the
// slug OpenAI sends): nothing else is copied into a result, so an e-mail
// address or text in its place is dropped.
var orgName = partnerdef.NewPattern(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$`)

// details names the key's organization when OpenAI's openai-organization
// header does (UNCONFIRMED that /v1/models sends it for every key). A value
// that looks like a key, or shares text with this one, is dropped: whatever
// answers may echo the credential.
func details(h http.Header, key string) finding.Details {
	org := strings.TrimSpace(h.Get("Openai-Organization"))
	if !orgName.MatchString(org) || strings.HasPrefix(org, "sk-") || strings.Contains(key, org) || strings.Contains(org, key) {
		return nil
	}
	return finding.Details{DetailOrganization: org}
}
