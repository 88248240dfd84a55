package main

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/featureflag"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
)

const ff = "secret_detection_partner_token_verification"

func TestParseArgs(t *testing.T) {
	tests := []struct {
		name   string
		args   string
		check  func(invocation) bool
		reason string
	}{
		{"plan stage 1: several environments", "set " + ff + " true --dev --pre --staging --staging-ref",
			func(i invocation) bool {
				return i.command == "set" && i.flag == ff && i.enable && reflect.DeepEqual(i.envs, []string{"dev", "pre", "staging", "staging-ref"})
			}, "envs in order"},
		{"plan stage 2: options before NAME", "set --group=gitlab-org,gitlab-com " + ff + " true --production",
			func(i invocation) bool {
				return reflect.DeepEqual(i.change.Groups, []string{"gitlab-org", "gitlab-com"}) && i.change.Enable && reflect.DeepEqual(i.envs, []string{"production"})
			}, "groups before NAME"},
		{"value as the next argument", "set " + ff + " true --group gitlab-org --project 1,2 --percentage-of-actors 25 --production --by alice --reason x",
			func(i invocation) bool {
				return reflect.DeepEqual(i.change.Groups, []string{"gitlab-org"}) && reflect.DeepEqual(i.change.Projects, []int64{1, 2}) &&
					i.change.SetPercentage && i.change.Percentage == 25 && i.by == "alice" && i.reason == "x"
			}, "space-separated values"},
		{"repeated group and env", "set --group=a " + ff + " --group=b true --dev --dev",
			func(i invocation) bool {
				return reflect.DeepEqual(i.change.Groups, []string{"a", "b"}) && reflect.DeepEqual(i.envs, []string{"dev"})
			}, "groups accumulate, env once"},
		{"rollback", "set " + ff + " false --production", func(i invocation) bool { return !i.enable && i.change.IsRollback() }, "false alone"},
		{"partner switch", "set " + ff + " false --partner=postman --production",
			func(i invocation) bool {
				return reflect.DeepEqual(i.change.Partners, []finding.Partner{finding.PartnerPostman})
			}, "partner"},
		{"percentage 0 with true", "set " + ff + " true --percentage-of-actors=0 --dev",
			func(i invocation) bool { return i.change.SetPercentage && i.change.Percentage == 0 }, "0 is a percentage"},
		{"get with json", "get " + ff + " --json --production --staging",
			func(i invocation) bool { return i.command == "get" && i.json && len(i.envs) == 2 }, "json"},
		{"delete dry run", "delete --dry-run " + ff + " --dev", func(i invocation) bool { return i.command == "delete" && i.dryRun }, "dry run"},
		{"list", "list --local", func(i invocation) bool { return i.command == "list" && i.envs[0] == "local" }, "local"},
		{"help", "set --help", func(i invocation) bool { return i.command == "help" }, "help"},
		{"hidden endpoint and config", "get " + ff + " --dev --endpoint-url=http://127.0.0.1:5000 --config=x.toml",
			func(i invocation) bool { return i.endpointURL == "http://127.0.0.1:5000" && i.config == "x.toml" }, "hidden options"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv, err := parseArgs(strings.Fields(tt.args))
			if err != nil {
				t.Fatalf("parseArgs: %v", err)
			}
			if !tt.check(inv) {
				t.Errorf("%s: parsed %+v", tt.reason, inv)
			}
		})
	}
}

func TestParseArgsRejects(t *testing.T) {
	tests := []struct {
		args, wantErr string
	}{
		{"", "no command"},
		{"enable " + ff + " --dev", `unknown command "enable"`},
		{"set " + ff + " --dev", "set needs NAME and true or false"},
		{"set " + ff + " 50 --dev", `"50" is not true or false`},
		{"set " + ff + " true extra --dev", `unexpected argument "extra"`},
		{"get --dev", "get needs NAME"},
		{"set " + ff + " true --prod", "unknown option --prod"},
		{"set " + ff + " true --dev=yes", "--dev takes no value"},
		{"set " + ff + " true --dev --group", "--group needs a value"},
		{"set " + ff + " true --dev --group=", "--group needs a value"},
		{"set " + ff + " true --dev --group=gitlab-org/", "not a GitLab group path"},
		{"set " + ff + " true --dev --group=a,,b", "group path is empty"},
		{"set " + ff + " true --dev --project=abc", `"abc" is not a project id`},
		{"set " + ff + " true --dev --project=0", `"0" is not a project id`},
		{"set " + ff + " true --dev --project=-3", `"-3" is not a project id`},
		{"set " + ff + " true --dev --percentage-of-actors=101", "101 is outside 0-100"},
		{"set " + ff + " true --dev --percentage-of-actors -1", "-1 is outside 0-100"},
		{"set " + ff + " true --dev --percentage-of-actors=12.5", `"12.5" is not a whole number`},
		{"set " + ff + " true --dev --percentage-of-actors=1 --percentage-of-actors=2", "given twice"},
		{"set " + ff + " false --dev --percentage-of-actors=10", "set with true"},
		{"set " + ff + " false --dev --partner=azure", `unknown partner "azure"`},
		{"set " + ff + " false --dev --partner=aws --group=a", "cannot be combined"},
		{"get " + ff + " --dev --by=alice", "--by does not apply to get"},
		{"get " + ff + " --dev --dry-run", "--dry-run does not apply to get"},
		{"list --dev --group=a", "--group does not apply to list"},
	}
	for _, tt := range tests {
		t.Run(tt.args, func(t *testing.T) {
			_, err := parseArgs(strings.Fields(tt.args))
			var ue *usageError
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.As(err, &ue) {
				t.Fatalf("parseArgs error = %v, want a usage error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestPrepare(t *testing.T) {
	getenv := func(string) string { return "" }
	tests := []struct {
		name, args, wantErr string
	}{
		{"unknown flag for set", "set no_such_flag true --dev", `unknown feature flag "no_such_flag"`},
		{"unknown flag for get", "get no_such_flag --dev", "has no definition"},
		{"delete takes a removed flag", "delete removed_flag --dev", ""},
		{"delete needs a flag name", "delete Bad-Name --dev", "not a feature flag name"},
		{"control character in --by", "set " + ff + " true --dev --by=a\x07", "control character"},
		{"set has a default author", "set " + ff + " true --dev", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv, err := parseArgs(strings.Fields(tt.args))
			if err != nil {
				t.Fatal(err)
			}
			err = prepare(&inv, getenv)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("prepare: %v", err)
				}
				if inv.command == "set" && inv.by == "" {
					t.Error("no default author")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("prepare = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// The parser and the store agree on what a change means.
func TestParsedChangeApplies(t *testing.T) {
	inv, err := parseArgs(strings.Fields("set --group=gitlab-org,gitlab-com " + ff + " true --production"))
	if err != nil {
		t.Fatal(err)
	}
	v := inv.change.Apply(featureflag.Value{Flag: ff})
	if v.Enabled || !v.EnabledFor(finding.Project{ID: 1, FullPath: "gitlab-com/gl-security/x"}, finding.PartnerAWS) ||
		v.EnabledFor(finding.Project{ID: 1, FullPath: "gitlab-org-archive/x"}, finding.PartnerAWS) {
		t.Errorf("stage 2 value %+v", v)
	}
}

// TestNoCommandNamesEveryCommand: `feature` alone names every command the
// usage lists, rollout included, so a user finds it without --help.
func TestNoCommandNamesEveryCommand(t *testing.T) {
	var commands []string
	for _, m := range regexp.MustCompile(`(?m)^  feature ([a-z]+)`).FindAllStringSubmatch(usage, -1) {
		commands = append(commands, m[1])
	}
	if len(commands) < 5 || !slices.Contains(commands, "rollout") {
		t.Fatalf("usage lists %v: the test is not reading it", commands)
	}
	for _, args := range [][]string{nil, {"enable"}} {
		var stdout, stderr bytes.Buffer
		if rc := run(context.Background(), args, &stdout, &stderr, func(string) string { return "" }, t.TempDir()); rc != exitUsage {
			t.Errorf("feature %v: exit %d, want %d", args, rc, exitUsage)
		}
		first, _, _ := strings.Cut(stderr.String(), "\n")
		for _, c := range commands {
			if !strings.Contains(first, c) {
				t.Errorf("feature %v says %q: %s is missing", args, first, c)
			}
		}
	}
}
