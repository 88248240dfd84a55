package gcppartner

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

// oauthErrorBody is RFC 6749's error response, which Google's token and
// tokeninfo endpoints use.
type oauthErrorBody struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

// parseOAuthError returns the error body, and false when body is not one.
// Its keys are matched exactly (see jsonObject).
func parseOAuthError(body []byte) (oauthErrorBody, bool) {
	doc, ok := jsonObject(body)
	if !ok {
		return oauthErrorBody{}, false
	}
	var e oauthErrorBody
	if json.Unmarshal(doc["error"], &e.Error) != nil || e.Error == "" {
		return oauthErrorBody{}, false
	}
	if raw, present := doc["error_description"]; present && json.Unmarshal(raw, &e.ErrorDescription) != nil {
		return oauthErrorBody{}, false
	}
	return e, true
}

// jsonObject decodes a JSON object with its keys exactly as sent. The
// answers that decide a verdict are read this way because decoding into a
// struct matches keys case-insensitively, the last of "error" and "Error"
// winning: a body Google never sends could then pass for Google's.
func jsonObject(raw []byte) (map[string]json.RawMessage, bool) {
	var m map[string]json.RawMessage
	return m, json.Unmarshal(raw, &m) == nil && m != nil
}

// verifyAccessToken asks tokeninfo about the token, sent in the form body
// so that it never appears in a URL.
func (v *Verifier) verifyAccessToken(ctx context.Context, token string) (verify.Verdict, error) {
	r := partnerhttp.Request{Op: opTokenInfo, Method: http.MethodPost, Endpoint: endpointOAuth, Path: "tokeninfo",
		Form: url.Values{"access_token": {token}}, Header: http.Header{"Accept": {"application/json"}}, Secrets: []string{token}}
	a, err := v.c.Do(ctx, r)
	if err != nil {
		return verify.Verdict{}, err
	}
	switch e, isOAuthError := parseOAuthError(a.Body); {
	case a.Status == http.StatusOK:
		var info struct {
			Azp   string `json:"azp"`
			Aud   string `json:"aud"`
			Scope string `json:"scope"`
			Email string `json:"email"`
			Error string `json:"error"`
		}
		if json.Unmarshal(a.Body, &info) != nil || info.Error != "" || (info.Azp == "" && info.Aud == "" && info.Scope == "") {
			return verify.Verdict{}, v.c.Unusable(ctx, r, a, "200 without token information")
		}
		verdict := verify.Verdict{Reason: finding.ReasonPartnerConfirmed}
		if isServiceAccountEmail(info.Email) {
			verdict.Details = finding.Details{DetailClientEmail: info.Email}
		}
		return verdict, nil
	case a.Status == http.StatusBadRequest && isOAuthError && e.Error == "invalid_token":
		return verify.Verdict{Reason: finding.ReasonPartnerRejected}, nil
	case a.Status == http.StatusBadRequest && isOAuthError:
		return verify.Verdict{}, v.c.Unusable(ctx, r, a, "error "+safeCode(e.Error, oauthCodeRE)+" proves nothing about the token")
	case a.Status == http.StatusBadRequest:
		return verify.Verdict{}, v.c.Unusable(ctx, r, a, "not an OAuth error body")
	default:
		return verify.Verdict{}, v.c.Unusable(ctx, r, a, "unexpected http status")
	}
}
