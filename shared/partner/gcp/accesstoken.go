package gcppartner

import (
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
			// Exp is the expiry in epoch seconds; Google sends it as a string.
			Exp json.RawMessage `json:"exp"`
		}
		if json.Unmarshal(a.Body, &info) != nil || info.Error != "" || (info.Azp == "" && info.Aud == "" && info.Scope == "") {
			return verify.Verdict{}, v.c.Unusable(ctx, r, a, "200 without token information")
		}
		verdict := verify.Verdict{Reason: finding.ReasonPartnerConfirmed, Details: tokenDetails(info.Scope, info.Exp, token)}
		if isServiceAccountEmail(info.Email) {
			verdict.Details[DetailClientEmail] = info.Email
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

// tokenScope is one OAuth scope as Google writes them: a URL
// (https://www.googleapis.com/auth/cloud-platform) or a short name
// (openid, email). Anything else is dropped, so that the details never
// carry text a proxy put there.
var tokenScope = partnerdef.NewPattern(`^[A-Za-z0-9._:/-]{1,256}$`)

// tokenDetails are what tokeninfo tells of a live access token besides its
// service account: its scopes, and its expiry (epoch seconds, as a string
// or a number) as RFC 3339. An unreadable value is left out: the token is
// live either way.
func tokenDetails(scope string, exp json.RawMessage, token string) finding.Details {
	d := finding.Details{}
	var scopes []string
	for _, s := range strings.Fields(scope) {
		if tokenScope.MatchString(s) && !strings.Contains(s, token) && len(scopes) < 64 {
			scopes = append(scopes, s)
		}
	}
	if len(scopes) > 0 {
		d[DetailScopes] = scopes
	}
	if n, err := strconv.ParseInt(strings.Trim(string(exp), `"`), 10, 64); err == nil {
		if t := time.Unix(n, 0).UTC(); t.Year() >= 2000 && t.Year() < 10000 {
			d[DetailExpiresAt] = t.Format(time.RFC3339)
		}
	}
	return d
}
