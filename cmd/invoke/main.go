// Command invoke is `make invoke`: the local equivalent of `sam local
// invoke` for machines without Docker. It builds one function's bootstrap
// with the Makefile's build-<LogicalId> target, runs it under the Lambda
// Runtime Interface Emulator with the environment template.yaml gives it
// (parameter defaults resolved; variables that name stack resources come
// from the env-vars file, in SAM's --env-vars format, so the same file
// serves `sam local invoke`), posts the event and prints the response.
//
//	invoke -function PostmanFunction -event events/postman-api-key.json [-env-vars env.json]
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/awstest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/lambdalocal"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/localrun"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/samtemplate"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("invoke", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fn := fs.String("function", "", "logical id of the function in template.yaml (e.g. DispatcherFunction)")
	eventPath := fs.String("event", "", "SQS event file (see events/)")
	envVars := fs.String("env-vars", "", "environment file in `sam local invoke --env-vars` format (optional)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "invoke: "+format+"\n", a...)
		return code
	}
	if *fn == "" || *eventPath == "" {
		return fail(2, "-function and -event are required, e.g. make invoke FUNCTION=PostmanFunction EVENT=events/postman-api-key.json")
	}
	root, err := samtemplate.FindRoot()
	if err != nil {
		return fail(1, "%v", err)
	}
	tpl, err := samtemplate.Load(filepath.Join(root, samtemplate.FileName))
	if err != nil {
		return fail(1, "%v", err)
	}
	f, ok := tpl.Functions[*fn]
	if !ok {
		return fail(2, "no function %s in template.yaml (have %v)", *fn, slices.Sorted(maps.Keys(tpl.Functions)))
	}
	payload, err := os.ReadFile(*eventPath)
	if err != nil {
		return fail(2, "%v", err)
	}
	if !json.Valid(payload) {
		return fail(2, "%s is not JSON", *eventPath)
	}
	env, unset, err := Environment(tpl, *fn)
	if err != nil {
		return fail(1, "%v", err)
	}
	if *envVars != "" {
		extra, err := ReadEnvVars(*envVars, *fn)
		if err != nil {
			return fail(2, "%v", err)
		}
		maps.Copy(env, extra)
	}
	for _, name := range unset {
		if _, ok := env[name]; !ok {
			fmt.Fprintf(stderr, "invoke: %s is not set: it names a stack resource; give it in the -env-vars file\n", name)
		}
	}
	buildDir := filepath.Join(root, ".local", "invoke")
	if err := localrun.Build(ctx, root, buildDir, f); err != nil {
		return fail(1, "%v", err)
	}
	rie, err := lambdalocal.FindRIE(root)
	if err != nil {
		return fail(1, "%v", err)
	}
	function, err := lambdalocal.Start(ctx, lambdalocal.Options{
		Name: *fn, RIE: rie, Bootstrap: localrun.Bootstrap(buildDir, f), Env: env,
		Timeout: time.Duration(f.Timeout) * time.Second, MemoryMB: f.MemorySize,
		Output: func(line string) { fmt.Fprintln(stderr, line) },
	})
	if err != nil {
		return fail(1, "%v", err)
	}
	out, err := function.Invoke(ctx, payload)
	function.Stop()
	var fe *lambdalocal.FunctionError
	if err != nil && !errors.As(err, &fe) {
		return fail(1, "%v", err)
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, out, "", "  ") == nil {
		out = pretty.Bytes()
	}
	fmt.Fprintln(stdout, string(out))
	if fe != nil {
		return 1
	}
	return 0
}

// Environment is a function's environment as template.yaml defines it, with
// parameters at their defaults; unset lists the variables that name a stack
// resource (a queue URL), which only a deployment or the env-vars file can give.
func Environment(tpl *samtemplate.Template, fn string) (env map[string]string, unset []string, err error) {
	f := tpl.Functions[fn]
	scope := samtemplate.Scope{Pseudo: samtemplate.Pseudo("local", awstest.Region, samtemplate.LocalAccountID)}
	env = map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(f.Environment)) {
		v, err := tpl.EvalString(f.Environment[name].Expr, scope)
		switch {
		case errors.Is(err, samtemplate.ErrUnresolvable):
			unset = append(unset, name)
		case err != nil:
			return nil, nil, fmt.Errorf("%s: %s: %w", fn, name, err)
		default:
			env[name] = v
		}
	}
	return env, unset, nil
}

// ReadEnvVars reads a `sam local invoke --env-vars` file: {"Parameters":
// {...}} applies to every function, {"<LogicalId>": {...}} to one, and the
// function's own section wins.
func ReadEnvVars(path, fn string) (map[string]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var file map[string]map[string]string
	if err := json.Unmarshal(raw, &file); err != nil {
		return nil, fmt.Errorf("%s: want {\"Parameters\": {...}, \"<LogicalId>\": {...}} with string values: %w", path, err)
	}
	out := map[string]string{}
	maps.Copy(out, file["Parameters"])
	maps.Copy(out, file[fn])
	return out, nil
}
