package registry

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner"
	anthropicpartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/anthropic"
	githubpartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/github"
	openaipartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/openai"
	stripepartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/stripe"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
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
	ctx := func(kv ...string) map[string]finding.Secret {
		m := map[string]finding.Secret{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = finding.Secret(kv[i+1])
		}
		return m
	}
	tests := []struct {
		name    string
		f       finding.Finding
		want    finding.Reason
		wantMsg string
	}{
		{"aws key id alone", finding.Finding{RuleID: "AWS", Token: finding.Secret(awsID)}, "", ""},
		{"aws key id with secret", finding.Finding{RuleID: "AWS", Token: finding.Secret(awsID), Context: ctx(finding.ContextAWSSecretAccessKey, awsSecret)}, "", ""},
		{"aws ASIA temporary key", finding.Finding{RuleID: "AWS", Token: finding.Secret("ASIA" + randUpper(16))}, finding.ReasonUnsupportedTokenType, "not ASIA"},
		{"aws AROA role id", finding.Finding{RuleID: "AWS", Token: finding.Secret("AROA" + randUpper(16))}, finding.ReasonUnsupportedTokenType, "AKIA"},
		{"aws lower case", finding.Finding{RuleID: "AWS", Token: finding.Secret(strings.ToLower(awsID))}, finding.ReasonMalformedToken, "not an AWS access key id"},
		{"aws too short", finding.Finding{RuleID: "AWS", Token: finding.Secret(awsID[:19])}, finding.ReasonMalformedToken, "not an AWS access key id"},
		{"aws bad secret", finding.Finding{RuleID: "AWS", Token: finding.Secret(awsID), Context: ctx(finding.ContextAWSSecretAccessKey, "short")}, finding.ReasonMalformedToken, "aws_secret_access_key"},
		{"gcp api key", finding.Finding{RuleID: "GCP API key", Token: finding.Secret(gcpKey)}, "", ""},
		{"gcp api key one short", finding.Finding{RuleID: "GCP API key", Token: finding.Secret(gcpKey[:38])}, finding.ReasonMalformedToken, "GCP API key"},
		{"gcp api key bad char", finding.Finding{RuleID: "GCP API key", Token: finding.Secret(gcpKey[:38] + "!")}, finding.ReasonMalformedToken, "GCP API key"},
		{"gcp service account", finding.Finding{RuleID: "Google (GCP) Service-account", Token: finding.Secret(serviceAccountKey(nil))}, "", ""},
		{"gcp service account not JSON", finding.Finding{RuleID: "Google (GCP) Service-account", Token: finding.Secret("{" + randHex(20))}, finding.ReasonMalformedToken, "not a service-account key file"},
		{"gcp service account wrong type", finding.Finding{RuleID: "Google (GCP) Service-account", Token: finding.Secret(serviceAccountKey(func(k map[string]string) { k["type"] = "authorized_user" }))}, finding.ReasonMalformedToken, "type is not service_account"},
		{"gcp service account no email", finding.Finding{RuleID: "Google (GCP) Service-account", Token: finding.Secret(serviceAccountKey(func(k map[string]string) { delete(k, "client_email") }))}, finding.ReasonMalformedToken, "client_email missing"},
		{"gcp service account no PEM", finding.Finding{RuleID: "Google (GCP) Service-account", Token: finding.Secret(serviceAccountKey(func(k map[string]string) { k["private_key"] = randHex(30) }))}, finding.ReasonMalformedToken, "private_key"},
		{"gcp oauth client secret", finding.Finding{RuleID: "GCP OAuth client secret", Token: finding.Secret(clientSecret), Context: ctx(finding.ContextGCPClientID, clientID)}, "", ""},
		{"gcp oauth client secret without client id", finding.Finding{RuleID: "GCP OAuth client secret", Token: finding.Secret(clientSecret)}, finding.ReasonMissingContext, "gcp_client_id"},
		{"gcp oauth client secret bad client id", finding.Finding{RuleID: "GCP OAuth client secret", Token: finding.Secret(clientSecret), Context: ctx(finding.ContextGCPClientID, "not-a-client")}, finding.ReasonMalformedToken, "gcp_client_id"},
		{"gcp oauth client secret malformed", finding.Finding{RuleID: "GCP OAuth client secret", Token: finding.Secret("GOCSPX-" + randHex(10)), Context: ctx(finding.ContextGCPClientID, clientID)}, finding.ReasonMalformedToken, "GOCSPX-"},
		{"gcp access token", finding.Finding{RuleID: "GCP OAuth access token", Token: finding.Secret("ya29." + randHex(60))}, "", ""},
		{"gcp service-account access token", finding.Finding{RuleID: "GCP OAuth access token", Token: finding.Secret("ya29.c." + randHex(60))}, "", ""},
		{"gcp access token malformed", finding.Finding{RuleID: "GCP OAuth access token", Token: finding.Secret("ya29." + randHex(10) + " x")}, finding.ReasonMalformedToken, "ya29."},
		{"postman", finding.Finding{RuleID: "Postman API token", Token: finding.Secret(postmanToken())}, "", ""},
		{"postman upper-case hex", finding.Finding{RuleID: "Postman API token", Token: finding.Secret(strings.ToUpper(postmanToken()))}, finding.ReasonMalformedToken, "Postman API key"},
		{"postman short", finding.Finding{RuleID: "Postman API token", Token: finding.Secret(postmanToken()[:50])}, finding.ReasonMalformedToken, "Postman API key"},
		{"unknown rule", finding.Finding{RuleID: "generic-api-key", Token: finding.Secret("xoxb-" + randHex(20))}, finding.ReasonUnsupportedTokenType, `"generic-api-key"`},
		{"unknown unprintable rule", finding.Finding{RuleID: "a\tb", Token: "x"}, finding.ReasonUnsupportedTokenType, "unprintable"},
		{"problem wins", finding.Finding{RuleID: "Postman API token", Token: finding.Secret(postmanToken()), Problem: &finding.FieldError{Field: "findings[0].x", Msg: "bad"}}, finding.ReasonMalformedToken, "findings[0].x: bad"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, got, msg := Check(tc.f)
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
	want := map[string]finding.Route{
		"AWS":                          {Partner: finding.PartnerAWS, TokenType: finding.TokenAWSAccessKey},
		"GCP API key":                  {Partner: finding.PartnerGCP, TokenType: finding.TokenGCPAPIKey},
		"Google (GCP) Service-account": {Partner: finding.PartnerGCP, TokenType: finding.TokenGCPServiceAccountKey},
		"GCP OAuth client secret":      {Partner: finding.PartnerGCP, TokenType: finding.TokenGCPOAuthClientSecret},
		"GCP OAuth access token":       {Partner: finding.PartnerGCP, TokenType: finding.TokenGCPAccessToken},
		"Postman API token":            {Partner: finding.PartnerPostman, TokenType: finding.TokenPostmanAPIKey},
		"aws-access-token":             {Partner: finding.PartnerAWS, TokenType: finding.TokenAWSAccessKey},
		"gcp-api-key":                  {Partner: finding.PartnerGCP, TokenType: finding.TokenGCPAPIKey},
		"postman-api-token":            {Partner: finding.PartnerPostman, TokenType: finding.TokenPostmanAPIKey},
		"Heroku API Key":               {Partner: "heroku", TokenType: "heroku_api_key"},
		"heroku-api-key":               {Partner: "heroku", TokenType: "heroku_api_key"},
		"heroku-api-key-v2":            {Partner: "heroku", TokenType: "heroku_api_key"},
		"open ai token":                {Partner: openaipartner.Name, TokenType: openaipartner.TokenAPIKey},
		"openai-api-key":               {Partner: openaipartner.Name, TokenType: openaipartner.TokenAPIKey},

		"StripeLiveSecretKey":      {Partner: stripepartner.Name, TokenType: stripepartner.TokenSecretKey},
		"StripeLiveRestrictedKey":  {Partner: stripepartner.Name, TokenType: stripepartner.TokenRestrictedKey},
		"StripeLiveShortSecretKey": {Partner: stripepartner.Name, TokenType: stripepartner.TokenSecretKey},
		"stripe-access-token":      {Partner: stripepartner.Name, TokenType: stripepartner.TokenSecretKey},
		// GitHub rules route to the rule's token type; Check types by prefix.
		"Github Personal Access Token":         {Partner: githubpartner.Name, TokenType: githubpartner.TokenPAT},
		"GithubFineGrainedPersonalAccessToken": {Partner: githubpartner.Name, TokenType: githubpartner.TokenFineGrainedPAT},
		"Github OAuth Access Token":            {Partner: githubpartner.Name, TokenType: githubpartner.TokenOAuth},
		"GithubAppInstallationToken":           {Partner: githubpartner.Name, TokenType: githubpartner.TokenAppInstallation},
		"Github App Token":                     {Partner: githubpartner.Name, TokenType: githubpartner.TokenAppInstallation},
		"Github Refresh Token":                 {Partner: githubpartner.Name, TokenType: githubpartner.TokenRefresh},
		"github-pat":                           {Partner: githubpartner.Name, TokenType: githubpartner.TokenPAT},
		"github-fine-grained-pat":              {Partner: githubpartner.Name, TokenType: githubpartner.TokenFineGrainedPAT},
		"github-oauth":                         {Partner: githubpartner.Name, TokenType: githubpartner.TokenOAuth},
		"github-app-token":                     {Partner: githubpartner.Name, TokenType: githubpartner.TokenAppInstallation},
		"github-refresh-token":                 {Partner: githubpartner.Name, TokenType: githubpartner.TokenRefresh},
		"Sendgrid API token":                   {Partner: "sendgrid", TokenType: "sendgrid_api_key"},
		"sendgrid-api-token":                   {Partner: "sendgrid", TokenType: "sendgrid_api_key"},
		"npm access token":                     {Partner: "npm", TokenType: "npm_access_token"},
		"npm-access-token":                     {Partner: "npm", TokenType: "npm_access_token"},
	}
	want["Slack token"] = finding.Route{Partner: "slack", TokenType: "slack_bot_token"}
	want["slack-bot-token"] = finding.Route{Partner: "slack", TokenType: "slack_bot_token"}
	want["slack-user-token"] = finding.Route{Partner: "slack", TokenType: "slack_user_token"}
	want["anthropic_key"] = finding.Route{Partner: anthropicpartner.Name, TokenType: anthropicpartner.TokenAPIKey}
	want["anthropic-api-key"] = finding.Route{Partner: anthropicpartner.Name, TokenType: anthropicpartner.TokenAPIKey}
	for _, id := range []string{"gitlab_personal_access_token", "gitlab_personal_access_token_routable", "gitlab-pat", "gitlab-pat-routable"} {
		want[id] = finding.Route{Partner: "gitlab", TokenType: "gitlab_personal_access_token"}
	}
	want["anthropic-admin-api-key"] = finding.Route{Partner: anthropicpartner.Name, TokenType: anthropicpartner.TokenAdminKey}
	for rule, r := range want {
		got, ok := routes[rule]
		if !ok || (finding.Route{Partner: got.def.Name, TokenType: got.rule}) != r {
			t.Errorf("route of %q = %v, %v; want %v", rule, got, ok, r)
		}
	}
	for _, rule := range []string{"", "aws", "Postman API Token", "GCP"} {
		if _, ok := routes[rule]; ok {
			t.Errorf("%q routes; rule ids match exactly", rule)
		}
	}
	if len(routes) != len(want) {
		t.Errorf("%d rule ids routed, want %d", len(routes), len(want))
	}
	for _, p := range Names() {
		if got, ok := Lookup(string(p)); !ok || got.Name != p {
			t.Errorf("Lookup(%q) = %q, %v", p, got.Name, ok)
		}
	}
	if _, ok := Lookup("nosuchpartner"); ok {
		t.Error("Lookup accepts an unknown partner")
	}
}

func randHex(n int) string {
	b := make([]byte, (n+1)/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

func randUpper(n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[mrand.IntN(len(alphabet))]
	}
	return string(b)
}

func postmanToken() string { return "PMAK-" + randHex(24) + "-" + randHex(34) }

// TestBuildRoutesRejects: the registry refuses a list in which a partner or
// a rule id appears twice or a definition lacks a part, so a new partner
// cannot silently take another's rule.
func TestBuildRoutesRejects(t *testing.T) {
	base := All()
	dup := append(All(), base[0])
	if _, err := buildRoutes(dup); err == nil || !strings.Contains(err.Error(), "listed twice") {
		t.Errorf("duplicate partner: %v", err)
	}
	other := base[2]
	other.Name = "other"
	if _, err := buildRoutes(append(All(), other)); err == nil || !strings.Contains(err.Error(), "routed to both") {
		t.Errorf("duplicate rule id: %v", err)
	}
	bad := base[0]
	bad.Name, bad.Rules, bad.New = "bad", nil, nil
	if _, err := buildRoutes([]partner.Definition{bad}); err == nil {
		t.Error("a definition without rules or constructor is accepted")
	}
	wrongType := base[0]
	wrongType.Name, wrongType.TokenTypes = "wrongtype", []finding.TokenType{"x"}
	if _, err := buildRoutes([]partner.Definition{wrongType}); err == nil || !strings.Contains(err.Error(), "not in TokenTypes") {
		t.Errorf("rule with an undeclared token type: %v", err)
	}
	if _, err := buildRoutes(All()); err != nil {
		t.Errorf("the registry itself: %v", err)
	}
}

// TestEveryPartnerHasBothRuleFamilies: each partner routes GitLab's and
// gitleaks' rule ids (contract §7).
func TestEveryPartnerHasBothRuleFamilies(t *testing.T) {
	for _, d := range All() {
		has := map[partner.Scanner]bool{}
		for _, r := range d.Rules {
			has[r.Scanner] = true
		}
		if !has[partner.GitLab] || !has[partner.Gitleaks] {
			t.Errorf("%s: rules of GitLab %v, of gitleaks %v", d.Name, has[partner.GitLab], has[partner.Gitleaks])
		}
	}
}

// TestOptionsReadEndpoints: endpoints come from PARTNER_ENDPOINT_… or the
// partner's default, in the definition's order, and a bad one is an error.
func TestOptionsReadEndpoints(t *testing.T) {
	gcp, _ := Lookup("gcp")
	env := map[string]string{gcp.Endpoints[1].Env: "http://127.0.0.1:9/oauth/"}
	o, err := Options(gcp, func(k string) string { return env[k] })
	if err != nil || len(o.Endpoints) != 2 || o.Endpoints[0].String() != gcp.Endpoints[0].Default || o.Endpoints[1].String() != "http://127.0.0.1:9/oauth" {
		t.Fatalf("Options = %+v, %v", o.Endpoints, err)
	}
	env[gcp.Endpoints[0].Env] = "ftp://x"
	if _, err := Options(gcp, func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), gcp.Endpoints[0].Env) {
		t.Errorf("bad endpoint: %v", err)
	}
}

// TestREADMEListsEveryPartner: README's verifier table has a row for every
// token type of every partner, its configuration table every endpoint
// variable, and its rule-id table every routed rule id, so the registry and
// the documentation cannot drift apart.
func TestREADMEListsEveryPartner(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	for _, d := range All() {
		for _, tt := range d.TokenTypes {
			if !strings.Contains(readme, "| `"+string(tt)+"`") {
				t.Errorf("README's verifier table has no row for %s (%s)", tt, d.Name)
			}
		}
		for _, e := range d.Endpoints {
			if !strings.Contains(readme, "`"+e.Env+"`") {
				t.Errorf("README does not name %s (%s)", e.Env, d.Name)
			}
		}
		for _, r := range d.Rules {
			if !strings.Contains(readme, "`"+r.ID+"`") {
				t.Errorf("README does not list rule id %q (%s)", r.ID, d.Name)
			}
		}
	}
}
