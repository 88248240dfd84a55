package gcppartner

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/googledouble"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/verifiertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/metrics"
	partnerdef "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

// ruleFor maps a token type back to its rule_id, from the routing table.
var ruleFor = func() map[finding.TokenType]string {
	m := map[finding.TokenType]string{}
	for _, r := range Definition.Rules {
		if r.Scanner == partnerdef.GitLab {
			m[r.TokenType] = r.ID
		}
	}
	return m
}()

// mkFinding builds a finding and registers its credentials with the leak check.
func mkFinding(tt finding.TokenType, token string, clientID string) finding.Finding {
	f := finding.Finding{ID: "f-1", RuleID: ruleFor[tt], Token: finding.Secret(token)}
	if clientID != "" {
		f.Context = map[string]finding.Secret{finding.ContextGCPClientID: finding.Secret(clientID)}
	}
	leaks.finding(f)
	return f
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func configFor(t *testing.T, d *googledouble.Double) partnerhttp.Options {
	return partnerhttp.Options{Endpoints: []*url.URL{mustURL(t, d.Discovery.URL), mustURL(t, d.OAuth.URL)}, Timeout: 2 * time.Second}
}

// TestCancelledContextIsAFault: a caller that gave up learns nothing, for
// the API key's discovery call and the OAuth token types' calls alike.
func TestCancelledContextIsAFault(t *testing.T) {
	d := googledouble.New(t)
	v, err := New(configFor(t, d))
	if err != nil {
		t.Fatal(err)
	}
	verifiertest.CancelledIsAFault(t, v, finding.TokenGCPAPIKey, mkFinding(finding.TokenGCPAPIKey, d.AddAPIKey(googledouble.APIKeyValid), ""))
}

// withTokenURI rewrites a key file's token_uri, as a planted key would.
func withTokenURI(t *testing.T, keyJSON []byte, uri string) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(keyJSON, &m); err != nil {
		t.Fatal(err)
	}
	m["token_uri"] = uri
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// withField rewrites one field of a key file (nil deletes it).
func withField(t *testing.T, keyJSON []byte, field string, value any) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(keyJSON, &m); err != nil {
		t.Fatal(err)
	}
	if value == nil {
		delete(m, field)
	} else {
		m[field] = value
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// serviceAccountKeys are the keys the tables share; RSA generation is slow.
type serviceAccountKeys struct {
	email                            string
	live, deletedKey, deletedAccount []byte
	foreign                          []byte // the account is known, this key is not
}

func newServiceAccountKeys(t *testing.T, d *googledouble.Double) serviceAccountKeys {
	t.Helper()
	k := serviceAccountKeys{email: "scanner@test-project.iam.gserviceaccount.com"}
	var err error
	if k.live, _, err = d.NewServiceAccountKey(k.email); err != nil {
		t.Fatal(err)
	}
	var kid string
	if k.deletedKey, kid, err = d.NewServiceAccountKey(k.email); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteServiceAccountKey(kid); err != nil {
		t.Fatal(err)
	}
	const gone = "gone@test-project.iam.gserviceaccount.com"
	if k.deletedAccount, _, err = d.NewServiceAccountKey(gone); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteServiceAccount(gone); err != nil {
		t.Fatal(err)
	}
	other, err := googledouble.Start("", "")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if k.foreign, _, err = other.NewServiceAccountKey(k.email); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { leaks.secret(d.IssuedTokens()...) })
	return k
}

type faultWant struct {
	kind       verify.FaultKind
	network    bool
	status     int
	retryAfter time.Duration
	msg        string // the fault's message when it is fixed ("" to skip)
}

type expect struct {
	reason  finding.Reason // the verdict's reason; "" when a fault is expected
	details finding.Details
	fault   *faultWant
	// Metrics of the call: requests sent, errors, network errors, rate-limit hits.
	requests, errors, network, limited int
}

type row struct {
	name    string
	tt      finding.TokenType
	finding func(t *testing.T, d *googledouble.Double) finding.Finding
	fault   partnertest.Fault
	timeout time.Duration
	setup   func(t *testing.T, d *googledouble.Double, cfg *partnerhttp.Options)
	want    expect
}

var (
	confirmed = expect{reason: finding.ReasonPartnerConfirmed, requests: 1}
	rejected  = expect{reason: finding.ReasonPartnerRejected, requests: 1}
	noCall    = func(r finding.Reason) expect { return expect{reason: r} }
	// provesNothing is an answer that arrived but says nothing about the credential.
	provesNothing = func(status int) expect {
		return expect{fault: &faultWant{kind: verify.PartnerError, status: status}, requests: 1, errors: 1}
	}
)

func withDetails(e expect, d finding.Details) expect { e.details = d; return e }

// faultExpect is what each injected fault must produce, whatever the credential.
func faultExpect(f partnertest.Fault) expect {
	switch f {
	case partnertest.Fault500, partnertest.Fault502, partnertest.Fault503, partnertest.Fault504:
		status := map[partnertest.Fault]int{partnertest.Fault500: 500, partnertest.Fault502: 502, partnertest.Fault503: 503, partnertest.Fault504: 504}[f]
		return expect{fault: &faultWant{kind: verify.PartnerError, status: status}, requests: 1, errors: 1}
	case partnertest.Fault429:
		return expect{fault: &faultWant{kind: verify.RateLimited, status: 429, retryAfter: 7 * time.Second}, requests: 1, limited: 1}
	case partnertest.FaultReset:
		return expect{fault: &faultWant{kind: verify.PartnerError, network: true}, requests: 1, errors: 1, network: 1}
	case partnertest.FaultHang:
		return expect{fault: &faultWant{kind: verify.PartnerError, network: true, msg: "timeout"}, requests: 1, errors: 1, network: 1}
	case partnertest.FaultHTML401:
		return provesNothing(401)
	case partnertest.FaultHTML403:
		return provesNothing(403)
	default: // garbled, empty, truncated: a 200 that is not an answer
		return provesNothing(200)
	}
}

var allFaults = []partnertest.Fault{
	partnertest.Fault500, partnertest.Fault502, partnertest.Fault503, partnertest.Fault504, partnertest.Fault429,
	partnertest.FaultReset, partnertest.FaultHang, partnertest.FaultGarbled, partnertest.FaultEmpty,
	partnertest.FaultTruncated, partnertest.FaultHTML401, partnertest.FaultHTML403,
}

func rows(t *testing.T, d *googledouble.Double, sa serviceAccountKeys) []row {
	apiKey := func(mode googledouble.APIKeyMode) func(*testing.T, *googledouble.Double) finding.Finding {
		return func(_ *testing.T, d *googledouble.Double) finding.Finding {
			return mkFinding(finding.TokenGCPAPIKey, d.AddAPIKey(mode), "")
		}
	}
	unknownAPIKey := func(*testing.T, *googledouble.Double) finding.Finding {
		return mkFinding(finding.TokenGCPAPIKey, googledouble.NewAPIKey(), "")
	}
	saKey := func(key []byte) func(*testing.T, *googledouble.Double) finding.Finding {
		return func(*testing.T, *googledouble.Double) finding.Finding {
			return mkFinding(finding.TokenGCPServiceAccountKey, string(key), "")
		}
	}
	saRaw := func(key string) func(*testing.T, *googledouble.Double) finding.Finding {
		return func(*testing.T, *googledouble.Double) finding.Finding {
			return mkFinding(finding.TokenGCPServiceAccountKey, key, "")
		}
	}
	client := func(mode googledouble.ClientMode, rightSecret bool) func(*testing.T, *googledouble.Double) finding.Finding {
		return func(_ *testing.T, d *googledouble.Double) finding.Finding {
			id, secret := d.AddOAuthClient(mode)
			if !rightSecret {
				leaks.secret(secret)
				secret = googledouble.NewClientSecret()
			}
			return mkFinding(finding.TokenGCPOAuthClientSecret, secret, id)
		}
	}
	unknownClient := func(*testing.T, *googledouble.Double) finding.Finding {
		return mkFinding(finding.TokenGCPOAuthClientSecret, googledouble.NewClientSecret(), googledouble.NewClientID())
	}
	accessToken := func(info googledouble.TokenInfo) func(*testing.T, *googledouble.Double) finding.Finding {
		return func(_ *testing.T, d *googledouble.Double) finding.Finding {
			return mkFinding(finding.TokenGCPAccessToken, d.AddAccessToken(info), "")
		}
	}
	unknownAccessToken := func(*testing.T, *googledouble.Double) finding.Finding {
		return mkFinding(finding.TokenGCPAccessToken, googledouble.NewAccessToken(), "")
	}
	// The expiry is fixed, far ahead, so that expires_at is known.
	expiry := time.Date(2099, 1, 2, 3, 4, 5, 0, time.UTC)
	userToken := googledouble.TokenInfo{Azp: "1-a.apps.googleusercontent.com", Aud: "1-a.apps.googleusercontent.com", Scope: "openid email", Email: "someone@example.com", Expiry: expiry}
	saToken := googledouble.TokenInfo{Azp: "1234", Aud: "1234", Scope: ServiceAccountScope, Email: sa.email, Expiry: expiry}

	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ecKey)
	ecPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER}))

	rs := []row{
		// gcp_api_key
		{name: "valid", tt: finding.TokenGCPAPIKey, finding: apiKey(googledouble.APIKeyValid), want: confirmed},
		{name: "unknown key", tt: finding.TokenGCPAPIKey, finding: unknownAPIKey, want: rejected},
		{name: "deleted key", tt: finding.TokenGCPAPIKey, finding: func(t *testing.T, d *googledouble.Double) finding.Finding {
			k := d.AddAPIKey(googledouble.APIKeyValid)
			d.DeleteAPIKey(k)
			return mkFinding(finding.TokenGCPAPIKey, k, "")
		}, want: rejected},
		{name: "service disabled", tt: finding.TokenGCPAPIKey, finding: apiKey(googledouble.APIKeyServiceDisabled),
			want: withDetails(confirmed, finding.Details{DetailErrorReason: "SERVICE_DISABLED"})},
		{name: "service blocked", tt: finding.TokenGCPAPIKey, finding: apiKey(googledouble.APIKeyServiceBlocked),
			want: withDetails(confirmed, finding.Details{DetailErrorReason: "API_KEY_SERVICE_BLOCKED"})},
		{name: "referrer blocked", tt: finding.TokenGCPAPIKey, finding: apiKey(googledouble.APIKeyReferrerBlocked),
			want: withDetails(confirmed, finding.Details{DetailErrorReason: "API_KEY_HTTP_REFERRER_BLOCKED"})},
		{name: "ip blocked", tt: finding.TokenGCPAPIKey, finding: apiKey(googledouble.APIKeyIPBlocked),
			want: withDetails(confirmed, finding.Details{DetailErrorReason: "API_KEY_IP_ADDRESS_BLOCKED"})},
		{name: "other 403 (consumer suspended, message quotes the key)", tt: finding.TokenGCPAPIKey, finding: apiKey(googledouble.APIKeyConsumerSuspended), want: provesNothing(403)},
		{name: "other 400", tt: finding.TokenGCPAPIKey, finding: apiKey(googledouble.APIKeyBadRequest), want: provesNothing(400)},
		{name: "misconfigured endpoint answers 404", tt: finding.TokenGCPAPIKey, finding: apiKey(googledouble.APIKeyValid),
			setup: func(t *testing.T, d *googledouble.Double, cfg *partnerhttp.Options) {
				cfg.Endpoints[0] = mustURL(t, d.Discovery.URL+"/wrong")
			},
			want: provesNothing(404)},
		{name: "too short", tt: finding.TokenGCPAPIKey, finding: func(*testing.T, *googledouble.Double) finding.Finding {
			return mkFinding(finding.TokenGCPAPIKey, googledouble.NewAPIKey()[:30], "")
		}, want: noCall(finding.ReasonMalformedToken)},

		// gcp_service_account_key
		{name: "valid", tt: finding.TokenGCPServiceAccountKey, finding: saKey(sa.live),
			want: withDetails(confirmed, finding.Details{DetailClientEmail: sa.email})},
		{name: "deleted key (invalid signature)", tt: finding.TokenGCPServiceAccountKey, finding: saKey(sa.deletedKey), want: rejected},
		{name: "key of another project (invalid signature)", tt: finding.TokenGCPServiceAccountKey, finding: saKey(sa.foreign), want: rejected},
		{name: "deleted account", tt: finding.TokenGCPServiceAccountKey, finding: saKey(sa.deletedAccount), want: rejected},
		{name: "clock skew (Invalid JWT: ...) proves nothing", tt: finding.TokenGCPServiceAccountKey, finding: saKey(sa.live),
			setup: func(_ *testing.T, d *googledouble.Double, _ *partnerhttp.Options) {
				d.SetClock(func() time.Time { return time.Now().Add(3 * time.Hour) })
			},
			want: provesNothing(400)},
		{name: "not JSON", tt: finding.TokenGCPServiceAccountKey, finding: saRaw(`{"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----`), want: noCall(finding.ReasonMalformedToken)},
		{name: "no client_email", tt: finding.TokenGCPServiceAccountKey, finding: func(t *testing.T, _ *googledouble.Double) finding.Finding {
			return mkFinding(finding.TokenGCPServiceAccountKey, withField(t, sa.live, "client_email", nil), "")
		}, want: noCall(finding.ReasonMalformedToken)},
		{name: "client_email not an email", tt: finding.TokenGCPServiceAccountKey, finding: func(t *testing.T, _ *googledouble.Double) finding.Finding {
			return mkFinding(finding.TokenGCPServiceAccountKey, withField(t, sa.live, "client_email", "no at sign"), "")
		}, want: noCall(finding.ReasonMalformedToken)},
		{name: "not a service_account", tt: finding.TokenGCPServiceAccountKey, finding: func(t *testing.T, _ *googledouble.Double) finding.Finding {
			return mkFinding(finding.TokenGCPServiceAccountKey, withField(t, sa.live, "type", "authorized_user"), "")
		}, want: noCall(finding.ReasonMalformedToken)},
		{name: "private_key PEM garbage", tt: finding.TokenGCPServiceAccountKey, finding: func(t *testing.T, _ *googledouble.Double) finding.Finding {
			return mkFinding(finding.TokenGCPServiceAccountKey, withField(t, sa.live, "private_key", "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n"), "")
		}, want: noCall(finding.ReasonMalformedToken)},
		{name: "private_key truncated", tt: finding.TokenGCPServiceAccountKey, finding: func(t *testing.T, _ *googledouble.Double) finding.Finding {
			var m map[string]string
			_ = json.Unmarshal(sa.live, &m)
			return mkFinding(finding.TokenGCPServiceAccountKey, withField(t, sa.live, "private_key", m["private_key"][:400]), "")
		}, want: noCall(finding.ReasonMalformedToken)},
		{name: "private_key not RSA", tt: finding.TokenGCPServiceAccountKey, finding: func(t *testing.T, _ *googledouble.Double) finding.Finding {
			leaks.secret(ecPEM)
			return mkFinding(finding.TokenGCPServiceAccountKey, withField(t, sa.live, "private_key", ecPEM), "")
		}, want: noCall(finding.ReasonMalformedToken)},

		// gcp_oauth_client_secret
		{name: "valid pair", tt: finding.TokenGCPOAuthClientSecret, finding: client(googledouble.ClientActive, true), want: confirmed},
		{name: "wrong secret", tt: finding.TokenGCPOAuthClientSecret, finding: client(googledouble.ClientActive, false), want: rejected},
		{name: "unknown client", tt: finding.TokenGCPOAuthClientSecret, finding: unknownClient, want: rejected},
		{name: "deleted client", tt: finding.TokenGCPOAuthClientSecret, finding: client(googledouble.ClientDeleted, true), want: rejected},
		{name: "disabled client proves nothing", tt: finding.TokenGCPOAuthClientSecret, finding: client(googledouble.ClientDisabled, true), want: provesNothing(401)},
		{name: "no client id", tt: finding.TokenGCPOAuthClientSecret, finding: func(*testing.T, *googledouble.Double) finding.Finding {
			return mkFinding(finding.TokenGCPOAuthClientSecret, googledouble.NewClientSecret(), "")
		}, want: noCall(finding.ReasonMissingContext)},
		{name: "malformed client id", tt: finding.TokenGCPOAuthClientSecret, finding: func(*testing.T, *googledouble.Double) finding.Finding {
			return mkFinding(finding.TokenGCPOAuthClientSecret, googledouble.NewClientSecret(), "not-a-client-id")
		}, want: noCall(finding.ReasonMalformedToken)},
		{name: "malformed secret", tt: finding.TokenGCPOAuthClientSecret, finding: func(*testing.T, *googledouble.Double) finding.Finding {
			return mkFinding(finding.TokenGCPOAuthClientSecret, "GOCSPX-short", googledouble.NewClientID())
		}, want: noCall(finding.ReasonMalformedToken)},

		// gcp_access_token
		// A person's e-mail never becomes a detail; scopes and expiry do.
		{name: "live user token", tt: finding.TokenGCPAccessToken, finding: accessToken(userToken),
			want: withDetails(confirmed, finding.Details{DetailScopes: []string{"openid", "email"}, DetailExpiresAt: "2099-01-02T03:04:05Z"})},
		{name: "live service-account token", tt: finding.TokenGCPAccessToken, finding: accessToken(saToken),
			want: withDetails(confirmed, finding.Details{DetailClientEmail: sa.email, DetailScopes: []string{ServiceAccountScope}, DetailExpiresAt: "2099-01-02T03:04:05Z"})},
		{name: "unknown token", tt: finding.TokenGCPAccessToken, finding: unknownAccessToken, want: rejected},
		{name: "revoked token", tt: finding.TokenGCPAccessToken, finding: func(_ *testing.T, d *googledouble.Double) finding.Finding {
			tok := d.AddAccessToken(userToken)
			d.RevokeAccessToken(tok)
			return mkFinding(finding.TokenGCPAccessToken, tok, "")
		}, want: rejected},
		{name: "expired token", tt: finding.TokenGCPAccessToken, finding: accessToken(googledouble.TokenInfo{Azp: "a", Aud: "a", Scope: "openid", Expiry: time.Now().Add(-time.Minute)}), want: rejected},
		{name: "token granted to a service-account key", tt: finding.TokenGCPAccessToken, finding: func(t *testing.T, d *googledouble.Double) finding.Finding {
			v, err := New(configFor(t, d))
			if err != nil {
				t.Fatal(err)
			}
			if verdict, err := v.Verify(context.Background(), finding.TokenGCPServiceAccountKey, mkFinding(finding.TokenGCPServiceAccountKey, string(sa.live), "")); err != nil || verdict.Reason != finding.ReasonPartnerConfirmed {
				t.Fatalf("granting a token: %v %v", verdict.Reason, err)
			}
			issued := d.IssuedTokens()
			return mkFinding(finding.TokenGCPAccessToken, issued[len(issued)-1], "")
		}, want: withDetails(confirmed, finding.Details{DetailClientEmail: sa.email, DetailScopes: []string{ServiceAccountScope}, DetailExpiresAt: anyTime})},
		{name: "not ya29", tt: finding.TokenGCPAccessToken, finding: func(*testing.T, *googledouble.Double) finding.Finding {
			return mkFinding(finding.TokenGCPAccessToken, "ya30."+googledouble.NewAccessToken()[5:], "")
		}, want: noCall(finding.ReasonMalformedToken)},

		// routing mistakes
		{name: "not a gcp token type", tt: finding.TokenAWSAccessKey, finding: func(*testing.T, *googledouble.Double) finding.Finding {
			return finding.Finding{ID: "f-1", RuleID: "AWS", Token: "AKIAABCDEFGHIJKLMNOP"}
		}, want: noCall(finding.ReasonUnsupportedTokenType)},
	}

	// Every fault, for a live and for a dead credential of each type: a
	// fault must win over what the credential would have earned, and never
	// read as inactive.
	creds := []struct {
		tt         finding.TokenType
		live, dead func(*testing.T, *googledouble.Double) finding.Finding
	}{
		{finding.TokenGCPAPIKey, apiKey(googledouble.APIKeyValid), unknownAPIKey},
		{finding.TokenGCPServiceAccountKey, saKey(sa.live), saKey(sa.deletedKey)},
		{finding.TokenGCPOAuthClientSecret, client(googledouble.ClientActive, true), unknownClient},
		{finding.TokenGCPAccessToken, accessToken(userToken), unknownAccessToken},
	}
	for _, c := range creds {
		for _, f := range allFaults {
			for _, kind := range []string{"live", "dead"} {
				build := c.live
				if kind == "dead" {
					build = c.dead
				}
				r := row{name: fmt.Sprintf("fault %s, %s credential", f, kind), tt: c.tt, finding: build, fault: f, want: faultExpect(f)}
				if f == partnertest.FaultHang {
					r.timeout = 300 * time.Millisecond
				}
				rs = append(rs, r)
			}
		}
	}
	return rs
}

// anyTime in a wanted detail stands for any RFC 3339 time.
const anyTime = "<any RFC 3339 time>"

func TestVerify(t *testing.T) {
	d := googledouble.New(t)
	sa := newServiceAccountKeys(t, d)
	for _, r := range rows(t, d, sa) {
		t.Run(string(r.tt)+"/"+r.name, func(t *testing.T) {
			d.ResetControls()
			d.SetClock(time.Now)
			f := r.finding(t, d)
			d.ResetControls() // a row's setup may have called the double
			cfg := configFor(t, d)
			if r.timeout > 0 {
				cfg.Timeout = r.timeout
			}
			if r.setup != nil {
				r.setup(t, d, &cfg)
			}
			if r.fault != partnertest.FaultNone {
				srv := d.OAuth
				if r.tt == finding.TokenGCPAPIKey {
					srv = d.Discovery
				}
				srv.Controls.SetRetryAfter("7")
				srv.Controls.Push(r.fault)
			}
			// A verifier per row: a fresh connection, so net/http never
			// silently retries a GET after a reset on a reused one.
			v, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			rec := metrics.New()
			verdict, err := verifiertest.CallerVerify(metrics.NewContext(context.Background(), rec), Definition, v, r.tt, f)
			leaks.outcome(t.Name(), r.tt, verdict, err)

			if verdict.Status() == finding.StatusInactive && err != nil {
				t.Fatal("a fault came with an inactive verdict")
			}
			if r.want.fault == nil {
				if err != nil {
					t.Fatalf("got error %v, want verdict %s", err, r.want.reason)
				}
				if verdict.Reason != r.want.reason {
					t.Fatalf("reason %s (%s), want %s", verdict.Reason, verdict.Message, r.want.reason)
				}
				if r.want.details[DetailExpiresAt] == anyTime {
					// The double's clock set this expiry: only its form is known.
					if at, ok := verdict.Details[DetailExpiresAt].(string); ok {
						if _, err := time.Parse(time.RFC3339, at); err == nil {
							verdict.Details[DetailExpiresAt] = anyTime
						}
					}
				}
				if fmt.Sprint(verdict.Details) != fmt.Sprint(r.want.details) {
					t.Fatalf("details %v, want %v", verdict.Details, r.want.details)
				}
				if verdict.Status() != finding.StatusActive && verdict.Status() != finding.StatusInactive && verdict.Message == "" {
					t.Fatal("an unknown verdict without a message")
				}
			} else {
				fault, ok := verify.AsFault(err)
				if !ok {
					t.Fatalf("got verdict %s, error %v; want a fault", verdict.Reason, err)
				}
				w := r.want.fault
				if fault.Kind != w.kind || fault.Network != w.network || fault.HTTPStatus != w.status || fault.RetryAfter != w.retryAfter || fault.Partner != finding.PartnerGCP || fault.Op == "" ||
					(w.msg != "" && fault.Msg != w.msg) {
					t.Fatalf("fault %+v, want kind %v network %v status %d retry-after %v", *fault, w.kind, w.network, w.status, w.retryAfter)
				}
			}
			got := rec.Snapshot()["gcp"]
			if got.Requests != r.want.requests || got.Errors != r.want.errors || got.NetworkErrors != r.want.network || got.RateLimitHits != r.want.limited {
				t.Fatalf("metrics requests/errors/network/limited = %d/%d/%d/%d, want %d/%d/%d/%d",
					got.Requests, got.Errors, got.NetworkErrors, got.RateLimitHits,
					r.want.requests, r.want.errors, r.want.network, r.want.limited)
			}
			if n := d.Discovery.Controls.Requests() + d.OAuth.Controls.Requests(); n != int64(r.want.requests) {
				t.Fatalf("the double saw %d requests, want %d", n, r.want.requests)
			}
			if d.URLCredentialLeaks() != 0 {
				t.Fatal("a credential was sent in a URL")
			}
		})
	}
}

// TestCredentialsCountedOncePerVerification checks, through the double's
// per-credential counters, that each verification is one request about the
// credential itself (not some other value the double would not recognize).
func TestCredentialsCountedOncePerVerification(t *testing.T) {
	d := googledouble.New(t)
	key, _, err := d.NewServiceAccountKey("counted@p.iam.gserviceaccount.com")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { leaks.secret(d.IssuedTokens()...) })
	apiKey := d.AddAPIKey(googledouble.APIKeyValid)
	clientID, secret := d.AddOAuthClient(googledouble.ClientActive)
	token := d.AddAccessToken(googledouble.TokenInfo{Azp: "a", Aud: "a", Scope: "openid"})
	cases := []struct {
		tt       finding.TokenType
		f        finding.Finding
		srv      *partnertest.Server
		countKey string
	}{
		{finding.TokenGCPAPIKey, mkFinding(finding.TokenGCPAPIKey, apiKey, ""), d.Discovery, apiKey},
		{finding.TokenGCPServiceAccountKey, mkFinding(finding.TokenGCPServiceAccountKey, string(key), ""), d.OAuth, "counted@p.iam.gserviceaccount.com"},
		{finding.TokenGCPOAuthClientSecret, mkFinding(finding.TokenGCPOAuthClientSecret, secret, clientID), d.OAuth, clientID},
		{finding.TokenGCPAccessToken, mkFinding(finding.TokenGCPAccessToken, token, ""), d.OAuth, token},
	}
	v, err := New(configFor(t, d))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run(string(tc.tt), func(t *testing.T) {
			d.ResetControls()
			verdict, err := v.Verify(context.Background(), tc.tt, tc.f)
			leaks.outcome(t.Name(), tc.tt, verdict, err)
			if err != nil || verdict.Reason != finding.ReasonPartnerConfirmed {
				t.Fatalf("verdict %s, error %v", verdict.Reason, err)
			}
			if n := tc.srv.Controls.CountFor(tc.countKey); n != 1 {
				t.Fatalf("the double counted %d requests for the credential, want 1", n)
			}
		})
	}
}

func TestNew(t *testing.T) {
	good := mustURL(t, "https://oauth2.googleapis.com")
	for name, eps := range map[string][]*url.URL{
		"no endpoints":       nil,
		"one endpoint":       {good},
		"three endpoints":    {good, good, good},
		"no discovery":       {nil, good},
		"no oauth":           {good, nil},
		"relative":           {mustURL(t, "/x"), good},
		"user info":          {good, mustURL(t, "https://user:pass@oauth2.googleapis.com")},
		"query":              {mustURL(t, "https://www.googleapis.com?key=x"), good},
		"unsupported scheme": {mustURL(t, "file:///etc"), good},
	} {
		t.Run("New rejects "+name, func(t *testing.T) {
			if _, err := New(partnerhttp.Options{Endpoints: eps}); err == nil || !strings.HasPrefix(err.Error(), "gcppartner: new verifier: ") {
				t.Fatalf("error %v", err)
			}
		})
	}
}

// recorder notes every request the verifier sends, as the network sees it.
type recorder struct {
	base http.RoundTripper
	reqs []recorded
}

type recorded struct {
	method, url string
	header      http.Header
	body        string
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := recorded{method: req.Method, url: req.URL.String(), header: req.Header.Clone()}
	if req.GetBody != nil {
		if b, err := req.GetBody(); err == nil {
			var sb strings.Builder
			_, _ = fmt.Fprint(&sb, readAll(b))
			rec.body = sb.String()
		}
	}
	r.reqs = append(r.reqs, rec)
	return r.base.RoundTrip(req)
}

func readAll(rc interface{ Read([]byte) (int, error) }) string {
	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := rc.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			return sb.String()
		}
	}
}

// TestCredentialsNeverInURLs sends every kind of credential, live and dead,
// and checks where each one travelled: API keys in X-Goog-Api-Key, the rest
// in form bodies; never in a URL, which proxies and access logs keep.
func TestCredentialsNeverInURLs(t *testing.T) {
	d := googledouble.New(t)
	sa := newServiceAccountKeys(t, d)
	rec := &recorder{base: http.DefaultTransport.(*http.Transport).Clone()}
	cfg := configFor(t, d)
	cfg.Transport = rec
	v, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	clientID, secret := d.AddOAuthClient(googledouble.ClientActive)
	cases := []struct {
		f        finding.Finding
		tt       finding.TokenType
		path     string
		carriers []string // where the secret must be: "header" or "body"
	}{
		{mkFinding(finding.TokenGCPAPIKey, d.AddAPIKey(googledouble.APIKeyValid), ""), finding.TokenGCPAPIKey, "/discovery/v1/apis", []string{"header"}},
		{mkFinding(finding.TokenGCPAPIKey, googledouble.NewAPIKey(), ""), finding.TokenGCPAPIKey, "/discovery/v1/apis", []string{"header"}},
		{mkFinding(finding.TokenGCPServiceAccountKey, string(sa.live), ""), finding.TokenGCPServiceAccountKey, "/token", nil},
		{mkFinding(finding.TokenGCPServiceAccountKey, string(sa.deletedKey), ""), finding.TokenGCPServiceAccountKey, "/token", nil},
		{mkFinding(finding.TokenGCPOAuthClientSecret, secret, clientID), finding.TokenGCPOAuthClientSecret, "/token", []string{"body"}},
		{mkFinding(finding.TokenGCPOAuthClientSecret, googledouble.NewClientSecret(), clientID), finding.TokenGCPOAuthClientSecret, "/token", []string{"body"}},
		{mkFinding(finding.TokenGCPAccessToken, d.AddAccessToken(googledouble.TokenInfo{Azp: "a", Aud: "a", Scope: "openid"}), ""), finding.TokenGCPAccessToken, "/tokeninfo", []string{"body"}},
		{mkFinding(finding.TokenGCPAccessToken, googledouble.NewAccessToken(), ""), finding.TokenGCPAccessToken, "/tokeninfo", []string{"body"}},
	}
	for _, tc := range cases {
		t.Run(string(tc.tt), func(t *testing.T) {
			rec.reqs = nil
			verdict, err := v.Verify(context.Background(), tc.tt, tc.f)
			leaks.outcome(t.Name(), tc.tt, verdict, err)
			if err != nil {
				t.Fatalf("fault %v", err)
			}
			if len(rec.reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(rec.reqs))
			}
			req := rec.reqs[0]
			u := mustURL(t, req.url)
			if u.Path != tc.path {
				t.Fatalf("path %s, want %s", u.Path, tc.path)
			}
			tok := tc.f.Token.Reveal()
			secrets := []string{tok, url.QueryEscape(tok)}
			var key struct {
				PrivateKey string `json:"private_key"`
			}
			if json.Unmarshal([]byte(tok), &key) == nil && key.PrivateKey != "" {
				secrets = append(secrets, key.PrivateKey, strings.Split(key.PrivateKey, "\n")[1])
			}
			for _, s := range secrets {
				if strings.Contains(req.url, s) {
					t.Fatal("the credential is in the URL")
				}
			}
			if tc.tt == finding.TokenGCPAPIKey && u.RawQuery != "name=discovery&preferred=true" {
				t.Fatalf("query %q, want only name=discovery&preferred=true", u.RawQuery)
			}
			if tc.tt != finding.TokenGCPAPIKey && u.RawQuery != "" {
				t.Fatalf("query %q on a POST, want none", u.RawQuery)
			}
			for _, c := range tc.carriers {
				switch c {
				case "header":
					if req.header.Get("X-Goog-Api-Key") != tok {
						t.Fatal("the API key is not in X-Goog-Api-Key")
					}
				case "body":
					if req.method != http.MethodPost || !strings.Contains(req.body, url.QueryEscape(tok)) {
						t.Fatal("the credential is not in the POST body")
					}
				}
			}
			if req.header.Get("User-Agent") == "" || !strings.Contains(req.header.Get("User-Agent"), "partner-token-verification") {
				t.Fatal("no project User-Agent")
			}
			if d.URLCredentialLeaks() != 0 {
				t.Fatal("the double saw a credential in a URL")
			}
		})
	}
}

// TestTokenURIIsIgnored plants a key whose token_uri names a canary server:
// the verification must still go to the configured endpoint only, and the
// canary must see nothing, whether the key is live or dead.
func TestTokenURIIsIgnored(t *testing.T) {
	d := googledouble.New(t)
	sa := newServiceAccountKeys(t, d)
	canary, err := partnertest.Serve("", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"ya29.canary","expires_in":3599,"token_type":"Bearer"}`))
	}), func(w http.ResponseWriter, status int, _, _ string) { w.WriteHeader(status) })
	if err != nil {
		t.Fatal(err)
	}
	defer canary.Close()
	cases := []struct {
		name string
		key  []byte
		want finding.Reason
	}{
		{"live key", sa.live, finding.ReasonPartnerConfirmed},
		{"deleted key", sa.deletedKey, finding.ReasonPartnerRejected},
	}
	for _, tc := range cases {
		for _, uri := range []string{canary.URL + "/token", canary.URL} {
			t.Run(tc.name+" "+strings.TrimPrefix(uri, canary.URL), func(t *testing.T) {
				d.ResetControls()
				rec := &recorder{base: http.DefaultTransport.(*http.Transport).Clone()}
				cfg := configFor(t, d)
				cfg.Transport = rec
				v, err := New(cfg)
				if err != nil {
					t.Fatal(err)
				}
				f := mkFinding(finding.TokenGCPServiceAccountKey, string(withTokenURI(t, tc.key, uri)), "")
				verdict, err := v.Verify(context.Background(), finding.TokenGCPServiceAccountKey, f)
				leaks.outcome(t.Name(), finding.TokenGCPServiceAccountKey, verdict, err)
				if err != nil || verdict.Reason != tc.want {
					t.Fatalf("verdict %s, error %v; want %s", verdict.Reason, err, tc.want)
				}
				if n := canary.Controls.Requests(); n != 0 {
					t.Fatalf("the canary named in token_uri saw %d requests", n)
				}
				if len(rec.reqs) != 1 || rec.reqs[0].url != d.OAuth.URL+"/token" {
					t.Fatalf("requests went to %v, want only %s/token", rec.reqs, d.OAuth.URL)
				}
				if d.OAuth.Controls.CountFor(sa.email) != 1 && tc.want == finding.ReasonPartnerConfirmed {
					t.Fatal("the configured token endpoint did not see the assertion")
				}
			})
		}
	}
}
