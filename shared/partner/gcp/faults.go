package gcppartner

import partnerdef "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner"

var (
	googleReasonRE = partnerdef.NewPattern(`^[A-Z][A-Z0-9_]{0,63}$`)
	oauthCodeRE    = partnerdef.NewPattern(`^[a-z][a-z0-9_]{0,63}$`)
)

// safeCode shows a partner's machine-readable error code in a message only
// when it has the shape of one; anything else from the partner (free text,
// which can quote the credential) is never shown.
func safeCode(code string, shape *partnerdef.Pattern) string {
	switch {
	case code == "":
		return "(none)"
	case shape.MatchString(code):
		return code
	default:
		return "(unrecognized)"
	}
}
