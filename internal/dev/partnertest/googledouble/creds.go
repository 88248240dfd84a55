package googledouble

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/url"
	"strings"
)

// Alphabets of Google's credential formats (see shared/finding/check.go).
const (
	urlSafe  = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_-"
	digits   = "0123456789"
	lowerNum = "0123456789abcdefghijklmnopqrstuvwxyz"
)

// GoogleTokenURI is the token_uri real key files carry; the double writes it
// into generated keys because verifiers must ignore it anyway.
const GoogleTokenURI = "https://oauth2.googleapis.com/token"

// random returns n characters drawn uniformly from alphabet with crypto/rand,
// so generated test credentials are unpredictable like real ones.
func random(alphabet string, n int) string {
	limit := 256 - 256%len(alphabet) // reject bytes that would bias the draw
	out := make([]byte, 0, n)
	buf := make([]byte, 2*n)
	for len(out) < n {
		if _, err := rand.Read(buf); err != nil {
			panic("googledouble: crypto/rand failed: " + err.Error())
		}
		for _, b := range buf {
			if int(b) < limit && len(out) < n {
				out = append(out, alphabet[int(b)%len(alphabet)])
			}
		}
	}
	return string(out)
}

// NewAPIKey returns a random key in the API key format (AIza + 35 characters).
func NewAPIKey() string { return "AIza" + random(urlSafe, 35) }

// NewClientSecret returns a random OAuth client secret (GOCSPX- + 28 characters).
func NewClientSecret() string { return "GOCSPX-" + random(urlSafe, 28) }

// NewClientID returns a random OAuth client id in Google's
// <project number>-<32 characters>.apps.googleusercontent.com form.
func NewClientID() string {
	return random("123456789", 1) + random(digits, 11) + "-" + random(lowerNum, 32) + ".apps.googleusercontent.com"
}

// NewAccessToken returns a random OAuth access token (ya29. + characters).
func NewAccessToken() string { return "ya29." + random(urlSafe, 160) }

// serviceAccountKeyFile is the JSON key file Google hands out for a
// service-account key, field for field.
type serviceAccountKeyFile struct {
	Type                    string `json:"type"`
	ProjectID               string `json:"project_id"`
	PrivateKeyID            string `json:"private_key_id"`
	PrivateKey              string `json:"private_key"`
	ClientEmail             string `json:"client_email"`
	ClientID                string `json:"client_id"`
	AuthURI                 string `json:"auth_uri"`
	TokenURI                string `json:"token_uri"`
	AuthProviderX509CertURL string `json:"auth_provider_x509_cert_url"`
	ClientX509CertURL       string `json:"client_x509_cert_url"`
	UniverseDomain          string `json:"universe_domain"`
}

// NewServiceAccountKey creates a fresh RSA-2048 key for the service account
// email (creating the account if needed), registers its public key with the
// token endpoint and returns the complete key file and its key id. The key
// file is a credential: tests must not print it.
func (d *Double) NewServiceAccountKey(email string) (keyJSON []byte, keyID string, err error) {
	if !strings.Contains(email, "@") {
		return nil, "", fmt.Errorf("googledouble: new service-account key: email %q has no @", email)
	}
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, "", fmt.Errorf("googledouble: new service-account key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, "", fmt.Errorf("googledouble: new service-account key: %w", err)
	}
	idBytes := make([]byte, 20)
	if _, err := rand.Read(idBytes); err != nil {
		return nil, "", fmt.Errorf("googledouble: new service-account key: %w", err)
	}
	keyID = hex.EncodeToString(idBytes)
	project := "test-project"
	if _, domain, _ := strings.Cut(email, "@"); strings.HasSuffix(domain, ".iam.gserviceaccount.com") {
		project = strings.TrimSuffix(domain, ".iam.gserviceaccount.com")
	}
	clientID := d.addServiceAccountKey(email, keyID, &priv.PublicKey)
	keyJSON, err = json.MarshalIndent(serviceAccountKeyFile{
		Type:                    "service_account",
		ProjectID:               project,
		PrivateKeyID:            keyID,
		PrivateKey:              string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		ClientEmail:             email,
		ClientID:                clientID,
		AuthURI:                 "https://accounts.google.com/o/oauth2/auth",
		TokenURI:                GoogleTokenURI,
		AuthProviderX509CertURL: "https://www.googleapis.com/oauth2/v1/certs",
		ClientX509CertURL:       "https://www.googleapis.com/robot/v1/metadata/x509/" + url.PathEscape(email),
		UniverseDomain:          "googleapis.com",
	}, "", "  ")
	if err != nil {
		return nil, "", fmt.Errorf("googledouble: new service-account key: %w", err)
	}
	return keyJSON, keyID, nil
}
