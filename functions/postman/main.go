// Command postman is the Lambda function behind PostmanQueue: it
// verifies Postman API keys with GET /me (see postmanpartner.Verifier, pipeline.Worker).
package main

import (
	"context"
	"net/url"

	"github.com/aws/aws-lambda-go/lambda"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/logging"
	postmanpartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/postman"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/pipeline"
)

func main() {
	endpoint, err := partnerhttp.Endpoint(postmanpartner.EnvEndpoint, postmanpartner.DefaultEndpoint)
	if err != nil {
		logging.Exit("postman: config", err)
	}
	timeout, err := pipeline.PartnerTimeout()
	if err != nil {
		logging.Exit("postman: config", err)
	}
	v, err := postmanpartner.New(partnerhttp.Options{Endpoints: []*url.URL{endpoint}, Timeout: timeout, NetworkRetries: pipeline.NetworkRetries})
	if err != nil {
		logging.Exit("postman: init verifier", err)
	}
	w, err := pipeline.WorkerFromEnv(context.Background(), finding.PartnerPostman, v)
	if err != nil {
		logging.Exit("postman: init", err)
	}
	lambda.Start(w.Handle)
}
