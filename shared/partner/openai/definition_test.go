package openaipartner_test

import (
	"strings"
	"testing"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/openaidouble"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	openaipartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/openai"
)

// TestCheck: keys are typed by prefix whatever the rule, other sk- forms
// are malformed, and no message quotes the key.
func TestCheck(t *testing.T) {
	legacy := "sk-" + strings.Repeat("a", 20) + "T3BlbkFJ" + strings.Repeat("b", 20)
	tests := []struct {
		name   string
		rule   string
		token  string
		want   finding.TokenType
		reason finding.Reason
	}{
		{"project key", "open ai token", openaidouble.NewToken(), openaipartner.TokenAPIKey, ""},
		{"project key under gitleaks' rule", "openai-api-key", openaidouble.NewToken(), openaipartner.TokenAPIKey, ""},
		{"service-account key", "openai-api-key", openaidouble.NewServiceAccountKey(), openaipartner.TokenAPIKey, ""},
		{"admin key", "open ai token", openaidouble.NewAdminKey(), openaipartner.TokenAdminKey, ""},
		{"admin key under gitleaks' rule", "openai-api-key", openaidouble.NewAdminKey(), openaipartner.TokenAdminKey, ""},
		{"legacy key", "open ai token", legacy, openaipartner.TokenAPIKey, ""},
		{"legacy user key (sk-None-)", "open ai token", "sk-None-" + strings.Repeat("c", 40) + "T3BlbkFJ" + strings.Repeat("d", 40), openaipartner.TokenAPIKey, ""},
		{"short modern key", "open ai token", "sk-proj-abc", openaipartner.TokenAPIKey, finding.ReasonMalformedToken},
		{"admin key with a dot", "open ai token", "sk-admin-" + strings.Repeat("a", 30) + "." + strings.Repeat("a", 30), openaipartner.TokenAdminKey, finding.ReasonMalformedToken},
		{"sk- without the marker", "open ai token", "sk-" + strings.Repeat("a", 48), openaipartner.TokenAPIKey, finding.ReasonMalformedToken},
		{"marker but too short", "open ai token", "sk-T3BlbkFJ", openaipartner.TokenAPIKey, finding.ReasonMalformedToken},
		{"Anthropic key", "open ai token", "sk-ant-api03-" + strings.Repeat("a", 93) + "AA", openaipartner.TokenAPIKey, finding.ReasonMalformedToken},
		{"no sk- prefix", "open ai token", strings.Repeat("a", 20) + "T3BlbkFJ" + strings.Repeat("b", 20), openaipartner.TokenAPIKey, finding.ReasonMalformedToken},
		{"trailing newline", "open ai token", legacy + "\n", openaipartner.TokenAPIKey, finding.ReasonMalformedToken},
		{"too long", "open ai token", "sk-proj-" + strings.Repeat("a", 301), openaipartner.TokenAPIKey, finding.ReasonMalformedToken},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rt, reason, msg := openaipartner.Definition.Examine(finding.Finding{ID: "f", RuleID: tc.rule, Token: finding.Secret(tc.token)})
			if rt.Partner != openaipartner.Name || rt.TokenType != tc.want || reason != tc.reason {
				t.Errorf("Examine = %v, %q (%s); want %s, %q", rt, reason, msg, tc.want, tc.reason)
			}
			if len(tc.token) > 20 && strings.Contains(msg, tc.token[4:]) {
				t.Errorf("message %q quotes the token", msg)
			}
		})
	}
}

// TestRate: the default global rate (two instances, the least the SQS
// event source allows) stays within the Limit, and the Limit has a source.
func TestRate(t *testing.T) {
	r := openaipartner.Definition.Rate
	if 2*r.PerSecond > r.Limit || r.Burst < 1 || !strings.HasPrefix(r.Source, "https://") {
		t.Errorf("Rate = %+v", r)
	}
}
