package featureflag

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	featureflags "gitlab.com/gitlab-org/secret-detection/partner-token-verification/config/feature_flags"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
)

const flagName = featureflags.PartnerTokenVerification

func proj(id int64, path string) finding.Project { return finding.Project{ID: id, FullPath: path} }

func TestEnabledForGatesAndPrecedence(t *testing.T) {
	// A project id that is in the percentage at 50 and one that is not.
	var in50, out50 int64
	for id := int64(1); in50 == 0 || out50 == 0; id++ {
		if bucket(flagName, id) < 50 {
			in50 = id
		} else {
			out50 = id
		}
	}
	kill := func(p finding.Partner) map[finding.Partner]bool { return map[finding.Partner]bool{p: false} }
	tests := []struct {
		name    string
		v       Value
		project finding.Project
		partner finding.Partner
		want    bool
	}{
		{"zero value is off", Value{}, proj(out50, "gitlab-org/gitlab"), finding.PartnerAWS, false},
		{"global on", Value{Enabled: true}, proj(out50, "a/b"), finding.PartnerAWS, true},
		{"global on, no partner asked", Value{Enabled: true}, proj(out50, "a/b"), "", true},
		{"group equal to the project's namespace", Value{Groups: []string{"gitlab-org"}}, proj(out50, "gitlab-org/gitlab"), finding.PartnerGCP, true},
		{"group equal to the full path", Value{Groups: []string{"gitlab-org/gitlab"}}, proj(out50, "gitlab-org/gitlab"), finding.PartnerGCP, true},
		{"subgroup below the group", Value{Groups: []string{"gitlab-com"}}, proj(out50, "gitlab-com/gl-security/x"), finding.PartnerGCP, true},
		{"group given as subgroup matches below it", Value{Groups: []string{"gitlab-com/gl-security"}}, proj(out50, "gitlab-com/gl-security/appsec/tool"), finding.PartnerGCP, true},
		{"sibling of a subgroup does not match", Value{Groups: []string{"gitlab-com/gl-security"}}, proj(out50, "gitlab-com/www-gitlab-com"), finding.PartnerGCP, false},
		{"name that only shares a prefix", Value{Groups: []string{"gitlab-org"}}, proj(out50, "gitlab-org-archive/gitlab"), finding.PartnerGCP, false},
		{"prefix inside a segment", Value{Groups: []string{"gitlab"}}, proj(out50, "gitlab-org/gitlab"), finding.PartnerGCP, false},
		{"ancestor is not below its child", Value{Groups: []string{"gitlab-org/security"}}, proj(out50, "gitlab-org/gitlab"), finding.PartnerGCP, false},
		{"group match ignores case", Value{Groups: []string{"GitLab-Org"}}, proj(out50, "gitlab-org/gitlab"), finding.PartnerGCP, true},
		{"empty full path matches no group", Value{Groups: []string{"gitlab-org"}}, proj(out50, ""), finding.PartnerGCP, false},
		{"second group matches", Value{Groups: []string{"gitlab-org", "gitlab-com"}}, proj(out50, "gitlab-com/x"), finding.PartnerPostman, true},
		{"project by id", Value{Projects: []int64{7, out50}}, proj(out50, "a/b"), finding.PartnerAWS, true},
		{"other project id", Value{Projects: []int64{out50 + 1}}, proj(out50, "a/b"), finding.PartnerAWS, false},
		{"in the percentage", Value{PercentageOfActors: 50, Flag: flagName}, proj(in50, "a/b"), finding.PartnerAWS, true},
		{"outside the percentage", Value{PercentageOfActors: 50, Flag: flagName}, proj(out50, "a/b"), finding.PartnerAWS, false},
		{"percentage 100 takes all", Value{PercentageOfActors: 100, Flag: flagName}, proj(out50, "a/b"), finding.PartnerAWS, true},
		{"percentage 0 takes none", Value{PercentageOfActors: 0, Flag: flagName}, proj(in50, "a/b"), finding.PartnerAWS, false},
		{"percentage ignores a project without id", Value{PercentageOfActors: 100, Flag: flagName}, proj(0, "a/b"), finding.PartnerAWS, false},
		{"kill switch beats global", Value{Enabled: true, Partners: kill(finding.PartnerPostman)}, proj(out50, "a/b"), finding.PartnerPostman, false},
		{"kill switch beats group", Value{Groups: []string{"a"}, Partners: kill(finding.PartnerAWS)}, proj(out50, "a/b"), finding.PartnerAWS, false},
		{"kill switch beats project", Value{Projects: []int64{out50}, Partners: kill(finding.PartnerGCP)}, proj(out50, "a/b"), finding.PartnerGCP, false},
		{"kill switch beats percentage", Value{PercentageOfActors: 100, Flag: flagName, Partners: kill(finding.PartnerAWS)}, proj(in50, "a/b"), finding.PartnerAWS, false},
		{"kill switch of another partner", Value{Enabled: true, Partners: kill(finding.PartnerPostman)}, proj(out50, "a/b"), finding.PartnerAWS, true},
		{"partner true is the same as absent", Value{Enabled: true, Partners: map[finding.Partner]bool{finding.PartnerAWS: true}}, proj(out50, "a/b"), finding.PartnerAWS, true},
		{"partner switch on does not turn the flag on", Value{Partners: map[finding.Partner]bool{finding.PartnerAWS: true}}, proj(out50, "a/b"), finding.PartnerAWS, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.v.EnabledFor(tt.project, tt.partner); got != tt.want {
				t.Errorf("EnabledFor(%+v, %q) = %v, want %v", tt.project, tt.partner, got, tt.want)
			}
		})
	}
}

func TestPercentageStaysStableAsItGrows(t *testing.T) {
	const projects = 20000
	prev := make([]bool, projects+1)
	for pct := 0; pct <= 100; pct++ {
		v := Value{PercentageOfActors: pct, Flag: flagName}
		in := 0
		for id := int64(1); id <= projects; id++ {
			on := v.EnabledFor(proj(id, "group/p"), finding.PartnerAWS)
			if prev[id] && !on {
				t.Fatalf("project %d was in at %d%% and is out at %d%%", id, pct-1, pct)
			}
			prev[id] = on
			if on {
				in++
			}
		}
		// Binomial standard deviation at 20000 projects is at most ~0.35%;
		// allow 1.5 points either way.
		got := 100 * float64(in) / projects
		if math.Abs(got-float64(pct)) > 1.5 {
			t.Errorf("at %d%%, %.2f%% of projects are in", pct, got)
		}
	}
}

func TestPercentageDependsOnTheFlag(t *testing.T) {
	same := 0
	for id := int64(1); id <= 1000; id++ {
		if inPercentage("flag_a", id, 10) && inPercentage("flag_b", id, 10) {
			same++
		}
	}
	// Independent 10% selections share about 1% of projects, not 10%.
	if same > 40 {
		t.Errorf("flag_a and flag_b at 10%% share %d of 1000 projects", same)
	}
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name, data, wantErr string
		check               func(Value) bool
	}{
		{"contract example", `{ "enabled": false, "groups": ["gitlab-org", "gitlab-com"], "projects": [278964],
			"percentage_of_actors": 0, "partners": { "postman": false } }`, "",
			func(v Value) bool {
				return !v.Enabled && len(v.Groups) == 2 && v.Projects[0] == 278964 && !v.PartnerEnabled(finding.PartnerPostman) && v.Flag == flagName
			}},
		{"with metadata", `{"enabled":true,"updated_at":"2026-11-20T10:00:00Z","updated_by":"alice","reason":"stage 2"}`, "",
			func(v Value) bool {
				return v.Enabled && v.UpdatedBy == "alice" && v.UpdatedAt.Equal(time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC))
			}},
		{"empty object is off", `{}`, "", func(v Value) bool { return v.Off() }},
		{"the template's initial value is off", `{"enabled":false,"groups":[],"projects":[],"percentage_of_actors":0,"partners":{}}`, "",
			func(v Value) bool { return v.Off() && v.PartnerEnabled(finding.PartnerAWS) }},
		{"not JSON", `enabled=true`, "not a JSON object", nil},
		{"empty", ``, "not a JSON object", nil},
		{"null", `null`, "not a JSON object", nil},
		{"array", `[true]`, "not a JSON object", nil},
		{"truncated", `{"enabled": tr`, "invalid JSON", nil},
		{"trailing data", `{"enabled": true} {"enabled": false}`, "trailing data", nil},
		{"misspelt kill switch", `{"enabled": true, "partner": {"aws": false}}`, `unknown field "partner"`, nil},
		{"string for bool", `{"enabled": "true"}`, "enabled", nil},
		{"percentage above 100", `{"percentage_of_actors": 101}`, "outside 0-100", nil},
		{"negative percentage", `{"percentage_of_actors": -1}`, "outside 0-100", nil},
		{"fractional percentage", `{"percentage_of_actors": 12.5}`, "percentage_of_actors", nil},
		{"not a partner name", `{"partners": {"Azure!": false}}`, `"Azure!" is not a partner name`, nil},
		{"bad group", `{"groups": ["/gitlab-org"]}`, "not a GitLab group path", nil},
		{"bad project", `{"projects": [0]}`, "not a positive project id", nil},
		{"control character in updated_by", `{"updated_by": "a\u0007b"}`, "control character", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := Decode(flagName, []byte(tt.data))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Decode error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !tt.check(v) {
				t.Errorf("decoded %+v", v)
			}
		})
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	v := Value{
		Groups: []string{"gitlab-org"}, PercentageOfActors: 5,
		Partners:  map[finding.Partner]bool{finding.PartnerGCP: false},
		UpdatedAt: time.Date(2026, 11, 20, 10, 0, 0, 123, time.FixedZone("x", 3600)), UpdatedBy: "bob",
	}
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"enabled":false,"groups":["gitlab-org"],"projects":[],"percentage_of_actors":5,"partners":{"gcp":false},"updated_at":"2026-11-20T09:00:00Z","updated_by":"bob"}`
	if string(data) != want {
		t.Errorf("got  %s\nwant %s", data, want)
	}
	back, err := Decode(flagName, data)
	if err != nil {
		t.Fatal(err)
	}
	if !back.SameGates(v) || back.UpdatedBy != "bob" {
		t.Errorf("round trip gave %+v", back)
	}
	empty, _ := json.Marshal(Value{})
	if string(empty) != `{"enabled":false,"groups":[],"projects":[],"percentage_of_actors":0}` {
		t.Errorf("zero value encodes as %s", empty)
	}
}

func TestChangeApply(t *testing.T) {
	start := Value{Groups: []string{"gitlab-org"}, Projects: []int64{1}, PercentageOfActors: 10,
		Partners: map[finding.Partner]bool{finding.PartnerPostman: false}, Flag: flagName}
	tests := []struct {
		name   string
		from   Value
		change Change
		want   Value
	}{
		{"true turns global on and keeps actors", start, Change{Enable: true},
			Value{Enabled: true, Groups: []string{"gitlab-org"}, Projects: []int64{1}, PercentageOfActors: 10, Partners: start.Partners}},
		{"true with groups adds them once", start, Change{Enable: true, Groups: []string{"gitlab-com", "GITLAB-ORG"}},
			Value{Groups: []string{"gitlab-org", "gitlab-com"}, Projects: []int64{1}, PercentageOfActors: 10, Partners: start.Partners}},
		{"true with projects adds them", start, Change{Enable: true, Projects: []int64{2, 1}},
			Value{Groups: []string{"gitlab-org"}, Projects: []int64{1, 2}, PercentageOfActors: 10, Partners: start.Partners}},
		{"true with a percentage sets it", start, Change{Enable: true, SetPercentage: true, Percentage: 25},
			Value{Groups: []string{"gitlab-org"}, Projects: []int64{1}, PercentageOfActors: 25, Partners: start.Partners}},
		{"true with percentage 0 stops it only", start, Change{Enable: true, SetPercentage: true},
			Value{Groups: []string{"gitlab-org"}, Projects: []int64{1}, Partners: start.Partners}},
		{"false turns every gate off and keeps kill switches", Value{Enabled: true, Groups: []string{"a"}, Projects: []int64{3}, PercentageOfActors: 50, Partners: start.Partners},
			Change{}, Value{Partners: start.Partners}},
		{"false with a group removes it", start, Change{Groups: []string{"GitLab-Org"}},
			Value{Projects: []int64{1}, PercentageOfActors: 10, Partners: start.Partners}},
		{"false with a project removes it and keeps global", Value{Enabled: true, Projects: []int64{1, 2}}, Change{Projects: []int64{1}},
			Value{Enabled: true, Projects: []int64{2}}},
		{"false with an absent group changes nothing", start, Change{Groups: []string{"other"}}, start},
		{"false partner switches it off", Value{Enabled: true}, Change{Partners: []finding.Partner{finding.PartnerAWS}},
			Value{Enabled: true, Partners: map[finding.Partner]bool{finding.PartnerAWS: false}}},
		{"true partner switches it back on", start, Change{Enable: true, Partners: []finding.Partner{finding.PartnerPostman}},
			Value{Groups: []string{"gitlab-org"}, Projects: []int64{1}, PercentageOfActors: 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.change.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			before, _ := json.Marshal(tt.from)
			got := tt.change.Apply(tt.from)
			gotJSON, _ := json.Marshal(got)
			wantJSON, _ := json.Marshal(tt.want)
			if string(gotJSON) != string(wantJSON) {
				t.Errorf("got  %s\nwant %s", gotJSON, wantJSON)
			}
			if after, _ := json.Marshal(tt.from); string(after) != string(before) {
				t.Errorf("Apply modified its input: %s -> %s", before, after)
			}
		})
	}
}

func TestChangeValidate(t *testing.T) {
	tests := []struct {
		name    string
		c       Change
		wantErr string
	}{
		{"percentage above 100", Change{Enable: true, SetPercentage: true, Percentage: 101}, "outside 0-100"},
		{"negative percentage", Change{Enable: true, SetPercentage: true, Percentage: -1}, "outside 0-100"},
		{"percentage with false", Change{SetPercentage: true, Percentage: 0}, "set with true"},
		{"not a partner name", Change{Partners: []finding.Partner{"a b"}}, `"a b" is not a partner name`},
		{"partner with groups", Change{Partners: []finding.Partner{finding.PartnerAWS}, Groups: []string{"a"}}, "cannot be combined"},
		{"bad group", Change{Enable: true, Groups: []string{"a//b"}}, "not a GitLab group path"},
		{"group with a trailing slash", Change{Enable: true, Groups: []string{"gitlab-org/"}}, "not a GitLab group path"},
		{"zero project", Change{Enable: true, Projects: []int64{0}}, "not a positive integer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestDescribe(t *testing.T) {
	tests := []struct {
		v    Value
		want string
	}{
		{Value{}, "off"},
		{Value{Enabled: true}, "on globally"},
		{Value{Groups: []string{"gitlab-org", "gitlab-com"}}, "on for groups gitlab-org, gitlab-com"},
		{Value{Projects: []int64{1, 2}, PercentageOfActors: 5}, "on for projects 1, 2; 5% of projects"},
		{Value{Enabled: true, Partners: map[finding.Partner]bool{finding.PartnerPostman: false, finding.PartnerAWS: true}},
			"on globally; switched off for partner postman"},
		{Value{Partners: map[finding.Partner]bool{finding.PartnerGCP: false}}, "off; switched off for partner gcp"},
	}
	for _, tt := range tests {
		if got := tt.v.Describe(); got != tt.want {
			t.Errorf("Describe(%+v) = %q, want %q", tt.v, got, tt.want)
		}
	}
}

func TestSameGates(t *testing.T) {
	a := Value{Groups: []string{"x", "Y"}, Projects: []int64{2, 1}, UpdatedBy: "a"}
	b := Value{Groups: []string{"y", "x"}, Projects: []int64{1, 2}, UpdatedBy: "b", Partners: map[finding.Partner]bool{finding.PartnerAWS: true}}
	if !a.SameGates(b) {
		t.Error("values differing only in order, case, metadata and an 'on' partner switch differ")
	}
	for _, c := range []Value{
		{Groups: []string{"x"}, Projects: []int64{1, 2}},
		{Groups: []string{"x", "y"}, Projects: []int64{1, 2}, Enabled: true},
		{Groups: []string{"x", "y"}, Projects: []int64{1, 2}, PercentageOfActors: 1},
		{Groups: []string{"x", "y"}, Projects: []int64{1, 2}, Partners: map[finding.Partner]bool{finding.PartnerAWS: false}},
	} {
		if a.SameGates(c) {
			t.Errorf("%+v has the same gates as %+v", c, a)
		}
	}
}

func TestDefaultParameterIsTheContractName(t *testing.T) {
	if got := DefaultParameter(flagName); got != "/secret-detection/feature-flags/secret_detection_partner_token_verification" {
		t.Errorf("DefaultParameter = %q", got)
	}
}

// TestPartnerUnknownToThisBuild: a value that switches off a partner added
// by a newer deployment still decodes in an older function (the flag checks
// a partner name's form, not this build's list), and its kill switch holds.
func TestPartnerUnknownToThisBuild(t *testing.T) {
	v, err := Decode("f", []byte(`{"enabled": true, "partners": {"newpartner": false}}`))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if v.PartnerEnabled("newpartner") || !v.PartnerEnabled("aws") {
		t.Errorf("PartnerEnabled: newpartner %v, aws %v", v.PartnerEnabled("newpartner"), v.PartnerEnabled("aws"))
	}
	if s := v.Describe(); !strings.Contains(s, "switched off for partner newpartner") {
		t.Errorf("Describe = %q", s)
	}
	if v.SameGates(Value{Enabled: true}) {
		t.Error("SameGates ignores a partner switched off")
	}
}
