// Command echo is a test function: it answers with its environment and the
// deadline it was given, and fails when asked to.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
)

type event struct {
	Fail bool `json:"fail"`
	// Sleep holds the invocation this long (a Go duration), so that a
	// test can kill the process in the middle of it.
	Sleep string `json:"sleep"`
}

func main() {
	lambda.Start(func(ctx context.Context, ev event) (map[string]string, error) {
		if ev.Fail {
			return nil, errors.New("asked to fail")
		}
		if d, err := time.ParseDuration(ev.Sleep); err == nil {
			time.Sleep(d)
		}
		dl, _ := ctx.Deadline()
		fmt.Println(`{"_aws":{},"line":"stdout"}`)
		return map[string]string{"foo": os.Getenv("FOO"), "left": fmt.Sprint(time.Until(dl).Round(time.Second))}, nil
	})
}
