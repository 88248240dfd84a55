package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/samtemplate"
)

func TestParameterOverrides(t *testing.T) {
	root, err := samtemplate.FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	tpl := filepath.Join(root, samtemplate.FileName)
	got, err := parameterOverrides(tpl, " BatchingWindowInSeconds=0  MaxAttempts=3 ")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["BatchingWindowInSeconds"] != "0" || got["MaxAttempts"] != "3" {
		t.Errorf("parameterOverrides = %v", got)
	}
	if got, err := parameterOverrides(tpl, ""); err != nil || len(got) != 0 {
		t.Errorf("no overrides: %v, %v", got, err)
	}
	for in, want := range map[string]string{
		"BatchingWindowInSeconds":   "not Key=Value",
		"=0":                        "not Key=Value",
		"BatchingWindowInSeconds=9": "above",
		"NoSuchParameter=1":         "not in the template",
	} {
		if _, err := parameterOverrides(tpl, in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parameterOverrides(%q) error %v, want one containing %q", in, err, want)
		}
	}
}

// A bad override stops make run before it starts anything, with exit 2.
func TestRunRefusesABadOverride(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if rc := run(context.Background(), []string{"-parameter-overrides", "BatchingWindowInSeconds=9"}, &stdout, &stderr); rc != 2 {
		t.Errorf("rc %d, want 2", rc)
	}
	if !strings.Contains(stderr.String(), "BatchingWindowInSeconds") || stdout.Len() != 0 {
		t.Errorf("stdout %q, stderr %q: want nothing started and the parameter named", stdout.String(), stderr.String())
	}
}
