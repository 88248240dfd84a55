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
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/metrics"
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
)

const (
	op = "sts GetCallerIdentity"
	// maxBody bounds an STS answer; a real one is under 1 KiB.
	maxBody = partnerhttp.DefaultMaxBody
	// maxPartnerText bounds partner-provided text quoted in a fault.
	maxPartnerText = 160
)

var accountID = regexp.MustCompile(`^[0-9]{12}$`)

// Config configures a Verifier.
type Config struct {
	// Endpoint is the STS base URL; the only address requests go to.
	Endpoint *url.URL
	// Timeout bounds one call; 0 means partnerhttp.DefaultTimeout.
	Timeout time.Duration
	// Transport replaces the network transport (tests inject faults here).
	Transport http.RoundTripper
}

// Verifier verifies aws_access_key findings against STS. Build it once per
// function instance: it holds one STS client and its connection pool.
type Verifier struct {
	endpoint *url.URL
	client   *sts.Client
}

var _ verify.Verifier = (*Verifier)(nil)

// New builds a Verifier for the configured endpoint.
func New(c Config) (*Verifier, error) {
	if c.Endpoint == nil || (c.Endpoint.Scheme != "http" && c.Endpoint.Scheme != "https") || c.Endpoint.Host == "" {
		return nil, errors.New("awspartner: new verifier: endpoint is not an absolute http(s) URL")
	}
	hc := partnerhttp.NewClient(partnerhttp.Options{
		Partner:   string(finding.PartnerAWS),
		Endpoints: []*url.URL{c.Endpoint},
		Timeout:   c.Timeout,
		Transport: c.Transport,
	})
	hc.Transport = boundedBody{base: hc.Transport, limit: maxBody}
	client := sts.New(sts.Options{
		Region:       SigningRegion,
		BaseEndpoint: aws.String(c.Endpoint.String()),
		HTTPClient:   hc,
		// The SDK's retryer would turn a throttle or a 5xx into a slow
		// success or a different error; retries belong to the queue.
		Retryer:      aws.NopRetryer{},
		HTTPSignerV4: freshSigner{},
	})
	return &Verifier{endpoint: c.Endpoint, client: client}, nil
}

// FromEnv builds a Verifier for the endpoint in PARTNER_ENDPOINT_AWS_STS
// (default https://sts.amazonaws.com) with the default timeout.
func FromEnv() (*Verifier, error) {
	u, err := partnerhttp.Endpoint(EndpointEnv, DefaultEndpoint)
	if err != nil {
		return nil, fmt.Errorf("awspartner: %w", err)
	}
	return New(Config{Endpoint: u})
}

// Verify asks STS whether the access key id in f is live: a Verdict when
// STS's answer settles it or the finding cannot be sent, a *verify.Fault
// when the answer proves nothing.
func (v *Verifier) Verify(ctx context.Context, tokenType finding.TokenType, f finding.Finding) (verify.Verdict, error) {
	if tokenType != finding.TokenAWSAccessKey {
		return verify.Verdict{Reason: finding.ReasonUnsupportedTokenType,
			Message: "the aws verifier does not verify token type " + boundedText(string(tokenType))}, nil
	}
	if _, reason, msg := check(tokenType, f); reason != "" {
		return verify.Verdict{Reason: reason, Message: msg}, nil
	}
	keyID := f.Token.Reveal()
	secret := f.ContextValue(finding.ContextAWSSecretAccessKey)
	withSecret := secret != ""
	signWith := secret
	if !withSecret {
		signWith = ProbeSecret
	}
	// The SDK parses STS's answer, but leniently (see isSTSErrorDocument):
	// the body it reads is kept so that a 403 becomes a verdict only when
	// it is STS's own document.
	ctx = context.WithValue(ctx, answerKey{}, &answer{})
	out, err := v.client.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}, func(o *sts.Options) {
		o.Credentials = credentials.NewStaticCredentialsProvider(keyID, signWith, "")
	})
	if err != nil {
		return classifyError(ctx, err, withSecret, keyID, secret)
	}
	account := aws.ToString(out.Account)
	if !accountID.MatchString(account) {
		// An empty or foreign 200 body decodes to an empty output: it proves nothing.
		metrics.FromContext(ctx).Unusable(string(finding.PartnerAWS))
		return verify.Verdict{}, fault(verify.PartnerError, http.StatusOK, "200 response without a caller identity")
	}
	details := map[string]string{DetailAccountID: account}
	if withSecret {
		details[DetailSecretMatches] = "true"
	}
	return verify.Verdict{Reason: finding.ReasonPartnerConfirmed, Details: details}, nil
}

// classifyError maps a failed call to a verdict (the key id's fate is
// known) or a *verify.Fault (nothing is known). Only STS's own 403 answers
// about the key are verdicts; everything else is a fault.
func classifyError(ctx context.Context, err error, withSecret bool, secrets ...string) (verify.Verdict, error) {
	if errors.Is(err, partnerhttp.ErrEndpointNotAllowed) {
		return verify.Verdict{}, fault(verify.PartnerError, 0, "request refused: endpoint not allowed")
	}
	// The SDK wraps a failed send in a ResponseError too, with an empty
	// response: status 0 means nothing came back.
	var re *awshttp.ResponseError
	if !errors.As(err, &re) || re.Response == nil || re.Response.Response == nil || re.HTTPStatusCode() == 0 {
		f := fault(verify.PartnerError, 0, "no response: "+networkCause(err, secrets))
		f.Network = true
		return verify.Verdict{}, f
	}
	status := re.HTTPStatusCode()
	var code, msg string
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code, msg = ae.ErrorCode(), ae.ErrorMessage()
	}
	switch {
	case isThrottle(status, code):
		if status != http.StatusTooManyRequests && status < 500 {
			// The transport counts 429s and 5xx; STS's usual 400 Throttling it cannot see.
			metrics.FromContext(ctx).RateLimitHit(string(finding.PartnerAWS))
		}
		f := fault(verify.RateLimited, status, describe(code, msg, secrets))
		f.RetryAfter = partnerhttp.RetryAfter(re.Response.Header, time.Now())
		return verify.Verdict{}, f
	case status >= 500:
		// The transport already counted the 5xx as an error.
		return verify.Verdict{}, fault(verify.PartnerError, status, describe(code, msg, secrets))
	case status == http.StatusForbidden && code == "InvalidClientTokenId" && isSTSErrorDocument(answerBody(ctx), code):
		return verify.Verdict{Reason: finding.ReasonPartnerRejected}, nil
	case status == http.StatusForbidden && code == "SignatureDoesNotMatch" && !isRequestLevelMismatch(msg) && isSTSErrorDocument(answerBody(ctx), code):
		// STS found the key id; only the signature, made with a secret
		// that is not the key's, failed.
		var details map[string]string
		if withSecret {
			details = map[string]string{DetailSecretMatches: "false"}
		}
		return verify.Verdict{Reason: finding.ReasonPartnerConfirmed, Details: details}, nil
	}
	metrics.FromContext(ctx).Unusable(string(finding.PartnerAWS))
	if status >= 200 && status < 300 {
		return verify.Verdict{}, fault(verify.PartnerError, status, fmt.Sprintf("unreadable %d response: %s", status, networkCause(err, secrets)))
	}
	return verify.Verdict{}, fault(verify.PartnerError, status, describe(code, msg, secrets))
}

// isThrottle reports STS's throttling answers: 400 Throttling (its usual
// form), the ThrottlingException code, 429 and 503.
func isThrottle(status int, code string) bool {
	switch code {
	case "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException":
		return true
	}
	return status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable
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

// answerKey is the context key of the answer a verification's request
// read; the SDK hides the body from its caller.
type answerKey struct{}

// answer holds the bytes of a response body as the SDK reads them.
type answer struct{ body []byte }

func answerBody(ctx context.Context) []byte {
	if a, ok := ctx.Value(answerKey{}).(*answer); ok {
		return a.body
	}
	return nil
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

func fault(kind verify.FaultKind, status int, msg string) *verify.Fault {
	return &verify.Fault{Kind: kind, Partner: finding.PartnerAWS, Op: op, HTTPStatus: status, Msg: msg}
}

// describe quotes STS's error code and message, scrubbed of the credential
// and bounded, for a fault's text.
func describe(code, msg string, secrets []string) string {
	if code == "" {
		return "response is not an STS answer"
	}
	s := boundedText(finding.Scrub(code, secrets...))
	if msg != "" {
		s += ": " + boundedText(finding.Scrub(msg, secrets...))
	}
	return s
}

// networkCause names why no usable response arrived, from the innermost
// error, which says "timeout" or "connection reset" without the SDK's
// operation wrapping.
func networkCause(err error, secrets []string) string {
	var te interface{ Timeout() bool }
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &te) && te.Timeout()) {
		return "timeout"
	}
	inner := err
	for {
		next := errors.Unwrap(inner)
		if next == nil {
			break
		}
		inner = next
	}
	return boundedText(finding.Scrub(inner.Error(), secrets...))
}

// boundedText keeps partner- or message-provided text short and printable.
func boundedText(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return ' '
	}, s)
	if len(s) > maxPartnerText {
		s = s[:maxPartnerText] + "…"
	}
	return s
}

// boundedBody caps how much of a response the SDK may read: no STS answer
// we classify is long, and a partner (or something in its place) must not
// make the function buffer an unbounded body.
type boundedBody struct {
	base  http.RoundTripper
	limit int64
}

func (b boundedBody) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := b.base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	a, _ := req.Context().Value(answerKey{}).(*answer)
	resp.Body = &limitedReader{rc: resp.Body, left: b.limit, keep: a}
	return resp, nil
}

// errBodyTooLong is what reading past the limit returns.
var errBodyTooLong = fmt.Errorf("response body longer than %d bytes", maxBody)

type limitedReader struct {
	rc   io.ReadCloser
	left int64
	keep *answer // nil: nothing kept
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		// Reading one byte tells a body of exactly the limit from a longer one.
		var one [1]byte
		n, err := l.rc.Read(one[:])
		if n > 0 {
			return 0, errBodyTooLong
		}
		return 0, err
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.rc.Read(p)
	l.left -= int64(n)
	if l.keep != nil {
		l.keep.body = append(l.keep.body, p[:n]...)
	}
	return n, err
}

func (l *limitedReader) Close() error { return l.rc.Close() }
