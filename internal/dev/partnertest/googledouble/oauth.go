package googledouble

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Paths and grant types of the token endpoint.
const (
	TokenPath          = "/token"
	TokenInfoPath      = "/tokeninfo"
	GrantJWTBearer     = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	GrantAuthorization = "authorization_code"
)

// Google's error descriptions the verifier's classification depends on.
// The error codes are RFC 6749 §5.2's; the descriptions are as observed in
// public reports of Google's token endpoint (Google documents the codes, not
// the texts), and the verifier reads the code, except to tell a deleted key
// or account from a clock problem.
const (
	DescInvalidSignature = "Invalid JWT Signature."
	DescAccountNotFound  = "Invalid grant: account not found"
	DescMalformedCode    = "Malformed auth code."
	DescJWTTimeframe     = "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the assertion and use a clock with skew to account for clock differences between systems."
)

// clockSkew is how far a JWT's iat may lie in the future, as Google tolerates.
const clockSkew = 5 * time.Minute

// maxFormBytes bounds a request body; a JWT assertion is about 1 KB.
const maxFormBytes = 64 * 1024

type oauthError struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description,omitempty"`
}

func writeOAuthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Cache-Control", "no-cache, no-store, max-age=0, must-revalidate")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, status, oauthError{Error: code, ErrorDescription: desc})
}

// writeOAuthFault is the OAuth server's partnertest.ErrorWriter: injected
// 500/503/429 faults in the token endpoint's OAuth error format. Google
// documents no rate-limit answer or header for its token endpoint; these
// bodies are the double's own, in RFC 6749's shape (temporarily_unavailable
// is RFC 6749 §4.1.2.1's).
func writeOAuthFault(w http.ResponseWriter, status int, _, _ string) {
	switch status {
	case http.StatusTooManyRequests:
		writeOAuthError(w, status, "rate_limit_exceeded", "Rate Limit Exceeded")
	case http.StatusServiceUnavailable:
		writeOAuthError(w, status, "temporarily_unavailable", "The service is currently unavailable.")
	default:
		writeOAuthError(w, status, "internal_failure", "Backend Error")
	}
}

func (d *Double) oauthHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(TokenPath, d.serveToken)
	mux.HandleFunc(TokenInfoPath, d.serveTokenInfo)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeOAuthError(w, http.StatusNotFound, "not_found", "Not Found")
	})
	return mux
}

// countURLLeak records a request whose query holds any of names.
func (d *Double) countURLLeak(r *http.Request, names ...string) {
	q := r.URL.Query()
	for _, n := range names {
		if q.Has(n) {
			d.urlLeaks.Add(1)
			return
		}
	}
}

// readForm parses a form-encoded body only (never the query), bounded.
func readForm(w http.ResponseWriter, r *http.Request) (url.Values, bool) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "application/x-www-form-urlencoded" {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "Invalid Content-Type, expected application/x-www-form-urlencoded.")
		return nil, false
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "Invalid request body.")
		return nil, false
	}
	return r.PostForm, true
}

func (d *Double) serveToken(w http.ResponseWriter, r *http.Request) {
	d.countURLLeak(r, "assertion", "client_secret", "code", "access_token", "refresh_token")
	if r.Method != http.MethodPost {
		writeOAuthError(w, http.StatusMethodNotAllowed, "invalid_request", "Method not allowed.")
		return
	}
	form, ok := readForm(w, r)
	if !ok {
		return
	}
	switch gt := form.Get("grant_type"); gt {
	case GrantJWTBearer:
		d.jwtBearer(w, r, form)
	case GrantAuthorization:
		d.authorizationCode(w, r, form)
	case "":
		writeOAuthError(w, http.StatusBadRequest, "unsupported_grant_type", "Invalid grant_type: ")
	default:
		writeOAuthError(w, http.StatusBadRequest, "unsupported_grant_type", "Invalid grant_type: "+gt)
	}
}

// authorizationCode authenticates the client first, as Google does, so a
// bogus code tells a valid pair (invalid_grant) from a wrong one (invalid_client).
// RFC 6749 §5.2 lets invalid_client be 401, which the double answers; browser
// flows show "Error 400: invalid_client The OAuth client was not found." (a
// consent page, not this endpoint): sources disagree on the status, and the
// verifier reads the error code. disabled_client is observed, not documented.
func (d *Double) authorizationCode(w http.ResponseWriter, r *http.Request, form url.Values) {
	id, secret := form.Get("client_id"), form.Get("client_secret")
	if id == "" && secret == "" {
		if u, p, ok := r.BasicAuth(); ok {
			// RFC 6749 §2.3.1: both are form-urlencoded before Basic encoding.
			id, _ = url.QueryUnescape(u)
			secret, _ = url.QueryUnescape(p)
		}
	}
	if id == "" {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "Could not determine client ID from request.")
		return
	}
	d.OAuth.Controls.CountKey(id)
	c, ok := d.client(id)
	switch {
	case !ok:
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "The OAuth client was not found.")
		return
	case c.mode == ClientDeleted:
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "The OAuth client was deleted.")
		return
	case c.mode == ClientDisabled:
		writeOAuthError(w, http.StatusUnauthorized, "disabled_client", "The OAuth client was disabled.")
		return
	case subtle.ConstantTimeCompare([]byte(secret), []byte(c.secret)) != 1:
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "Unauthorized")
		return
	}
	switch {
	case form.Get("code") == "":
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "Missing required parameter: code")
	case form.Get("redirect_uri") == "":
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "Missing parameter: redirect_uri")
	default:
		// The double issues no authorization codes, so every code is unknown.
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", DescMalformedCode)
	}
}

type jwtHeader struct {
	Alg string `json:"alg"`
	Typ string `json:"typ"`
	Kid string `json:"kid"`
}

type jwtClaims struct {
	Iss   string `json:"iss"`
	Scope string `json:"scope"`
	Aud   string `json:"aud"`
	Exp   int64  `json:"exp"`
	Iat   int64  `json:"iat"`
	Sub   string `json:"sub"`
}

// jwtBearer checks an RS256 assertion the way Google's token endpoint does
// (https://developers.google.com/identity/protocols/oauth2/service-account:
// iss, scope, aud, exp, iat, one hour at most; success {access_token,
// expires_in, token_type}; failures 400 invalid_grant, their descriptions
// observed):
// the issuer must be a known service account, the signature must verify
// against one of its registered keys, and iat/exp/aud/scope must be sane.
func (d *Double) jwtBearer(w http.ResponseWriter, r *http.Request, form url.Values) {
	assertion := form.Get("assertion")
	if assertion == "" {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "Missing required parameter: assertion")
		return
	}
	parts := strings.Split(assertion, ".")
	var hdr jwtHeader
	var claims jwtClaims
	if len(parts) != 3 || decodeSegment(parts[0], &hdr) != nil || decodeSegment(parts[1], &claims) != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "Invalid JWT format.")
		return
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "Invalid JWT format.")
		return
	}
	if claims.Iss != "" {
		d.OAuth.Controls.CountKey(claims.Iss)
	}
	clientID, keys, ok := d.account(claims.Iss)
	if !ok {
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", DescAccountNotFound)
		return
	}
	if hdr.Alg != "RS256" || !verifyRS256(parts[0]+"."+parts[1], sig, hdr.Kid, keys) {
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", DescInvalidSignature)
		return
	}
	now := d.now()
	iat, exp := time.Unix(claims.Iat, 0), time.Unix(claims.Exp, 0)
	if claims.Iat == 0 || claims.Exp == 0 || !exp.After(iat) || exp.Sub(iat) > time.Hour ||
		iat.After(now.Add(clockSkew)) || !exp.After(now) {
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", DescJWTTimeframe)
		return
	}
	if want := tokenURL(r); claims.Aud != want {
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "Invalid JWT: Failed audience check. The right audience is "+want)
		return
	}
	if !validScopes(claims.Scope) {
		writeOAuthError(w, http.StatusBadRequest, "invalid_scope", "Invalid OAuth scope or ID token audience provided.")
		return
	}
	if claims.Sub != "" && claims.Sub != claims.Iss {
		writeOAuthError(w, http.StatusUnauthorized, "unauthorized_client",
			"Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.")
		return
	}
	tok := d.issue(TokenInfo{Azp: clientID, Aud: clientID, Scope: claims.Scope, Email: claims.Iss})
	w.Header().Set("Cache-Control", "no-cache, no-store, max-age=0, must-revalidate")
	writeJSON(w, http.StatusOK, map[string]any{"access_token": tok, "expires_in": 3599, "token_type": "Bearer"})
}

func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// verifyRS256 checks the signature against the key named by kid, or against
// every key of the account when the JWT names none.
func verifyRS256(signed string, sig []byte, kid string, keys map[string]*rsa.PublicKey) bool {
	sum := sha256.Sum256([]byte(signed))
	if kid != "" {
		k, ok := keys[kid]
		return ok && rsa.VerifyPKCS1v15(k, crypto.SHA256, sum[:], sig) == nil
	}
	for _, k := range keys {
		if rsa.VerifyPKCS1v15(k, crypto.SHA256, sum[:], sig) == nil {
			return true
		}
	}
	return false
}

// tokenURL is the audience Google requires: its own token endpoint, which
// for the double is the address the request came in on.
func tokenURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + TokenPath
}

func validScopes(s string) bool {
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return false
	}
	for _, f := range fields {
		switch {
		case f == "openid" || f == "email" || f == "profile":
		case strings.HasPrefix(f, "https://www.googleapis.com/auth/") && len(f) > len("https://www.googleapis.com/auth/"):
		default:
			return false
		}
	}
	return true
}

// serveTokenInfo answers tokeninfo: 200 with azp, aud, scope, exp and
// expires_in as strings (and email for service accounts), or 400
// {"error":"invalid_token","error_description":"Invalid Value"} for an
// unknown, revoked or expired token (as observed; Google documents the
// endpoint's use, not its error body). An expired and a revoked token answer
// alike, so tokeninfo cannot tell them apart; no rate limit is documented.
func (d *Double) serveTokenInfo(w http.ResponseWriter, r *http.Request) {
	d.countURLLeak(r, "access_token", "id_token")
	var tok string
	switch r.Method {
	case http.MethodPost:
		form, ok := readForm(w, r)
		if !ok {
			return
		}
		tok = form.Get("access_token")
	case http.MethodGet:
		tok = r.URL.Query().Get("access_token")
	default:
		writeOAuthError(w, http.StatusMethodNotAllowed, "invalid_request", "Method not allowed.")
		return
	}
	if tok == "" {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "Missing access_token.")
		return
	}
	d.OAuth.Controls.CountKey(tok)
	info, ok := d.tokenInfo(tok)
	now := d.now()
	if !ok || !info.Expiry.After(now) {
		writeOAuthError(w, http.StatusBadRequest, "invalid_token", "Invalid Value")
		return
	}
	// Google sends exp and expires_in as strings.
	body := map[string]string{
		"azp":         info.Azp,
		"aud":         info.Aud,
		"scope":       info.Scope,
		"exp":         strconv.FormatInt(info.Expiry.Unix(), 10),
		"expires_in":  strconv.FormatInt(int64(info.Expiry.Sub(now)/time.Second), 10),
		"access_type": "online",
	}
	if info.Email != "" {
		body["email"], body["email_verified"] = info.Email, "true"
	}
	writeJSON(w, http.StatusOK, body)
}
