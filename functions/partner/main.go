// Command partner is the one Lambda binary every partner stack runs: it
// verifies the findings of the partner named by PARTNER (the lower-case
// partner name, e.g. aws) with that partner's verifier (see pipeline.Worker).
// This is a stand-in that reuses the per-partner setup of functions/aws,
// functions/gcp and functions/postman until the partner registry replaces it.
package main

import (
	"context"
	"errors"
	"os"
	"strings"

	"github.com/aws/aws-lambda-go/lambda"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/logging"
	awspartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/aws"
	gcppartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/gcp"
	postmanpartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/postman"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/pipeline"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

func main() {
	name := strings.TrimSpace(os.Getenv("PARTNER"))
	partner, ok := finding.ParsePartner(name)
	if !ok {
		logging.Exit("partner: config", errors.New("PARTNER must name a partner (aws, gcp, postman)"))
	}
	v, err := verifier(partner)
	if err != nil {
		logging.Exit(name+": init verifier", err)
	}
	w, err := pipeline.WorkerFromEnv(context.Background(), partner, v)
	if err != nil {
		logging.Exit(name+": init", err)
	}
	lambda.Start(w.Handle)
}

// verifier builds the partner's verifier from its environment, as the
// per-partner mains do.
func verifier(p finding.Partner) (verify.Verifier, error) {
	timeout, err := pipeline.PartnerTimeout()
	if err != nil {
		return nil, err
	}
	switch p {
	case finding.PartnerAWS:
		endpoint, err := partnerhttp.Endpoint(awspartner.EndpointEnv, awspartner.DefaultEndpoint)
		if err != nil {
			return nil, err
		}
		return awspartner.New(awspartner.Config{Endpoint: endpoint, Timeout: timeout})
	case finding.PartnerGCP:
		cfg, err := gcppartner.FromEnv()
		if err != nil {
			return nil, err
		}
		cfg.Timeout = timeout
		return gcppartner.New(cfg)
	case finding.PartnerPostman:
		cfg, err := postmanpartner.FromEnv()
		if err != nil {
			return nil, err
		}
		cfg.Timeout = timeout
		return postmanpartner.New(cfg)
	}
	return nil, errors.New("no verifier for partner " + string(p))
}
