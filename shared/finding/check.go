package finding

import (
	"encoding/json"
	"regexp"
	"strings"
)

// Context keys of contract §2.
const (
	ContextAWSSecretAccessKey = "aws_secret_access_key"
	ContextGCPClientID        = "gcp_client_id"
)

// Token formats. A token that fails its format is malformed_token with no
// partner call: a partner cannot say anything useful about it.
var (
	awsKeyID        = regexp.MustCompile(`^AKIA[0-9A-Z]{16}$`)
	awsAnyKeyID     = regexp.MustCompile(`^[A-Z0-9]{4}[0-9A-Z]{16}$`)
	awsSecretKey    = regexp.MustCompile(`^[A-Za-z0-9/+=]{40}$`)
	gcpAPIKey       = regexp.MustCompile(`^AIza[0-9A-Za-z_-]{35}$`)
	gcpClientSecret = regexp.MustCompile(`^GOCSPX-[0-9A-Za-z_-]{28}$`)
	gcpClientID     = regexp.MustCompile(`^[0-9A-Za-z_.-]{1,200}\.apps\.googleusercontent\.com$`)
	gcpAccessToken  = regexp.MustCompile(`^ya29\.[0-9A-Za-z_.-]+$`) // service-account tokens read ya29.c.…
	postmanAPIKey   = regexp.MustCompile(`^PMAK-[0-9a-f]{24}-[0-9a-f]{34}$`)
)

// Check is the format gate every finding passes before any partner call: it
// returns "" when the finding may be sent to its partner, or the terminal
// reason and a message that names the problem without quoting the token.
// The dispatcher and the partner functions both call it, so a message put
// straight on a partner queue is held to the same rules.
func Check(f Finding) (Reason, string) {
	if f.Problem != nil {
		return ReasonMalformedToken, f.Problem.Error()
	}
	rt, ok := RouteFor(f.RuleID)
	if !ok {
		return ReasonUnsupportedTokenType, "no partner verifies rule_id " + quoteRule(f.RuleID)
	}
	tok := f.Token.Reveal()
	switch rt.TokenType {
	case TokenAWSAccessKey:
		if !awsKeyID.MatchString(tok) {
			if awsAnyKeyID.MatchString(tok) {
				// The prefix is one of AWS's published unique-id prefixes, not secret.
				return ReasonUnsupportedTokenType, "only long-term AKIA access key ids are verified, not " + tok[:4]
			}
			return ReasonMalformedToken, "token is not an AWS access key id (20 upper-case letters and digits)"
		}
		if sk := f.ContextValue(ContextAWSSecretAccessKey); sk != "" && !awsSecretKey.MatchString(sk) {
			return ReasonMalformedToken, "context.aws_secret_access_key is not 40 base64 characters"
		}
	case TokenGCPAPIKey:
		if !gcpAPIKey.MatchString(tok) {
			return ReasonMalformedToken, "token is not a GCP API key (AIza + 35 characters)"
		}
	case TokenGCPServiceAccountKey:
		if msg := checkServiceAccountKey(tok); msg != "" {
			return ReasonMalformedToken, msg
		}
	case TokenGCPOAuthClientSecret:
		if !gcpClientSecret.MatchString(tok) {
			return ReasonMalformedToken, "token is not a GCP OAuth client secret (GOCSPX- + 28 characters)"
		}
		id := f.ContextValue(ContextGCPClientID)
		if id == "" {
			return ReasonMissingContext, "context.gcp_client_id is needed to verify an OAuth client secret"
		}
		if !gcpClientID.MatchString(id) {
			return ReasonMalformedToken, "context.gcp_client_id is not an OAuth client id (*.apps.googleusercontent.com)"
		}
	case TokenGCPAccessToken:
		if !gcpAccessToken.MatchString(tok) {
			return ReasonMalformedToken, "token is not a GCP OAuth access token (ya29.)"
		}
	case TokenPostmanAPIKey:
		if !postmanAPIKey.MatchString(tok) {
			return ReasonMalformedToken, "token is not a Postman API key (PMAK-<24 hex>-<34 hex>)"
		}
	}
	return "", ""
}

// checkServiceAccountKey checks the shape of a key file; the PEM itself is
// parsed by the GCP verifier, which has the library that signs with it.
func checkServiceAccountKey(tok string) string {
	var key struct {
		Type         string `json:"type"`
		ClientEmail  string `json:"client_email"`
		PrivateKey   string `json:"private_key"`
		PrivateKeyID string `json:"private_key_id"`
	}
	if err := json.Unmarshal([]byte(tok), &key); err != nil {
		return "token is not a service-account key file: " + describeJSONError(err)
	}
	switch {
	case key.Type != "service_account":
		return "service-account key: type is not service_account"
	case key.ClientEmail == "":
		return "service-account key: client_email missing"
	case !strings.Contains(key.PrivateKey, "PRIVATE KEY"):
		return "service-account key: private_key missing or not PEM"
	}
	return ""
}

// quoteRule shows a rule_id in a message: rule ids are scanner names, not
// secrets, but they come from the message, so they are bounded and printable.
func quoteRule(s string) string {
	if len(s) > 64 || checkID(s) != "" {
		return "(unprintable or too long)"
	}
	return "\"" + s + "\""
}
