package finding

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// serviceAccountKey returns a key file of the right shape; the PEM body is
// random filler, since Check only looks at the shape.
func serviceAccountKey(mut func(map[string]string)) string {
	k := map[string]string{
		"type":           "service_account",
		"project_id":     "p-" + randHex(6),
		"private_key_id": randHex(40),
		"private_key":    "-----BEGIN PRIVATE KEY-----\n" + randHex(64) + "\n-----END PRIVATE KEY-----\n",
		"client_email":   "sa-" + randHex(6) + "@p.iam.gserviceaccount.com",
	}
	if mut != nil {
		mut(k)
	}
	b, _ := json.Marshal(k)
	return string(b)
}

func TestCheck(t *testing.T) {
	awsID := "AKIA" + randUpper(16)
	awsSecret := randHex(40)
	gcpKey := "AIza" + randHex(35)
	clientSecret := "GOCSPX-" + randHex(28)
	clientID := "1234-" + randHex(8) + ".apps.googleusercontent.com"
	ctx := func(kv ...string) map[string]Secret {
		m := map[string]Secret{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = Secret(kv[i+1])
		}
		return m
	}
	tests := []struct {
		name    string
		f       Finding
		want    Reason
		wantMsg string
	}{
		{"aws key id alone", Finding{RuleID: "AWS", Token: Secret(awsID)}, "", ""},
		{"aws key id with secret", Finding{RuleID: "AWS", Token: Secret(awsID), Context: ctx(ContextAWSSecretAccessKey, awsSecret)}, "", ""},
		{"aws ASIA temporary key", Finding{RuleID: "AWS", Token: Secret("ASIA" + randUpper(16))}, ReasonUnsupportedTokenType, "not ASIA"},
		{"aws AROA role id", Finding{RuleID: "AWS", Token: Secret("AROA" + randUpper(16))}, ReasonUnsupportedTokenType, "AKIA"},
		{"aws lower case", Finding{RuleID: "AWS", Token: Secret(strings.ToLower(awsID))}, ReasonMalformedToken, "not an AWS access key id"},
		{"aws too short", Finding{RuleID: "AWS", Token: Secret(awsID[:19])}, ReasonMalformedToken, "not an AWS access key id"},
		{"aws bad secret", Finding{RuleID: "AWS", Token: Secret(awsID), Context: ctx(ContextAWSSecretAccessKey, "short")}, ReasonMalformedToken, "aws_secret_access_key"},
		{"gcp api key", Finding{RuleID: "GCP API key", Token: Secret(gcpKey)}, "", ""},
		{"gcp api key one short", Finding{RuleID: "GCP API key", Token: Secret(gcpKey[:38])}, ReasonMalformedToken, "GCP API key"},
		{"gcp api key bad char", Finding{RuleID: "GCP API key", Token: Secret(gcpKey[:38] + "!")}, ReasonMalformedToken, "GCP API key"},
		{"gcp service account", Finding{RuleID: "Google (GCP) Service-account", Token: Secret(serviceAccountKey(nil))}, "", ""},
		{"gcp service account not JSON", Finding{RuleID: "Google (GCP) Service-account", Token: Secret("{" + randHex(20))}, ReasonMalformedToken, "not a service-account key file"},
		{"gcp service account wrong type", Finding{RuleID: "Google (GCP) Service-account", Token: Secret(serviceAccountKey(func(k map[string]string) { k["type"] = "authorized_user" }))}, ReasonMalformedToken, "type is not service_account"},
		{"gcp service account no email", Finding{RuleID: "Google (GCP) Service-account", Token: Secret(serviceAccountKey(func(k map[string]string) { delete(k, "client_email") }))}, ReasonMalformedToken, "client_email missing"},
		{"gcp service account no PEM", Finding{RuleID: "Google (GCP) Service-account", Token: Secret(serviceAccountKey(func(k map[string]string) { k["private_key"] = randHex(30) }))}, ReasonMalformedToken, "private_key"},
		{"gcp oauth client secret", Finding{RuleID: "GCP OAuth client secret", Token: Secret(clientSecret), Context: ctx(ContextGCPClientID, clientID)}, "", ""},
		{"gcp oauth client secret without client id", Finding{RuleID: "GCP OAuth client secret", Token: Secret(clientSecret)}, ReasonMissingContext, "gcp_client_id"},
		{"gcp oauth client secret bad client id", Finding{RuleID: "GCP OAuth client secret", Token: Secret(clientSecret), Context: ctx(ContextGCPClientID, "not-a-client")}, ReasonMalformedToken, "gcp_client_id"},
		{"gcp oauth client secret malformed", Finding{RuleID: "GCP OAuth client secret", Token: Secret("GOCSPX-" + randHex(10)), Context: ctx(ContextGCPClientID, clientID)}, ReasonMalformedToken, "GOCSPX-"},
		{"gcp access token", Finding{RuleID: "GCP OAuth access token", Token: Secret("ya29." + randHex(60))}, "", ""},
		{"gcp service-account access token", Finding{RuleID: "GCP OAuth access token", Token: Secret("ya29.c." + randHex(60))}, "", ""},
		{"gcp access token malformed", Finding{RuleID: "GCP OAuth access token", Token: Secret("ya29." + randHex(10) + " x")}, ReasonMalformedToken, "ya29."},
		{"postman", Finding{RuleID: "Postman API token", Token: Secret(postmanToken())}, "", ""},
		{"postman upper-case hex", Finding{RuleID: "Postman API token", Token: Secret(strings.ToUpper(postmanToken()))}, ReasonMalformedToken, "Postman API key"},
		{"postman short", Finding{RuleID: "Postman API token", Token: Secret(postmanToken()[:50])}, ReasonMalformedToken, "Postman API key"},
		{"unknown rule", Finding{RuleID: "Slack token", Token: Secret("xoxb-" + randHex(20))}, ReasonUnsupportedTokenType, `"Slack token"`},
		{"unknown unprintable rule", Finding{RuleID: "a\tb", Token: "x"}, ReasonUnsupportedTokenType, "unprintable"},
		{"problem wins", Finding{RuleID: "Postman API token", Token: Secret(postmanToken()), Problem: &FieldError{Field: "findings[0].x", Msg: "bad"}}, ReasonMalformedToken, "findings[0].x: bad"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, msg := Check(tc.f)
			if got != tc.want {
				t.Fatalf("Check reason = %q (%s), want %q", got, msg, tc.want)
			}
			if (tc.want == "") != (msg == "") || !strings.Contains(msg, tc.wantMsg) {
				t.Errorf("Check message = %q, want one containing %q", msg, tc.wantMsg)
			}
			tok := tc.f.Token.Reveal()
			if len(tok) >= 8 && strings.Contains(msg, tok) {
				t.Error("Check message contains the token")
			}
			for _, v := range tc.f.Context {
				if len(v) >= 8 && strings.Contains(msg, v.Reveal()) {
					t.Error("Check message contains a context value")
				}
			}
		})
	}
}

func TestRoutes(t *testing.T) {
	want := map[string]Route{
		"AWS":                          {PartnerAWS, TokenAWSAccessKey},
		"GCP API key":                  {PartnerGCP, TokenGCPAPIKey},
		"Google (GCP) Service-account": {PartnerGCP, TokenGCPServiceAccountKey},
		"GCP OAuth client secret":      {PartnerGCP, TokenGCPOAuthClientSecret},
		"GCP OAuth access token":       {PartnerGCP, TokenGCPAccessToken},
		"Postman API token":            {PartnerPostman, TokenPostmanAPIKey},
	}
	for rule, r := range want {
		got, ok := RouteFor(rule)
		if !ok || got != r {
			t.Errorf("RouteFor(%q) = %v, %v; want %v", rule, got, ok, r)
		}
	}
	for _, rule := range []string{"", "aws", "Postman API Token", "GCP"} {
		if _, ok := RouteFor(rule); ok {
			t.Errorf("RouteFor(%q) routes; rule ids match exactly", rule)
		}
	}
	ids := RuleIDs()
	if len(ids) != len(want) {
		t.Fatalf("RuleIDs = %v", ids)
	}
	for i := 1; i < len(ids); i++ {
		if ids[i-1] >= ids[i] {
			t.Errorf("RuleIDs not sorted: %v", ids)
		}
	}
	for _, p := range Partners() {
		if got, ok := ParsePartner(string(p)); !ok || got != p {
			t.Errorf("ParsePartner(%q) = %q, %v", p, got, ok)
		}
	}
	if _, ok := ParsePartner("slack"); ok {
		t.Error("ParsePartner accepts an unknown partner")
	}
}

func TestFieldErrorText(t *testing.T) {
	err := error(&FieldError{Field: "findings[3].token", Msg: "empty"})
	if err.Error() != "findings[3].token: empty" {
		t.Errorf("FieldError = %q", err)
	}
	var be error = &BodyError{Msg: "body is not valid UTF-8"}
	if be.Error() != "finding batch: body is not valid UTF-8" {
		t.Errorf("BodyError without field = %q", be)
	}
	var target *BodyError
	if !errors.As(be, &target) {
		t.Error("errors.As does not find *BodyError")
	}
}
