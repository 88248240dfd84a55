package openaipartner_test

import (
	"os"
	"path/filepath"
	"strconv"
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

// TestSamconfigRates: in every environment of samconfig.toml the global
// rate, OpenaiMaxConcurrency x OpenaiRatePerSecond, stays within the Limit.
func TestSamconfigRates(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", "samconfig.toml"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.HasPrefix(line, "parameter_overrides") {
			continue
		}
		n++
		var rate, conc float64
		for _, f := range strings.Fields(strings.Trim(strings.TrimSpace(strings.SplitN(line, "=", 2)[1]), `"`)) {
			k, v, _ := strings.Cut(f, "=")
			switch k {
			case "OpenaiRatePerSecond":
				rate, _ = strconv.ParseFloat(v, 64)
			case "OpenaiMaxConcurrency":
				conc, _ = strconv.ParseFloat(v, 64)
			}
		}
		if rate <= 0 || conc < 2 || rate*conc > openaipartner.Definition.Rate.Limit {
			t.Errorf("environment %d: OpenaiMaxConcurrency %v x OpenaiRatePerSecond %v: want both set, concurrency at least 2 and at most %v req/s in all",
				n, conc, rate, openaipartner.Definition.Rate.Limit)
		}
	}
	if n < 6 {
		t.Errorf("%d environments in samconfig.toml, want 6", n)
	}
}
