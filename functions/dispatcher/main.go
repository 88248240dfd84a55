// Command dispatcher is the Lambda function behind IngressQueue: it validates
// each finding batch, applies the feature flag and fans findings out to one
// queue per partner (see pipeline.Dispatcher).
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/logging"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/pipeline"
)

func main() {
	d, err := pipeline.DispatcherFromEnv(context.Background())
	if err != nil {
		logging.Exit("dispatcher: init", err)
	}
	lambda.Start(d.Handle)
}
