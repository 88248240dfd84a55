package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/aws/aws-lambda-go/lambdacontext"
)

func TestRequestIDFromLambdaContext(t *testing.T) {
	tests := []struct {
		name string
		ctx  context.Context
		want any
	}{
		{"lambda context", lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "req-1"}), "req-1"},
		{"no lambda context", context.Background(), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			New(&buf, slog.LevelInfo).With("fn", "x").InfoContext(tt.ctx, "finding outcome", "status", "active")
			var line map[string]any
			if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
				t.Fatalf("log line is not JSON: %v: %s", err, buf.String())
			}
			if line["request_id"] != tt.want {
				t.Errorf("request_id = %v, want %v", line["request_id"], tt.want)
			}
			if line["status"] != "active" || line["fn"] != "x" {
				t.Errorf("attributes lost: %v", line)
			}
		})
	}
}

func TestLevelFiltersDebug(t *testing.T) {
	var buf bytes.Buffer
	New(&buf, slog.LevelInfo).Debug("noise")
	if buf.Len() != 0 {
		t.Fatalf("debug line written at info level: %s", buf.String())
	}
}
