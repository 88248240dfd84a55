package finding

// Partner names a partner API and its function, queue and metric dimension.
// The partners themselves are listed once, in shared/partner/registry.
type Partner string

// The first partners' names, used by their packages and tests.
const (
	PartnerAWS     Partner = "aws"
	PartnerGCP     Partner = "gcp"
	PartnerPostman Partner = "postman"
)

// TokenType is the kind of credential a finding holds (contract §7).
type TokenType string

// The first partners' token types, used by their packages and tests.
const (
	TokenAWSAccessKey         TokenType = "aws_access_key"
	TokenGCPAPIKey            TokenType = "gcp_api_key"
	TokenGCPServiceAccountKey TokenType = "gcp_service_account_key"
	TokenGCPOAuthClientSecret TokenType = "gcp_oauth_client_secret"
	TokenGCPAccessToken       TokenType = "gcp_access_token"
	TokenPostmanAPIKey        TokenType = "postman_api_key"
)

// Route says which partner verifies a finding and as what token type; the
// zero Route is a finding no partner verifies.
type Route struct {
	Partner   Partner
	TokenType TokenType
}
