package rollout

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testDefinition = `---
name: some_flag
description: Does a thing.
introduced_by_url: https://gitlab.com/a/b/-/merge_requests/1
rollout_issue_url: https://gitlab.com/a/b/-/issues/2
milestone: '19.7'
group: group::secret detection
type: gitlab_com_derisk
default_enabled: false
`

// writeTree writes files (relative path -> content) under a new directory.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for rel, content := range files {
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestReadCode(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string
		want    Code
		wantErr string
	}{
		{"default off", map[string]string{"config/feature_flags/some_flag.yml": testDefinition},
			Code{Definition: "config/feature_flags/some_flag.yml", Present: true, DefaultLine: 9, DefaultText: "default_enabled: false"}, ""},
		{"default on", map[string]string{"config/feature_flags/some_flag.yml": strings.Replace(testDefinition, "default_enabled: false", "default_enabled: true", 1)},
			Code{Definition: "config/feature_flags/some_flag.yml", Present: true, DefaultEnabled: true, DefaultLine: 9, DefaultText: "default_enabled: true"}, ""},
		{"removed", map[string]string{"README.md": "x"}, Code{Definition: "config/feature_flags/some_flag.yml"}, ""},
		{"broken", map[string]string{"config/feature_flags/some_flag.yml": "name: ["}, Code{}, "some_flag.yml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ReadCode(writeTree(t, tt.files), "some_flag")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ReadCode error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || c != tt.want {
				t.Fatalf("ReadCode = %+v, %v\nwant %+v", c, err, tt.want)
			}
		})
	}
	c, _ := ReadCode(writeTree(t, tests[0].files), "some_flag")
	if e := c.DefaultEnabledEdit(); e != (Edit{Path: "config/feature_flags/some_flag.yml", Line: 9, Old: "default_enabled: false", New: "default_enabled: true"}) {
		t.Errorf("edit %+v", e)
	}
}

func TestReferences(t *testing.T) {
	root := writeTree(t, map[string]string{
		"config/feature_flags/some_flag.yml": testDefinition,
		"config/flags.go":                    "package flags\n\n// SomeFlag is the flag.\nconst SomeFlag = \"some_flag\"\n",
		"shared/x/x.go":                      "package x\n\nfunc f() { use(flags.SomeFlag) }\n\nvar notIt = SomeFlagger\n",
		"docs/a.md":                          "Turn on `some_flag` first.\nnothing here\nsome_flags is another\n",
		"bin/feature":                        "some_flag in a build output\n",
		".git/config":                        "some_flag\n",
		"blob.dat":                           "some_flag\x00binary",
		"cmd/t/testdata/samconfig.toml":      "# FeatureFlagParameterName=/p/some_flag\n",
		"cmd/t/args_test.go":                 "package main\n\nconst ff = \"some_flag\"\n\nfunc x() { set(ff) }\n",
		"cmd/other/main.go":                  "package main\n\nvar ff = 3 // another package's ff\n",
	})
	refs, err := References(root, "some_flag")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range refs {
		got = append(got, fmt.Sprintf("%s:%d:%s:%s", r.Path, r.Line, r.Via, r.Text))
	}
	want := []string{
		`cmd/t/args_test.go:3::const ff = "some_flag"`,
		"cmd/t/args_test.go:5:ff:func x() { set(ff) }",
		"cmd/t/testdata/samconfig.toml:1::# FeatureFlagParameterName=/p/some_flag",
		`config/feature_flags/some_flag.yml:2::name: some_flag`,
		"config/flags.go:3:SomeFlag:// SomeFlag is the flag.",
		`config/flags.go:4::const SomeFlag = "some_flag"`,
		"docs/a.md:1::Turn on `some_flag` first.",
		"shared/x/x.go:3:SomeFlag:func f() { use(flags.SomeFlag) }",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("references:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if _, err := References(root, "../etc"); err == nil {
		t.Error("References accepted a path as a flag name")
	}
}
