package gcppartner

import (
	"context"
	"net/http"

	"golang.org/x/oauth2"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
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
		Endpoint:     oauth2.Endpoint{TokenURL: v.tokenURL, AuthStyle: oauth2.AuthStyleInParams},
		RedirectURL:  ProbeRedirectURI,
	}
	_, answer, err := v.exchange(ctx, opAuthCode, func(ctx context.Context) (*oauth2.Token, error) {
		return cfg.Exchange(ctx, probeCode)
	})
	switch {
	case err != nil:
		return verify.Verdict{}, err
	case answer == nil:
		// A token for a code that cannot exist: something between us and
		// Google is not Google. Whatever it is, it proves nothing.
		return verify.Verdict{}, unusable(ctx, opAuthCode, http.StatusOK, "token endpoint accepted an invalid authorization code")
	case answer.notBefore:
		return verify.Verdict{}, &verify.Fault{Kind: verify.PartnerError, Partner: finding.PartnerGCP, Op: opAuthCode, Msg: "cannot build request"}
	case answer.code == "invalid_client" && (answer.status == http.StatusUnauthorized || answer.status == http.StatusBadRequest):
		return verify.Verdict{Reason: finding.ReasonPartnerRejected}, nil
	case answer.code == "invalid_grant" && answer.status == http.StatusBadRequest:
		return verify.Verdict{Reason: finding.ReasonPartnerConfirmed}, nil
	default:
		return verify.Verdict{}, answer.proveNothing(ctx, opAuthCode)
	}
}
