package finding

// Context keys of contract §2.
const (
	ContextAWSSecretAccessKey = "aws_secret_access_key"
	ContextGCPClientID        = "gcp_client_id"
)

// QuoteRule shows a rule_id in a message: rule ids are scanner names, not
// secrets, but they come from the message, so they are bounded and printable.
func QuoteRule(s string) string {
	if len(s) > 64 || checkID(s) != "" {
		return "(unprintable or too long)"
	}
	return "\"" + s + "\""
}
