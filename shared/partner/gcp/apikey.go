package gcppartner

import (
	"context"
	"encoding/json"
	partnerdef "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner"
	"net/http"
	"net/url"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

// apiKeyBlockedRE matches the ErrorInfo reasons Google gives a valid key
// whose restrictions (API, referrer, IP, app) exclude this request.
var apiKeyBlockedRE = partnerdef.NewPattern(`^API_KEY_[A-Z_]+_BLOCKED$`)

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
	r := partnerhttp.Request{Op: opDiscovery, Endpoint: endpointDiscovery, Path: "discovery/v1/apis",
		Query:  url.Values{"name": {"discovery"}, "preferred": {"true"}},
		Header: http.Header{"X-Goog-Api-Key": {key}, "Accept": {"application/json"}}, Secrets: []string{key}}
	a, err := v.c.Do(ctx, r)
	if err != nil {
		return verify.Verdict{}, err
	}
	switch {
	case a.Status == http.StatusOK && isDirectoryList(a.Body):
		return verify.Verdict{Reason: finding.ReasonPartnerConfirmed}, nil
	case a.Status == http.StatusOK:
		return verify.Verdict{}, v.c.Unusable(ctx, r, a, "200 without a discovery directory list")
	case a.Status != http.StatusBadRequest && a.Status != http.StatusForbidden:
		return verify.Verdict{}, v.c.Unusable(ctx, r, a, "unexpected http status")
	}
	reasons, ok := googleReasons(a.Body)
	if !ok {
		return verify.Verdict{}, v.c.Unusable(ctx, r, a, "not a Google error body")
	}
	for _, reason := range reasons {
		switch {
		case a.Status == http.StatusBadRequest && reason == "API_KEY_INVALID":
			return verify.Verdict{Reason: finding.ReasonPartnerRejected}, nil
		case a.Status == http.StatusForbidden && (reason == "SERVICE_DISABLED" || apiKeyBlockedRE.MatchString(reason)):
			// A valid key whose restrictions or project exclude this call is live.
			return verify.Verdict{Reason: finding.ReasonPartnerConfirmed, Details: finding.Details{DetailErrorReason: reason}}, nil
		}
	}
	first := ""
	if len(reasons) > 0 {
		first = reasons[0]
	}
	return verify.Verdict{}, v.c.Unusable(ctx, r, a, "error reason "+safeCode(first, googleReasonRE)+" proves nothing about the key")
}

// isDirectoryList reports the discovery service's answer to the probe.
func isDirectoryList(body []byte) bool {
	var list struct {
		Kind string `json:"kind"`
	}
	return json.Unmarshal(body, &list) == nil && list.Kind == "discovery#directoryList"
}
