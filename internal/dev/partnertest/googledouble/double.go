// Package googledouble is the Google double: two loopback HTTP servers that
// speak the protocols the GCP verifier uses, closely enough that the real
// clients cannot tell. Discovery serves the API-key probe
// (GET /discovery/v1/apis, key in X-Goog-Api-Key) with Google's JSON error
// format; OAuth serves the token endpoint (POST /token: RS256 JWT-bearer
// grants checked against registered public keys, and authorization_code
// grants checked against registered client id/secret pairs) and tokeninfo
// (POST /tokeninfo). Both sit behind partnertest's fault layer.
package googledouble

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
)

// APIKeyMode is how the discovery endpoint answers for one API key.
type APIKeyMode int

// The answers an API key can get; an unregistered key gets 400 API_KEY_INVALID.
const (
	APIKeyValid             APIKeyMode = iota // 200 with the discovery list
	APIKeyServiceDisabled                     // 403 SERVICE_DISABLED: the key's project has not enabled the API
	APIKeyServiceBlocked                      // 403 API_KEY_SERVICE_BLOCKED: the key is restricted to other APIs
	APIKeyReferrerBlocked                     // 403 API_KEY_HTTP_REFERRER_BLOCKED
	APIKeyIPBlocked                           // 403 API_KEY_IP_ADDRESS_BLOCKED
	APIKeyConsumerSuspended                   // 403 CONSUMER_SUSPENDED, whose message quotes the key as Google's does
	APIKeyBadRequest                          // 400 INVALID_ARGUMENT without an ErrorInfo reason
)

// ClientMode is how the token endpoint treats one OAuth client.
type ClientMode int

// The states an OAuth client can be in; an unregistered client id gets
// 401 invalid_client "The OAuth client was not found.".
const (
	ClientActive   ClientMode = iota // the secret authenticates; the bogus code then fails with invalid_grant
	ClientDeleted                    // 401 invalid_client "The OAuth client was deleted."
	ClientDisabled                   // 401 disabled_client "The OAuth client was disabled."
)

// TokenInfo is what tokeninfo reports for a registered access token.
type TokenInfo struct {
	Azp, Aud, Scope, Email string
	// Expiry is when the token stops being valid; zero means one hour after
	// registration.
	Expiry time.Time
}

type oauthClient struct {
	secret string
	mode   ClientMode
}

type serviceAccount struct {
	clientID string
	keys     map[string]*rsa.PublicKey // by private_key_id (the JWT kid)
}

// Double is the running Google double.
type Double struct {
	// Discovery serves PARTNER_ENDPOINT_GCP_DISCOVERY.
	Discovery *partnertest.Server
	// OAuth serves PARTNER_ENDPOINT_GCP_OAUTH (/token and /tokeninfo).
	OAuth *partnertest.Server

	mu       sync.Mutex
	apiKeys  map[string]APIKeyMode
	clients  map[string]oauthClient
	accounts map[string]*serviceAccount // by client_email
	tokens   map[string]TokenInfo
	issued   []string
	clock    func() time.Time

	urlLeaks atomic.Int64
}

// Start runs the double on loopback: discoveryAddr and oauthAddr are
// host:port to listen on, "" for a free port each.
func Start(discoveryAddr, oauthAddr string) (*Double, error) {
	d := &Double{
		apiKeys:  map[string]APIKeyMode{},
		clients:  map[string]oauthClient{},
		accounts: map[string]*serviceAccount{},
		tokens:   map[string]TokenInfo{},
		clock:    time.Now,
	}
	var err error
	if d.Discovery, err = partnertest.Serve(discoveryAddr, d.discoveryHandler(), writeAPIError); err != nil {
		return nil, fmt.Errorf("googledouble: start discovery: %w", err)
	}
	if d.OAuth, err = partnertest.Serve(oauthAddr, d.oauthHandler(), writeOAuthFault); err != nil {
		d.Discovery.Close()
		return nil, fmt.Errorf("googledouble: start oauth: %w", err)
	}
	return d, nil
}

// New starts the double on free ports for a test and stops it when the test ends.
func New(t testing.TB) *Double {
	t.Helper()
	d, err := Start("", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}

// Close stops both servers.
func (d *Double) Close() {
	d.Discovery.Close()
	d.OAuth.Close()
}

// ResetControls clears both servers' faults, latency and counters (not the
// registered credentials), so table rows start from the same state.
func (d *Double) ResetControls() {
	d.Discovery.Controls.Reset()
	d.OAuth.Controls.Reset()
	d.urlLeaks.Store(0)
}

// SetClock replaces the clock the token endpoint checks JWT iat/exp and
// token expiry against, to simulate a skewed client.
func (d *Double) SetClock(now func() time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.clock = now
}

func (d *Double) now() time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.clock()
}

// URLCredentialLeaks counts requests that carried a credential in the URL
// (key=, access_token=, client_secret=, assertion=, code=). Google accepts
// some of these, so the double still answers; a verifier must never send
// them, and tests assert this stays 0.
func (d *Double) URLCredentialLeaks() int64 { return d.urlLeaks.Load() }

// RegisterAPIKey makes key known to the discovery endpoint with mode.
func (d *Double) RegisterAPIKey(key string, mode APIKeyMode) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.apiKeys[key] = mode
}

// AddAPIKey registers a fresh random API key with mode and returns it.
func (d *Double) AddAPIKey(mode APIKeyMode) string {
	k := NewAPIKey()
	d.RegisterAPIKey(k, mode)
	return k
}

// DeleteAPIKey forgets key, as deleting it in the console does.
func (d *Double) DeleteAPIKey(key string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.apiKeys, key)
}

func (d *Double) apiKey(key string) (APIKeyMode, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	m, ok := d.apiKeys[key]
	return m, ok
}

// RegisterOAuthClient makes a client id/secret pair known to the token endpoint.
func (d *Double) RegisterOAuthClient(clientID, secret string, mode ClientMode) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.clients[clientID] = oauthClient{secret: secret, mode: mode}
}

// AddOAuthClient registers a fresh random client with mode and returns its id and secret.
func (d *Double) AddOAuthClient(mode ClientMode) (clientID, secret string) {
	clientID, secret = NewClientID(), NewClientSecret()
	d.RegisterOAuthClient(clientID, secret, mode)
	return clientID, secret
}

func (d *Double) client(id string) (oauthClient, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	c, ok := d.clients[id]
	return c, ok
}

// RegisterAccessToken makes token known to tokeninfo.
func (d *Double) RegisterAccessToken(token string, info TokenInfo) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if info.Expiry.IsZero() {
		info.Expiry = d.clock().Add(time.Hour)
	}
	d.tokens[token] = info
}

// AddAccessToken registers a fresh random access token and returns it.
func (d *Double) AddAccessToken(info TokenInfo) string {
	t := NewAccessToken()
	d.RegisterAccessToken(t, info)
	return t
}

// RevokeAccessToken forgets token, as revoking it does.
func (d *Double) RevokeAccessToken(token string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.tokens, token)
}

func (d *Double) tokenInfo(token string) (TokenInfo, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	info, ok := d.tokens[token]
	return info, ok
}

// IssuedTokens lists the access tokens the token endpoint granted, so leak
// tests can check none of them surfaces anywhere.
func (d *Double) IssuedTokens() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.issued...)
}

// RegisterServiceAccountKey makes a known key pair valid for email (the
// sandbox registers the sample key of events/ this way); it returns the
// account's client id.
func (d *Double) RegisterServiceAccountKey(email, keyID string, pub *rsa.PublicKey) (clientID string) {
	return d.addServiceAccountKey(email, keyID, pub)
}

func (d *Double) addServiceAccountKey(email, keyID string, pub *rsa.PublicKey) (clientID string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	sa := d.accounts[email]
	if sa == nil {
		sa = &serviceAccount{clientID: random("123456789", 1) + random(digits, 20), keys: map[string]*rsa.PublicKey{}}
		d.accounts[email] = sa
	}
	sa.keys[keyID] = pub
	return sa.clientID
}

// ErrNotFound is returned when deleting something the double does not know.
var ErrNotFound = errors.New("googledouble: not found")

// DeleteServiceAccountKey removes one key, as deleting it in IAM does: JWTs
// signed with it then fail with "Invalid JWT Signature.".
func (d *Double) DeleteServiceAccountKey(keyID string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, sa := range d.accounts {
		if _, ok := sa.keys[keyID]; ok {
			delete(sa.keys, keyID)
			return nil
		}
	}
	return ErrNotFound
}

// DeleteServiceAccount removes an account with all its keys: its JWTs then
// fail with "Invalid grant: account not found".
func (d *Double) DeleteServiceAccount(email string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.accounts[email]; !ok {
		return ErrNotFound
	}
	delete(d.accounts, email)
	return nil
}

// account returns a snapshot of a service account's client id and keys.
func (d *Double) account(email string) (clientID string, keys map[string]*rsa.PublicKey, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	sa := d.accounts[email]
	if sa == nil {
		return "", nil, false
	}
	keys = make(map[string]*rsa.PublicKey, len(sa.keys))
	for k, v := range sa.keys {
		keys[k] = v
	}
	return sa.clientID, keys, true
}

// issue grants an access token. Google's service-account tokens begin
// "ya29.c.", but finding.Check accepts only ya29.[0-9A-Za-z_-]+ (the
// scanner's rule stops at the second dot), so the double stays inside that
// format to keep its tokens verifiable end to end.
func (d *Double) issue(info TokenInfo) string {
	t := NewAccessToken()
	d.mu.Lock()
	defer d.mu.Unlock()
	info.Expiry = d.clock().Add(time.Hour)
	d.tokens[t] = info
	d.issued = append(d.issued, t)
	return t
}
