package localrun

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/registry"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/awstest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/msgschema"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/sandbox"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/samtemplate"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/featureflag"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
)

func TestMain(m *testing.M) { awstest.Main(m) }

const flagName = "secret_detection_partner_token_verification"

// harness is one local deployment on the shared moto, with its own queues,
// flag parameter and partner doubles.
type harness struct {
	t       *testing.T
	stack   *Stack
	sandbox *sandbox.Sandbox
	store   *featureflag.Store
	param   string
	logs    *syncBuffer
	// validated counts the results checked against the result schema.
	validated int
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) line(fn, l string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.WriteString(fn + " " + l + "\n")
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newHarness(t *testing.T, prefix string, env map[string]string) *harness {
	t.Helper()
	root, err := samtemplate.FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	moto := awstest.Shared(t)
	sb, err := sandbox.Start(sandbox.Addrs{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	if err := sb.RegisterSamples(); err != nil {
		t.Fatal(err)
	}
	all := map[string]string{"FEATURE_FLAG_CACHE_TTL": "1s", "RETRY_BACKOFF_BASE": "1s", "LOG_LEVEL": "info"}
	for k, v := range sb.Env() {
		all[k] = v
	}
	for k, v := range env {
		all[k] = v
	}
	param := "/local/" + prefix + "/" + flagName
	logs := &syncBuffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	stack, err := Start(ctx, Options{
		Root: root, Endpoint: moto.Endpoint, Prefix: prefix, Env: all,
		Parameters: map[string]string{"FeatureFlagParameterName": param, "MaxAttempts": "3"},
		Output: func(fn, l string) {
			logs.line(fn, l)
			if os.Getenv("E2E_VERBOSE") != "" {
				fmt.Println(fn, l)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stack.Stop)
	return &harness{t: t, stack: stack, sandbox: sb, store: featureflag.NewStore(ssm.NewFromConfig(moto.Config()), time.Now), param: param, logs: logs}
}

func (h *harness) setFlag(t *testing.T, c featureflag.Change) {
	t.Helper()
	if _, err := h.store.Set(context.Background(), flagName, h.param, c, featureflag.Meta{By: "e2e"}, false); err != nil {
		t.Fatalf("set flag: %v", err)
	}
	time.Sleep(1100 * time.Millisecond) // FEATURE_FLAG_CACHE_TTL of the functions
}

// eventBodies returns the message bodies of one events/ file.
func eventBodies(t *testing.T, name string) []string {
	t.Helper()
	root, _ := samtemplate.FindRoot()
	raw, err := os.ReadFile(filepath.Join(root, "events", name))
	if err != nil {
		t.Fatal(err)
	}
	var ev events.SQSEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range ev.Records {
		out = append(out, r.Body)
	}
	return out
}

// run sends bodies to a queue, waits until the stack is idle and returns
// the results by finding id.
func (h *harness) run(t *testing.T, queue string, bodies ...string) map[string]finding.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for _, b := range bodies {
		if err := h.stack.Send(ctx, queue, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.stack.WaitIdle(ctx); err != nil {
		t.Fatalf("%v\nfunction output:\n%s", err, h.logs.String())
	}
	rs := h.results(ctx, t)
	out := map[string]finding.Result{}
	for _, r := range rs {
		key := r.FindingID
		if _, dup := out[key]; dup {
			t.Errorf("two results for finding %s of scan %s", r.FindingID, r.ScanID)
		}
		out[key] = r
	}
	return out
}

// results drains the results queue and validates every result against
// docs/schemas/result-v1.schema.json, the contract the consumer reads.
func (h *harness) results(ctx context.Context, t *testing.T) []finding.Result {
	t.Helper()
	schema, err := msgschema.Result()
	if err != nil {
		t.Fatal(err)
	}
	bodies, err := h.stack.Drain(ctx, "ResultsQueue")
	if err != nil {
		t.Fatal(err)
	}
	out := make([]finding.Result, 0, len(bodies))
	for _, b := range bodies {
		var r finding.Result
		if err := json.Unmarshal([]byte(b), &r); err != nil {
			t.Fatalf("a result is not JSON: %v", err)
		}
		if err := schema.Check([]byte(b)); err != nil {
			t.Errorf("the result of finding %s breaks the result schema: %v", r.FindingID, err)
		}
		out = append(out, r)
	}
	h.validated += len(out)
	return out
}

func TestEndToEnd(t *testing.T) {
	h := newHarness(t, "e2e-", nil)

	t.Run("whole scan, flag on: every token type and an unknown rule", func(t *testing.T) {
		h.setFlag(t, featureflag.Change{Enable: true})
		got := h.run(t, "IngressQueue", eventBodies(t, "ingress-scan.json")...)
		want := map[string]finding.Reason{
			"aws-active-with-secret": finding.ReasonPartnerConfirmed, "aws-active-key-id-only": finding.ReasonPartnerConfirmed,
			"aws-inactive": finding.ReasonPartnerRejected, "gcp-api-key-active": finding.ReasonPartnerConfirmed,
			"gcp-api-key-inactive": finding.ReasonPartnerRejected, "gcp-sa-active": finding.ReasonPartnerConfirmed,
			"gcp-sa-inactive": finding.ReasonPartnerRejected, "gcp-client-secret-active": finding.ReasonPartnerConfirmed,
			"gcp-client-secret-inactive": finding.ReasonPartnerRejected, "gcp-access-token-active": finding.ReasonPartnerConfirmed,
			"gcp-access-token-inactive": finding.ReasonPartnerRejected, "postman-active": finding.ReasonPartnerConfirmed,
			"postman-inactive": finding.ReasonPartnerRejected, "aws-session-key": finding.ReasonUnsupportedTokenType,
			"gcp-client-secret-no-client-id": finding.ReasonMissingContext, "postman-malformed": finding.ReasonMalformedToken,
			"slack-unsupported": finding.ReasonUnsupportedTokenType,
			"heroku-active":     finding.ReasonPartnerConfirmed, "heroku-inactive": finding.ReasonPartnerRejected,
			"heroku-malformed": finding.ReasonMalformedToken,
			"openai-active":    finding.ReasonPartnerConfirmed, "openai-inactive": finding.ReasonPartnerRejected,
			"openai-malformed": finding.ReasonMalformedToken,

			"stripe-scan-active": finding.ReasonPartnerConfirmed, "stripe-scan-inactive": finding.ReasonPartnerRejected,
			"stripe-scan-malformed": finding.ReasonMalformedToken,
			"github-active":         finding.ReasonPartnerConfirmed, "github-inactive": finding.ReasonPartnerRejected,
			"github-malformed": finding.ReasonMalformedToken,
			"sendgrid-active":  finding.ReasonPartnerConfirmed, "sendgrid-inactive": finding.ReasonPartnerRejected,
			"sendgrid-malformed": finding.ReasonMalformedToken,
			"npm-active":         finding.ReasonPartnerConfirmed, "npm-inactive": finding.ReasonPartnerRejected,
			"npm-malformed": finding.ReasonMalformedToken,
			"slack-active":  finding.ReasonPartnerConfirmed, "slack-inactive": finding.ReasonPartnerRejected,
			"slack-malformed": finding.ReasonMalformedToken,
			"gitlab-active":   finding.ReasonPartnerConfirmed, "gitlab-inactive": finding.ReasonPartnerRejected,
			"gitlab-malformed": finding.ReasonMalformedToken,
		}
		for id, reason := range map[string]finding.Reason{
			"anthropic-api-key-active": finding.ReasonPartnerConfirmed, "anthropic-api-key-inactive": finding.ReasonPartnerRejected,
			"anthropic-admin-key-active": finding.ReasonPartnerConfirmed, "anthropic-admin-key-inactive": finding.ReasonPartnerRejected,
			"anthropic-malformed": finding.ReasonMalformedToken,
		} {
			want[id] = reason
		}
		want["aws-canary"] = finding.ReasonCanaryToken
		want["aws-session-key-current-format"] = finding.ReasonUnsupportedTokenType
		for id, reason := range want {
			r, ok := got[id]
			if !ok {
				t.Errorf("%s: no result", id)
				continue
			}
			if r.Reason != reason || r.Status != finding.StatusOf(reason) || r.ScanID != "sample-scan-gitlab-org" || r.Fingerprint == "" {
				t.Errorf("%s: %s/%s, want %s", id, r.Status, r.Reason, reason)
			}
		}
		if len(got) != len(want) {
			t.Errorf("%d results, want %d", len(got), len(want))
		}
		if got["aws-active-with-secret"].Details["aws_account_id"] != sandbox.SampleAWSAccount {
			t.Errorf("AWS details = %v", got["aws-active-with-secret"].Details)
		}
		if d := got["aws-canary"].Details; d["canary"] != true || d["aws_account_id"] != sandbox.SampleAWSCanaryAccount {
			t.Errorf("AWS canary details = %v", d)
		}
		if d := got["aws-session-key-current-format"].Details; d["aws_account_id"] != sandbox.SampleAWSAccount {
			t.Errorf("AWS ASIA details = %v", d)
		}
		if d := got["aws-session-key"].Details; d != nil {
			t.Errorf("a legacy ASIA key id has details %v", d)
		}
	})

	t.Run("canary key: unknown/canary_token, no STS request", func(t *testing.T) {
		h.setFlag(t, featureflag.Change{Enable: true})
		before := h.sandbox.Requests()
		got := h.run(t, "AwsQueue", eventBodies(t, "aws-access-key.json")...)
		after := h.sandbox.Requests()
		r := got["aws-canary"]
		if r.Status != finding.StatusUnknown || r.Reason != finding.ReasonCanaryToken || r.Details["canary"] != true {
			t.Errorf("aws-canary through the AWS queue: %s/%s %v", r.Status, r.Reason, r.Details)
		}
		if r := got["aws-asia-session-key"]; r.Reason != finding.ReasonUnsupportedTokenType || r.Details["aws_account_id"] != sandbox.SampleAWSAccount {
			t.Errorf("aws-asia-session-key: %s %v", r.Reason, r.Details)
		}
		// The live and inactive samples are sent (three requests at most, fewer
		// when verdicts are cached); the canary and the ASIA key never are.
		if n := after["aws"] - before["aws"]; n > 3 {
			t.Errorf("STS got %d requests for the samples, want at most 3", n)
		}
		before = h.sandbox.Requests()
		got = h.run(t, "IngressQueue", canaryOnly(t))
		if r := got["aws-canary"]; r.Reason != finding.ReasonCanaryToken {
			t.Errorf("aws-canary through the ingress queue: %s", r.Reason)
		}
		assertNoNewRequests(t, before, h.sandbox.Requests())
	})

	t.Run("flag off: feature_disabled, no partner call", func(t *testing.T) {
		h.setFlag(t, featureflag.Change{Enable: false})
		before := h.sandbox.Requests()
		got := h.run(t, "IngressQueue", eventBodies(t, "ingress-scan.json")...)
		for id, r := range got {
			if rt, _, _ := registry.Check(finding.Finding{RuleID: r.RuleID}); rt.Partner != "" && r.Reason != finding.ReasonFeatureDisabled &&
				r.Reason != finding.ReasonMalformedToken && r.Reason != finding.ReasonMissingContext && r.Reason != finding.ReasonUnsupportedTokenType &&
				r.Reason != finding.ReasonCanaryToken {
				t.Errorf("%s: %s with the flag off", id, r.Reason)
			}
		}
		findings := 0
		for _, b := range eventBodies(t, "ingress-scan.json") {
			if batch, err := finding.Parse([]byte(b)); err == nil {
				findings += len(batch.Findings)
			}
		}
		if len(got) != findings {
			t.Errorf("%d results, want %d, one per finding of the scan", len(got), findings)
		}
		assertNoNewRequests(t, before, h.sandbox.Requests())
	})

	t.Run("group gate: gitlab-org verified, other group disabled", func(t *testing.T) {
		h.setFlag(t, featureflag.Change{Enable: true, Groups: []string{"gitlab-org"}})
		got := h.run(t, "IngressQueue", eventBodies(t, "ingress-flag-off-project.json")...)
		for id, r := range got {
			if r.Reason != finding.ReasonFeatureDisabled {
				t.Errorf("example-group/app %s: %s, want feature_disabled", id, r.Reason)
			}
		}
		got = h.run(t, "IngressQueue", eventBodies(t, "postman-api-key.json")...)
		if got["postman-active"].Reason != finding.ReasonPartnerConfirmed {
			t.Errorf("gitlab-org/gitlab postman-active: %s", got["postman-active"].Reason)
		}
	})

	t.Run("a body that is not JSON goes to the ingress DLQ", func(t *testing.T) {
		got := h.run(t, "IngressQueue", eventBodies(t, "ingress-unparseable.json")...)
		if len(got) != 0 {
			t.Errorf("results for an unparseable body: %v", got)
		}
		dlq, err := h.stack.Drain(context.Background(), "IngressDeadLetterQueue")
		if err != nil || len(dlq) != 1 || dlq[0] != eventBodies(t, "ingress-unparseable.json")[0] {
			t.Fatalf("ingress DLQ = %q, %v; want the original body", dlq, err)
		}
	})

	t.Run("findings without a usable id: the others verified, the message in the ingress DLQ", func(t *testing.T) {
		var doc map[string]any
		if err := json.Unmarshal([]byte(eventBodies(t, "postman-api-key.json")[0]), &doc); err != nil {
			t.Fatal(err)
		}
		fs := doc["findings"].([]any)
		want := map[string]bool{}
		for _, f := range fs {
			want[f.(map[string]any)["id"].(string)] = true
		}
		first := fs[0].(map[string]any)
		long := map[string]any{"id": strings.Repeat("i", 200), "rule_id": first["rule_id"], "token": first["token"]}
		dup := map[string]any{"id": first["id"], "rule_id": first["rule_id"], "token": first["token"]}
		doc["findings"] = append([]any{long}, append(fs, dup)...)
		body, _ := json.Marshal(doc)
		got := h.run(t, "IngressQueue", string(body))
		if len(got) != len(want) {
			t.Errorf("%d results, want one per accepted finding (%d)", len(got), len(want))
		}
		for id := range want {
			if r, ok := got[id]; !ok || r.Status == finding.StatusUnknown {
				t.Errorf("%s: %+v, want a verdict although other findings of its message were rejected", id, r)
			}
		}
		dlq, err := h.stack.Drain(context.Background(), "IngressDeadLetterQueue")
		if err != nil || len(dlq) != 1 || dlq[0] != string(body) {
			t.Fatalf("ingress DLQ holds %d messages (%v); want the original body once", len(dlq), err)
		}
		if !strings.Contains(h.logs.String(), `"rejected_findings":"0,`) {
			t.Error("no log line names the rejected findings")
		}
	})

	t.Run("partner failing transiently, then recovering", func(t *testing.T) {
		h.sandbox.Postman.Controls.Push(partnertest.Fault503, partnertest.FaultReset, partnertest.FaultReset)
		// recheck: the active verdict of this key is cached from earlier subtests.
		got := h.run(t, "PostmanQueue", withRecheck(t, eventBodies(t, "postman-api-key.json")[0]))
		if got["postman-active"].Reason != finding.ReasonPartnerConfirmed {
			t.Fatalf("after recovery: %+v", got["postman-active"])
		}
		if !strings.Contains(h.logs.String(), `"msg":"finding retry"`) {
			t.Error("no retry was logged")
		}
	})

	t.Run("partner failing past the maximum: terminal unknown", func(t *testing.T) {
		h.sandbox.Postman.Controls.SetErrorRate(1, partnertest.Fault500)
		defer h.sandbox.Postman.Controls.SetErrorRate(0, partnertest.FaultNone)
		got := h.run(t, "PostmanQueue", eventBodies(t, "postman-api-key.json")[1])
		r := got["postman-inactive"]
		if r.Status != finding.StatusUnknown || r.Reason != finding.ReasonPartnerError {
			t.Fatalf("after the maximum: %+v, want unknown/partner_error (never inactive)", r)
		}
	})

	t.Run("duplicate delivery of one message", func(t *testing.T) {
		before := h.sandbox.Requests()["postman"]
		raw, _ := os.ReadFile(filepath.Join("..", "..", "..", "events", "postman-api-key.json"))
		var ev events.SQSEvent
		_ = json.Unmarshal(raw, &ev)
		ev.Records = ev.Records[:1]
		ev.Records[0].MessageId = fmt.Sprintf("dup-%d", time.Now().UnixNano())
		q, _ := h.stack.Queue("PostmanQueue")
		ev.Records[0].EventSourceARN = q.ARN
		payload, _ := json.Marshal(ev)
		for range 2 {
			if _, err := h.stack.Functions["PostmanFunction"].Invoke(context.Background(), payload); err != nil {
				t.Fatal(err)
			}
		}
		rs := h.results(context.Background(), t)
		if len(rs) != 1 || h.sandbox.Requests()["postman"]-before > 1 {
			t.Fatalf("%d results and %d partner calls for one message delivered twice; want 1 and at most 1", len(rs), h.sandbox.Requests()["postman"]-before)
		}
	})

	t.Run("rollback bound: no partner call once the flag cache TTL has passed", func(t *testing.T) {
		h.setFlag(t, featureflag.Change{Enable: true})
		h.run(t, "PostmanQueue", eventBodies(t, "postman-api-key.json")...)
		h.setFlag(t, featureflag.Change{Enable: false}) // waits out FEATURE_FLAG_CACHE_TTL
		before := h.sandbox.Requests()
		got := h.run(t, "PostmanQueue", eventBodies(t, "postman-api-key.json")...)
		for id, r := range got {
			if r.Reason != finding.ReasonFeatureDisabled {
				t.Errorf("%s: %s after rollback, want feature_disabled", id, r.Reason)
			}
		}
		assertNoNewRequests(t, before, h.sandbox.Requests())
	})

	t.Run("no secret in any function output", func(t *testing.T) {
		out := h.logs.String()
		for _, s := range []string{sandbox.SampleAWSSecret, sandbox.SampleAWSKeyID, sandbox.SampleGCPAPIKey, sandbox.SampleGCPClientSecret,
			sandbox.SampleGCPAccessToken, sandbox.SamplePostmanKey, sandbox.SamplePostmanInactiveKey, "PRIVATE KEY"} {
			if strings.Contains(out, s) {
				t.Errorf("function output contains a credential (%s)", finding.Redact(s))
			}
		}
		if !strings.Contains(out, `"msg":"finding outcome"`) {
			t.Error("no outcome log line captured")
		}
		if h.validated < 40 {
			t.Errorf("%d results were checked against the result schema, want every result of the run", h.validated)
		}
	})
}

// canaryOnly is the canary sample of events/aws-access-key.json as one
// ingress message.
func canaryOnly(t *testing.T) string {
	t.Helper()
	for _, body := range eventBodies(t, "aws-access-key.json") {
		if strings.Contains(body, `"aws-canary"`) {
			return body
		}
	}
	t.Fatal("events/aws-access-key.json has no aws-canary sample")
	return ""
}

func assertNoNewRequests(t *testing.T, before, after map[string]int64) {
	t.Helper()
	for p, n := range after {
		if n != before[p] {
			t.Errorf("%s double got %d new requests, want none", p, n-before[p])
		}
	}
}
