package awspartner

import (
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	partnerdef "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

// Definition is AWS in the partner registry.
var Definition = partnerdef.Definition{
	Name:  finding.PartnerAWS,
	Title: "AWS",
	Rules: []partnerdef.Rule{
		{ID: "AWS", Scanner: partnerdef.GitLab, TokenType: finding.TokenAWSAccessKey},
		{ID: "aws-access-token", Scanner: partnerdef.Gitleaks, TokenType: finding.TokenAWSAccessKey},
	},
	TokenTypes: []finding.TokenType{finding.TokenAWSAccessKey},
	Check:      check,
	Endpoints:  []partnerdef.Endpoint{{Env: EndpointEnv, Default: DefaultEndpoint}},
	// STS GetCallerIdentity needs no permission and is throttled per
	// calling account, which is each leaked key's own (AWS IAM User Guide,
	// "IAM and AWS STS quotas"): no published limit binds us in all, so the
	// limit is our own ceiling of 200/s across instances, production's
	// 10 instances at 20/s.
	Rate: partnerdef.Rate{PerSecond: 50, Burst: 10, Limit: 200, Source: "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html"},
	New:  func(o partnerhttp.Options) (verify.Verifier, error) { return New(o) },
	Details: map[finding.TokenType][]string{
		finding.TokenAWSAccessKey: {DetailAccountID, DetailSecretMatches, DetailCanary},
	},
	Known: known,
}

var (
	keyID     = partnerdef.NewPattern(`^AKIA[0-9A-Z]{16}$`)
	anyKeyID  = partnerdef.NewPattern(`^[A-Z0-9]{4}[0-9A-Z]{16}$`)
	secretKey = partnerdef.NewPattern(`^[A-Za-z0-9/+=]{40}$`)
)

// check admits long-term AKIA key ids, with a well-formed secret key in
// the context when there is one. A key id of a canary-token account, AKIA
// or ASIA, is refused first: it is bait, never sent, whatever else is
// wrong with the finding.
func check(t finding.TokenType, f finding.Finding) (finding.TokenType, finding.Reason, string) {
	tok := f.Token.Reveal()
	if account, ok := AccountID(tok); ok && IsCanaryAccount(account) {
		return t, finding.ReasonCanaryToken, "the key id belongs to a known canary-token AWS account: not sent, so its owner's alarm is not tripped"
	}
	if !keyID.MatchString(tok) {
		if anyKeyID.MatchString(tok) {
			// The prefix is one of AWS's published unique-id prefixes, not secret.
			return partnerdef.Unsupported(t, "only long-term AKIA access key ids are verified, not "+tok[:4])
		}
		return partnerdef.Malformed(t, "token is not an AWS access key id (20 upper-case letters and digits)")
	}
	if sk := f.ContextValue(finding.ContextAWSSecretAccessKey); sk != "" && !secretKey.MatchString(sk) {
		return partnerdef.Malformed(t, "context.aws_secret_access_key is not 40 base64 characters")
	}
	return partnerdef.Pass(t)
}

// known is what an AWS finding tells without a call: the account its key
// id encodes, and whether that account issues canary tokens. An account
// id is not credential material: STS's GetAccessKeyInfo gives it to anyone
// holding the key id.
func known(f finding.Finding) finding.Details {
	account, ok := AccountID(f.Token.Reveal())
	if !ok {
		return nil
	}
	d := finding.Details{DetailAccountID: account}
	if IsCanaryAccount(account) {
		d[DetailCanary] = true
	}
	return d
}
