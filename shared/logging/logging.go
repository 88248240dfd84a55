// Package logging builds the functions' structured JSON logger (log/slog):
// every line carries the Lambda request id from the invocation context, so
// one finding's outcome can be followed from a CloudWatch Logs query.
package logging

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/aws/aws-lambda-go/lambdacontext"
)

// New returns a JSON logger writing to w at the given level.
func New(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(contextHandler{slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})})
}

// FromEnv returns the function logger: JSON on stderr (stdout is kept for
// EMF metric records), level from LOG_LEVEL (debug, info, warn, error;
// default info).
func FromEnv() *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(strings.TrimSpace(os.Getenv("LOG_LEVEL")))); err != nil {
		level = slog.LevelInfo
	}
	return New(os.Stderr, level)
}

// contextHandler adds the Lambda request id of the record's context.
type contextHandler struct{ slog.Handler }

func (h contextHandler) Handle(ctx context.Context, r slog.Record) error {
	if lc, ok := lambdacontext.FromContext(ctx); ok && lc.AwsRequestID != "" {
		r.AddAttrs(slog.String("request_id", lc.AwsRequestID))
	}
	return h.Handler.Handle(ctx, r)
}

func (h contextHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return contextHandler{h.Handler.WithAttrs(as)}
}

func (h contextHandler) WithGroup(name string) slog.Handler {
	return contextHandler{h.Handler.WithGroup(name)}
}

// Exit logs a start-up failure as JSON and ends the process, so Lambda
// reports an init error with a readable reason.
func Exit(what string, err error) {
	FromEnv().Error(what, "error", err.Error())
	os.Exit(1)
}
