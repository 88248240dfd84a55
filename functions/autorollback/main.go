// Command autorollback is the Lambda function subscribed to the on-call
// topic when the stack is deployed with AutoRollback=true: a partner's
// error-rate or latency alarm entering ALARM switches that partner off in
// the feature flag (see autorollback.Handler). It never switches anything on.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/autorollback"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/logging"
)

func main() {
	h, err := autorollback.FromEnv(context.Background())
	if err != nil {
		logging.Exit("autorollback: init", err)
	}
	lambda.Start(h.Handle)
}
