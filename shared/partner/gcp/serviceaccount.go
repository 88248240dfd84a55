package gcppartner

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	partnerdef "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner"
	"net/http"
	"strings"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

var (
	emailRE               = partnerdef.NewPattern(`^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,253}$`)
	serviceAccountEmailRE = partnerdef.NewPattern(`^[A-Za-z0-9._-]{1,128}@[A-Za-z0-9.-]{1,253}\.gserviceaccount\.com$`)
)

func isServiceAccountEmail(s string) bool { return serviceAccountEmailRE.MatchString(s) }

// keyFile is the part of a service-account key file the JWT-bearer flow
// uses. token_uri is deliberately absent: the endpoint comes from
// configuration, never from the finding.
type keyFile struct {
	Type         string `json:"type"`
	ClientEmail  string `json:"client_email"`
	PrivateKey   string `json:"private_key"`
	PrivateKeyID string `json:"private_key_id"`
}

// parseKeyFile returns the key file and a malformed_token message ("" when
// usable). The private key must be an RSA key in PEM (PKCS#8 or PKCS#1),
// as Google issues and the jwt package signs with.
func parseKeyFile(tok string) (keyFile, string) {
	var k keyFile
	if err := json.Unmarshal([]byte(tok), &k); err != nil {
		return k, "service-account key: not a JSON key file"
	}
	if !emailRE.MatchString(k.ClientEmail) {
		return k, "service-account key: client_email is not an email address"
	}
	block, _ := pem.Decode([]byte(k.PrivateKey))
	if block == nil || !strings.HasSuffix(block.Type, "PRIVATE KEY") {
		return k, "service-account key: private_key is not a PEM private key"
	}
	if key, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		if _, ok := key.(*rsa.PrivateKey); !ok {
			return k, "service-account key: private_key is not an RSA key"
		}
		return k, ""
	}
	if _, err := x509.ParsePKCS1PrivateKey(block.Bytes); err != nil {
		return k, "service-account key: private_key does not parse as PKCS#8 or PKCS#1"
	}
	return k, ""
}

// verifyServiceAccountKey runs the JWT-bearer grant with the key against the
// configured token endpoint. google.JWTConfigFromJSON reads the key file as
// Google's own clients do; its TokenURL (the key's token_uri) is then
// replaced by the configured endpoint, so a planted key cannot choose where
// we send a signed assertion.
func (v *Verifier) verifyServiceAccountKey(ctx context.Context, tok string) (verify.Verdict, error) {
	k, problem := parseKeyFile(tok)
	if problem != "" {
		return verify.Verdict{Reason: finding.ReasonMalformedToken, Message: problem}, nil
	}
	cfg, err := google.JWTConfigFromJSON([]byte(tok), ServiceAccountScope)
	if err != nil {
		// The library's message may quote the file; only say what failed.
		return verify.Verdict{Reason: finding.ReasonMalformedToken, Message: "service-account key: not a key file the Google client accepts"}, nil
	}
	// The JWT-bearer grant goes to the configured endpoint, never the key's token_uri.
	cfg.TokenURL = v.c.URL(endpointOAuth, "token")
	r := partnerhttp.Request{Op: opJWT, Secrets: []string{tok, k.PrivateKey, k.PrivateKeyID}}
	a, err := v.exchange(ctx, r, func(ctx context.Context) (*oauth2.Token, error) {
		return cfg.TokenSource(ctx).Token()
	})
	switch {
	case errors.Is(err, partnerhttp.ErrNotSent):
		return verify.Verdict{Reason: finding.ReasonMalformedToken, Message: "service-account key: cannot sign an assertion with private_key"}, nil
	case err != nil:
		return verify.Verdict{}, err
	case a.token != nil && a.token.AccessToken != "":
		// The granted token is live credential material: it is dropped here.
		return verify.Verdict{Reason: finding.ReasonPartnerConfirmed, Details: finding.Details{DetailClientEmail: k.ClientEmail}}, nil
	case a.token != nil:
		return verify.Verdict{}, v.c.Unusable(ctx, r, &partnerhttp.Answer{Status: a.status}, "200 without an access token")
	case a.status == http.StatusBadRequest && a.code == "invalid_grant" && strings.HasPrefix(a.desc, "Invalid JWT:"):
		// "Invalid JWT: ..." blames the assertion's claims (our clock, the
		// audience), not the key: that proves nothing about the key.
		return verify.Verdict{}, v.c.Unusable(ctx, r, &partnerhttp.Answer{Status: a.status}, "assertion claims rejected (clock skew or audience), not the key")
	case a.status == http.StatusBadRequest && a.code == "invalid_grant":
		return verify.Verdict{Reason: finding.ReasonPartnerRejected}, nil
	default:
		return verify.Verdict{}, v.proveNothing(ctx, r, a)
	}
}
