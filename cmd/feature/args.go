package main

import (
	"errors"
	"fmt"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/registry"
	"slices"
	"strconv"
	"strings"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/featureflag"
)

const usage = `usage:
  feature set NAME true|false [--group=a,b] [--project=1,2] [--percentage-of-actors=N]
                              [--partner=aws|gcp|postman] [--by=WHO] [--reason=TEXT] [--dry-run] ENV...
  feature get NAME ENV... [--json]
  feature delete NAME ENV... [--dry-run]
  feature list ENV... [--json]
  feature rollout status|advance|rollback NAME ...   (the rollout plan: feature rollout --help)

ENV is one or more of --dev --pre --staging --staging-ref --production (each a section of
samconfig.toml: region, profile, stack), or --local (the local AWS at AWS_ENDPOINT_URL).
There is no default environment.

set true               turns the flag on globally
set true --group/--project/--percentage-of-actors
                       adds those groups or projects, sets the percentage
set false              turns every gate off: global, groups, projects, percentage (the rollback)
set false --group/--project
                       removes those groups or projects
set false --partner=P  switches partner P off whatever the rest says; set true --partner=P undoes it

Options may come before or after NAME. --by defaults to the OS user; --dry-run prints the change
without writing; --json prints machine-readable results; --config=PATH names samconfig.toml
(default: found in the current directory or a parent).

Exit status: 0 all environments done, 1 one or more environments failed (the others were still
done and reported), 2 invalid command line (nothing was read or written).
`

// usageError is a command line that cannot be acted on; nothing is read or written.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// invocation is a parsed command line.
type invocation struct {
	command string // set, get, delete, list, help
	flag    string
	enable  bool // set's true|false
	change  featureflag.Change
	envs    []string

	by          string
	reason      string
	dryRun      bool
	json        bool
	config      string
	endpointURL string

	// seen records which options were given, for per-command checks.
	seen map[string]bool
}

// valueOptions take a value, as --name=value or --name value.
var valueOptions = []string{"group", "project", "percentage-of-actors", "partner", "by", "reason", "config", "endpoint-url"}

// optionCommands says which commands accept an option; absent means all.
var optionCommands = map[string][]string{
	"group":                {"set"},
	"project":              {"set"},
	"percentage-of-actors": {"set"},
	"partner":              {"set"},
	"by":                   {"set"},
	"reason":               {"set"},
	"dry-run":              {"set", "delete"},
}

// argOption is one option of a chat-ops style command line.
type argOption struct {
	name, value string
	hasValue    bool
}

// splitArgs separates a chat-ops style command line, where options may come
// before or after the positional arguments, into both. An option named in
// valueOpts takes the next argument as its value when written without "=";
// given last, it has no value, which the caller reports. help is true for
// -h, --help, or "help" after at most helpAt positional arguments.
func splitArgs(args, valueOpts []string, helpAt int) (positional []string, opts []argOption, help bool) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			positional = append(positional, args[i+1:]...)
			break
		}
		if a == "-h" || a == "--help" || a == "help" && len(positional) <= helpAt {
			return positional, opts, true
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			positional = append(positional, a)
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if slices.Contains(valueOpts, name) && !hasValue && i+1 < len(args) {
			i++
			value, hasValue = args[i], true
		}
		opts = append(opts, argOption{name, value, hasValue})
	}
	return positional, opts, false
}

// parseArgs reads a chat-ops style command line: options may appear
// anywhere, before or after the positional arguments.
func parseArgs(args []string) (invocation, error) {
	inv := invocation{seen: map[string]bool{}}
	positional, opts, help := splitArgs(args, valueOptions, 0)
	if help {
		inv.command = "help"
		return inv, nil
	}
	for _, o := range opts {
		if err := inv.option(o.name, o.value, o.hasValue); err != nil {
			return inv, err
		}
	}
	if len(positional) == 0 {
		return inv, usagef("no command: want set, get, delete, list or rollout")
	}
	inv.command, positional = positional[0], positional[1:]
	want := map[string]int{"set": 2, "get": 1, "delete": 1, "list": 0}
	n, ok := want[inv.command]
	switch {
	case !ok:
		return inv, usagef("unknown command %q: want set, get, delete, list or rollout", inv.command)
	case len(positional) < n:
		return inv, usagef("%s needs %s", inv.command, map[string]string{"set": "NAME and true or false", "get": "NAME", "delete": "NAME"}[inv.command])
	case len(positional) > n:
		return inv, usagef("%s: unexpected argument %q", inv.command, positional[n])
	}
	if n > 0 {
		inv.flag = positional[0]
	}
	if inv.command == "set" {
		switch positional[1] {
		case "true":
			inv.enable = true
		case "false":
		default:
			return inv, usagef("set: %q is not true or false", positional[1])
		}
		inv.change.Enable = inv.enable
	}
	for opt := range inv.seen {
		if cmds, ok := optionCommands[opt]; ok && !slices.Contains(cmds, inv.command) {
			return inv, usagef("--%s does not apply to %s", opt, inv.command)
		}
	}
	if inv.command == "set" {
		if err := inv.change.Validate(); err != nil {
			return inv, &usageError{err.Error()}
		}
	}
	return inv, nil
}

// option applies one --name[=value].
func (inv *invocation) option(name, value string, hasValue bool) error {
	isEnv := name == local || slices.Contains(namedEnvironments, name)
	isValue := slices.Contains(valueOptions, name)
	switch {
	case !isEnv && !isValue && name != "dry-run" && name != "json":
		return usagef("unknown option --%s", name)
	case isValue && value == "":
		return usagef("--%s needs a value", name)
	case !isValue && hasValue:
		return usagef("--%s takes no value", name)
	}
	if isEnv {
		if !slices.Contains(inv.envs, name) {
			inv.envs = append(inv.envs, name)
		}
		return nil
	}
	repeatable := name == "group" || name == "project" || name == "partner"
	if inv.seen[name] && !repeatable {
		return usagef("--%s given twice", name)
	}
	inv.seen[name] = true
	switch name {
	case "dry-run":
		inv.dryRun = true
	case "json":
		inv.json = true
	case "by":
		inv.by = value
	case "reason":
		inv.reason = value
	case "config":
		inv.config = value
	case "endpoint-url":
		inv.endpointURL = value
	case "group":
		for _, g := range splitList(value) {
			if err := featureflag.ValidGroup(g); err != nil {
				return &usageError{"--group: " + err.Error()}
			}
			inv.change.Groups = append(inv.change.Groups, g)
		}
	case "project":
		for _, p := range splitList(value) {
			id, err := strconv.ParseInt(p, 10, 64)
			if err != nil || id <= 0 {
				return usagef("--project: %q is not a project id (a positive integer)", p)
			}
			inv.change.Projects = append(inv.change.Projects, id)
		}
	case "percentage-of-actors":
		pct, err := strconv.Atoi(value)
		if err != nil {
			return usagef("--percentage-of-actors: %q is not a whole number from 0 to 100", value)
		}
		if pct < 0 || pct > 100 {
			return usagef("--percentage-of-actors: %d is outside 0-100", pct)
		}
		inv.change.SetPercentage, inv.change.Percentage = true, pct
	case "partner":
		for _, p := range splitList(value) {
			def, ok := registry.Lookup(p)
			if !ok {
				return usagef("--partner: unknown partner %q (want one of %s)", p, partnerList())
			}
			inv.change.Partners = append(inv.change.Partners, def.Name)
		}
	}
	return nil
}

// splitList splits a comma-separated option value; empty items are errors
// the callers report, so they are kept.
func splitList(s string) []string {
	parts := strings.Split(s, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

// errNoUser means --by was not given and the OS user is unknown.
var errNoUser = errors.New("cannot tell who is making the change: pass --by=NAME")

// partnerList names every partner of the registry, for usage errors.
func partnerList() string {
	names := make([]string, 0, len(registry.Names()))
	for _, p := range registry.Names() {
		names = append(names, string(p))
	}
	return strings.Join(names, ", ")
}
