// Command invoke is `make invoke`: the local equivalent of `sam local
// invoke` for machines without Docker. It builds one function's bootstrap
// with the Makefile's build-<LogicalId> target, runs it under the Lambda
// Runtime Interface Emulator with the environment template.yaml gives it
// (parameter defaults resolved; variables that name stack resources come
// from the env-vars file, in SAM's --env-vars format, so the same file
// serves `sam local invoke`), posts the event and prints the response.
// As `sam local invoke` does, it shows the function's output and hides the
// emulator's debug log unless -debug is given, prints Lambda's error
// payload when the function fails, and exits 1 then; it also exits 1 when
// the function reports every record of the event as a batch item failure.
// An env-vars file whose local AWS no longer answers (a stale
// .local/env.json) is refused before anything is built.
//
//	invoke -function PostmanFunction -event events/postman-api-key.json [-env-vars env.json] [-debug]
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
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/awstest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/lambdalocal"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/localrun"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/samtemplate"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/pipeline"
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
	debug := fs.Bool("debug", false, "also print the emulator's own log lines")
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
	var missing []string
	for _, name := range unset {
		if _, ok := env[name]; !ok {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		// The function runs anyway, as under sam local invoke: its init
		// error says what it could not do without them.
		fmt.Fprintf(stderr, "invoke: no local stack: %s name stack resources that %s does not give; start one with `make run ARGS=--keep` (it writes .local/env.json, which make invoke then uses)\n",
			strings.Join(missing, ", "), envVarsName(*envVars))
	} else if err := checkStack(ctx, env); err != nil {
		return fail(1, "the local stack of %s is gone (%v): start it again with `make run ARGS=--keep`, or pass ENV_VARS=<file>", envVarsName(*envVars), err)
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
		Output: func(line string) {
			if *debug || !lambdalocal.IsEmulatorLine(line) {
				fmt.Fprintln(stderr, line)
			}
		},
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
	if fe != nil {
		// Lambda's error payload on one line, as sam local invoke prints it.
		fmt.Fprintln(stdout, fe.Payload)
		return 1
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, out, "", "  ") == nil {
		out = pretty.Bytes()
	}
	fmt.Fprintln(stdout, string(out))
	if n, all := allRecordsFailed(payload, out); all {
		fmt.Fprintf(stderr, "invoke: the function reported all %d records of the event as batch item failures (the log above says why)\n", n)
		return 1
	}
	return 0
}

// envVarsName is how a message names the env-vars file.
func envVarsName(path string) string {
	if path == "" {
		return "the environment (no -env-vars file)"
	}
	return path
}

// stackProbeTimeout bounds the check that the env-vars file's local AWS
// still holds its queues: a stack that is up answers in milliseconds.
const stackProbeTimeout = 3 * time.Second

// checkStack fails when the environment points at a local AWS
// (AWS_ENDPOINT_URL) that no longer answers or no longer has the results
// queue: a .local/env.json left by a stopped `make run ARGS=--keep`.
// Without that check every record would fail on a connection error.
func checkStack(ctx context.Context, env map[string]string) error {
	endpoint, queue := env["AWS_ENDPOINT_URL"], env[pipeline.EnvResultsQueue]
	if endpoint == "" || queue == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, stackProbeTimeout)
	defer cancel()
	cfg := awstest.Config(endpoint)
	cfg.RetryMaxAttempts = 1
	_, err := sqs.NewFromConfig(cfg).GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(queue), AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	var opErr *net.OpError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &opErr):
		return fmt.Errorf("nothing answers at %s", endpoint)
	}
	return fmt.Errorf("%s has no queue %s", endpoint, queue)
}

// allRecordsFailed reports whether the response of an SQS-event
// invocation lists every record of the event as a batch item failure, and
// how many records there were: the invocation succeeded, yet nothing did.
func allRecordsFailed(event, response []byte) (int, bool) {
	var ev events.SQSEvent
	var resp events.SQSEventResponse
	if json.Unmarshal(event, &ev) != nil || json.Unmarshal(response, &resp) != nil || len(ev.Records) == 0 {
		return 0, false
	}
	failed := map[string]bool{}
	for _, f := range resp.BatchItemFailures {
		failed[f.ItemIdentifier] = true
	}
	for _, r := range ev.Records {
		if !failed[r.MessageId] {
			return len(ev.Records), false
		}
	}
	return len(ev.Records), true
}

// Environment is a function's environment as template.yaml defines it, with
// parameters at their defaults and SSM parameters by name; unset lists the
// variables that name a stack resource (a queue URL), which only a
// deployment or the env-vars file can give.
func Environment(tpl *samtemplate.Template, fn string) (env map[string]string, unset []string, err error) {
	f := tpl.Functions[fn]
	scope := samtemplate.Scope{Pseudo: samtemplate.Pseudo("local", awstest.Region, samtemplate.LocalAccountID)}
	// !Ref of an SSM parameter is its Name, known from the template alone
	// (FEATURE_FLAG_PARAMETER): only queues need a stack.
	scope.Resource = func(id, attr string) (string, error) {
		r, ok := tpl.Resources[id]
		if !ok || r.Type != samtemplate.TypeSSMParameter || attr != "" {
			return "", fmt.Errorf("%s: %w", id, samtemplate.ErrUnresolvable)
		}
		return tpl.EvalString(r.Properties["Name"], scope)
	}
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
