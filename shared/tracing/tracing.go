// Package tracing wraps AWS X-Ray for the functions: one subsegment per
// partner call, annotated with what on-call needs to filter traces by
// (partner, token type, status, HTTP status) and never with a token or
// fingerprint; AWS SDK clients instrumented; silent when no X-Ray daemon or
// Lambda trace context is present (local runs, tests).
package tracing

import (
	"context"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-xray-sdk-go/instrumentation/awsv2"
	"github.com/aws/aws-xray-sdk-go/strategy/ctxmissing"
	"github.com/aws/aws-xray-sdk-go/xray"
	"github.com/aws/aws-xray-sdk-go/xraylog"
)

// Annotation keys on a partner-call subsegment.
const (
	AnnotationPartner    = "partner"
	AnnotationTokenType  = "token_type"
	AnnotationStatus     = "status"
	AnnotationReason     = "reason"
	AnnotationHTTPStatus = "http_status"
)

var initOnce sync.Once

// setup configures X-Ray once per process: a missing trace context (outside
// Lambda, or a test) is ignored instead of logged on every call, and the
// SDK's own logger is silenced because it writes plain text, not our JSON.
func setup() {
	initOnce.Do(func() {
		_ = xray.Configure(xray.Config{ContextMissingStrategy: ctxmissing.NewDefaultIgnoreErrorStrategy()})
		xray.SetLogger(xraylog.NullLogger)
	})
}

// InstrumentAWS adds X-Ray subsegments to every call made with cfg's clients.
func InstrumentAWS(cfg *aws.Config) {
	setup()
	awsv2.AWSV2Instrumentor(&cfg.APIOptions)
}

// Call is what a partner call reports back for its subsegment.
type Call struct {
	Status     string
	Reason     string
	HTTPStatus int
}

// PartnerCall runs fn inside a subsegment named after the partner and
// annotates it with fn's outcome. The error fn returns is recorded on the
// subsegment; callers pass only secret-free errors (verify.Fault).
func PartnerCall(ctx context.Context, partner, tokenType string, fn func(context.Context) (Call, error)) error {
	setup()
	return xray.Capture(ctx, "partner."+partner, func(ctx context.Context) error {
		call, err := fn(ctx)
		seg := xray.GetSegment(ctx)
		if seg == nil {
			return err
		}
		_ = seg.AddAnnotation(AnnotationPartner, partner)
		_ = seg.AddAnnotation(AnnotationTokenType, tokenType)
		if call.Status != "" {
			_ = seg.AddAnnotation(AnnotationStatus, call.Status)
		}
		if call.Reason != "" {
			_ = seg.AddAnnotation(AnnotationReason, call.Reason)
		}
		if call.HTTPStatus != 0 {
			_ = seg.AddAnnotation(AnnotationHTTPStatus, call.HTTPStatus)
		}
		return err
	})
}
