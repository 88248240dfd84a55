package main

import (
	"reflect"
	"testing"
)

func TestSplitArgs(t *testing.T) {
	values := []string{"group", "reason"}
	tests := []struct {
		name     string
		args     []string
		helpAt   int
		wantPos  []string
		wantOpts []argOption
		wantHelp bool
	}{
		{"options before and after", []string{"--group", "a,b", "set", "F", "true", "--production"}, 0,
			[]string{"set", "F", "true"}, []argOption{{"group", "a,b", true}, {"production", "", false}}, false},
		{"name=value", []string{"set", "--reason=why"}, 0, []string{"set"}, []argOption{{"reason", "why", true}}, false},
		{"value option last has no value", []string{"set", "--reason"}, 0, []string{"set"}, []argOption{{"reason", "", false}}, false},
		{"-- ends the options", []string{"get", "--", "--json"}, 0, []string{"get", "--json"}, nil, false},
		{"help first", []string{"help"}, 0, nil, nil, true},
		{"help as an argument after the command", []string{"get", "help"}, 0, []string{"get", "help"}, nil, false},
		{"help after rollout", []string{"rollout", "help"}, 1, []string{"rollout"}, nil, true},
		{"--help anywhere", []string{"set", "F", "--help"}, 0, []string{"set", "F"}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pos, opts, help := splitArgs(tt.args, values, tt.helpAt)
			if !reflect.DeepEqual(pos, tt.wantPos) || !reflect.DeepEqual(opts, tt.wantOpts) || help != tt.wantHelp {
				t.Fatalf("splitArgs(%q) = %q, %+v, %v; want %q, %+v, %v", tt.args, pos, opts, help, tt.wantPos, tt.wantOpts, tt.wantHelp)
			}
		})
	}
}
