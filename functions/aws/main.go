// Command aws is the Lambda function behind AwsQueue: it verifies AWS access
// keys with STS GetCallerIdentity (see awspartner.Verifier, pipeline.Worker).
package main

import (
	"context"
	"net/url"

	"github.com/aws/aws-lambda-go/lambda"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/logging"
	awspartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/aws"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/pipeline"
)

func main() {
	endpoint, err := partnerhttp.Endpoint(awspartner.EndpointEnv, awspartner.DefaultEndpoint)
	if err != nil {
		logging.Exit("aws: config", err)
	}
	timeout, err := pipeline.PartnerTimeout()
	if err != nil {
		logging.Exit("aws: config", err)
	}
	v, err := awspartner.New(partnerhttp.Options{Endpoints: []*url.URL{endpoint}, Timeout: timeout, NetworkRetries: pipeline.NetworkRetries})
	if err != nil {
		logging.Exit("aws: init verifier", err)
	}
	w, err := pipeline.WorkerFromEnv(context.Background(), finding.PartnerAWS, v)
	if err != nil {
		logging.Exit("aws: init", err)
	}
	lambda.Start(w.Handle)
}
