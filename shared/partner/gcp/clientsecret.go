package gcppartner

import (
	"context"
	"errors"
	"net/http"

	"golang.org/x/oauth2"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

// verifyClientSecret exchanges a deliberately invalid authorization code
// with the client id and secret in the form body (Google's documented
// style; AuthStyleInParams also keeps the library from retrying with the
// other style). Google authenticates the client before it looks at the
// code, so invalid_client means the pair is wrong and invalid_grant means
// it authenticated.
func (v *Verifier) verifyClientSecret(ctx context.Context, clientID, secret string) (verify.Verdict, error) {
	cfg := &oauth2.Config{
		ClientID:     clientID,
		ClientSecret: secret,
		Endpoint:     oauth2.Endpoint{TokenURL: v.c.URL(endpointOAuth, "token"), AuthStyle: oauth2.AuthStyleInParams},
		RedirectURL:  ProbeRedirectURI,
	}
	r := partnerhttp.Request{Op: opAuthCode, Secrets: []string{secret}}
	a, err := v.exchange(ctx, r, func(ctx context.Context) (*oauth2.Token, error) {
		return cfg.Exchange(ctx, probeCode)
	})
	switch {
	case errors.Is(err, partnerhttp.ErrNotSent):
		return verify.Verdict{}, &verify.Fault{Kind: verify.PartnerError, Partner: finding.PartnerGCP, Op: opAuthCode, Msg: "cannot build request"}
	case err != nil:
		return verify.Verdict{}, err
	case a.token != nil:
		// A token for a code that cannot exist: something between us and
		// Google is not Google. Whatever it is, it proves nothing.
		return verify.Verdict{}, v.c.Unusable(ctx, r, &partnerhttp.Answer{Status: a.status}, "token endpoint accepted an invalid authorization code")
	case a.code == "invalid_client" && (a.status == http.StatusUnauthorized || a.status == http.StatusBadRequest):
		return verify.Verdict{Reason: finding.ReasonPartnerRejected}, nil
	case a.code == "invalid_grant" && a.status == http.StatusBadRequest:
		return verify.Verdict{Reason: finding.ReasonPartnerConfirmed}, nil
	default:
		return verify.Verdict{}, v.proveNothing(ctx, r, a)
	}
}
