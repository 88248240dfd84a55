package main

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"

	featureflags "gitlab.com/gitlab-org/secret-detection/partner-token-verification/config/feature_flags"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/localstack"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/featureflag"
)

// namedEnvironments are the ENV options, in the order the rollout plan
// lists them; each is a section of samconfig.toml.
var namedEnvironments = []string{"dev", "pre", "staging", "staging-ref", "production"}

// local is the environment of `make run`: the local AWS at AWS_ENDPOINT_URL.
const local = "local"

// localRegion and the static credentials match the local stack (internal/dev/awstest).
const localRegion = "us-east-1"

// endpointEnvVars are the SDK's variables that redirect every request.
var endpointEnvVars = []string{"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SSM"}

// target is one environment a command acts on.
type target struct {
	name     string
	region   string
	profile  string
	stack    string
	endpoint string // set for --local and --endpoint-url
	// onLocalAWS marks an environment of the plan placed on the local AWS
	// (feature rollout --local): static test credentials, no profile.
	onLocalAWS bool
	// flagParameter is the stack's FeatureFlagParameterName override, the
	// parameter of the partner token verification flag; "" means the default.
	flagParameter string
}

// parameterFor is the SSM parameter of a flag in this environment.
func (t target) parameterFor(flag string) string {
	if flag == featureflags.PartnerTokenVerification && t.flagParameter != "" {
		return t.flagParameter
	}
	return featureflag.DefaultParameter(flag)
}

// String is the environment as the output names it.
func (t target) String() string {
	var parts []string
	if t.stack != "" {
		parts = append(parts, "stack "+t.stack)
	}
	parts = append(parts, t.region)
	if t.profile != "" {
		parts = append(parts, "profile "+t.profile)
	}
	if t.endpoint != "" {
		parts = append(parts, "endpoint "+t.endpoint)
	}
	return t.name + " (" + strings.Join(parts, ", ") + ")"
}

// resolveTargets turns the ENV options into targets, or explains why it
// cannot; it runs before anything is read or written.
func resolveTargets(inv invocation, getenv func(string) string, cwd string) ([]target, error) {
	if len(inv.envs) == 0 {
		return nil, fmt.Errorf("no environment given: add one or more of --%s, or --local (there is no default, least of all production)",
			strings.Join(namedEnvironments, " --"))
	}
	if inv.endpointURL != "" {
		if err := checkEndpoint(inv.endpointURL); err != nil {
			return nil, fmt.Errorf("--endpoint-url: %w", err)
		}
	}
	var cfg *samConfig
	var targets []target
	for _, name := range inv.envs {
		if name == local {
			ep := inv.endpointURL
			if ep == "" {
				ep = getenv("AWS_ENDPOINT_URL")
			}
			if ep == "" {
				return nil, fmt.Errorf("--local needs the local AWS endpoint: start it with `make run ARGS=--keep` and export the AWS_ENDPOINT_URL it prints")
			}
			if err := checkEndpoint(ep); err != nil {
				return nil, fmt.Errorf("--local: AWS_ENDPOINT_URL: %w", err)
			}
			region := getenv("AWS_REGION")
			if region == "" {
				region = localRegion
			}
			targets = append(targets, target{name: local, region: region, endpoint: ep})
			continue
		}
		if inv.endpointURL == "" {
			// A shell left over from `make run` must not send a production
			// rollback to the local AWS and report success.
			for _, v := range endpointEnvVars {
				if getenv(v) != "" {
					return nil, fmt.Errorf("--%s: %s is set (%s), which would send the request there instead of to %s; unset it, or use --local",
						name, v, getenv(v), name)
				}
			}
		}
		if cfg == nil {
			path := inv.config
			if path == "" {
				var err error
				if path, err = findSAMConfig(cwd); err != nil {
					return nil, err
				}
			}
			var err error
			if cfg, err = loadSAMConfig(path); err != nil {
				return nil, err
			}
		}
		t, err := cfg.environment(name)
		if err != nil {
			return nil, err
		}
		overrides, err := cfg.lookup(name, "parameter_overrides")
		if err != nil {
			return nil, err
		}
		params, err := parameterOverrides(overrides)
		if err != nil {
			return nil, fmt.Errorf("%s: [%s] %w", cfg.path, name, err)
		}
		if e, ok := params["Environment"]; ok && e != name {
			return nil, fmt.Errorf("%s: [%s] deploys Environment=%s; refusing to guess which one --%s means", cfg.path, name, e, name)
		}
		if p, ok := params["FeatureFlagParameterName"]; ok {
			if !strings.HasPrefix(p, "/") {
				return nil, fmt.Errorf("%s: [%s] FeatureFlagParameterName=%s is not an absolute parameter path", cfg.path, name, p)
			}
			t.flagParameter = p
		}
		t.endpoint = inv.endpointURL
		targets = append(targets, t)
	}
	// Two environments on one profile and region would be one parameter:
	// reporting two successes for it would hide that one was never touched.
	for i, a := range targets {
		for _, b := range targets[:i] {
			if a.region == b.region && a.profile == b.profile && a.endpoint == b.endpoint && a.flagParameter == b.flagParameter &&
				a.name != local && b.name != local {
				return nil, fmt.Errorf("--%s and --%s use the same profile %q and region %s, so they share one parameter; give each environment its own profile in %s",
					b.name, a.name, a.profile, a.region, samConfigFile)
			}
		}
	}
	return targets, nil
}

// localRolloutTargets places a plan's environments on the local AWS of
// `make run ARGS=--keep`, each in the region localstack.ApplyRollout gave it.
func localRolloutTargets(envs []string, endpointURL string, getenv func(string) string) ([]target, error) {
	ep := endpointURL
	if ep == "" {
		ep = getenv("AWS_ENDPOINT_URL")
	}
	if ep == "" {
		return nil, fmt.Errorf("--local needs the local AWS endpoint: start it with `make run ARGS=--keep` and pass the --endpoint-url it prints (or export AWS_ENDPOINT_URL)")
	}
	if err := checkEndpoint(ep); err != nil {
		return nil, fmt.Errorf("--local: %w", err)
	}
	var targets []target
	for _, name := range envs {
		e, ok := localstack.RolloutEnvironmentNamed(name)
		if !ok {
			return nil, fmt.Errorf("--local: the plan's environment %s has no local stand-in (the local AWS has %s)", name, localRolloutNames())
		}
		targets = append(targets, target{name: e.Name, region: e.Region, stack: e.Stack, endpoint: ep, onLocalAWS: true})
	}
	return targets, nil
}

func localRolloutNames() string {
	var names []string
	for _, e := range localstack.RolloutEnvironments {
		names = append(names, e.Name)
	}
	return strings.Join(names, ", ")
}

func checkEndpoint(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL", s)
	}
	return nil
}

// awsConfig builds the SDK configuration of a target: its profile and
// region from samconfig.toml, or the local AWS with test credentials.
func awsConfig(ctx context.Context, t target) (aws.Config, error) {
	if t.name == local || t.onLocalAWS {
		return aws.Config{
			Region:       t.region,
			Credentials:  credentials.NewStaticCredentialsProvider("testing", "testing", ""),
			BaseEndpoint: aws.String(t.endpoint),
		}, nil
	}
	opts := []func(*config.LoadOptions) error{config.WithRegion(t.region)}
	if t.profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(t.profile))
	}
	if t.endpoint != "" {
		opts = append(opts, config.WithBaseEndpoint(t.endpoint))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration for %s: %w", t.name, err)
	}
	return cfg, nil
}
