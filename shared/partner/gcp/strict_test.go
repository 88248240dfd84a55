package gcppartner

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/googledouble"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/metrics"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

// TestUnexpectedAnswers feeds the verifier answers that look almost right
// (a known error code with the wrong status, a reason from the wrong
// domain, a 200 that is not the expected document, a redirect, an
// oversized body). The classification must stay strict: none of them is a
// verdict, and above all none is inactive. Two positive controls show the
// canned server is wired as the verifier expects.
func TestUnexpectedAnswers(t *testing.T) {
	d := googledouble.New(t)
	saKey, _, err := d.NewServiceAccountKey("strict@p.iam.gserviceaccount.com")
	if err != nil {
		t.Fatal(err)
	}
	googleErr := func(code int, status, reason, domain string) string {
		return `{"error":{"code":` + strconv.Itoa(code) + `,"message":"m","status":"` + status + `","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"` + reason + `","domain":"` + domain + `"}]}}`
	}
	big := `{"kind":"discovery#directoryList","pad":"` + strings.Repeat("x", 70*1024) + `"}`
	cases := []struct {
		name   string
		tt     finding.TokenType
		status int
		ctype  string
		body   string
		header map[string]string
		want   finding.Reason // "" for a PartnerError fault
	}{
		{"control: API_KEY_INVALID", finding.TokenGCPAPIKey, 400, "application/json", googleErr(400, "INVALID_ARGUMENT", "API_KEY_INVALID", "googleapis.com"), nil, finding.ReasonPartnerRejected},
		{"API_KEY_INVALID with 403", finding.TokenGCPAPIKey, 403, "application/json", googleErr(403, "PERMISSION_DENIED", "API_KEY_INVALID", "googleapis.com"), nil, ""},
		{"SERVICE_DISABLED with 400", finding.TokenGCPAPIKey, 400, "application/json", googleErr(400, "INVALID_ARGUMENT", "SERVICE_DISABLED", "googleapis.com"), nil, ""},
		{"API_KEY_INVALID from another domain", finding.TokenGCPAPIKey, 400, "application/json", googleErr(400, "INVALID_ARGUMENT", "API_KEY_INVALID", "evil.example"), nil, ""},
		{"400 without details", finding.TokenGCPAPIKey, 400, "application/json", `{"error":{"code":400,"message":"API key not valid. Please pass a valid API key."}}`, nil, ""},
		{"200 that is not a directory", finding.TokenGCPAPIKey, 200, "application/json", `{"kind":"something#else"}`, nil, ""},
		{"200 over the body limit", finding.TokenGCPAPIKey, 200, "application/json", big, nil, ""},
		{"302 to elsewhere", finding.TokenGCPAPIKey, 302, "text/html", "", map[string]string{"Location": "http://127.0.0.1:1/"}, ""},
		{"tokeninfo invalid_token with 401", finding.TokenGCPAccessToken, 401, "application/json", `{"error":"invalid_token","error_description":"Invalid Value"}`, nil, ""},
		{"tokeninfo other 400", finding.TokenGCPAccessToken, 400, "application/json", `{"error":"invalid_request"}`, nil, ""},
		{"tokeninfo 200 carrying an error", finding.TokenGCPAccessToken, 200, "application/json", `{"error":"invalid_token"}`, nil, ""},
		{"auth code invalid_scope", finding.TokenGCPOAuthClientSecret, 400, "application/json", `{"error":"invalid_scope"}`, nil, ""},
		{"auth code invalid_client with 403", finding.TokenGCPOAuthClientSecret, 403, "application/json", `{"error":"invalid_client"}`, nil, ""},
		{"auth code invalid_grant with 401", finding.TokenGCPOAuthClientSecret, 401, "application/json", `{"error":"invalid_grant"}`, nil, ""},
		{"auth code granted a token", finding.TokenGCPOAuthClientSecret, 200, "application/json", `{"access_token":"ya29.x","token_type":"Bearer","expires_in":3599}`, nil, ""},
		{"auth code 200 carrying an error", finding.TokenGCPOAuthClientSecret, 200, "application/json", `{"error":"invalid_client"}`, nil, ""},
		{"control: jwt Invalid JWT Signature.", finding.TokenGCPServiceAccountKey, 400, "application/json", `{"error":"invalid_grant","error_description":"Invalid JWT Signature."}`, nil, finding.ReasonPartnerRejected},
		{"jwt audience check", finding.TokenGCPServiceAccountKey, 400, "application/json", `{"error":"invalid_grant","error_description":"Invalid JWT: Failed audience check."}`, nil, ""},
		{"jwt unauthorized_client", finding.TokenGCPServiceAccountKey, 401, "application/json", `{"error":"unauthorized_client"}`, nil, ""},
		{"jwt invalid_grant with 401", finding.TokenGCPServiceAccountKey, 401, "application/json", `{"error":"invalid_grant"}`, nil, ""},
		{"jwt 200 without access token", finding.TokenGCPServiceAccountKey, 200, "application/json", `{"token_type":"Bearer","expires_in":3599}`, nil, ""},
		{"jwt 200 over the body limit", finding.TokenGCPServiceAccountKey, 200, "application/json", `{"access_token":"ya29.x","pad":"` + strings.Repeat("x", 70*1024) + `"}`, nil, ""},
		{"jwt 400 plain text", finding.TokenGCPServiceAccountKey, 400, "text/plain", "error=invalid_grant", nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var hits atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				hits.Add(1)
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.Header().Set("Content-Type", tc.ctype)
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			v, err := New(partnerhttp.Options{Endpoints: []*url.URL{mustURL(t, srv.URL), mustURL(t, srv.URL)}})
			if err != nil {
				t.Fatal(err)
			}
			var f finding.Finding
			switch tc.tt {
			case finding.TokenGCPAPIKey:
				f = mkFinding(tc.tt, googledouble.NewAPIKey(), "")
			case finding.TokenGCPAccessToken:
				f = mkFinding(tc.tt, googledouble.NewAccessToken(), "")
			case finding.TokenGCPOAuthClientSecret:
				f = mkFinding(tc.tt, googledouble.NewClientSecret(), googledouble.NewClientID())
			case finding.TokenGCPServiceAccountKey:
				f = mkFinding(tc.tt, string(saKey), "")
			}
			rec := metrics.New()
			verdict, err := v.Verify(metrics.NewContext(context.Background(), rec), tc.tt, f)
			leaks.outcome(t.Name(), tc.tt, verdict, err)
			if hits.Load() != 1 {
				t.Fatalf("server saw %d requests, want 1", hits.Load())
			}
			if tc.want != "" {
				if err != nil || verdict.Reason != tc.want {
					t.Fatalf("verdict %s, error %v; want %s", verdict.Reason, err, tc.want)
				}
				return
			}
			fault, ok := verify.AsFault(err)
			if !ok || fault.Kind != verify.PartnerError || fault.HTTPStatus != tc.status || fault.Network {
				t.Fatalf("verdict %s, error %v; want a partner_error fault with http %d", verdict.Reason, err, tc.status)
			}
			if s := rec.Snapshot()["gcp"]; s.Errors != 1 {
				t.Fatalf("metrics errors %d, want 1 (an unusable answer)", s.Errors)
			}
		})
	}
}
