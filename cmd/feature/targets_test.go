package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func envFunc(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestResolveTargets(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "good.toml", `version = 0.1
[dev.global.parameters]
region = "us-east-1"
profile = "p-dev"
[dev.deploy.parameters]
stack_name = "s-dev"
parameter_overrides = "Environment=dev"
[staging.global.parameters]
region = "eu-west-1"
profile = "p-staging"
[staging.deploy.parameters]
stack_name = "s-staging"
region = "eu-central-1"
[pre.global.parameters]
region = "us-east-1"
profile = "p-dev"
[production.deploy.parameters]
stack_name = "s-prod"
[staging-ref.global.parameters]
region = "us-east-1"
profile = "p-ref"
[staging-ref.deploy.parameters]
parameter_overrides = "Environment=staging OnCallEndpoint=\"a b\""
`)
	named := writeFile(t, dir, "named.toml", `[dev.global.parameters]
region = "us-east-1"
[dev.deploy.parameters]
parameter_overrides = "Environment=dev FeatureFlagParameterName=/dev/flag"
[pre.global.parameters]
region = "us-east-1"
[pre.deploy.parameters]
parameter_overrides = "Environment=pre FeatureFlagParameterName=/pre/flag"
[staging.global.parameters]
region = "us-east-1"
[staging.deploy.parameters]
parameter_overrides = "FeatureFlagParameterName=relative/flag"
`)
	nested := filepath.Join(dir, "a", "b")
	if err := os.MkdirAll(nested, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, samConfigFile, `[dev.global.parameters]
region = "sa-east-1"
`)

	tests := []struct {
		name    string
		args    string
		env     map[string]string
		cwd     string
		want    []target
		wantErr string
	}{
		{"named environments from samconfig", "get " + ff + " --dev --staging --config=" + good, nil, dir,
			[]target{{name: "dev", region: "us-east-1", profile: "p-dev", stack: "s-dev"},
				{name: "staging", region: "eu-central-1", profile: "p-staging", stack: "s-staging"}}, ""},
		{"samconfig found in a parent directory", "get " + ff + " --dev", nil, nested,
			[]target{{name: "dev", region: "sa-east-1"}}, ""},
		{"local from AWS_ENDPOINT_URL", "get " + ff + " --local", map[string]string{"AWS_ENDPOINT_URL": "http://127.0.0.1:4566"}, dir,
			[]target{{name: "local", region: "us-east-1", endpoint: "http://127.0.0.1:4566"}}, ""},
		{"local region from AWS_REGION", "get " + ff + " --local", map[string]string{"AWS_ENDPOINT_URL": "http://h:1", "AWS_REGION": "eu-north-1"}, dir,
			[]target{{name: "local", region: "eu-north-1", endpoint: "http://h:1"}}, ""},
		{"endpoint-url applies to named environments", "get " + ff + " --dev --endpoint-url=http://127.0.0.1:9 --config=" + good, nil, dir,
			[]target{{name: "dev", region: "us-east-1", profile: "p-dev", stack: "s-dev", endpoint: "http://127.0.0.1:9"}}, ""},
		{"per-environment parameter names let environments share an account", "get " + ff + " --dev --pre --config=" + named, nil, dir,
			[]target{{name: "dev", region: "us-east-1", flagParameter: "/dev/flag"}, {name: "pre", region: "us-east-1", flagParameter: "/pre/flag"}}, ""},
		{"relative parameter name", "get " + ff + " --staging --config=" + named, nil, dir, nil, "not an absolute parameter path"},
		{"no environment", "get " + ff, nil, dir, nil, "no environment given"},
		{"local without endpoint", "get " + ff + " --local", nil, dir, nil, "--local needs the local AWS endpoint"},
		{"local with a bad endpoint", "get " + ff + " --local", map[string]string{"AWS_ENDPOINT_URL": "localhost:4566"}, dir, nil, "not an http(s) URL"},
		{"AWS_ENDPOINT_URL left over with production", "get " + ff + " --production --config=" + good,
			map[string]string{"AWS_ENDPOINT_URL": "http://127.0.0.1:4566"}, dir, nil, "--production: AWS_ENDPOINT_URL is set"},
		{"AWS_ENDPOINT_URL_SSM left over", "get " + ff + " --dev --config=" + good,
			map[string]string{"AWS_ENDPOINT_URL_SSM": "http://127.0.0.1:4566"}, dir, nil, "AWS_ENDPOINT_URL_SSM is set"},
		{"environment without region", "get " + ff + " --production --config=" + good, nil, dir, nil, "[production] sets no region"},
		{"section named for another Environment", "get " + ff + " --staging-ref --config=" + good, nil, dir, nil, "deploys Environment=staging"},
		{"two environments on one profile and region", "get " + ff + " --dev --pre --config=" + good, nil, dir, nil, "share one parameter"},
		{"unknown section", "get " + ff + " --staging --config=" + filepath.Join(dir, samConfigFile), nil, dir, nil, "has no [staging] environment"},
		{"missing config file", "get " + ff + " --dev --config=" + filepath.Join(dir, "nope.toml"), nil, dir, nil, "nope.toml"},
		{"no samconfig anywhere", "get " + ff + " --dev", nil, "/", nil, "not in the current directory or any parent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv, err := parseArgs(strings.Fields(tt.args))
			if err != nil {
				t.Fatal(err)
			}
			got, err := resolveTargets(inv, envFunc(tt.env), tt.cwd)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("resolveTargets = %v, %v; want an error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("resolveTargets: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("targets %+v\nwant    %+v", got, tt.want)
			}
		})
	}
}

func TestParameterOverrides(t *testing.T) {
	tests := []struct {
		in      string
		want    map[string]string
		wantErr bool
	}{
		{"", map[string]string{}, false},
		{"Environment=staging  OnCallEndpoint=a@b.c", map[string]string{"Environment": "staging", "OnCallEndpoint": "a@b.c"}, false},
		{`A="x y" B=`, map[string]string{"A": "x y", "B": ""}, false},
		{`A="x`, nil, true},
		{"=x", nil, true},
		{"novalue", nil, true},
	}
	for _, tt := range tests {
		got, err := parameterOverrides(tt.in)
		if (err != nil) != tt.wantErr || (!tt.wantErr && !reflect.DeepEqual(got, tt.want)) {
			t.Errorf("parameterOverrides(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

// requiredOverrides are the template parameters every environment sets.
var requiredOverrides = []string{
	"Environment", "OnCallEndpoint", "OnCallProtocol",
	"AwsRatePerSecond", "AwsMaxConcurrency", "GcpRatePerSecond", "GcpMaxConcurrency",
	"PostmanRatePerSecond", "PostmanMaxConcurrency", "FeatureFlagCacheTtl",
	"SendgridRatePerSecond", "SendgridMaxConcurrency",
	"NpmRatePerSecond", "NpmMaxConcurrency",
	"SlackRatePerSecond", "SlackMaxConcurrency",
	"GitlabRatePerSecond", "GitlabMaxConcurrency",
}

// templateParameter is what samconfig's overrides are checked against.
type templateParameter struct {
	AllowedValues  []string `yaml:"AllowedValues"`
	AllowedPattern string   `yaml:"AllowedPattern"`
}

// templateParameters reads the Parameters of template.yaml; before the
// template exists, the required overrides are all that is known.
func templateParameters(t *testing.T) map[string]templateParameter {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "template.yaml"))
	if errors.Is(err, fs.ErrNotExist) {
		out := map[string]templateParameter{}
		for _, k := range requiredOverrides {
			out[k] = templateParameter{}
		}
		return out
	}
	if err != nil {
		t.Fatal(err)
	}
	var tpl struct {
		Parameters map[string]templateParameter `yaml:"Parameters"`
	}
	if err := yaml.Unmarshal(data, &tpl); err != nil {
		t.Fatalf("template.yaml: %v", err)
	}
	return tpl.Parameters
}

func TestParameterFor(t *testing.T) {
	tg := target{flagParameter: "/stack/flag"}
	if got := tg.parameterFor(ff); got != "/stack/flag" {
		t.Errorf("override: %q", got)
	}
	if got := tg.parameterFor("other_flag"); got != "/secret-detection/feature-flags/other_flag" {
		t.Errorf("another flag: %q", got)
	}
	if got := (target{}).parameterFor(ff); got != "/secret-detection/feature-flags/"+ff {
		t.Errorf("default: %q", got)
	}
}

// TestRepositorySAMConfig checks the real samconfig.toml: every environment
// the command names is there with its own stack, region and profile, and
// deploys the Environment it is named after.
func TestRepositorySAMConfig(t *testing.T) {
	cfg, err := loadSAMConfig(filepath.Join("..", "..", samConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	tplParams := templateParameters(t)
	profiles := map[string]string{}
	for _, name := range append([]string{"default"}, namedEnvironments...) {
		t.Run(name, func(t *testing.T) {
			tg, err := cfg.environment(name)
			if err != nil {
				t.Fatal(err)
			}
			wantStack := "partner-token-verification-" + name
			if name == "default" {
				wantStack = "partner-token-verification"
			} else if tg.profile == "" {
				t.Error("no profile")
			} else if other, dup := profiles[tg.profile]; dup {
				t.Errorf("profile %s also used by %s", tg.profile, other)
			}
			profiles[tg.profile] = name
			if tg.stack != wantStack {
				t.Errorf("stack_name %q, want %q", tg.stack, wantStack)
			}
			deploy := cfg.envs[name]["deploy"]["parameters"]
			if deploy["capabilities"] != "CAPABILITY_IAM CAPABILITY_AUTO_EXPAND" || deploy["resolve_s3"] != true {
				t.Errorf("deploy parameters %v", deploy)
			}
			if _, ok := deploy["confirm_changeset"].(bool); !ok {
				t.Error("confirm_changeset missing")
			}
			if name == "production" && deploy["confirm_changeset"] != true {
				t.Error("production deploys without confirming the change set")
			}
			overrides, err := parameterOverrides(deploy["parameter_overrides"].(string))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range overrides {
				p, ok := tplParams[k]
				switch {
				case !ok:
					t.Errorf("override %s is not a template parameter", k)
				case k == "OnCallEndpoint":
					// A placeholder the template refuses on purpose, so a deploy stops until
					// the deployer's own address is set (internal/dev/samtemplate checks it).
				case len(p.AllowedValues) > 0 && !slices.Contains(p.AllowedValues, v):
					t.Errorf("override %s=%s is not one of %v", k, v, p.AllowedValues)
				case p.AllowedPattern != "" && !regexp.MustCompile(p.AllowedPattern).MatchString(v):
					t.Errorf("override %s=%s does not match %s", k, v, p.AllowedPattern)
				}
			}
			for _, k := range requiredOverrides {
				if _, ok := overrides[k]; !ok {
					t.Errorf("override %s missing", k)
				}
			}
			if name != "default" && overrides["Environment"] != name {
				t.Errorf("Environment=%s", overrides["Environment"])
			}
		})
	}
	if _, ok := cfg.envs["default"]["build"]["parameters"]; !ok {
		t.Error("no [default.build.parameters]")
	}
}
