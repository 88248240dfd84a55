// Package awspartner verifies AWS access keys (token type aws_access_key) by
// calling STS GetCallerIdentity through aws-sdk-go-v2's STS client, signed
// with the leaked key id and either its companion secret or a fixed probe
// secret, and classifying STS's answer.
package awspartner

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	partnerdef "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

// Configuration of the verifier (contract §6).
const (
	// EndpointEnv names the variable holding the STS base URL.
	EndpointEnv = "PARTNER_ENDPOINT_AWS_STS"
	// DefaultEndpoint is STS's global endpoint.
	DefaultEndpoint = "https://sts.amazonaws.com"
	// SigningRegion is the region the global endpoint expects in the credential scope.
	SigningRegion = "us-east-1"
)

// ProbeSecret is the secret a key id found without its companion secret is
// signed with. STS looks the key id up before it checks the signature, so
// its answer to this deliberately wrong secret tells a live key id
// (SignatureDoesNotMatch) from a deleted or made-up one
// (InvalidClientTokenId) without knowing the real secret. It is public on
// purpose: it is not, and cannot be, anyone's secret.
const ProbeSecret = "GitLabSecretDetectionProbeNotASecretKey0"

// Detail keys of a verdict.
const (
	DetailAccountID     = "aws_account_id"
	DetailSecretMatches = "secret_matches"
	// DetailCanary is true on a key id of a canary-token account.
	DetailCanary = "canary"
)

// op names the call in faults.
const op = "sts GetCallerIdentity"

var accountID = partnerdef.NewPattern(`^[0-9]{12}$`)

// Verifier verifies aws_access_key findings against STS. Build it once per
// function instance: it holds one STS client and its connection pool.
type Verifier struct {
	c      *partnerhttp.Client
	client *sts.Client
}

var _ verify.Verifier = (*Verifier)(nil)

// New builds a Verifier for o.Endpoints: [sts], STS's base URL.
func New(o partnerhttp.Options) (*Verifier, error) {
	c, err := partnerhttp.NewSingle(o, finding.PartnerAWS, "awspartner: new verifier", "sts")
	if err != nil {
		return nil, err
	}
	client := sts.New(sts.Options{
		Region:       SigningRegion,
		BaseEndpoint: aws.String(o.Endpoints[0].String()),
		HTTPClient:   c.HTTPClient(),
		// The SDK's retryer would turn a throttle or a 5xx into a slow
		// success or a different error; retries belong to the queue.
		Retryer:      aws.NopRetryer{},
		HTTPSignerV4: freshSigner{},
	})
	return &Verifier{c: c, client: client}, nil
}

// Verify asks STS whether the access key id in f is live: a Verdict when
// STS's answer settles it or the finding cannot be sent, a *verify.Fault
// when the answer proves nothing.
func (v *Verifier) Verify(ctx context.Context, tokenType finding.TokenType, f finding.Finding) (verify.Verdict, error) {
	if tokenType != finding.TokenAWSAccessKey {
		return verify.Unsupported(finding.PartnerAWS, tokenType, finding.TokenAWSAccessKey), nil
	}
	keyID := f.Token.Reveal()
	secret := f.ContextValue(finding.ContextAWSSecretAccessKey)
	withSecret := secret != ""
	signWith := secret
	if !withSecret {
		signWith = ProbeSecret
	}
	r := partnerhttp.Request{Op: op, Secrets: []string{keyID, secret}}
	// The SDK parses STS's answer, but leniently (see isSTSErrorDocument):
	// partnerhttp's record of the exchange keeps the body it read, so that
	// a 403 becomes a verdict only when it is STS's own document.
	ctx, ex := v.c.Exchange(ctx)
	out, err := v.client.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}, func(o *sts.Options) {
		o.Credentials = credentials.NewStaticCredentialsProvider(keyID, signWith, "")
	})
	a, cerr := v.c.Classify(ctx, r, ex, err)
	if f, ok := verify.AsFault(cerr); ok && f.HTTPStatus == http.StatusServiceUnavailable {
		f.Kind = verify.RateLimited // STS throttles with 503 too
	}
	switch {
	case errors.Is(cerr, partnerhttp.ErrNotSent):
		return verify.Verdict{}, &verify.Fault{Kind: verify.PartnerError, Partner: finding.PartnerAWS, Op: op, Msg: "cannot build request"}
	case cerr != nil:
		return verify.Verdict{}, cerr
	case err == nil:
		account := aws.ToString(out.Account)
		if !accountID.MatchString(account) {
			// An empty or foreign 200 body decodes to an empty output: it proves nothing.
			return verify.Verdict{}, v.c.Unusable(ctx, r, a, "200 response without a caller identity")
		}
		details := finding.Details{DetailAccountID: account}
		if withSecret {
			details[DetailSecretMatches] = "true"
		}
		return verify.Verdict{Reason: finding.ReasonPartnerConfirmed, Details: details}, nil
	}
	var code, msg string
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code, msg = ae.ErrorCode(), ae.ErrorMessage()
	}
	switch {
	case isThrottle(code):
		return verify.Verdict{}, v.c.RateLimited(ctx, r, a, describe(code, msg, r.Secrets))
	case a.Status == http.StatusForbidden && code == "InvalidClientTokenId" && isSTSErrorDocument(a.Body, code):
		return verify.Verdict{Reason: finding.ReasonPartnerRejected}, nil
	case a.Status == http.StatusForbidden && code == "SignatureDoesNotMatch" && !isRequestLevelMismatch(msg) && isSTSErrorDocument(a.Body, code):
		// STS found the key id; only the signature, made with a secret
		// that is not the key's, failed.
		var details finding.Details
		if withSecret {
			details = finding.Details{DetailSecretMatches: "false"}
		}
		return verify.Verdict{Reason: finding.ReasonPartnerConfirmed, Details: details}, nil
	case a.Status >= 200 && a.Status < 300:
		return verify.Verdict{}, v.c.Unusable(ctx, r, a, fmt.Sprintf("%d response is not an STS answer", a.Status))
	default:
		return verify.Verdict{}, v.c.Unusable(ctx, r, a, describe(code, msg, r.Secrets))
	}
}

// isThrottle reports STS's throttling codes (400 Throttling is its usual
// form); 429 and 503 are classified from the status alone.
func isThrottle(code string) bool {
	switch code {
	case "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException":
		return true
	}
	return false
}

// isRequestLevelMismatch spots the SignatureDoesNotMatch answers that are
// about the request, not the key (our clock is off, a wrong region or
// service in the scope): STS may give them before it looks the key up, so
// they prove nothing about the key.
func isRequestLevelMismatch(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "signature expired") || strings.Contains(m, "should be scoped")
}

// isSTSErrorDocument reports whether body is STS's error answer with the
// given code: one well-formed ErrorResponse document holding exactly one
// Error element whose Code is code, and nothing after it. The SDK's own
// parser is lenient: it takes the first element named "error" in any case,
// anywhere in any body, and stops reading there, so a proxy's page or a
// truncated or doubled document would otherwise decide a key's fate.
func isSTSErrorDocument(body []byte, code string) bool {
	dec := xml.NewDecoder(bytes.NewReader(body))
	var path []string
	roots, errorElems, got := 0, 0, ""
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return false
		}
		switch el := tok.(type) {
		case xml.StartElement:
			if len(path) == 0 {
				roots++
				if roots > 1 || el.Name.Local != "ErrorResponse" {
					return false
				}
			}
			path = append(path, el.Name.Local)
			if len(path) == 2 && el.Name.Local == "Error" {
				errorElems++
			}
		case xml.EndElement:
			path = path[:len(path)-1]
		case xml.CharData:
			switch {
			case len(path) == 3 && path[1] == "Error" && path[2] == "Code":
				got += string(el)
			case len(path) == 0 && len(bytes.TrimSpace(el)) > 0:
				return false
			}
		}
	}
	return roots == 1 && errorElems == 1 && got == code
}

// freshSigner signs each request with a new v4.Signer. The SDK's signer
// caches the derived signing key by access key id and day, not by secret:
// shared across calls, it would sign a probe or a wrong secret with a
// secret from an earlier finding of the same key id (a false "secret
// matches", and one finding's secret used for another's request).
type freshSigner struct{}

func (freshSigner) SignHTTP(ctx context.Context, creds aws.Credentials, r *http.Request, payloadHash, service, region string,
	signingTime time.Time, optFns ...func(*v4.SignerOptions)) error {
	return v4.NewSigner().SignHTTP(ctx, creds, r, payloadHash, service, region, signingTime, optFns...)
}

// describe quotes STS's error code and message, scrubbed of the credential
// and bounded, for a fault's text.
func describe(code, msg string, secrets []string) string {
	if code == "" {
		return "response is not an STS answer"
	}
	s := partnerhttp.BoundedText(finding.Scrub(code, secrets...))
	if msg != "" {
		s += ": " + partnerhttp.BoundedText(finding.Scrub(msg, secrets...))
	}
	return s
}
