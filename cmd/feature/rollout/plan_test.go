package rollout

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	featureflags "gitlab.com/gitlab-org/secret-detection/partner-token-verification/config/feature_flags"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/samtemplate"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/featureflag"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/registry"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := samtemplate.FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func day(s string) time.Time {
	d, err := ParseDate(s)
	if err != nil {
		panic(err)
	}
	return d.Time
}

// TestRepositoryPlanIsTheIssuePlan holds the plan file to the rollout
// issue: its stages, environments, changes, dates, soak times and alarms.
func TestRepositoryPlanIsTheIssuePlan(t *testing.T) {
	flag := featureflags.PartnerTokenVerification
	p, err := Load(filepath.Join(repoRoot(t), PlanPath(flag)))
	if err != nil {
		t.Fatal(err)
	}
	watched := []string{"SecretDetectionPartnerAPIHighErrorRate", "SecretDetectionPartnerAPIHighLatency"}
	nonProd := []string{"dev", "pre", "staging", "staging-ref"}
	want := []struct {
		name     string
		envs     []string
		command  string
		earliest time.Time
		soak     time.Duration
		alarms   []string
	}{
		{"non-production", nonProd, "feature set " + flag + " true --dev --pre --staging --staging-ref", day("2026-11-19"), 0, watched},
		{"production-gitlab", []string{"production"}, "feature set " + flag + " true --group=gitlab-org,gitlab-com --production", day("2026-11-20"), 24 * time.Hour, watched},
		{"production-global", []string{"production"}, "feature set " + flag + " true --production", day("2026-12-01"), 24 * time.Hour, watched},
		{"default-enabled", nil, "merge request: default_enabled: true in config/feature_flags/" + flag + ".yml", day("2026-12-08"), 0, nil},
		{"remove", append(slices.Clone(nonProd), "production"), "merge request: remove the flag and its definition; then feature delete " + flag + " --dev --pre --staging --staging-ref --production", day("2027-01-12"), 0, watched},
	}
	if p.Flag != flag || len(p.Stages) != len(want) {
		t.Fatalf("plan of %s with %d stages, want %s with %d", p.Flag, len(p.Stages), flag, len(want))
	}
	for i, w := range want {
		s := p.Stages[i]
		if s.Name != w.name || !slices.Equal(s.Environments, w.envs) || s.Command(flag) != w.command ||
			!s.Earliest.Equal(w.earliest) || time.Duration(s.Soak) != w.soak || !slices.Equal(s.Alarms, w.alarms) {
			t.Errorf("stage %d = %s %v %q %s %s %v\nwant %s %v %q %s %s %v", i+1,
				s.Name, s.Environments, s.Command(flag), s.Earliest, time.Duration(s.Soak), s.Alarms,
				w.name, w.envs, w.command, w.earliest.Format(dateLayout), w.soak, w.alarms)
		}
	}
	if got := p.FlagEnvironments(); !slices.Equal(got, []string{"production", "dev", "pre", "staging", "staging-ref"}) {
		t.Errorf("rollback order %v, want production first", got)
	}
	if def, ok := featureflags.Lookup(flag); !ok || def.RolloutIssueURL != p.RolloutIssueURL {
		t.Errorf("plan's rollout issue %q, definition's %q", p.RolloutIssueURL, def.RolloutIssueURL)
	}
}

// TestPlanAlarmsExistInTemplate: every watched alert has one alarm per
// partner in template.yaml, under the name the rollout looks for.
func TestPlanAlarmsExistInTemplate(t *testing.T) {
	root := repoRoot(t)
	p, err := Load(filepath.Join(root, PlanPath(featureflags.PartnerTokenVerification)))
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := samtemplate.Load(filepath.Join(root, samtemplate.FileName))
	if err != nil {
		t.Fatal(err)
	}
	scope := samtemplate.SymbolicScope("partner-token-verification-production", "us-east-1", "123456789012")
	names := map[string]bool{}
	for _, a := range tpl.Alarms {
		n, err := a.NameIn(scope)
		if err != nil {
			t.Fatal(err)
		}
		names[n] = true
	}
	for _, s := range p.Stages {
		for _, alert := range s.Alarms {
			for _, partner := range registry.Names() {
				if n := AlarmName(alert, "partner-token-verification-production", partner); !names[n] {
					t.Errorf("stage %s watches %s, which template.yaml does not define", s.Name, n)
				}
			}
		}
	}
}

const validPlan = `flag: some_flag
stages:
  - name: one
    environments: [dev]
    set: {value: true}
    earliest: 2026-11-19
    soak: 1h
    alarms: [SomeAlert]
  - name: two
    environments: [production]
    set: {value: true, groups: [gitlab-org], projects: [5], percentage_of_actors: 10}
    earliest: 2026-11-20
    soak: 24h
  - name: default
    code_change: default_enabled
    earliest: 2026-11-21
  - name: gone
    code_change: remove
    environments: [dev, production]
    earliest: 2026-11-22
`

func TestParse(t *testing.T) {
	tests := []struct {
		name, file, data, wantErr string
	}{
		{"valid", "some_flag.yml", validPlan, ""},
		{"file name differs", "other_flag.yml", validPlan, "does not match the file name"},
		{"unknown key", "some_flag.yml", strings.Replace(validPlan, "soak: 1h", "soak_time: 1h", 1), "soak_time"},
		{"empty", "some_flag.yml", "", "empty file"},
		{"bad date", "some_flag.yml", strings.Replace(validPlan, "2026-11-19", "19 Nov", 1), `"19 Nov" is not YYYY-MM-DD`},
		{"dates out of order", "some_flag.yml", strings.Replace(validPlan, "2026-11-20", "2026-11-01", 1), "before the previous stage's"},
		{"bad soak", "some_flag.yml", strings.Replace(validPlan, "soak: 1h", "soak: a day", 1), `soak "a day"`},
		{"negative soak", "some_flag.yml", strings.Replace(validPlan, "soak: 1h", "soak: -1h", 1), "negative soak"},
		{"set without environments", "some_flag.yml", strings.Replace(validPlan, "    environments: [dev]\n", "", 1), "set needs environments"},
		{"set and code change", "some_flag.yml", strings.Replace(validPlan, "set: {value: true}\n", "set: {value: true}\n    code_change: remove\n", 1), "both set and code_change"},
		{"neither", "some_flag.yml", strings.Replace(validPlan, "    set: {value: true}\n", "", 1), "needs set or code_change"},
		{"unknown code change", "some_flag.yml", strings.Replace(validPlan, "code_change: default_enabled", "code_change: flip", 1), `code_change "flip"`},
		{"remove not last", "some_flag.yml", strings.Replace(validPlan, "code_change: default_enabled", "code_change: remove", 1), "remove must be the last stage"},
		{"code change with soak", "some_flag.yml", strings.Replace(validPlan, "earliest: 2026-11-21", "earliest: 2026-11-21\n    soak: 1h", 1), "a code change has no soak"},
		{"bad percentage", "some_flag.yml", strings.Replace(validPlan, "percentage_of_actors: 10", "percentage_of_actors: 101", 1), "outside 0-100"},
		{"bad group", "some_flag.yml", strings.Replace(validPlan, "groups: [gitlab-org]", "groups: ['a b']", 1), "not a GitLab group path"},
		{"duplicate stage", "some_flag.yml", strings.Replace(validPlan, "name: two", "name: one", 1), "name used twice"},
		{"bad stage name", "some_flag.yml", strings.Replace(validPlan, "name: two", "name: Two Words", 1), "not lower-case words"},
		{"environment twice", "some_flag.yml", strings.Replace(validPlan, "[dev, production]", "[dev, dev]", 1), "listed twice"},
		{"bad environment", "some_flag.yml", strings.Replace(validPlan, "[dev]", "[--dev]", 1), "not a samconfig.toml section"},
		{"bad alert", "some_flag.yml", strings.Replace(validPlan, "[SomeAlert]", "['Some-Alert*']", 1), "not an alert name"},
		{"no stages", "some_flag.yml", "flag: some_flag\nstages: []\n", "no stages"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse(tt.file, []byte(tt.data))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if len(p.Stages) != 4 || *p.Stages[1].Set.PercentageOfActors != 10 || time.Duration(p.Stages[1].Soak) != 24*time.Hour {
					t.Errorf("decoded %+v", p)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Parse error = %v, want one containing %q", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.file) {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

func TestFlagSetChangeAndArgs(t *testing.T) {
	pct := 25
	tests := []struct {
		set  FlagSet
		args string
		from featureflag.Value
		want featureflag.Value
	}{
		{FlagSet{Value: true}, "true", featureflag.Value{}, featureflag.Value{Enabled: true}},
		{FlagSet{Value: true, Groups: []string{"gitlab-org", "gitlab-com"}}, "true --group=gitlab-org,gitlab-com",
			featureflag.Value{Groups: []string{"gitlab-org"}}, featureflag.Value{Groups: []string{"gitlab-org", "gitlab-com"}}},
		{FlagSet{Value: true, Projects: []int64{7, 9}, PercentageOfActors: &pct}, "true --project=7,9 --percentage-of-actors=25",
			featureflag.Value{}, featureflag.Value{Projects: []int64{7, 9}, PercentageOfActors: 25}},
		{FlagSet{Value: false}, "false", featureflag.Value{Enabled: true, Groups: []string{"a"}}, featureflag.Value{}},
	}
	for _, tt := range tests {
		if got := strings.Join(tt.set.Args(), " "); got != tt.args {
			t.Errorf("Args = %q, want %q", got, tt.args)
		}
		if got := tt.set.Change().Apply(tt.from); !got.SameGates(tt.want) {
			t.Errorf("%s applied to %s = %s, want %s", tt.args, tt.from.Describe(), got.Describe(), tt.want.Describe())
		}
	}
}

func TestHuman(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                              "0s",
		42 * time.Second:               "42s",
		90 * time.Second:               "1m",
		3*time.Hour + 5*time.Minute:    "3h 5m",
		24 * time.Hour:                 "1d",
		49*time.Hour + 30*time.Second:  "2d 1h",
		-(2*time.Hour + 3*time.Minute): "-2h 3m",
	} {
		if got := Human(d); got != want {
			t.Errorf("Human(%v) = %q, want %q", d, got, want)
		}
	}
}
