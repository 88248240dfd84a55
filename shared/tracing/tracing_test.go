package tracing

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-xray-sdk-go/xray"
)

type nopEmitter struct{}

func (nopEmitter) Emit(*xray.Segment)                     {}
func (nopEmitter) RefreshEmitterWithAddress(*net.UDPAddr) {}

func TestPartnerCallAnnotatesSubsegment(t *testing.T) {
	ctx, err := xray.ContextWithConfig(context.Background(), xray.Config{Emitter: nopEmitter{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, seg := xray.BeginSegment(ctx, "test")
	defer seg.Close(nil)
	var sub *xray.Segment
	fault := errors.New("postman: GET /me: rate limited (http 429)")
	got := PartnerCall(ctx, "postman", "postman_api_key", func(ctx context.Context) (Call, error) {
		sub = xray.GetSegment(ctx)
		return Call{Status: "unknown", Reason: "rate_limited", HTTPStatus: 429}, fault
	})
	if got != fault {
		t.Fatalf("error = %v, want the callback's", got)
	}
	if sub == nil || sub == seg {
		t.Fatal("no subsegment was opened for the partner call")
	}
	want := map[string]any{"partner": "postman", "token_type": "postman_api_key", "status": "unknown", "reason": "rate_limited", "http_status": 429}
	for k, v := range want {
		if sub.Annotations[k] != v {
			t.Errorf("annotation %s = %v, want %v", k, sub.Annotations[k], v)
		}
	}
	if sub.Name != "partner.postman" {
		t.Errorf("subsegment name = %q", sub.Name)
	}
}

// Without a Lambda trace context nothing may break and nothing may be printed.
func TestPartnerCallWithoutTraceContextIsSilent(t *testing.T) {
	r, w, _ := os.Pipe()
	oldOut, oldErr := os.Stdout, os.Stderr
	os.Stdout, os.Stderr = w, w
	calls := 0
	for range 3 {
		_ = PartnerCall(context.Background(), "aws", "aws_access_key", func(context.Context) (Call, error) {
			calls++
			return Call{Status: "active"}, nil
		})
	}
	os.Stdout, os.Stderr = oldOut, oldErr
	w.Close()
	out, _ := io.ReadAll(r)
	if calls != 3 {
		t.Fatalf("callback ran %d times, want 3", calls)
	}
	if s := strings.TrimSpace(string(out)); s != "" {
		t.Fatalf("printed without a trace context: %q", s)
	}
}
