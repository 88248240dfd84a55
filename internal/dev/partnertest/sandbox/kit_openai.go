package sandbox

import (
	"errors"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/openaidouble"
	openaipartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/openai"
)

// OpenAI's sample keys of events/openai-*.json: fake, of today's shapes,
// registered only in the double (the inactive ones are not registered, so
// the double answers 401 invalid_api_key as OpenAI does for a revoked key).
const (
	SampleOpenAIKey              = "sk-proj-EXAMPLEactiveSampleKey000000000000000000000000000000000000000000000000T3BlbkFJEXAMPLEactiveSampleKey000000000000000000000000000000000000000000000000"
	SampleOpenAIInactiveKey      = "sk-proj-EXAMPLErevokedSampleKey00000000000000000000000000000000000000000000000T3BlbkFJEXAMPLErevokedSampleKey00000000000000000000000000000000000000000000000"
	SampleOpenAIAdminKey         = "sk-admin-EXAMPLEactiveAdminKey000000000000000000000000000000000000000000000000T3BlbkFJEXAMPLEactiveAdminKey000000000000000000000000000000000000000000000000"
	SampleOpenAIInactiveAdminKey = "sk-admin-EXAMPLErevokedAdminKey00000000000000000000000000000000000000000000000T3BlbkFJEXAMPLErevokedAdminKey00000000000000000000000000000000000000000000000"
	// SampleOpenAIOrganization is the organization the double names for the active samples.
	SampleOpenAIOrganization = "org-EXAMPLEsample000000000000"
)

// openaiKit is OpenAI's double in the sandbox: one endpoint, api.openai.com.
var openaiKit = Kit{
	Start: func(a []string) (Double, error) {
		s, err := openaidouble.Start(a[0])
		return &openaiDouble{s}, err
	},
	NewLive: func() Credential { return Credential{RuleID: "open ai token", Token: openaidouble.NewToken()} },
}

type openaiDouble struct{ *openaidouble.Server }

func (d *openaiDouble) URLs() []string { return []string{d.URL} }
func (d *openaiDouble) Controls() []*partnertest.Controls {
	return []*partnertest.Controls{d.Server.Controls}
}
func (d *openaiDouble) RegisterSamples() error {
	d.AddTokenIn(SampleOpenAIKey, openaidouble.Live, SampleOpenAIOrganization)
	d.AddTokenIn(SampleOpenAIAdminKey, openaidouble.Live, SampleOpenAIOrganization)
	return nil
}
func (d *openaiDouble) Check(c Credential) error {
	if c.Token == "" {
		return errors.New("empty API key")
	}
	if _, reason, msg := openaipartner.Definition.Check(openaipartner.TokenAPIKey, c.Finding("check")); reason != "" {
		return errors.New(msg)
	}
	return nil
}
func (d *openaiDouble) Register(c Credential) {
	d.AddTokenIn(c.Token, openaidouble.Live, SampleOpenAIOrganization)
}
