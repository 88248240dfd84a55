package featureflags

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestEmbeddedPartnerTokenVerification(t *testing.T) {
	d, ok := Lookup(PartnerTokenVerification)
	if !ok {
		t.Fatalf("no definition for %s among %d embedded", PartnerTokenVerification, len(All()))
	}
	if d.DefaultEnabled {
		t.Error("default_enabled is true; the rollout plan starts with the flag off")
	}
	if d.Type != "gitlab_com_derisk" || d.Group != "group::secret detection" {
		t.Errorf("type %q group %q", d.Type, d.Group)
	}
	if _, ok := Lookup("secret_detection_partner_token_verificatio"); ok {
		t.Error("Lookup matched a name that is only a prefix")
	}
}

func TestAllSortedAndComplete(t *testing.T) {
	all := All()
	if len(all) == 0 {
		t.Fatal("no definitions embedded")
	}
	for i, d := range all {
		if i > 0 && all[i-1].Name >= d.Name {
			t.Errorf("not sorted: %s before %s", all[i-1].Name, d.Name)
		}
		if got, ok := Lookup(d.Name); !ok || got != d {
			t.Errorf("Lookup(%s) = %v, %v", d.Name, got, ok)
		}
	}
}

const good = `---
name: some_flag
description: Does a thing.
introduced_by_url: https://gitlab.com/a/b/-/merge_requests/1
rollout_issue_url: https://gitlab.com/a/b/-/issues/2
milestone: '19.7'
group: group::secret detection
type: gitlab_com_derisk
default_enabled: true
`

func TestParse(t *testing.T) {
	tests := []struct {
		name, file, data, wantErr string
	}{
		{"valid", "some_flag.yml", good, ""},
		{"file name differs", "other_flag.yml", good, "does not match the file name"},
		{"unknown key", "some_flag.yml", good + "default_enabeld: false\n", "default_enabeld"},
		{"empty", "some_flag.yml", "", "empty file"},
		{"bad type", "some_flag.yml", strings.Replace(good, "gitlab_com_derisk", "derisk", 1), `type "derisk"`},
		{"bad milestone", "some_flag.yml", strings.Replace(good, "'19.7'", "next", 1), `milestone "next"`},
		{"bad group", "some_flag.yml", strings.Replace(good, "group::secret detection", "secret detection", 1), "group::"},
		{"http url", "some_flag.yml", strings.Replace(good, "https://gitlab.com/a/b/-/issues/2", "http://x", 1), "rollout_issue_url"},
		{"no description", "some_flag.yml", strings.Replace(good, "Does a thing.", "''", 1), "description is empty"},
		{"camel name", "SomeFlag.yml", strings.Replace(good, "some_flag", "SomeFlag", 1), "not snake case"},
		{"not a mapping", "some_flag.yml", "- a\n- b\n", "cannot unmarshal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Parse(tt.file, []byte(tt.data))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if d.Name != "some_flag" || !d.DefaultEnabled || d.Milestone != "19.7" {
					t.Errorf("decoded %+v", d)
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

func TestLoadSkipsOtherFilesAndFailsOnBadOne(t *testing.T) {
	defs, err := load(fstest.MapFS{
		"some_flag.yml": {Data: []byte(good)},
		"README.md":     {Data: []byte("# not a definition")},
	})
	if err != nil || len(defs) != 1 {
		t.Fatalf("load = %v, %v", defs, err)
	}
	_, err = load(fstest.MapFS{"some_flag.yml": {Data: []byte("name: [")}})
	if err == nil {
		t.Fatal("load accepted a broken definition")
	}
}

func TestValidName(t *testing.T) {
	for s, want := range map[string]bool{
		"secret_detection_partner_token_verification": true,
		"a1_b":      true,
		"":          false,
		"1abc":      false,
		"with-dash": false,
		"Upper":     false,
		"../etc":    false,
	} {
		if got := ValidName(s); got != want {
			t.Errorf("ValidName(%q) = %v, want %v", s, got, want)
		}
	}
}
