// Command submit sends a secret scanner's own report to the ingress queue
// as version-1 finding batches (contract §2), so that a gitleaks or
// TruffleHog user gets verdicts without writing a producer. It reads a
// gitleaks JSON report (`gitleaks git|dir --report-format json`) or
// TruffleHog JSON lines (`trufflehog … --json`), telling them apart by
// content; maps rules and detectors to the rule ids of contract §7; pairs
// AWS key ids with the secret key found beside them; packs batches under
// 256 KiB with finding ids derived from file, line, commit and rule (see
// package scanreport); sends them; and prints a summary that never holds a
// token.
//
//	submit --report FILE (--queue-url URL | --local | --dry-run) [--project-id N --project-path PATH] [--scan-id ID] [--list]
//
// --queue-url uses the standard AWS configuration (AWS_PROFILE,
// AWS_REGION, AWS_ENDPOINT_URL, …). --local sends to the stack `make run
// ARGS=--keep` leaves running, found through .local/stack.json.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/localrun"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/samtemplate"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/scanreport"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
)

// localProject is the project --local sends for when none is given: below
// gitlab-org, a group `make run` turns the flag on for.
var localProject = finding.Project{ID: 1, FullPath: "gitlab-org/scanner-report"}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, newQueue))
}

// queueFunc resolves where batches go: the queue URL and a client for it.
type queueFunc func(ctx context.Context, queueURL string, local bool) (string, scanreport.SQSAPI, error)

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, queue queueFunc) int {
	fs := flag.NewFlagSet("submit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	reportPath := fs.String("report", "", "the scanner report: a gitleaks JSON report or TruffleHog JSON lines (- reads standard input)")
	queueURL := fs.String("queue-url", "", "the ingress queue's URL (standard AWS configuration: AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL, …)")
	local := fs.Bool("local", false, "send to the local stack that `make run ARGS=--keep` leaves running ("+localrun.RecordFile+")")
	projectID := fs.Int64("project-id", 0, "project.id of the batches: the flag gate turns verification on by project id, by group of the path, or by percentage of project ids (--local default 1)")
	projectPath := fs.String("project-path", "", "project.full_path of the batches, e.g. gitlab-org/gitlab (--local default "+localProject.FullPath+", below a group make run enables)")
	scanID := fs.String("scan-id", "", "scan_id of the batches (default report- and a hash of the report, stable for the same report)")
	dryRun := fs.Bool("dry-run", false, "read, map and pack the report and print the summary, but send nothing")
	list := fs.Bool("list", false, "also list each finding's id with its scanner rule and file:line @commit (never the token)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "submit: "+format+"\n", a...)
		return 2
	}
	switch {
	case *reportPath == "":
		return usage("--report is required")
	case fs.NArg() > 0:
		return usage("unexpected argument %q", fs.Arg(0))
	case !*dryRun && (*queueURL == "") == !*local:
		return usage("give exactly one of --queue-url and --local (or --dry-run)")
	}
	project := finding.Project{ID: *projectID, FullPath: *projectPath}
	if *local {
		if project.ID == 0 {
			project.ID = localProject.ID
		}
		if project.FullPath == "" {
			project.FullPath = localProject.FullPath
		}
	}
	if project.ID <= 0 || project.FullPath == "" {
		return usage("--project-id (a positive integer) and --project-path are required: the flag gate decides by them whether findings are verified")
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "submit: "+format+"\n", a...)
		return 1
	}
	var raw []byte
	var err error
	if *reportPath == "-" {
		raw, err = io.ReadAll(io.LimitReader(stdin, scanreport.MaxReportBytes+1))
	} else {
		raw, err = os.ReadFile(*reportPath)
	}
	if err != nil {
		return fail("read report: %v", err)
	}
	rep, err := scanreport.Read(bytes.NewReader(raw))
	if err != nil {
		return fail("%v", err)
	}
	if *scanID == "" {
		*scanID = scanreport.DefaultScanID(raw)
	}
	if msg := checkScanID(*scanID); msg != "" {
		return usage("--scan-id: %s", msg)
	}
	bodies, oversized, err := scanreport.Pack(*scanID, project, rep.Entries)
	if err != nil {
		return fail("%v", err)
	}
	sent := 0
	if !*dryRun && len(bodies) > 0 {
		url, client, err := queue(ctx, *queueURL, *local)
		if err != nil {
			return fail("%v", err)
		}
		sent, err = scanreport.Send(ctx, client, url, bodies)
		if err != nil {
			_ = scanreport.Summarize(rep, *scanID, project, sent, oversized, true).Write(stdout)
			return fail("%v (%d of %d batches were sent; sending the report again repeats its ids)", err, sent, len(bodies))
		}
	}
	if err := scanreport.Summarize(rep, *scanID, project, len(bodies), oversized, !*dryRun).Write(stdout); err != nil {
		return fail("%v", err)
	}
	if *list {
		if err := scanreport.WriteFindings(stdout, rep); err != nil {
			return fail("%v", err)
		}
	}
	switch {
	case *dryRun:
		fmt.Fprintln(stdout, "dry run: nothing was sent")
	case len(bodies) > 0:
		fmt.Fprintln(stdout, "each finding gets one result on the results queue: active, inactive, or unknown with its reason")
	}
	if len(oversized) > 0 {
		return 1
	}
	return 0
}

// checkScanID holds --scan-id to the contract's id rules before anything
// is sent: a bad one would send every batch to the dead-letter queue.
func checkScanID(id string) string {
	b, err := finding.Encode(finding.Batch{Version: 1, ScanID: id, Project: finding.Project{ID: 1, FullPath: "p"}, Findings: []finding.Finding{}})
	if err != nil {
		return err.Error()
	}
	var be *finding.BodyError
	if _, err := finding.Parse(b); errors.As(err, &be) {
		return be.Msg
	}
	return ""
}

// newQueue is the SQS client for --queue-url (the standard AWS
// configuration) or --local (the kept stack's endpoint and its test
// credentials).
func newQueue(ctx context.Context, queueURL string, local bool) (string, scanreport.SQSAPI, error) {
	if !local {
		cfg, err := config.LoadDefaultConfig(ctx)
		if err != nil {
			return "", nil, fmt.Errorf("AWS configuration: %w", err)
		}
		return queueURL, sqs.NewFromConfig(cfg), nil
	}
	root, err := samtemplate.FindRoot()
	if err != nil {
		return "", nil, err
	}
	rec, err := localrun.ReadRecord(filepath.Join(root, localrun.RecordFile))
	if err != nil {
		return "", nil, err
	}
	url, ok := rec.Queues["IngressQueue"]
	if !ok {
		return "", nil, fmt.Errorf("%s has no IngressQueue", localrun.RecordFile)
	}
	cfg := aws.Config{
		Region:       rec.Region,
		Credentials:  credentials.NewStaticCredentialsProvider("testing", "testing", ""),
		BaseEndpoint: aws.String(rec.Endpoint),
	}
	return url, sqs.NewFromConfig(cfg), nil
}
