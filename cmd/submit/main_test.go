package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/scanreport"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
)

// fakeQueue records what is sent; failAt makes that send (1-based) fail.
type fakeQueue struct {
	url    string
	bodies []string
	failAt int
}

func (q *fakeQueue) SendMessage(_ context.Context, in *sqs.SendMessageInput, _ ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	if aws.ToString(in.QueueUrl) != q.url {
		return nil, errors.New("wrong queue")
	}
	if len(q.bodies)+1 == q.failAt {
		return nil, errors.New("AWS.SimpleQueueService.NonExistentQueue")
	}
	q.bodies = append(q.bodies, aws.ToString(in.MessageBody))
	return &sqs.SendMessageOutput{}, nil
}

func (q *fakeQueue) resolve(_ context.Context, url string, local bool) (string, scanreport.SQSAPI, error) {
	if local {
		return q.url, q, nil
	}
	if url != q.url {
		return "", nil, errors.New("unexpected queue url")
	}
	return url, q, nil
}

const fixtures = "../../internal/scanreport/testdata/"

func submit(t *testing.T, q *fakeQueue, args ...string) (int, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(""), &out, &errOut, q.resolve)
	return code, out.String() + errOut.String()
}

// secretsOf lists every credential of a fixture report.
func secretsOf(t *testing.T, name string) []string {
	t.Helper()
	raw, err := os.ReadFile(fixtures + name)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := scanreport.Read(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range rep.Entries {
		out = append(out, e.Finding.Token.Reveal())
		for _, v := range e.Finding.Context {
			out = append(out, v.Reveal())
		}
	}
	return out
}

func TestSubmitBothFormats(t *testing.T) {
	for _, tc := range []struct {
		file     string
		findings int
		wantOut  []string
	}{
		{"gitleaks-git.json", 6, []string{"gitleaks report: 6 findings", `"private-key"`, "- (unsupported_token_type)", "1 AWS key ids carry", "1 batches sent"}},
		{"trufflehog-git.jsonl", 4, []string{"trufflehog report: 4 findings", `"Slack token"`, `unmapped TruffleHog detectors (no rule id of a partner; sent, they come back unsupported_token_type): "Mailgun"`, "1 batches sent"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			q := &fakeQueue{url: "https://sqs.eu-west-1.amazonaws.com/123456789012/ingress"}
			code, out := submit(t, q, "--report", fixtures+tc.file, "--queue-url", q.url, "--project-id", "278964", "--project-path", "gitlab-org/gitlab", "--list")
			if code != 0 {
				t.Fatalf("exit %d:\n%s", code, out)
			}
			for _, w := range tc.wantOut {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			for _, s := range secretsOf(t, tc.file) {
				if strings.Contains(out, s) {
					t.Errorf("output holds a secret of %d bytes:\n%s", len(s), out)
				}
			}
			if len(q.bodies) != 1 {
				t.Fatalf("%d batches sent", len(q.bodies))
			}
			b, err := finding.Parse([]byte(q.bodies[0]))
			if err != nil {
				t.Fatal(err)
			}
			if len(b.Findings) != tc.findings || b.Project.ID != 278964 || b.Project.FullPath != "gitlab-org/gitlab" || !strings.HasPrefix(b.ScanID, "report-") {
				t.Errorf("batch: %d findings, project %+v, scan %s", len(b.Findings), b.Project, b.ScanID)
			}
			// The same report again: the same scan and finding ids.
			q2 := &fakeQueue{url: q.url}
			submit(t, q2, "--report", fixtures+tc.file, "--queue-url", q.url, "--project-id", "278964", "--project-path", "gitlab-org/gitlab")
			if q2.bodies[0] != q.bodies[0] {
				t.Error("a second submission of the same report differs")
			}
		})
	}
}

func TestSubmitLocalDefaultsAndDryRun(t *testing.T) {
	q := &fakeQueue{url: "http://127.0.0.1:5000/123456789012/local-IngressQueue"}
	code, out := submit(t, q, "--report", fixtures+"gitleaks-git.json", "--local", "--scan-id", "my-scan")
	if code != 0 || len(q.bodies) != 1 {
		t.Fatalf("exit %d, %d batches:\n%s", code, len(q.bodies), out)
	}
	var b finding.Batch
	if err := json.Unmarshal([]byte(q.bodies[0]), &b); err != nil {
		t.Fatal(err)
	}
	if b.Project != localProject || b.ScanID != "my-scan" {
		t.Errorf("local batch: project %+v scan %s", b.Project, b.ScanID)
	}
	q = &fakeQueue{url: "unused"}
	code, out = submit(t, q, "--report", fixtures+"trufflehog-git.jsonl", "--dry-run", "--list", "--project-id", "1", "--project-path", "g/p")
	if code != 0 || len(q.bodies) != 0 || !strings.Contains(out, "1 batches packed") || !strings.Contains(out, "dry run: nothing was sent") ||
		!strings.Contains(out, "notes/slack.txt:2") || !strings.Contains(out, "config/aws.yml:3 @9f2c1e7a5b3d") {
		t.Errorf("dry run: exit %d, %d sent:\n%s", code, len(q.bodies), out)
	}
}

func TestSubmitUsageAndFailures(t *testing.T) {
	q := &fakeQueue{url: "https://sqs.example/q"}
	for name, args := range map[string][]string{
		"no report":      {"--queue-url", q.url, "--project-id", "1", "--project-path", "g/p"},
		"no destination": {"--report", fixtures + "gitleaks-git.json", "--project-id", "1", "--project-path", "g/p"},
		"both":           {"--report", fixtures + "gitleaks-git.json", "--queue-url", q.url, "--local"},
		"no project":     {"--report", fixtures + "gitleaks-git.json", "--queue-url", q.url},
		"bad scan id":    {"--report", fixtures + "gitleaks-git.json", "--queue-url", q.url, "--project-id", "1", "--project-path", "g/p", "--scan-id", strings.Repeat("x", 129)},
	} {
		if code, out := submit(t, q, args...); code != 2 || !strings.Contains(out, "submit: ") {
			t.Errorf("%s: exit %d:\n%s", name, code, out)
		}
	}
	if len(q.bodies) != 0 {
		t.Errorf("a usage error sent %d batches", len(q.bodies))
	}
	code, out := submit(t, q, "--report", "testdata-missing.json", "--queue-url", q.url, "--project-id", "1", "--project-path", "g/p")
	if code != 1 || !strings.Contains(out, "read report") {
		t.Errorf("missing report: exit %d:\n%s", code, out)
	}
	q.failAt = 1
	code, out = submit(t, q, "--report", fixtures+"gitleaks-git.json", "--queue-url", q.url, "--project-id", "1", "--project-path", "g/p")
	if code != 1 || !strings.Contains(out, "send batch 1 of 1") || !strings.Contains(out, "0 of 1 batches were sent") {
		t.Errorf("failed send: exit %d:\n%s", code, out)
	}
	for _, s := range secretsOf(t, "gitleaks-git.json") {
		if strings.Contains(out, s) {
			t.Errorf("failure output holds a secret:\n%s", out)
		}
	}
}
