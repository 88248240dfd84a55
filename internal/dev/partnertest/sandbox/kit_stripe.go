package sandbox

import (
	"errors"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/stripedouble"
	stripepartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/stripe"
)

// Stripe sample keys used by events/stripe-*.json and events/ingress-scan.json.
// They are fake (EXAMPLE inside, never issued by Stripe) and live only in
// the double: the active secret key answers a balance, the active
// restricted key the 403 of a key without the balance permission (still
// active), the inactive restricted key Stripe's expired-key 401, and the
// inactive secret key is not registered (Stripe's "Invalid API Key provided").
const (
	SampleStripeSecretKey             = "sk_live_51EXAMPLEsampleActiveSecretKey0000000000000000000000000"
	SampleStripeInactiveSecretKey     = "sk_live_51EXAMPLEsampleRevokedSecretKey000000000000000000000000"
	SampleStripeRestrictedKey         = "rk_live_51EXAMPLEsampleActiveRestrictedKey00000000000000000000000"
	SampleStripeInactiveRestrictedKey = "rk_live_51EXAMPLEsampleExpiredRestrictedKey0000000000000000000000"
)

// stripeKit runs the Stripe double (stripedouble) on PARTNER_ENDPOINT_STRIPE.
var stripeKit = Kit{
	Start: func(a []string) (Double, error) {
		s, err := stripedouble.Start(a[0])
		return &stripeDouble{s}, err
	},
	NewLive: func() Credential {
		return Credential{RuleID: "StripeLiveSecretKey", Token: stripedouble.NewSecretKey()}
	},
}

type stripeDouble struct{ *stripedouble.Server }

func (d *stripeDouble) URLs() []string { return []string{d.URL} }
func (d *stripeDouble) Controls() []*partnertest.Controls {
	return []*partnertest.Controls{d.Server.Controls}
}
func (d *stripeDouble) RegisterSamples() error {
	d.AddKey(SampleStripeSecretKey, stripedouble.Live)
	d.AddKey(SampleStripeRestrictedKey, stripedouble.NoBalancePermission)
	d.AddKey(SampleStripeInactiveRestrictedKey, stripedouble.Expired)
	return nil
}

// Check accepts only keys the verifier would send: a Stripe rule id and a
// well-formed live-mode key.
func (d *stripeDouble) Check(c Credential) error {
	if c.Token == "" {
		return errors.New("empty key")
	}
	if _, reason, msg := stripepartner.Definition.Examine(c.Finding("register")); reason != "" {
		return errors.New(string(reason) + ": " + msg)
	}
	return nil
}
func (d *stripeDouble) Register(c Credential) { d.AddKey(c.Token, stripedouble.Live) }
