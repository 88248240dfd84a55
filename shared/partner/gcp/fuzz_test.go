package gcppartner

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/verifiertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

// fuzzCreds are the credentials of the four GCP token types that the
// fuzzer's responses may echo ({{TOKEN}}, {{SECRET}}). The string ones are
// generated from a fixed seed so that a failing input reproduces; the
// corpus holds only the placeholders.
type fuzzCreds struct {
	apiKey, clientID, clientSecret, accessToken string
	saKey, saPEM                                string
}

func newFuzzCreds(tb testing.TB, tokenURI string) fuzzCreds {
	tb.Helper()
	r := verifiertest.NewFuzzRand(0x6c9, 0xf022)
	const urlSafe = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	pick := func(n int) string { return r.Pick(urlSafe, n) }
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		tb.Fatal(err)
	}
	c := fuzzCreds{
		apiKey:       "AIza" + pick(35),
		clientID:     "1234-" + strings.ToLower(pick(12)) + ".apps.googleusercontent.com",
		clientSecret: "GOCSPX-" + pick(28),
		accessToken:  "ya29." + pick(120),
		saPEM:        string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
	}
	key, err := json.Marshal(map[string]string{
		"type": "service_account", "project_id": "fuzz-project", "private_key_id": "0123456789abcdef",
		"private_key": c.saPEM, "client_email": "fuzz@fuzz-project.iam.gserviceaccount.com",
		"client_id": "123456789012345678901", "token_uri": tokenURI,
	})
	if err != nil {
		tb.Fatal(err)
	}
	c.saKey = string(key)
	return c
}

// fuzzTokenTypes are the token types FuzzGoogleAnswer picks from.
var fuzzTokenTypes = []finding.TokenType{
	finding.TokenGCPAPIKey, finding.TokenGCPAccessToken, finding.TokenGCPOAuthClientSecret, finding.TokenGCPServiceAccountKey,
}

// finding returns the finding of token type tt and the values the
// placeholders {{TOKEN}} and {{SECRET}} stand for.
func (c fuzzCreds) finding(tt finding.TokenType) (finding.Finding, string, string) {
	f := finding.Finding{ID: "f-1", RuleID: ruleFor[tt]}
	switch tt {
	case finding.TokenGCPAPIKey:
		f.Token = finding.Secret(c.apiKey)
	case finding.TokenGCPAccessToken:
		f.Token = finding.Secret(c.accessToken)
	case finding.TokenGCPOAuthClientSecret:
		f.Token = finding.Secret(c.clientSecret)
		f.Context = map[string]finding.Secret{finding.ContextGCPClientID: finding.Secret(c.clientID)}
	case finding.TokenGCPServiceAccountKey:
		f.Token = finding.Secret(c.saKey)
		return f, c.saPEM, pemLines(c.saPEM)[0]
	}
	return f, f.Token.Reveal(), f.Token.Reveal()
}

// secrets are the fragments no verdict or fault may contain: every
// credential, the private key line by line.
func (c fuzzCreds) secrets() []string {
	return append([]string{c.apiKey, c.clientSecret, c.accessToken}, pemLines(c.saPEM)...)
}

// FuzzGoogleAnswer feeds arbitrary answers (status, headers, body, a
// dropped or truncated connection) from the discovery, token and tokeninfo
// endpoints to the real verifier, for each of the four GCP token types,
// and holds the classification to the contract: it never panics; a fault
// (no answer, a truncated body, 429, 5xx) is always a *verify.Fault, never
// a verdict; partner_rejected comes only from the exact Google answer that
// proves rejection for that token type; no credential appears in a verdict
// or fault; and the canary named in the service-account key's token_uri
// never sees a request.
func FuzzGoogleAnswer(f *testing.F) {
	srv := partnertest.NewFuzzServer(f)
	var canaryHits atomic.Int64
	canary := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		canaryHits.Add(1)
		_, _ = io.WriteString(w, `{"access_token":"ya29.canary","expires_in":3599,"token_type":"Bearer"}`)
	}))
	f.Cleanup(canary.Close)
	creds := newFuzzCreds(f, canary.URL+"/token")
	u := srv.Endpoint()
	v, err := New(partnerhttp.Options{Endpoints: []*url.URL{u, u}, Timeout: 5 * time.Second})
	if err != nil {
		f.Fatal(err)
	}
	verifyWith := func(mode byte, status int, header string, body []byte) (finding.TokenType, partnertest.FuzzAnswer, verify.Verdict, error) {
		tt := fuzzTokenTypes[int(mode>>2)%len(fuzzTokenTypes)]
		fd, token, secret := creds.finding(tt)
		resp := partnertest.NewFuzzAnswer(mode, status, header, body, "{{TOKEN}}", token, "{{SECRET}}", secret)
		srv.Set(resp)
		verdict, err := v.Verify(context.Background(), tt, fd)
		return tt, resp, verdict, err
	}
	// Controls: Google's exact rejection of each token type is a rejection
	// here too, so the target is wired as the verifier expects. They go to
	// the package's leak log, which TestMain checks.
	for i, tt := range fuzzTokenTypes {
		fd, _, _ := creds.finding(tt)
		leaks.finding(fd)
		_, _, verdict, err := verifyWith(byte(i<<2), fuzzRejections[tt].status, "Content-Type: application/json", []byte(fuzzRejections[tt].body))
		leaks.outcome("fuzz control", tt, verdict, err)
		if err != nil || verdict.Reason != finding.ReasonPartnerRejected {
			f.Fatalf("control %s: verdict %q, error %v; want partner_rejected", tt, verdict.Reason, err)
		}
	}
	f.Fuzz(func(t *testing.T, mode byte, status int, header string, body []byte) {
		tt, resp, verdict, err := verifyWith(mode, status, header, body)
		if n := canaryHits.Load(); n != 0 {
			t.Fatalf("%s: the token_uri canary saw %d requests", tt, n)
		}
		if !(verifiertest.FuzzContract{Secrets: creds.secrets(), Window: window, Label: string(tt)}).Check(t, resp, verdict, err) {
			return
		}
		switch verdict.Reason {
		case finding.ReasonPartnerConfirmed:
		case finding.ReasonPartnerRejected:
			if !isGoogleRejection(tt, resp.Status, resp.Body) {
				t.Fatalf("%s: partner_rejected from http %d with a body that is not Google's rejection: %q", tt, resp.Status, finding.Scrub(string(resp.Body), creds.secrets()...))
			}
		default:
			t.Fatalf("%s: verdict %q for a well-formed credential", tt, verdict.Reason)
		}
	})
}

// fuzzRejections are Google's answers that prove a credential dead.
var fuzzRejections = map[finding.TokenType]struct {
	status int
	body   string
}{
	finding.TokenGCPAPIKey: {400, `{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT",` +
		`"details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com","metadata":{"service":"discovery.googleapis.com"}}]}}`},
	finding.TokenGCPAccessToken:       {400, `{"error":"invalid_token","error_description":"Invalid Value"}`},
	finding.TokenGCPOAuthClientSecret: {401, `{"error":"invalid_client","error_description":"The OAuth client was not found."}`},
	finding.TokenGCPServiceAccountKey: {400, `{"error":"invalid_grant","error_description":"Invalid JWT Signature."}`},
}

// isGoogleRejection is the exact answer that proves a credential of type
// tt dead, with JSON keys matched exactly as Google spells them: for an
// API key a 400 Google error envelope (non-zero integer code) with an
// ErrorInfo of domain googleapis.com and reason API_KEY_INVALID; for an
// access token a 400 invalid_token; for a client secret a 400 or 401
// invalid_client; for a service-account key a 400 invalid_grant whose
// description does not blame the assertion ("Invalid JWT: ...").
func isGoogleRejection(tt finding.TokenType, status int, body []byte) bool {
	doc, ok := verifiertest.JSONObject(body)
	if !ok {
		return false
	}
	code, isString := verifiertest.JSONString(doc, "error")
	switch tt {
	case finding.TokenGCPAccessToken:
		return status == http.StatusBadRequest && isString && code == "invalid_token"
	case finding.TokenGCPOAuthClientSecret:
		return (status == http.StatusBadRequest || status == http.StatusUnauthorized) && isString && code == "invalid_client"
	case finding.TokenGCPServiceAccountKey:
		if status != http.StatusBadRequest || !isString || code != "invalid_grant" {
			return false
		}
		if _, present := doc["error_description"]; !present {
			return true
		}
		desc, ok := verifiertest.JSONString(doc, "error_description")
		return ok && !strings.HasPrefix(desc, "Invalid JWT:")
	case finding.TokenGCPAPIKey:
		env, ok := verifiertest.JSONObject(doc["error"])
		var n int
		var details []json.RawMessage
		if status != http.StatusBadRequest || !ok || json.Unmarshal(env["code"], &n) != nil || n == 0 || json.Unmarshal(env["details"], &details) != nil {
			return false
		}
		for _, d := range details {
			info, ok := verifiertest.JSONObject(d)
			if !ok {
				continue
			}
			typ, _ := verifiertest.JSONString(info, "@type")
			domain, _ := verifiertest.JSONString(info, "domain")
			reason, _ := verifiertest.JSONString(info, "reason")
			if typ == "type.googleapis.com/google.rpc.ErrorInfo" && domain == "googleapis.com" && reason == "API_KEY_INVALID" {
				return true
			}
		}
	}
	return false
}

// TestFuzzOracle shows the rejection oracle tells Google's answers from
// look-alikes.
func TestFuzzOracle(t *testing.T) {
	cases := []struct {
		name   string
		tt     finding.TokenType
		status int
		body   string
		want   bool
	}{
		{"API key: Google's answer", finding.TokenGCPAPIKey, 400, fuzzRejections[finding.TokenGCPAPIKey].body, true},
		{"API key: with 403", finding.TokenGCPAPIKey, 403, fuzzRejections[finding.TokenGCPAPIKey].body, false},
		{"API key: upper-case key", finding.TokenGCPAPIKey, 400, strings.Replace(fuzzRejections[finding.TokenGCPAPIKey].body, `"reason"`, `"REASON"`, 1), false},
		{"API key: code 0", finding.TokenGCPAPIKey, 400, strings.Replace(fuzzRejections[finding.TokenGCPAPIKey].body, `"code":400`, `"code":0`, 1), false},
		{"access token: Google's answer", finding.TokenGCPAccessToken, 400, fuzzRejections[finding.TokenGCPAccessToken].body, true},
		{"access token: Error key", finding.TokenGCPAccessToken, 400, `{"Error":"invalid_token"}`, false},
		{"client secret: 400", finding.TokenGCPOAuthClientSecret, 400, `{"error":"invalid_client"}`, true},
		{"client secret: 403", finding.TokenGCPOAuthClientSecret, 403, `{"error":"invalid_client"}`, false},
		{"service account: Google's answer", finding.TokenGCPServiceAccountKey, 400, fuzzRejections[finding.TokenGCPServiceAccountKey].body, true},
		{"service account: no description", finding.TokenGCPServiceAccountKey, 400, `{"error":"invalid_grant"}`, true},
		{"service account: assertion blamed", finding.TokenGCPServiceAccountKey, 400, `{"error":"invalid_grant","error_description":"Invalid JWT: Token must be a short-lived token"}`, false},
		{"service account: description a number", finding.TokenGCPServiceAccountKey, 400, `{"error":"invalid_grant","error_description":5}`, false},
		{"HTML", finding.TokenGCPAccessToken, 400, `<html>invalid_token</html>`, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := isGoogleRejection(tc.tt, tc.status, []byte(tc.body)); got != tc.want {
				t.Fatalf("isGoogleRejection = %v, want %v", got, tc.want)
			}
		})
	}
}
