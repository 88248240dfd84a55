package googledouble

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/registry"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
)

// answer is one decoded response of the double.
type answer struct {
	status int
	body   map[string]any
}

func do(t *testing.T, req *http.Request) answer {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode}
	if err := json.Unmarshal(b, &a.body); err != nil {
		t.Fatalf("%s %s: body is not JSON (http %d)", req.Method, req.URL.Path, resp.StatusCode)
	}
	return a
}

func get(t *testing.T, rawURL string, header map[string]string) answer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, rawURL, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return do(t, req)
}

func postForm(t *testing.T, rawURL string, form url.Values, basicUser, basicPass string) answer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, rawURL, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicUser != "" {
		req.SetBasicAuth(url.QueryEscape(basicUser), url.QueryEscape(basicPass))
	}
	return do(t, req)
}

// googleReason digs the ErrorInfo reason out of a Google API error body.
func googleReason(a answer) (code float64, status, reason string) {
	e, _ := a.body["error"].(map[string]any)
	code, _ = e["code"].(float64)
	status, _ = e["status"].(string)
	details, _ := e["details"].([]any)
	for _, d := range details {
		m, _ := d.(map[string]any)
		if m["@type"] == "type.googleapis.com/google.rpc.ErrorInfo" && m["domain"] == "googleapis.com" {
			reason, _ = m["reason"].(string)
		}
	}
	return code, status, reason
}

func TestDiscovery(t *testing.T) {
	d := New(t)
	probe := d.Discovery.URL + DiscoveryPath + "?name=discovery&preferred=true"
	cases := []struct {
		name       string
		key        func() string // "" sends no key
		wantStatus int
		wantReason string
	}{
		{"no key: the directory is public", func() string { return "" }, 200, ""},
		{"valid key", func() string { return d.AddAPIKey(APIKeyValid) }, 200, ""},
		{"unknown key", NewAPIKey, 400, "API_KEY_INVALID"},
		{"deleted key", func() string { k := d.AddAPIKey(APIKeyValid); d.DeleteAPIKey(k); return k }, 400, "API_KEY_INVALID"},
		{"service disabled", func() string { return d.AddAPIKey(APIKeyServiceDisabled) }, 403, "SERVICE_DISABLED"},
		{"service blocked", func() string { return d.AddAPIKey(APIKeyServiceBlocked) }, 403, "API_KEY_SERVICE_BLOCKED"},
		{"referrer blocked", func() string { return d.AddAPIKey(APIKeyReferrerBlocked) }, 403, "API_KEY_HTTP_REFERRER_BLOCKED"},
		{"ip blocked", func() string { return d.AddAPIKey(APIKeyIPBlocked) }, 403, "API_KEY_IP_ADDRESS_BLOCKED"},
		{"consumer suspended", func() string { return d.AddAPIKey(APIKeyConsumerSuspended) }, 403, "CONSUMER_SUSPENDED"},
		{"other 400", func() string { return d.AddAPIKey(APIKeyBadRequest) }, 400, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d.ResetControls()
			key := tc.key()
			hdr := map[string]string{}
			if key != "" {
				hdr["X-Goog-Api-Key"] = key
			}
			a := get(t, probe, hdr)
			if a.status != tc.wantStatus {
				t.Fatalf("status %d, want %d", a.status, tc.wantStatus)
			}
			if tc.wantStatus == 200 {
				if a.body["kind"] != "discovery#directoryList" {
					t.Fatalf("kind %v, want discovery#directoryList", a.body["kind"])
				}
				items, _ := a.body["items"].([]any)
				if len(items) != 1 {
					t.Fatalf("%d items for name=discovery&preferred=true, want 1", len(items))
				}
			} else {
				code, _, reason := googleReason(a)
				if int(code) != tc.wantStatus || reason != tc.wantReason {
					t.Fatalf("error code %v reason %q, want %d %q", code, reason, tc.wantStatus, tc.wantReason)
				}
			}
			if key != "" && d.Discovery.Controls.CountFor(key) != 1 {
				t.Fatalf("CountFor(key) = %d, want 1", d.Discovery.Controls.CountFor(key))
			}
			if d.URLCredentialLeaks() != 0 {
				t.Fatal("a header-only request was counted as a URL leak")
			}
		})
	}

	t.Run("API_KEY_INVALID has Google's exact shape", func(t *testing.T) {
		a := get(t, probe, map[string]string{"X-Goog-Api-Key": NewAPIKey()})
		code, status, reason := googleReason(a)
		msg := a.body["error"].(map[string]any)["message"]
		if code != 400 || status != "INVALID_ARGUMENT" || reason != "API_KEY_INVALID" || msg != "API key not valid. Please pass a valid API key." {
			t.Fatalf("got code %v status %q reason %q message %v", code, status, reason, msg)
		}
	})

	t.Run("key in the URL is answered but counted", func(t *testing.T) {
		d.ResetControls()
		key := d.AddAPIKey(APIKeyValid)
		a := get(t, probe+"&key="+key, nil)
		if a.status != 200 || d.URLCredentialLeaks() != 1 {
			t.Fatalf("status %d, leaks %d; want 200 and 1", a.status, d.URLCredentialLeaks())
		}
	})

	t.Run("unknown path", func(t *testing.T) {
		if a := get(t, d.Discovery.URL+"/nope", nil); a.status != 404 {
			t.Fatalf("status %d, want 404", a.status)
		}
	})
}

func TestInjectedFaultsAreGoogleShaped(t *testing.T) {
	d := New(t)
	cases := []struct {
		fault  partnertest.Fault
		status int
		api    string // Google API status on discovery
		oauth  string // OAuth error code on the token endpoint
	}{
		{partnertest.Fault500, 500, "INTERNAL", "internal_failure"},
		{partnertest.Fault503, 503, "UNAVAILABLE", "temporarily_unavailable"},
		{partnertest.Fault429, 429, "RESOURCE_EXHAUSTED", "rate_limit_exceeded"},
	}
	for _, tc := range cases {
		t.Run(tc.fault.String(), func(t *testing.T) {
			d.ResetControls()
			d.Discovery.Controls.Push(tc.fault)
			a := get(t, d.Discovery.URL+DiscoveryPath, nil)
			if code, status, _ := googleReason(a); a.status != tc.status || int(code) != tc.status || status != tc.api {
				t.Fatalf("discovery: http %d code %v status %q, want %d %q", a.status, code, status, tc.status, tc.api)
			}
			d.OAuth.Controls.Push(tc.fault)
			a = postForm(t, d.OAuth.URL+TokenPath, url.Values{"grant_type": {GrantAuthorization}}, "", "")
			if a.status != tc.status || a.body["error"] != tc.oauth {
				t.Fatalf("token: http %d error %v, want %d %q", a.status, a.body["error"], tc.status, tc.oauth)
			}
		})
	}
}

// claimSet is a JWT-bearer assertion's claims, as Google's client libraries send them.
type claimSet struct {
	Iss   string `json:"iss"`
	Scope string `json:"scope,omitempty"`
	Aud   string `json:"aud"`
	Exp   int64  `json:"exp"`
	Iat   int64  `json:"iat"`
}

// assertion signs claims with RS256 independently of the verifier's
// library, filling iat/exp as golang.org/x/oauth2/jwt does when unset.
func assertion(t *testing.T, key *rsa.PrivateKey, kid string, c *claimSet) string {
	t.Helper()
	if c.Iat == 0 {
		c.Iat = time.Now().Add(-10 * time.Second).Unix()
	}
	if c.Exp == 0 {
		c.Exp = c.Iat + 3600
	}
	hdr, _ := json.Marshal(jwtHeader{Alg: "RS256", Typ: "JWT", Kid: kid})
	claims, _ := json.Marshal(c)
	signed := base64.RawURLEncoding.EncodeToString(hdr) + "." + base64.RawURLEncoding.EncodeToString(claims)
	sum := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return signed + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func parseKeyFile(t *testing.T, keyJSON []byte) (serviceAccountKeyFile, *rsa.PrivateKey) {
	t.Helper()
	var f serviceAccountKeyFile
	if err := json.Unmarshal(keyJSON, &f); err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode([]byte(f.PrivateKey))
	if block == nil || block.Type != "PRIVATE KEY" {
		t.Fatal("private_key is not a PKCS#8 PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok || rk.N.BitLen() != 2048 {
		t.Fatal("private_key is not RSA-2048")
	}
	return f, rk
}

func TestJWTBearer(t *testing.T) {
	d := New(t)
	const email = "scanner@test-project.iam.gserviceaccount.com"
	keyJSON, kid, err := d.NewServiceAccountKey(email)
	if err != nil {
		t.Fatal(err)
	}
	f, key := parseKeyFile(t, keyJSON)
	if f.PrivateKeyID != kid || f.ClientEmail != email || f.Type != "service_account" || f.ProjectID != "test-project" || f.TokenURI != GoogleTokenURI {
		t.Fatalf("key file fields: id match %v, email %q, type %q, project %q, token_uri %q",
			f.PrivateKeyID == kid, f.ClientEmail, f.Type, f.ProjectID, f.TokenURI)
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	aud := d.OAuth.URL + TokenPath
	scope := "https://www.googleapis.com/auth/userinfo.email"
	now := time.Now()
	good := func() *claimSet { return &claimSet{Iss: email, Aud: aud, Scope: scope} }
	cases := []struct {
		name     string
		assert   func() string
		status   int
		errCode  string
		descPref string
	}{
		{"valid", func() string { return assertion(t, key, kid, good()) }, 200, "", ""},
		{"valid without kid", func() string { return assertion(t, key, "", good()) }, 200, "", ""},
		{"signed by another key", func() string { return assertion(t, other, kid, good()) }, 400, "invalid_grant", DescInvalidSignature},
		{"unknown kid", func() string { return assertion(t, key, "0123", good()) }, 400, "invalid_grant", DescInvalidSignature},
		{"alg none", func() string {
			parts := strings.Split(assertion(t, key, kid, good()), ".")
			return "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + parts[1] + "."
		}, 400, "invalid_grant", DescInvalidSignature},
		{"unknown account", func() string {
			c := good()
			c.Iss = "nobody@test-project.iam.gserviceaccount.com"
			return assertion(t, key, kid, c)
		}, 400, "invalid_grant", DescAccountNotFound},
		{"expired", func() string {
			c := good()
			c.Iat, c.Exp = now.Add(-3*time.Hour).Unix(), now.Add(-2*time.Hour).Unix()
			return assertion(t, key, kid, c)
		}, 400, "invalid_grant", "Invalid JWT: Token must be a short-lived token"},
		{"lifetime over an hour", func() string {
			c := good()
			c.Iat, c.Exp = now.Unix(), now.Add(2*time.Hour).Unix()
			return assertion(t, key, kid, c)
		}, 400, "invalid_grant", "Invalid JWT: Token must be a short-lived token"},
		{"wrong audience", func() string {
			c := good()
			c.Aud = GoogleTokenURI
			return assertion(t, key, kid, c)
		}, 400, "invalid_grant", "Invalid JWT: Failed audience check"},
		{"no scope", func() string {
			c := good()
			c.Scope = ""
			return assertion(t, key, kid, c)
		}, 400, "invalid_scope", ""},
		{"not a JWT", func() string { return "not-a-jwt" }, 400, "invalid_request", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := postForm(t, d.OAuth.URL+TokenPath, url.Values{"grant_type": {GrantJWTBearer}, "assertion": {tc.assert()}}, "", "")
			if a.status != tc.status {
				t.Fatalf("status %d, want %d (error %v)", a.status, tc.status, a.body["error"])
			}
			if tc.status == 200 {
				tok, _ := a.body["access_token"].(string)
				if !strings.HasPrefix(tok, "ya29.") || a.body["token_type"] != "Bearer" || a.body["expires_in"] != float64(3599) {
					t.Fatalf("token response has wrong shape (token_type %v, expires_in %v)", a.body["token_type"], a.body["expires_in"])
				}
				info := postForm(t, d.OAuth.URL+TokenInfoPath, url.Values{"access_token": {tok}}, "", "")
				if info.status != 200 || info.body["email"] != email || info.body["scope"] != scope {
					t.Fatalf("tokeninfo of the granted token: http %d email %v scope %v", info.status, info.body["email"], info.body["scope"])
				}
				return
			}
			desc, _ := a.body["error_description"].(string)
			if a.body["error"] != tc.errCode || !strings.HasPrefix(desc, tc.descPref) {
				t.Fatalf("error %v %q, want %q %q...", a.body["error"], desc, tc.errCode, tc.descPref)
			}
		})
	}

	t.Run("deleted key then deleted account", func(t *testing.T) {
		keyJSON2, kid2, err := d.NewServiceAccountKey(email)
		if err != nil {
			t.Fatal(err)
		}
		_, key2 := parseKeyFile(t, keyJSON2)
		if err := d.DeleteServiceAccountKey(kid2); err != nil {
			t.Fatal(err)
		}
		a := postForm(t, d.OAuth.URL+TokenPath, url.Values{"grant_type": {GrantJWTBearer}, "assertion": {assertion(t, key2, kid2, good())}}, "", "")
		if a.body["error_description"] != DescInvalidSignature {
			t.Fatalf("deleted key: %v", a.body["error_description"])
		}
		if err := d.DeleteServiceAccount(email); err != nil {
			t.Fatal(err)
		}
		a = postForm(t, d.OAuth.URL+TokenPath, url.Values{"grant_type": {GrantJWTBearer}, "assertion": {assertion(t, key, kid, good())}}, "", "")
		if a.body["error_description"] != DescAccountNotFound {
			t.Fatalf("deleted account: %v", a.body["error_description"])
		}
		if d.DeleteServiceAccount(email) != ErrNotFound || d.DeleteServiceAccountKey(kid2) != ErrNotFound {
			t.Fatal("deleting twice should report ErrNotFound")
		}
	})

	t.Run("skewed server clock", func(t *testing.T) {
		d2 := New(t)
		keyJSON, kid, err := d2.NewServiceAccountKey(email)
		if err != nil {
			t.Fatal(err)
		}
		_, key := parseKeyFile(t, keyJSON)
		d2.SetClock(func() time.Time { return time.Now().Add(2 * time.Hour) })
		c := &claimSet{Iss: email, Aud: d2.OAuth.URL + TokenPath, Scope: scope}
		a := postForm(t, d2.OAuth.URL+TokenPath, url.Values{"grant_type": {GrantJWTBearer}, "assertion": {assertion(t, key, kid, c)}}, "", "")
		if a.body["error_description"] != DescJWTTimeframe {
			t.Fatalf("got %v", a.body["error_description"])
		}
	})
}

func TestAuthorizationCode(t *testing.T) {
	d := New(t)
	id, secret := d.AddOAuthClient(ClientActive)
	delID, delSecret := d.AddOAuthClient(ClientDeleted)
	disID, disSecret := d.AddOAuthClient(ClientDisabled)
	form := func(id, secret, code string) url.Values {
		v := url.Values{"grant_type": {GrantAuthorization}, "redirect_uri": {"http://localhost"}}
		if id != "" {
			v.Set("client_id", id)
		}
		if secret != "" {
			v.Set("client_secret", secret)
		}
		if code != "" {
			v.Set("code", code)
		}
		return v
	}
	cases := []struct {
		name        string
		form        url.Values
		user, pass  string
		status      int
		errCode     string
		description string
	}{
		{"valid pair in form", form(id, secret, "x"), "", "", 400, "invalid_grant", DescMalformedCode},
		{"valid pair in basic auth", form("", "", "x"), id, secret, 400, "invalid_grant", DescMalformedCode},
		{"wrong secret", form(id, NewClientSecret(), "x"), "", "", 401, "invalid_client", "Unauthorized"},
		{"wrong secret in basic auth", form("", "", "x"), id, NewClientSecret(), 401, "invalid_client", "Unauthorized"},
		{"unknown client", form(NewClientID(), secret, "x"), "", "", 401, "invalid_client", "The OAuth client was not found."},
		{"deleted client", form(delID, delSecret, "x"), "", "", 401, "invalid_client", "The OAuth client was deleted."},
		{"disabled client", form(disID, disSecret, "x"), "", "", 401, "disabled_client", "The OAuth client was disabled."},
		{"no client", form("", "", "x"), "", "", 400, "invalid_request", "Could not determine client ID from request."},
		{"no code", form(id, secret, ""), "", "", 400, "invalid_request", "Missing required parameter: code"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := postForm(t, d.OAuth.URL+TokenPath, tc.form, tc.user, tc.pass)
			if a.status != tc.status || a.body["error"] != tc.errCode || a.body["error_description"] != tc.description {
				t.Fatalf("http %d %v %v, want %d %q %q", a.status, a.body["error"], a.body["error_description"], tc.status, tc.errCode, tc.description)
			}
		})
	}
	if d.OAuth.Controls.CountFor(id) != 5 { // both valid, both wrong-secret and the no-code rows
		t.Fatalf("CountFor(client id) = %d, want 5", d.OAuth.Controls.CountFor(id))
	}

	t.Run("secret in the URL is counted", func(t *testing.T) {
		d.ResetControls()
		req, _ := http.NewRequest(http.MethodPost, d.OAuth.URL+TokenPath+"?client_secret="+secret, strings.NewReader(form(id, secret, "x").Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		do(t, req)
		if d.URLCredentialLeaks() != 1 {
			t.Fatalf("leaks %d, want 1", d.URLCredentialLeaks())
		}
	})

	t.Run("not form-encoded", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, d.OAuth.URL+TokenPath, strings.NewReader(`{"grant_type":"authorization_code"}`))
		req.Header.Set("Content-Type", "application/json")
		if a := do(t, req); a.status != 400 || a.body["error"] != "invalid_request" {
			t.Fatalf("http %d %v", a.status, a.body["error"])
		}
	})

	t.Run("unsupported grant", func(t *testing.T) {
		if a := postForm(t, d.OAuth.URL+TokenPath, url.Values{"grant_type": {"password"}}, "", ""); a.body["error"] != "unsupported_grant_type" {
			t.Fatalf("got %v", a.body["error"])
		}
	})
}

func TestTokenInfo(t *testing.T) {
	d := New(t)
	live := d.AddAccessToken(TokenInfo{Azp: "a.apps.googleusercontent.com", Aud: "a.apps.googleusercontent.com", Scope: "openid"})
	expired := d.AddAccessToken(TokenInfo{Azp: "a", Aud: "a", Scope: "openid", Expiry: time.Now().Add(-time.Minute)})
	revoked := d.AddAccessToken(TokenInfo{Azp: "a", Aud: "a", Scope: "openid"})
	d.RevokeAccessToken(revoked)
	cases := []struct {
		name   string
		token  string
		status int
	}{
		{"live", live, 200},
		{"expired", expired, 400},
		{"revoked", revoked, 400},
		{"unknown", NewAccessToken(), 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := postForm(t, d.OAuth.URL+TokenInfoPath, url.Values{"access_token": {tc.token}}, "", "")
			if a.status != tc.status {
				t.Fatalf("status %d, want %d", a.status, tc.status)
			}
			if tc.status == 200 {
				if _, ok := a.body["exp"].(string); !ok || a.body["aud"] != "a.apps.googleusercontent.com" {
					t.Fatalf("body shape: exp %T aud %v", a.body["exp"], a.body["aud"])
				}
			} else if a.body["error"] != "invalid_token" || a.body["error_description"] != "Invalid Value" {
				t.Fatalf("error %v %v", a.body["error"], a.body["error_description"])
			}
		})
	}
	t.Run("token in the URL is answered but counted", func(t *testing.T) {
		d.ResetControls()
		if a := get(t, d.OAuth.URL+TokenInfoPath+"?access_token="+live, nil); a.status != 200 || d.URLCredentialLeaks() != 1 {
			t.Fatalf("status %d leaks %d", a.status, d.URLCredentialLeaks())
		}
	})
}

func TestGeneratedCredentialsPassTheFormatCheck(t *testing.T) {
	d := New(t)
	keyJSON, _, err := d.NewServiceAccountKey("a@p.iam.gserviceaccount.com")
	if err != nil {
		t.Fatal(err)
	}
	cases := []finding.Finding{
		{ID: "1", RuleID: "GCP API key", Token: finding.Secret(NewAPIKey())},
		{ID: "2", RuleID: "Google (GCP) Service-account", Token: finding.Secret(keyJSON)},
		{ID: "3", RuleID: "GCP OAuth client secret", Token: finding.Secret(NewClientSecret()),
			Context: map[string]finding.Secret{finding.ContextGCPClientID: finding.Secret(NewClientID())}},
		{ID: "4", RuleID: "GCP OAuth access token", Token: finding.Secret(NewAccessToken())},
	}
	for _, f := range cases {
		if _, reason, msg := registry.Check(f); reason != "" {
			t.Errorf("%s: %s: %s", f.RuleID, reason, msg)
		}
	}
	k1, k2, s1, s2 := NewAPIKey(), NewAPIKey(), NewClientSecret(), NewClientSecret()
	if k1 == k2 || s1 == s2 {
		t.Fatal("generators repeat themselves")
	}
}
