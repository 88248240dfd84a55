package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/registry"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/sqsbatch"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

// sink records what would have been sent to a queue.
type sink struct {
	mu     sync.Mutex
	bodies [][]byte
	err    error
}

func (s *sink) Send(_ context.Context, bodies [][]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	s.bodies = append(s.bodies, bodies...)
	return nil
}

func (s *sink) results(t *testing.T) []finding.Result {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []finding.Result
	for _, b := range s.bodies {
		var r finding.Result
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatalf("result is not JSON: %v", err)
		}
		out = append(out, r)
	}
	return out
}

func (s *sink) batches(t *testing.T) []finding.Batch {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []finding.Batch
	for _, b := range s.bodies {
		fb, err := finding.Parse(b)
		if err != nil {
			t.Fatalf("forwarded body does not parse: %v", err)
		}
		out = append(out, fb)
	}
	return out
}

type deadLetters struct {
	mu      sync.Mutex
	reasons []string
	err     error
}

func (d *deadLetters) DeadLetter(_ context.Context, _ events.SQSMessage, reason error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reasons = append(d.reasons, reason.Error())
	return d.err
}

type delays struct {
	mu sync.Mutex
	d  []time.Duration
}

func (q *delays) Delay(_ context.Context, _ events.SQSMessage, d time.Duration) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.d = append(q.d, d)
	return nil
}

// scriptedVerifier answers from a table keyed by finding id.
type scriptedVerifier struct {
	mu    sync.Mutex
	calls int
	by    map[string]func() (verify.Verdict, error)
}

func (v *scriptedVerifier) Verify(_ context.Context, _ finding.TokenType, f finding.Finding) (verify.Verdict, error) {
	v.mu.Lock()
	v.calls++
	fn := v.by[f.ID]
	v.mu.Unlock()
	if fn == nil {
		return verify.Verdict{Reason: finding.ReasonPartnerConfirmed}, nil
	}
	return fn()
}

var fixed = time.Date(2026, 11, 25, 18, 35, 16, 0, time.UTC)

func gateAll(on bool) Gate {
	return func(context.Context, finding.Project, finding.Partner) (bool, error) { return on, nil }
}

func record(t *testing.T, id string, receive int, b any) events.SQSMessage {
	t.Helper()
	var body string
	switch v := b.(type) {
	case string:
		body = v
	default:
		raw, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		body = string(raw)
	}
	// Each handler skips the ids it already completed; naming them by test
	// keeps the logs readable.
	id = t.Name() + "/" + id
	return events.SQSMessage{MessageId: id, Body: body, EventSourceARN: "arn:aws:sqs:us-east-1:123456789012:q",
		Attributes: map[string]string{"ApproximateReceiveCount": fmt.Sprint(receive)}}
}

// tokens are generated per run, in the formats finding.Check accepts.
type tokens struct {
	akia, secret, apiKey, clientSecret, accessToken, pmak, asia string
}

func newTokens() tokens {
	const up = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	pick := func(alpha string, k int) string {
		var b strings.Builder
		for range k {
			b.WriteByte(alpha[rand.IntN(len(alpha))])
		}
		return b.String()
	}
	const b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	const hex = "0123456789abcdef"
	return tokens{
		akia:         "AKIA" + pick(up, 16),
		secret:       pick(b64, 40),
		apiKey:       "AIza" + pick(b64, 35),
		clientSecret: "GOCSPX-" + pick(b64, 28),
		accessToken:  "ya29." + pick(b64, 60),
		pmak:         "PMAK-" + pick(hex, 24) + "-" + pick(hex, 34),
		asia:         "ASIA" + pick(up, 16),
	}
}

func (tk tokens) all() []string {
	return []string{tk.akia, tk.secret, tk.apiKey, tk.clientSecret, tk.accessToken, tk.pmak, tk.asia}
}

func scan(tk tokens) map[string]any {
	return map[string]any{
		"version": 1, "scan_id": "pipeline-1", "project": map[string]any{"id": 278964, "full_path": "gitlab-org/gitlab"},
		"findings": []map[string]any{
			{"id": "f-aws", "rule_id": "AWS", "token": tk.akia, "context": map[string]string{"aws_secret_access_key": tk.secret}},
			{"id": "f-api", "rule_id": "GCP API key", "token": tk.apiKey},
			{"id": "f-oauth", "rule_id": "GCP OAuth client secret", "token": tk.clientSecret, "context": map[string]string{"gcp_client_id": "1234-abc.apps.googleusercontent.com"}},
			{"id": "f-nocontext", "rule_id": "GCP OAuth client secret", "token": tk.clientSecret},
			{"id": "f-ya29", "rule_id": "GCP OAuth access token", "token": tk.accessToken},
			{"id": "f-pmak", "rule_id": "Postman API token", "token": tk.pmak, "recheck": true},
			{"id": "f-asia", "rule_id": "AWS", "token": tk.asia},
			{"id": "f-bad", "rule_id": "Postman API token", "token": "PMAK-nothex"},
			{"id": "f-unknown", "rule_id": "generic-api-key", "token": "xoxb-123"},
		},
	}
}

func newDispatcher(t *testing.T, gate Gate, logs *bytes.Buffer) (*Dispatcher, *sink, map[finding.Partner]*sink, *deadLetters) {
	t.Helper()
	results := &sink{}
	queues := map[finding.Partner]*sink{}
	sinks := map[finding.Partner]Sink{}
	for _, p := range registry.Names() {
		queues[p] = &sink{}
		sinks[p] = queues[p]
	}
	dl := &deadLetters{}
	d, err := NewDispatcher(DispatcherConfig{
		Common: Common{Results: results, Gate: gate, DeadLetter: dl, Now: func() time.Time { return fixed },
			Logger: slog.New(slog.NewJSONHandler(logs, nil))},
		PartnerQueues: sinks,
	})
	if err != nil {
		t.Fatal(err)
	}
	return d, results, queues, dl
}

func byID(rs []finding.Result) map[string]finding.Result {
	m := map[string]finding.Result{}
	for _, r := range rs {
		m[r.FindingID] = r
	}
	return m
}

func TestDispatcherRoutesEveryTokenType(t *testing.T) {
	tk := newTokens()
	var logs bytes.Buffer
	d, results, queues, _ := newDispatcher(t, gateAll(true), &logs)
	resp, _ := d.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{record(t, "m1", 1, scan(tk))}})
	if len(resp.BatchItemFailures) != 0 {
		t.Fatalf("failures: %+v", resp.BatchItemFailures)
	}
	wantForward := map[finding.Partner][]string{
		finding.PartnerAWS: {"f-aws"}, finding.PartnerGCP: {"f-api", "f-oauth", "f-ya29"}, finding.PartnerPostman: {"f-pmak"},
	}
	for p, ids := range wantForward {
		got := queues[p].batches(t)
		if len(got) != len(ids) {
			t.Fatalf("%s queue got %d messages, want %d", p, len(got), len(ids))
		}
		for i, b := range got {
			if len(b.Findings) != 1 || b.Findings[0].ID != ids[i] || b.ScanID != "pipeline-1" || b.Project.ID != 278964 {
				t.Errorf("%s message %d = %+v, want one finding %s", p, i, b, ids[i])
			}
		}
	}
	if pm := queues[finding.PartnerPostman].batches(t)[0].Findings[0]; !pm.Recheck || pm.Token.Reveal() != tk.pmak {
		t.Errorf("forwarded finding lost its token or recheck flag")
	}
	if aw := queues[finding.PartnerAWS].batches(t)[0].Findings[0]; aw.ContextValue(finding.ContextAWSSecretAccessKey) != tk.secret {
		t.Errorf("forwarded AWS finding lost its context")
	}
	want := map[string]finding.Reason{
		"f-nocontext": finding.ReasonMissingContext, "f-asia": finding.ReasonUnsupportedTokenType,
		"f-bad": finding.ReasonMalformedToken, "f-unknown": finding.ReasonUnsupportedTokenType,
	}
	got := byID(results.results(t))
	if len(got) != len(want) {
		t.Fatalf("results = %d, want %d: %+v", len(got), len(want), got)
	}
	for id, reason := range want {
		r := got[id]
		if r.Reason != reason || r.Status != finding.StatusUnknown || r.Message == "" || r.CheckedAt != fixed {
			t.Errorf("%s: %+v, want unknown/%s with a message", id, r, reason)
		}
	}
	if r := got["f-asia"]; r.Partner != finding.PartnerAWS || r.TokenType != finding.TokenAWSAccessKey || r.Fingerprint != finding.Fingerprint(tk.asia) {
		t.Errorf("f-asia result lacks route or fingerprint: %+v", r)
	}
	assertNoSecrets(t, tk, logs.String(), results)
}

func TestDispatcherFlagGates(t *testing.T) {
	tk := newTokens()
	tests := []struct {
		name        string
		gate        Gate
		wantForward int
		wantOff     int
	}{
		{"flag off", gateAll(false), 0, 5},
		{"flag on", gateAll(true), 5, 0},
		{"postman switched off", func(_ context.Context, _ finding.Project, p finding.Partner) (bool, error) {
			return p != finding.PartnerPostman, nil
		}, 4, 1},
		{"group gate", func(_ context.Context, pr finding.Project, _ finding.Partner) (bool, error) {
			return strings.HasPrefix(pr.FullPath, "gitlab-org/"), nil
		}, 5, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			d, results, queues, _ := newDispatcher(t, tt.gate, &logs)
			resp, _ := d.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{record(t, "m-"+tt.name, 1, scan(tk))}})
			if len(resp.BatchItemFailures) != 0 {
				t.Fatalf("failures: %+v", resp.BatchItemFailures)
			}
			forwarded := 0
			for _, q := range queues {
				forwarded += len(q.batches(t))
			}
			off := 0
			for _, r := range results.results(t) {
				if r.Reason == finding.ReasonFeatureDisabled {
					off++
				}
			}
			if forwarded != tt.wantForward || off != tt.wantOff {
				t.Errorf("forwarded %d, feature_disabled %d; want %d, %d", forwarded, off, tt.wantForward, tt.wantOff)
			}
			if len(results.results(t))+forwarded != 9 {
				t.Errorf("findings without an outcome: %d results + %d forwards != 9", len(results.results(t)), forwarded)
			}
		})
	}
}

func TestDispatcherFailuresLoseNothing(t *testing.T) {
	tk := newTokens()
	t.Run("body not JSON goes to the DLQ", func(t *testing.T) {
		var logs bytes.Buffer
		d, results, _, dl := newDispatcher(t, gateAll(true), &logs)
		resp, _ := d.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{record(t, "m1", 1, "not json "+tk.pmak)}})
		if len(resp.BatchItemFailures) != 0 || len(dl.reasons) != 1 || len(results.results(t)) != 0 {
			t.Fatalf("failures %v, dead letters %v", resp.BatchItemFailures, dl.reasons)
		}
		if strings.Contains(dl.reasons[0], tk.pmak) || strings.Contains(logs.String(), tk.pmak) {
			t.Fatal("dead-letter reason or log quotes the body")
		}
	})
	t.Run("DLQ send fails: batch item failure", func(t *testing.T) {
		var logs bytes.Buffer
		d, _, _, dl := newDispatcher(t, gateAll(true), &logs)
		dl.err = errors.New("queue unavailable")
		resp, _ := d.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{record(t, "m1", 1, "{")}})
		if len(resp.BatchItemFailures) != 1 || !strings.HasSuffix(resp.BatchItemFailures[0].ItemIdentifier, "/m1") {
			t.Fatalf("failures = %v, want m1", resp.BatchItemFailures)
		}
	})
	t.Run("flag unreadable: retried, nothing sent", func(t *testing.T) {
		var logs bytes.Buffer
		d, results, queues, _ := newDispatcher(t, func(context.Context, finding.Project, finding.Partner) (bool, error) {
			return false, errors.New("ssm unavailable, never read")
		}, &logs)
		resp, _ := d.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{record(t, "m1", 1, scan(tk))}})
		if len(resp.BatchItemFailures) != 1 {
			t.Fatalf("failures = %v, want the record", resp.BatchItemFailures)
		}
		for _, q := range queues {
			if len(q.bodies) != 0 {
				t.Fatal("forwarded although the flag could not be read")
			}
		}
		for _, r := range results.results(t) {
			if r.Reason == finding.ReasonFeatureDisabled {
				t.Fatal("flag read error decided as feature_disabled")
			}
		}
	})
	t.Run("partner queue refuses: retried", func(t *testing.T) {
		var logs bytes.Buffer
		d, results, queues, _ := newDispatcher(t, gateAll(true), &logs)
		queues[finding.PartnerGCP].err = errors.New("throttled")
		resp, _ := d.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{record(t, "m1", 1, scan(tk))}})
		if len(resp.BatchItemFailures) != 1 || len(results.results(t)) != 0 {
			t.Fatalf("failures %v, results %d: want the record retried and no result yet", resp.BatchItemFailures, len(results.results(t)))
		}
	})
}

func newWorker(t *testing.T, v verify.Verifier, gate Gate, logs *bytes.Buffer) (*Worker, *sink, *delays) {
	t.Helper()
	results, q := &sink{}, &delays{}
	w, err := NewWorker(WorkerConfig{
		Common:  Common{Results: results, Gate: gate, Now: func() time.Time { return fixed }, Logger: slog.New(slog.NewJSONHandler(logs, nil))},
		Partner: finding.PartnerPostman, Verifier: v, Requeue: q, MaxAttempts: 3,
		Backoff: func(n int, ra time.Duration) time.Duration { return max(time.Duration(n)*time.Second, ra) },
	})
	if err != nil {
		t.Fatal(err)
	}
	return w, results, q
}

func postmanScan(tk tokens, ids ...string) map[string]any {
	var fs []map[string]any
	for _, id := range ids {
		fs = append(fs, map[string]any{"id": id, "rule_id": "Postman API token", "token": tk.pmak})
	}
	return map[string]any{"version": 1, "scan_id": "s", "project": map[string]any{"id": 7, "full_path": "a/b"}, "findings": fs}
}

func TestWorkerOutcomes(t *testing.T) {
	tk := newTokens()
	rateLimited := func() (verify.Verdict, error) {
		return verify.Verdict{}, &verify.Fault{Kind: verify.RateLimited, Partner: "postman", Op: "GET /me", HTTPStatus: 429, RetryAfter: 30 * time.Second}
	}
	serverError := func() (verify.Verdict, error) {
		return verify.Verdict{}, &verify.Fault{Kind: verify.PartnerError, Partner: "postman", Op: "GET /me", HTTPStatus: 503}
	}
	tests := []struct {
		name       string
		verdict    func() (verify.Verdict, error)
		receive    int
		wantFail   bool
		wantReason finding.Reason
		wantDelay  time.Duration
	}{
		{"active", func() (verify.Verdict, error) {
			return verify.Verdict{Reason: finding.ReasonPartnerConfirmed, Details: finding.Details{"postman_user_id": "1"}}, nil
		}, 1, false, finding.ReasonPartnerConfirmed, 0},
		{"inactive", func() (verify.Verdict, error) { return verify.Verdict{Reason: finding.ReasonPartnerRejected}, nil }, 1, false, finding.ReasonPartnerRejected, 0},
		{"cached", func() (verify.Verdict, error) {
			return verify.Verdict{Reason: finding.ReasonPartnerConfirmed, Cached: true}, nil
		}, 1, false, finding.ReasonPartnerConfirmed, 0},
		{"5xx retried with backoff", serverError, 2, true, "", 2 * time.Second},
		{"429 retried after Retry-After", rateLimited, 1, true, "", 30 * time.Second},
		{"5xx at max attempts ends in partner_error", serverError, 3, false, finding.ReasonPartnerError, 0},
		{"429 at max attempts ends in rate_limited", rateLimited, 4, false, finding.ReasonRateLimited, 0},
		{"unclassified error is never an answer", func() (verify.Verdict, error) { return verify.Verdict{}, errors.New("boom") }, 3, false, finding.ReasonPartnerError, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			v := &scriptedVerifier{by: map[string]func() (verify.Verdict, error){"f1": tt.verdict}}
			w, results, q := newWorker(t, v, gateAll(true), &logs)
			resp, _ := w.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{record(t, "m-"+tt.name, tt.receive, postmanScan(tk, "f1"))}})
			if got := len(resp.BatchItemFailures) == 1; got != tt.wantFail {
				t.Fatalf("failed = %v, want %v", got, tt.wantFail)
			}
			rs := results.results(t)
			if tt.wantFail {
				if len(rs) != 0 {
					t.Fatalf("a retried record wrote results: %+v", rs)
				}
				if len(q.d) != 1 || q.d[0] != tt.wantDelay {
					t.Fatalf("delays = %v, want [%v]", q.d, tt.wantDelay)
				}
				return
			}
			if len(rs) != 1 || rs[0].Reason != tt.wantReason || rs[0].Status != finding.StatusOf(tt.wantReason) {
				t.Fatalf("results = %+v, want one %s", rs, tt.wantReason)
			}
			if tt.name == "cached" && !rs[0].Cached {
				t.Error("cached verdict not marked cached")
			}
			if rs[0].Status == finding.StatusInactive && tt.wantReason != finding.ReasonPartnerRejected {
				t.Fatal("a fault produced inactive")
			}
			assertNoSecrets(t, tk, logs.String(), results)
		})
	}
}

func TestWorkerGatesAndForeignFindings(t *testing.T) {
	tk := newTokens()
	t.Run("flag off: no partner call", func(t *testing.T) {
		var logs bytes.Buffer
		v := &scriptedVerifier{}
		w, results, _ := newWorker(t, v, gateAll(false), &logs)
		resp, _ := w.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{record(t, "m", 1, postmanScan(tk, "f1", "f2"))}})
		rs := results.results(t)
		if len(resp.BatchItemFailures) != 0 || v.calls != 0 || len(rs) != 2 || rs[0].Reason != finding.ReasonFeatureDisabled {
			t.Fatalf("failures %v, calls %d, results %+v", resp.BatchItemFailures, v.calls, rs)
		}
	})
	t.Run("another partner's finding", func(t *testing.T) {
		var logs bytes.Buffer
		v := &scriptedVerifier{}
		w, results, _ := newWorker(t, v, gateAll(true), &logs)
		body := map[string]any{"version": 1, "scan_id": "s", "project": map[string]any{"id": 7, "full_path": "a/b"},
			"findings": []map[string]any{{"id": "f1", "rule_id": "GCP API key", "token": tk.apiKey}}}
		_, _ = w.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{record(t, "m", 1, body)}})
		rs := results.results(t)
		if v.calls != 0 || len(rs) != 1 || rs[0].Reason != finding.ReasonUnsupportedTokenType {
			t.Fatalf("calls %d, results %+v", v.calls, rs)
		}
	})
	t.Run("one fault holds back the whole record", func(t *testing.T) {
		var logs bytes.Buffer
		v := &scriptedVerifier{by: map[string]func() (verify.Verdict, error){"f2": func() (verify.Verdict, error) {
			return verify.Verdict{}, &verify.Fault{Kind: verify.PartnerError, Partner: "postman", Network: true}
		}}}
		w, results, _ := newWorker(t, v, gateAll(true), &logs)
		resp, _ := w.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{record(t, "m", 1, postmanScan(tk, "f1", "f2"))}})
		if len(resp.BatchItemFailures) != 1 || len(results.results(t)) != 0 {
			t.Fatalf("failures %v results %d", resp.BatchItemFailures, len(results.results(t)))
		}
	})
	t.Run("results queue refuses: retried", func(t *testing.T) {
		var logs bytes.Buffer
		w, results, _ := newWorker(t, &scriptedVerifier{}, gateAll(true), &logs)
		results.err = errors.New("send failed")
		resp, _ := w.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{record(t, "m", 1, postmanScan(tk, "f1"))}})
		if len(resp.BatchItemFailures) != 1 {
			t.Fatalf("failures = %v", resp.BatchItemFailures)
		}
	})
}

func TestWorkerDefaultsMatchContract(t *testing.T) {
	w, err := NewWorker(WorkerConfig{Common: Common{Results: &sink{}, Gate: gateAll(true)}, Partner: finding.PartnerAWS, Verifier: &scriptedVerifier{}})
	if err != nil {
		t.Fatal(err)
	}
	if w.cfg.MaxAttempts != sqsbatch.DefaultMaxAttempts || sqsbatch.DefaultMaxAttempts != 5 {
		t.Errorf("MaxAttempts default = %d, want 5 (contract §6)", w.cfg.MaxAttempts)
	}
}

func assertNoSecrets(t *testing.T, tk tokens, logs string, results *sink) {
	t.Helper()
	var all strings.Builder
	all.WriteString(logs)
	for _, b := range results.bodies {
		all.Write(b)
	}
	for _, s := range tk.all() {
		if strings.Contains(all.String(), s) {
			t.Fatalf("a token or secret reached the logs or results")
		}
	}
}

func TestDuplicateDeliveryWritesOneResult(t *testing.T) {
	tk := newTokens()
	var logs bytes.Buffer
	v := &scriptedVerifier{}
	w, results, _ := newWorker(t, v, gateAll(true), &logs)
	rec := record(t, "m", 1, postmanScan(tk, "f1"))
	for range 2 {
		if resp, _ := w.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{rec}}); len(resp.BatchItemFailures) != 0 {
			t.Fatalf("failures = %v", resp.BatchItemFailures)
		}
	}
	if n := len(results.results(t)); n != 1 || v.calls != 1 {
		t.Fatalf("results %d, partner calls %d after a duplicate delivery; want 1, 1", n, v.calls)
	}
}

func TestHandlersDoNotShareCompletedIDs(t *testing.T) {
	tk := newTokens()
	var logs bytes.Buffer
	v1, v2 := &scriptedVerifier{}, &scriptedVerifier{}
	w1, results1, _ := newWorker(t, v1, gateAll(true), &logs)
	w2, results2, _ := newWorker(t, v2, gateAll(true), &logs)
	d, dresults, queues, _ := newDispatcher(t, gateAll(true), &logs)
	rec := record(t, "same-id", 1, postmanScan(tk, "f1"))
	ev := events.SQSEvent{Records: []events.SQSMessage{rec}}
	for _, h := range []func(context.Context, events.SQSEvent) (events.SQSEventResponse, error){w1.Handle, d.Handle, w2.Handle, w1.Handle} {
		if resp, _ := h(context.Background(), ev); len(resp.BatchItemFailures) != 0 {
			t.Fatalf("failures = %v", resp.BatchItemFailures)
		}
	}
	if n := len(results1.results(t)); n != 1 || v1.calls != 1 {
		t.Errorf("first worker: results %d, partner calls %d; want 1, 1 (its own redelivery skipped)", n, v1.calls)
	}
	if n := len(results2.results(t)); n != 1 || v2.calls != 1 {
		t.Errorf("second worker: results %d, partner calls %d; want 1, 1 (not skipped for the first worker's success)", n, v2.calls)
	}
	if n := len(queues[finding.PartnerPostman].batches(t)); n != 1 || len(dresults.results(t)) != 0 {
		t.Errorf("dispatcher forwarded %d batches; want 1 (not skipped for a worker's success)", n)
	}
}
