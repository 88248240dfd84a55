package gcppartner

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"regexp"
	"syscall"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/metrics"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

// networkFault is a request that got no HTTP response. Its message is a
// fixed category, never the error text (which names URLs and hosts).
func networkFault(op string, err error) *verify.Fault {
	return &verify.Fault{Kind: verify.PartnerError, Partner: finding.PartnerGCP, Op: op, Network: true, Msg: describeNetErr(err)}
}

func describeNetErr(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, partnerhttp.ErrEndpointNotAllowed):
		return "request to an address that is not a configured endpoint"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed before a response"
	default:
		return "network error"
	}
}

// unusable is a response that arrived but proves nothing about the
// credential; it counts as a partner error in the metrics.
func unusable(ctx context.Context, op string, status int, msg string) *verify.Fault {
	metrics.FromContext(ctx).Unusable(partner)
	return &verify.Fault{Kind: verify.PartnerError, Partner: finding.PartnerGCP, Op: op, HTTPStatus: status, Msg: msg}
}

// overloadFault classifies the statuses that mean "not now" whatever the
// body says: 429 and 5xx. It returns nil for every other status. 5xx are
// already counted as errors by the HTTP client's metrics.
func overloadFault(op string, status int, h http.Header) *verify.Fault {
	switch {
	case status == http.StatusTooManyRequests:
		return &verify.Fault{Kind: verify.RateLimited, Partner: finding.PartnerGCP, Op: op, HTTPStatus: status,
			RetryAfter: partnerhttp.RetryAfter(h, time.Now()), Msg: "rate limited"}
	case status >= 500:
		return &verify.Fault{Kind: verify.PartnerError, Partner: finding.PartnerGCP, Op: op, HTTPStatus: status, Msg: "server error"}
	}
	return nil
}

var (
	googleReasonRE = regexp.MustCompile(`^[A-Z][A-Z0-9_]{0,63}$`)
	oauthCodeRE    = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)
)

// safeCode shows a partner's machine-readable error code in a message only
// when it has the shape of one; anything else from the partner (free text,
// which can quote the credential) is never shown.
func safeCode(code string, shape *regexp.Regexp) string {
	switch {
	case code == "":
		return "(none)"
	case shape.MatchString(code):
		return code
	default:
		return "(unrecognized)"
	}
}
