package gcppartner

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

// apiKeyBlockedRE matches the ErrorInfo reasons Google gives a valid key
// whose restrictions (API, referrer, IP, app) exclude this request.
var apiKeyBlockedRE = regexp.MustCompile(`^API_KEY_[A-Z_]+_BLOCKED$`)

const errorInfoType = "type.googleapis.com/google.rpc.ErrorInfo"

// googleReasons returns the ErrorInfo reasons of a Google error body
// ({"error":{"code":400,"details":[{"@type":...,"reason":...,"domain":...}]}},
// keys matched exactly, see jsonObject), and false when the body is not
// Google's error envelope at all.
func googleReasons(body []byte) ([]string, bool) {
	doc, ok := jsonObject(body)
	if !ok {
		return nil, false
	}
	env, ok := jsonObject(doc["error"])
	var code int
	if !ok || json.Unmarshal(env["code"], &code) != nil || code == 0 {
		return nil, false
	}
	var details []json.RawMessage
	if raw, present := env["details"]; present && json.Unmarshal(raw, &details) != nil {
		return nil, false
	}
	var reasons []string
	for _, raw := range details {
		d, ok := jsonObject(raw)
		if !ok {
			return nil, false
		}
		var typ, domain, reason string
		if json.Unmarshal(d["@type"], &typ) == nil && json.Unmarshal(d["domain"], &domain) == nil &&
			json.Unmarshal(d["reason"], &reason) == nil && typ == errorInfoType && domain == "googleapis.com" && reason != "" {
			reasons = append(reasons, reason)
		}
	}
	return reasons, true
}

// verifyAPIKey lists the discovery directory with the key in the
// X-Goog-Api-Key header (never the URL, which proxies and logs keep).
// The directory is public, so only a key Google rejects fails; a key that
// is valid but restricted or whose project lacks the API is still live.
func (v *Verifier) verifyAPIKey(ctx context.Context, key string) (verify.Verdict, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.discoveryURL, nil)
	if err != nil {
		return verify.Verdict{}, &verify.Fault{Kind: verify.PartnerError, Partner: finding.PartnerGCP, Op: opDiscovery, Msg: "cannot build request"}
	}
	req.Header.Set("X-Goog-Api-Key", key)
	req.Header.Set("Accept", "application/json")
	resp, err := v.client.Do(req)
	if err != nil {
		return verify.Verdict{}, networkFault(opDiscovery, err)
	}
	body, readErr := partnerhttp.ReadBody(resp, partnerhttp.DefaultMaxBody)
	if f := overloadFault(opDiscovery, resp.StatusCode, resp.Header); f != nil {
		return verify.Verdict{}, f
	}
	if readErr != nil {
		return verify.Verdict{}, unusable(ctx, opDiscovery, resp.StatusCode, "response body unreadable or too long")
	}
	switch resp.StatusCode {
	case http.StatusOK:
		var list struct {
			Kind string `json:"kind"`
		}
		if json.Unmarshal(body, &list) != nil || list.Kind != "discovery#directoryList" {
			return verify.Verdict{}, unusable(ctx, opDiscovery, resp.StatusCode, "200 without a discovery directory list")
		}
		return verify.Verdict{Reason: finding.ReasonPartnerConfirmed}, nil
	case http.StatusBadRequest, http.StatusForbidden:
		reasons, ok := googleReasons(body)
		if !ok {
			return verify.Verdict{}, unusable(ctx, opDiscovery, resp.StatusCode, "not a Google error body")
		}
		for _, r := range reasons {
			switch {
			case resp.StatusCode == http.StatusBadRequest && r == "API_KEY_INVALID":
				return verify.Verdict{Reason: finding.ReasonPartnerRejected}, nil
			case resp.StatusCode == http.StatusForbidden && (r == "SERVICE_DISABLED" || apiKeyBlockedRE.MatchString(r)):
				return verify.Verdict{Reason: finding.ReasonPartnerConfirmed, Details: map[string]string{DetailErrorReason: r}}, nil
			}
		}
		first := ""
		if len(reasons) > 0 {
			first = reasons[0]
		}
		return verify.Verdict{}, unusable(ctx, opDiscovery, resp.StatusCode, "error reason "+safeCode(first, googleReasonRE)+" proves nothing about the key")
	default:
		return verify.Verdict{}, unusable(ctx, opDiscovery, resp.StatusCode, "unexpected http status")
	}
}
