package finding

import "sort"

// Partner names a partner API and its function, queue and metric dimension.
type Partner string

// The partners of contract §2.
const (
	PartnerAWS     Partner = "aws"
	PartnerGCP     Partner = "gcp"
	PartnerPostman Partner = "postman"
)

// TokenType is the kind of credential a rule_id detects (contract §2).
type TokenType string

// The token types of contract §2.
const (
	TokenAWSAccessKey         TokenType = "aws_access_key"
	TokenGCPAPIKey            TokenType = "gcp_api_key"
	TokenGCPServiceAccountKey TokenType = "gcp_service_account_key"
	TokenGCPOAuthClientSecret TokenType = "gcp_oauth_client_secret"
	TokenGCPAccessToken       TokenType = "gcp_access_token"
	TokenPostmanAPIKey        TokenType = "postman_api_key"
)

// Route says which partner verifies a rule_id and as what token type.
type Route struct {
	Partner   Partner
	TokenType TokenType
}

// routes is the routing table of contract §2, keyed by the scanner's rule_id.
var routes = map[string]Route{
	"AWS":                          {PartnerAWS, TokenAWSAccessKey},
	"GCP API key":                  {PartnerGCP, TokenGCPAPIKey},
	"Google (GCP) Service-account": {PartnerGCP, TokenGCPServiceAccountKey},
	"GCP OAuth client secret":      {PartnerGCP, TokenGCPOAuthClientSecret},
	"GCP OAuth access token":       {PartnerGCP, TokenGCPAccessToken},
	"Postman API token":            {PartnerPostman, TokenPostmanAPIKey},
}

// RouteFor returns the route of a rule_id; false means no partner verifies it.
func RouteFor(ruleID string) (Route, bool) {
	r, ok := routes[ruleID]
	return r, ok
}

// RuleIDs lists every routable rule_id, sorted, for tests and documentation.
func RuleIDs() []string {
	ids := make([]string, 0, len(routes))
	for id := range routes {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Partners lists every partner in a stable order.
func Partners() []Partner { return []Partner{PartnerAWS, PartnerGCP, PartnerPostman} }

// ParsePartner checks a partner name given by a person or a configuration.
func ParsePartner(s string) (Partner, bool) {
	for _, p := range Partners() {
		if string(p) == s {
			return p, true
		}
	}
	return "", false
}
