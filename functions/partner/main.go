// Command partner is the Lambda function behind every partner queue: the
// PARTNER variable names the partner, whose verifier, endpoints and rate
// come from the partner registry (see pipeline.PartnerWorkerFromEnv).
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/logging"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/pipeline"
)

func main() {
	w, err := pipeline.PartnerWorkerFromEnv(context.Background())
	if err != nil {
		logging.Exit("partner: init", err)
	}
	lambda.Start(w.Handle)
}
