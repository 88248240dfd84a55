package gcppartner

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

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
	form := url.Values{"access_token": {token}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, v.tokenInfoURL, strings.NewReader(form))
	if err != nil {
		return verify.Verdict{}, &verify.Fault{Kind: verify.PartnerError, Partner: finding.PartnerGCP, Op: opTokenInfo, Msg: "cannot build request"}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := v.client.Do(req)
	if err != nil {
		return verify.Verdict{}, networkFault(opTokenInfo, err)
	}
	body, readErr := partnerhttp.ReadBody(resp, partnerhttp.DefaultMaxBody)
	if f := overloadFault(opTokenInfo, resp.StatusCode, resp.Header); f != nil {
		return verify.Verdict{}, f
	}
	if readErr != nil {
		return verify.Verdict{}, unusable(ctx, opTokenInfo, resp.StatusCode, "response body unreadable or too long")
	}
	switch resp.StatusCode {
	case http.StatusOK:
		var info struct {
			Azp   string `json:"azp"`
			Aud   string `json:"aud"`
			Scope string `json:"scope"`
			Email string `json:"email"`
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &info) != nil || info.Error != "" || (info.Azp == "" && info.Aud == "" && info.Scope == "") {
			return verify.Verdict{}, unusable(ctx, opTokenInfo, resp.StatusCode, "200 without token information")
		}
		verdict := verify.Verdict{Reason: finding.ReasonPartnerConfirmed}
		if isServiceAccountEmail(info.Email) {
			verdict.Details = map[string]string{DetailClientEmail: info.Email}
		}
		return verdict, nil
	case http.StatusBadRequest:
		e, ok := parseOAuthError(body)
		if !ok {
			return verify.Verdict{}, unusable(ctx, opTokenInfo, resp.StatusCode, "not an OAuth error body")
		}
		if e.Error == "invalid_token" {
			return verify.Verdict{Reason: finding.ReasonPartnerRejected}, nil
		}
		return verify.Verdict{}, unusable(ctx, opTokenInfo, resp.StatusCode, "error "+safeCode(e.Error, oauthCodeRE)+" proves nothing about the token")
	default:
		return verify.Verdict{}, unusable(ctx, opTokenInfo, resp.StatusCode, "unexpected http status")
	}
}
