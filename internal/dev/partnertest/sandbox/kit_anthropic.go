package sandbox

import (
	"errors"
	"strings"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/anthropicdouble"
	anthropicpartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/anthropic"
)

// Anthropic samples of events/ (fake, well-formed, live only in the
// double): the active ones are registered, the revoked ones are not.
const (
	SampleAnthropicAPIKey          = "sk-ant-api03-EXAMPLE-active-api-key-0000000000000000000000000000000000000000000000000000000000000000000000AA"
	SampleAnthropicRevokedAPIKey   = "sk-ant-api03-EXAMPLE-revoked-api-key-000000000000000000000000000000000000000000000000000000000000000000000AA"
	SampleAnthropicAdminKey        = "sk-ant-admin01-EXAMPLE-active-admin-key-00000000000000000000000000000000000000000000000000000000000000000000AA"
	SampleAnthropicRevokedAdminKey = "sk-ant-admin01-EXAMPLE-revoked-admin-key-0000000000000000000000000000000000000000000000000000000000000000000AA"
	SampleAnthropicOrganizationID  = "00000000-0000-4000-8000-0000000a17c0"
)

// anthropicPartner keys Anthropic's kit in kits.
const anthropicPartner = anthropicpartner.Name

var anthropicKit = Kit{
	Start: func(a []string) (Double, error) {
		s, err := anthropicdouble.Start(a[0])
		return &anthropicDouble{s}, err
	},
	NewLive: func() Credential { return Credential{RuleID: "anthropic_key", Token: anthropicdouble.NewAPIKey()} },
}

type anthropicDouble struct{ *anthropicdouble.Server }

func (d *anthropicDouble) URLs() []string { return []string{d.URL} }
func (d *anthropicDouble) Controls() []*partnertest.Controls {
	return []*partnertest.Controls{d.Server.Controls}
}
func (d *anthropicDouble) RegisterSamples() error {
	d.AddKey(SampleAnthropicAPIKey, SampleAnthropicOrganizationID)
	d.AddKey(SampleAnthropicAdminKey, SampleAnthropicOrganizationID)
	return nil
}
func (d *anthropicDouble) Check(c Credential) error {
	if !strings.HasPrefix(c.Token, anthropicpartner.PrefixAPIKey) && !strings.HasPrefix(c.Token, anthropicpartner.PrefixAdminKey) {
		return errors.New("not an Anthropic API key (sk-ant-api03-…) or Admin API key (sk-ant-admin01-…)")
	}
	return nil
}
func (d *anthropicDouble) Register(c Credential) { d.AddKey(c.Token, SampleAnthropicOrganizationID) }
