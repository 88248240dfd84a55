// Command gcp is the Lambda function behind GcpQueue: it
// verifies GCP API keys, service-account keys, OAuth client secrets and access tokens with Google's endpoints (see gcppartner.Verifier, pipeline.Worker).
package main

import (
	"context"
	"net/url"

	"github.com/aws/aws-lambda-go/lambda"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/logging"
	gcppartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/gcp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/pipeline"
)

func main() {
	disc, err := partnerhttp.Endpoint(gcppartner.EnvDiscovery, gcppartner.DefaultDiscovery)
	if err != nil {
		logging.Exit("gcp: config", err)
	}
	oauth, err := partnerhttp.Endpoint(gcppartner.EnvOAuth, gcppartner.DefaultOAuth)
	if err != nil {
		logging.Exit("gcp: config", err)
	}
	timeout, err := pipeline.PartnerTimeout()
	if err != nil {
		logging.Exit("gcp: config", err)
	}
	v, err := gcppartner.New(partnerhttp.Options{Endpoints: []*url.URL{disc, oauth}, Timeout: timeout, NetworkRetries: pipeline.NetworkRetries})
	if err != nil {
		logging.Exit("gcp: init verifier", err)
	}
	w, err := pipeline.WorkerFromEnv(context.Background(), finding.PartnerGCP, v)
	if err != nil {
		logging.Exit("gcp: init", err)
	}
	lambda.Start(w.Handle)
}
