package rollout

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"

	featureflags "gitlab.com/gitlab-org/secret-detection/partner-token-verification/config/feature_flags"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/featureflag"
)

// SSMAPI is the part of the SSM client the plan uses: the flag store's
// calls and the parameter deletion of the plan's last stage (which no
// function ever makes, so it lives here rather than in featureflag).
type SSMAPI interface {
	featureflag.StoreAPI
	DeleteParameter(ctx context.Context, in *ssm.DeleteParameterInput, optFns ...func(*ssm.Options)) (*ssm.DeleteParameterOutput, error)
}

// Deletion is the outcome of one Delete in one environment.
type Deletion struct {
	Before  featureflag.State `json:"before"`
	Deleted bool              `json:"deleted"`
}

// Delete removes a flag's parameter, after which the definition's default
// applies. Unlike Store.Get and Set it accepts a flag whose definition is
// gone: the plan deletes the parameter after the definition was removed.
// An absent parameter is not an error.
func Delete(ctx context.Context, api SSMAPI, flag, parameter string, dryRun bool) (Deletion, error) {
	if !featureflags.ValidName(flag) {
		return Deletion{}, fmt.Errorf("delete feature flag: %q is not a flag name", flag)
	}
	before, err := featureflag.ReadParameter(ctx, api, flag, parameter)
	if err != nil {
		return Deletion{}, err
	}
	d := Deletion{Before: before}
	if !before.Found || dryRun {
		return d, nil
	}
	_, err = api.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String(parameter)})
	var notFound *types.ParameterNotFound
	switch {
	case errors.As(err, &notFound):
		return d, nil
	case err != nil:
		return d, fmt.Errorf("delete feature flag parameter %s: %w", parameter, err)
	}
	d.Deleted = true
	return d, nil
}

// DescribeState says in words what a flag's stored state means for the functions.
func DescribeState(s featureflag.State) string {
	switch {
	case s.Invalid != "":
		return "INVALID value (functions fail until it is fixed): " + s.Invalid
	case !s.Found:
		return "absent, definition default: " + s.Value.Describe()
	default:
		return s.Value.Describe()
	}
}
