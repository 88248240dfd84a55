package pipeline

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/googledouble"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/postmandouble"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	gcppartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/gcp"
	postmanpartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/postman"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/registry"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
)

// maxHandleAlloc bounds what one invocation on one hostile message may
// allocate: a message is at most 256 KiB, so anything near this means
// the input's size or shape is amplified.
const maxHandleAlloc = 64 << 20

// allocBound is the tighter bound of a message with few findings: a
// small multiple of its size (decoding copies it a few times), plus the
// fixed cost of an invocation. Thousands of findings cost more per byte
// (one result and log line each) and are held to maxHandleAlloc only.
func allocBound(bodyLen int) uint64 {
	return min(maxHandleAlloc, 16*uint64(bodyLen)+1<<20)
}

// sqsSink stands in for a queue and, like SQS, refuses a message over the
// size limit: a handler that produced one would never get it out.
type sqsSink struct {
	mu     sync.Mutex
	bodies [][]byte
}

func (s *sqsSink) Send(_ context.Context, bodies [][]byte) error {
	for _, b := range bodies {
		if len(b) > finding.MaxBodyBytes {
			return fmt.Errorf("sqs: message of %d bytes is over the %d-byte limit", len(b), finding.MaxBodyBytes)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bodies = append(s.bodies, bodies...)
	return nil
}

func (s *sqsSink) all() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.bodies...)
}

func (s *sqsSink) results(t *testing.T) []finding.Result {
	t.Helper()
	var out []finding.Result
	for _, b := range s.all() {
		var r finding.Result
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatalf("result is not JSON: %v", err)
		}
		out = append(out, r)
	}
	return out
}

// deadLetterLog keeps the errors records were dead-lettered with.
type deadLetterLog struct {
	mu   sync.Mutex
	errs []error
}

func (d *deadLetterLog) DeadLetter(_ context.Context, _ events.SQSMessage, reason error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.errs = append(d.errs, reason)
	return nil
}

// lockedBuffer collects the JSON log lines of concurrent record handlers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// hostileRig is one function under test with everything it wrote.
type hostileRig struct {
	results   *sqsSink
	queues    map[finding.Partner]*sqsSink
	dead      *deadLetterLog
	logs      *lockedBuffer
	handle    func(context.Context, events.SQSEvent) (events.SQSEventResponse, error)
	partnerRq func() int64 // requests the partner double received
}

func hostileCommon(results *sqsSink, dead *deadLetterLog, logs *lockedBuffer) Common {
	c := Common{Results: results, Gate: gateAll(true), Now: func() time.Time { return fixed },
		Logger: slog.New(slog.NewJSONHandler(logs, nil))}
	if dead != nil {
		c.DeadLetter = dead
	}
	return c
}

func newHostileDispatcher(t *testing.T) *hostileRig {
	t.Helper()
	r := &hostileRig{results: &sqsSink{}, dead: &deadLetterLog{}, logs: &lockedBuffer{}, partnerRq: func() int64 { return 0 },
		queues: map[finding.Partner]*sqsSink{}}
	for _, p := range registry.Names() {
		r.queues[p] = &sqsSink{}
	}
	qs := map[finding.Partner]Sink{}
	for _, p := range registry.Names() { // the dispatcher wants a queue for every partner
		r.queues[p] = &sqsSink{}
		qs[p] = r.queues[p]
	}
	d, err := NewDispatcher(DispatcherConfig{Common: hostileCommon(r.results, r.dead, r.logs), PartnerQueues: qs})
	if err != nil {
		t.Fatal(err)
	}
	r.handle = d.Handle
	return r
}

// newHostileWorker is the Postman function with the real verifier against
// the Postman double.
func newHostileWorker(t *testing.T, double *postmandouble.Server) *hostileRig {
	t.Helper()
	r := &hostileRig{results: &sqsSink{}, dead: &deadLetterLog{}, logs: &lockedBuffer{}, partnerRq: double.Controls.Requests}
	u, err := url.Parse(double.URL)
	if err != nil {
		t.Fatal(err)
	}
	v, err := postmanpartner.New(partnerhttp.Options{Endpoints: []*url.URL{u}, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewWorker(WorkerConfig{Common: hostileCommon(r.results, r.dead, r.logs), Partner: finding.PartnerPostman,
		Verifier: v, Requeue: &delays{}, MaxAttempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	r.handle = w.Handle
	return r
}

// run handles one event and returns its failures and what it allocated.
func (r *hostileRig) run(t *testing.T, recs ...events.SQSMessage) ([]events.SQSBatchItemFailure, uint64) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	resp, err := r.handle(context.Background(), events.SQSEvent{Records: recs})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatalf("handler error: %v", err)
	}
	return resp.BatchItemFailures, after.TotalAlloc - before.TotalAlloc
}

// secretText is everything a handler wrote that must be free of
// credentials: log lines, results and dead-letter reasons. Forwarded
// findings are excluded: they carry the token to the partner queue by
// design.
func (r *hostileRig) secretText() string {
	var b strings.Builder
	b.WriteString(r.logs.String())
	for _, body := range r.results.all() {
		b.Write(body)
	}
	r.dead.mu.Lock()
	for _, e := range r.dead.errs {
		b.WriteString(e.Error())
	}
	r.dead.mu.Unlock()
	return b.String()
}

// leakWindow sets what counts as a leak: a whole credential of up to
// leakWindow bytes, or leakWindow consecutive bytes of a longer one taken
// every leakWindow/2 bytes, so that any 30 consecutive bytes are caught.
const leakWindow = 20

// findLeak reports a credential, or a fragment of one, in text; it names
// the credential by index and length only.
func findLeak(text string, secrets []string) error {
	for i, s := range secrets {
		if len(s) <= leakWindow {
			if len(s) >= 8 && strings.Contains(text, s) {
				return fmt.Errorf("credential #%d (%d bytes) appears in logs, results or dead-letter reasons", i, len(s))
			}
			continue
		}
		for j := 0; j+leakWindow <= len(s); j += leakWindow / 2 {
			if strings.Contains(text, s[j:j+leakWindow]) {
				return fmt.Errorf("%d bytes of credential #%d (%d bytes) appear in logs, results or dead-letter reasons", leakWindow, i, len(s))
			}
		}
	}
	return nil
}

func assertNoLeak(t *testing.T, text string, secrets []string) {
	t.Helper()
	if err := findLeak(text, secrets); err != nil {
		t.Fatal(err)
	}
}

// TestFindLeak shows the leak check catches a whole credential, a 30-byte
// fragment anywhere in one, and a short one, and passes clean text.
func TestFindLeak(t *testing.T) {
	long, short := randomHex(64), randomHex(16)
	cases := []struct {
		name string
		text string
		leak bool
	}{
		{"whole credential", `{"msg":"x","token":"` + long + `"}`, true},
		{"30-byte fragment at an odd offset", "detail: " + long[7:37], true},
		{"short credential", "key=" + short, true},
		{"redacted", finding.Redact(long) + " " + finding.Fingerprint(long), false},
		{"clean", `{"msg":"finding outcome","reason":"malformed_token"}`, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := findLeak(tc.text, []string{long, short}); (err != nil) != tc.leak {
				t.Fatalf("findLeak = %v, want a leak: %v", err, tc.leak)
			}
		})
	}
}

// randomHex is n random hex characters: credentials and filler that cannot
// appear anywhere by chance, so the leak check is meaningful.
func randomHex(n int) string {
	b := make([]byte, (n+1)/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

// hostileDoc is a finding batch as a generic document that cases shape.
func hostileDoc(findings ...any) map[string]any {
	return map[string]any{"version": 1, "scan_id": "scan-hostile", "project": map[string]any{"id": 278964, "full_path": "gitlab-org/gitlab"}, "findings": findings}
}

func hostileFinding(id, rule string, token any) map[string]any {
	return map[string]any{"id": id, "rule_id": rule, "token": token}
}

func mustMarshal(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// hostileCase is one hostile message and what each handler must make of it.
type hostileCase struct {
	name string
	// body builds the message; secrets lists the credential material in it.
	body func(t *testing.T, live string) (body string, secrets []string)
	// dlqField and dlqMsg name the *finding.BodyError the record is
	// dead-lettered with; empty dlqMsg means the body is accepted.
	dlqField, dlqMsg string
	// concluded are the findings that get a terminal result without a
	// partner call, with the reason and a fragment of the message.
	concluded map[string]concluded
	// reach are the findings that must reach Postman: the dispatcher
	// forwards each, the Postman function verifies each.
	reach []string
	// rejected, when set, is the record's dead letter after its other
	// findings were done: the indexes of the rejected findings and the
	// first one's field and message.
	rejected *rejected
}

type rejected struct {
	indexes, field, msg string
}

type concluded struct {
	reason finding.Reason
	msg    string
}

func hostileCases() []hostileCase {
	pmak := func() string { return postmandouble.NewAPIKey() }
	oneFinding := func(f map[string]any, secrets ...string) func(*testing.T, string) (string, []string) {
		return func(t *testing.T, _ string) (string, []string) { return mustMarshal(t, hostileDoc(f)), secrets }
	}
	return []hostileCase{
		{name: "body over 256 KiB", body: func(t *testing.T, live string) (string, []string) {
			d := hostileDoc(hostileFinding("f-1", "Postman API token", live))
			base := mustMarshal(t, d)
			d["padding"] = randomHex(finding.MaxBodyBytes + 1 - len(base) - len(`,"padding":""`))
			body := mustMarshal(t, d)
			if len(body) != finding.MaxBodyBytes+1 {
				t.Fatalf("body is %d bytes, want %d", len(body), finding.MaxBodyBytes+1)
			}
			return body, []string{live}
		}, dlqMsg: "body is 262145 bytes, limit 262144"},
		{name: "context with 1 MB values", body: func(t *testing.T, live string) (string, []string) {
			big := randomHex(1 << 20)
			f := hostileFinding("f-1", "Postman API token", live)
			f["context"] = map[string]any{finding.ContextAWSSecretAccessKey: big, "other": randomHex(1 << 20)}
			return mustMarshal(t, hostileDoc(f)), []string{live, big}
		}, dlqMsg: "limit 262144"},
		{name: "invalid UTF-8 in a token", body: func(t *testing.T, live string) (string, []string) {
			body := mustMarshal(t, hostileDoc(hostileFinding("f-1", "Postman API token", live)))
			return strings.Replace(body, live, live+"\xff\xfe", 1), []string{live}
		}, dlqMsg: "body is not valid UTF-8"},
		{name: "100k nested arrays", body: func(t *testing.T, live string) (string, []string) {
			body := mustMarshal(t, hostileDoc(hostileFinding("f-1", "Postman API token", live)))
			return body[:len(body)-1] + `,"x":` + strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000) + "}", []string{live}
		}, dlqMsg: "JSON nested deeper than 32 levels"},
		{name: "100k unclosed objects", body: func(*testing.T, string) (string, []string) {
			return `{"version":1,"x":` + strings.Repeat(`{"a":`, 40_000), nil
		}, dlqMsg: "JSON nested deeper than 32 levels"},
		{name: "100k brackets inside a token are not nesting", body: func(t *testing.T, _ string) (string, []string) {
			tok := "PMAK-" + strings.Repeat("[", 100_000)
			return mustMarshal(t, hostileDoc(hostileFinding("f-1", "Postman API token", tok))), nil
		}, concluded: map[string]concluded{"f-1": {finding.ReasonMalformedToken, "findings[0].token: 100005 bytes, limit 16384"}}},
		{name: "10,000 findings", body: func(t *testing.T, live string) (string, []string) {
			fs := make([]any, 10_000)
			for i := range fs {
				fs[i] = hostileFinding(fmt.Sprintf("f-%05d", i), "Postman API token", live)
			}
			body := mustMarshal(t, hostileDoc(fs...))
			if len(body) <= finding.MaxBodyBytes {
				t.Fatalf("10,000 findings fit in %d bytes; the case means to exceed the limit", len(body))
			}
			return body, []string{live}
		}, dlqMsg: "limit 262144"},
		{name: "token of 16 KiB + 1", body: func(t *testing.T, _ string) (string, []string) {
			tok := "PMAK-" + randomHex(finding.MaxTokenBytes+1-5)
			return mustMarshal(t, hostileDoc(hostileFinding("f-1", "Postman API token", tok))), []string{tok}
		}, concluded: map[string]concluded{"f-1": {finding.ReasonMalformedToken, "findings[0].token: 16385 bytes, limit 16384"}}},
		{name: "token of 200 KiB", body: func(t *testing.T, _ string) (string, []string) {
			tok := randomHex(200 << 10)
			return mustMarshal(t, hostileDoc(hostileFinding("f-1", "AWS", tok))), []string{tok}
		}, concluded: map[string]concluded{"f-1": {finding.ReasonMalformedToken, "findings[0].token: 204800 bytes, limit 16384"}}},
		{name: "token of 16 KiB in no known format", body: func(t *testing.T, _ string) (string, []string) {
			tok := "PMAK-" + randomHex(finding.MaxTokenBytes-5)
			return mustMarshal(t, hostileDoc(hostileFinding("f-1", "Postman API token", tok))), []string{tok}
		}, concluded: map[string]concluded{"f-1": {finding.ReasonMalformedToken, "not a Postman API key"}}},
		{name: "tokens with whitespace or control characters", body: func(t *testing.T, _ string) (string, []string) {
			var fs []any
			var secrets []string
			for i, wrap := range []func(string) string{
				func(s string) string { return " " + s },
				func(s string) string { return s + "\n" },
				func(s string) string { return s[:10] + "\t" + s[10:] },
				func(s string) string { return s + "\x00" },
				func(s string) string { return s[:10] + "\u200b" + s[10:] },
				func(s string) string { return s + "\u2028" },
				func(s string) string { return s + "\r\n" },
			} {
				tok := pmak()
				secrets = append(secrets, tok)
				fs = append(fs, hostileFinding(fmt.Sprintf("ws-%d", i), "Postman API token", wrap(tok)))
			}
			return mustMarshal(t, hostileDoc(fs...)), secrets
		}, concluded: func() map[string]concluded {
			m := map[string]concluded{}
			for i := range 7 {
				m[fmt.Sprintf("ws-%d", i)] = concluded{finding.ReasonMalformedToken, "not a Postman API key"}
			}
			return m
		}()},
		{name: "unknown fields", body: func(t *testing.T, live string) (string, []string) {
			f := hostileFinding("f-1", "Postman API token", live)
			f["note"] = "copied " + live
			f["severity"] = map[string]any{"level": []any{1, 2, 3}}
			d := hostileDoc(f)
			d["extra"] = map[string]any{"token": live}
			d["project"].(map[string]any)["visibility"] = "private"
			return mustMarshal(t, d), []string{live}
		}, reach: []string{"f-1"}},
		{name: "id as number", body: oneFinding(map[string]any{"id": 17, "rule_id": "AWS", "token": "x"}),
			dlqField: "findings[0].id", dlqMsg: "not a string"},
		{name: "findings as object", body: func(t *testing.T, live string) (string, []string) {
			d := hostileDoc()
			d["findings"] = hostileFinding("f-1", "Postman API token", live)
			return mustMarshal(t, d), []string{live}
		}, dlqMsg: "not a JSON object of the finding-batch schema: findings: wrong type object"},
		{name: "version as string", body: func(t *testing.T, _ string) (string, []string) {
			d := hostileDoc()
			d["version"] = "1"
			return mustMarshal(t, d), nil
		}, dlqMsg: "version: wrong type string"},
		{name: "project id as a huge number", body: func(*testing.T, string) (string, []string) {
			return `{"version":1,"scan_id":"s","project":{"id":` + strings.Repeat("9", 200_000) + `,"full_path":"g"},"findings":[]}`, nil
		}, dlqField: "project", dlqMsg: "id: wrong type number"},
		{name: "token as object, context as array, recheck as string", body: func(t *testing.T, live string) (string, []string) {
			ctx := hostileFinding("f-ctx", "Postman API token", live)
			ctx["context"] = []any{live}
			re := hostileFinding("f-re", "Postman API token", live)
			re["recheck"] = "yes"
			return mustMarshal(t, hostileDoc(hostileFinding("f-obj", "Postman API token", map[string]any{"value": live}), ctx, re)), []string{live}
		}, concluded: map[string]concluded{
			"f-obj": {finding.ReasonMalformedToken, "findings[0]: token: wrong type object"},
			"f-ctx": {finding.ReasonMalformedToken, "findings[1]: context: wrong type array"},
			"f-re":  {finding.ReasonMalformedToken, "findings[2]: recheck: wrong type string"},
		}},
		{name: "duplicate finding ids", body: func(t *testing.T, live string) (string, []string) {
			return mustMarshal(t, hostileDoc(hostileFinding("f-1", "Postman API token", live), hostileFinding("f-2", "AWS", "x"),
				hostileFinding("f-1", "Postman API token", live))), []string{live}
		}, concluded: map[string]concluded{"f-2": {finding.ReasonMalformedToken, "AWS access key id"}}, reach: []string{"f-1"},
			rejected: &rejected{"2", "findings[2].id", "duplicate of findings[0].id"}},
		{name: "one 200-character id among valid findings", body: func(t *testing.T, live string) (string, []string) {
			return mustMarshal(t, hostileDoc(hostileFinding("f-1", "Postman API token", live), hostileFinding(strings.Repeat("i", 200), "Postman API token", live),
				hostileFinding("f-3", "AWS", "x"), map[string]any{"rule_id": "AWS", "token": live})), []string{live}
		}, concluded: map[string]concluded{"f-3": {finding.ReasonMalformedToken, "AWS access key id"}}, reach: []string{"f-1"},
			rejected: &rejected{"1,3", "findings[1].id", "200 characters, limit 128"}},
		{name: "context value over 4 KiB under a key that is a credential", body: func(t *testing.T, live string) (string, []string) {
			key := randomHex(40)
			f := hostileFinding("f-1", "Postman API token", live)
			f["context"] = map[string]any{key: randomHex(finding.MaxContextValueBytes + 1)}
			return mustMarshal(t, hostileDoc(f)), []string{live, key}
		}, concluded: map[string]concluded{"f-1": {finding.ReasonMalformedToken, "findings[0].context.<key>: 4097 bytes, limit 4096"}}},
	}
}

// TestHostileMessages runs each hostile message through the dispatcher
// and through the Postman function (real verifier, Postman double): each
// gets a clear outcome (dead-lettered with the named schema error, or one
// terminal result or forward per finding), no record is left failing, no
// credential reaches a log line, a result or a dead-letter reason, and one
// invocation allocates a bounded amount of memory.
func TestHostileMessages(t *testing.T) {
	double, err := postmandouble.Start("")
	if err != nil {
		t.Fatal(err)
	}
	defer double.Close()
	for _, tc := range hostileCases() {
		for _, kind := range []string{"dispatcher", "postman"} {
			t.Run(tc.name+"/"+kind, func(t *testing.T) {
				live := postmandouble.NewAPIKey()
				double.AddKey(live, 4242)
				body, secrets := tc.body(t, live)
				rig := newHostileDispatcher(t)
				if kind == "postman" {
					rig = newHostileWorker(t, double)
				}
				requestsBefore := rig.partnerRq()
				failures, alloc := rig.run(t, record(t, "m", 1, body))
				if len(failures) != 0 {
					t.Fatalf("the record was left to SQS (batch item failure); logs:\n%s", finding.Scrub(rig.logs.String(), secrets...))
				}
				t.Logf("one invocation allocated %d KiB for a %d-byte message", alloc>>10, len(body))
				if alloc > allocBound(len(body)) {
					t.Errorf("one invocation allocated %d KiB for a %d-byte message, bound %d KiB", alloc>>10, len(body), allocBound(len(body))>>10)
				}
				assertNoLeak(t, rig.secretText(), append(secrets, live))
				calls := rig.partnerRq() - requestsBefore
				if tc.dlqMsg != "" {
					assertDeadLettered(t, rig, tc.dlqField, tc.dlqMsg, calls)
					return
				}
				assertOutcomes(t, rig, kind, tc, calls)
			})
		}
	}
}

func assertDeadLettered(t *testing.T, rig *hostileRig, field, msg string, calls int64) {
	t.Helper()
	rig.dead.mu.Lock()
	errs := append([]error(nil), rig.dead.errs...)
	rig.dead.mu.Unlock()
	if len(errs) != 1 {
		t.Fatalf("dead letters = %d, want 1", len(errs))
	}
	var be *finding.BodyError
	if !errors.As(errs[0], &be) {
		t.Fatalf("dead-letter reason is %T, want *finding.BodyError", errs[0])
	}
	if be.Field != field || !strings.Contains(be.Msg, msg) {
		t.Fatalf("dead-letter reason: field %q msg %q; want field %q and a msg containing %q", be.Field, be.Msg, field, msg)
	}
	if len(be.Error()) > 200 {
		t.Fatalf("dead-letter reason is %d bytes: it must name the problem, not quote the body", len(be.Error()))
	}
	forwarded := 0
	for _, q := range rig.queues {
		forwarded += len(q.all())
	}
	if n := len(rig.results.all()); n != 0 || forwarded != 0 || calls != 0 {
		t.Fatalf("a dead-lettered body produced %d results, %d forwards, %d partner calls", n, forwarded, calls)
	}
}

// assertRejected: the record went to the dead-letter queue once, naming
// its rejected findings by index, without quoting the body.
func assertRejected(t *testing.T, rig *hostileRig, want rejected) {
	t.Helper()
	rig.dead.mu.Lock()
	errs := append([]error(nil), rig.dead.errs...)
	rig.dead.mu.Unlock()
	if len(errs) != 1 {
		t.Fatalf("dead letters = %d, want 1 naming the rejected findings", len(errs))
	}
	var re *finding.RejectedError
	if !errors.As(errs[0], &re) {
		t.Fatalf("dead-letter reason is %T, want a *finding.RejectedError", errs[0])
	}
	if got := re.Indexes(); got != want.indexes {
		t.Fatalf("rejected indexes %q, want %q", got, want.indexes)
	}
	var be *finding.BodyError
	if !errors.As(errs[0], &be) || be.Field != want.field || !strings.Contains(be.Msg, want.msg) {
		t.Fatalf("dead-letter reason %q; want field %q and a msg containing %q", errs[0], want.field, want.msg)
	}
	if len(errs[0].Error()) > 512 {
		t.Fatalf("dead-letter reason is %d bytes: it must name the problem, not quote the body", len(errs[0].Error()))
	}
}

func assertOutcomes(t *testing.T, rig *hostileRig, kind string, tc hostileCase, calls int64) {
	t.Helper()
	if tc.rejected != nil {
		assertRejected(t, rig, *tc.rejected)
	} else if n := len(rig.dead.errs); n != 0 {
		t.Fatalf("the body was dead-lettered (%v); want it accepted", rig.dead.errs[0])
	}
	got := map[string]finding.Result{}
	for _, r := range rig.results.results(t) {
		if _, dup := got[r.FindingID]; dup {
			t.Fatalf("finding %q got two results", r.FindingID)
		}
		got[r.FindingID] = r
	}
	for id, want := range tc.concluded {
		r, ok := got[id]
		if !ok {
			t.Fatalf("finding %q got no result", id)
		}
		if r.Reason != want.reason || r.Status != finding.StatusUnknown || !strings.Contains(r.Message, want.msg) {
			t.Fatalf("finding %q: %s/%s %q; want unknown/%s with a message containing %q", id, r.Status, r.Reason, r.Message, want.reason, want.msg)
		}
		delete(got, id)
	}
	forwarded := map[string]int{}
	for p, q := range rig.queues {
		for _, body := range q.all() {
			b, err := finding.Parse(body)
			if err != nil || len(b.Findings) != 1 {
				t.Fatalf("a forward to %s does not hold one finding: %v", p, err)
			}
			if p != finding.PartnerPostman {
				t.Fatalf("finding %q forwarded to %s", b.Findings[0].ID, p)
			}
			for _, unknown := range []string{`"note"`, `"extra"`, `"severity"`, `"visibility"`} {
				if bytes.Contains(body, []byte(unknown)) {
					t.Fatalf("a forward carries the unknown field %s", unknown)
				}
			}
			forwarded[b.Findings[0].ID]++
		}
	}
	for _, id := range tc.reach {
		switch kind {
		case "dispatcher":
			if forwarded[id] != 1 {
				t.Fatalf("finding %q forwarded %d times, want once", id, forwarded[id])
			}
			delete(forwarded, id)
		default:
			if r, ok := got[id]; !ok || r.Reason != finding.ReasonPartnerConfirmed {
				t.Fatalf("finding %q: result %+v, want partner_confirmed from the double", id, got[id])
			}
			delete(got, id)
		}
	}
	if len(got) != 0 || len(forwarded) != 0 {
		t.Fatalf("unexpected outcomes: results %v, forwards %v", got, forwarded)
	}
	wantCalls := int64(0)
	if kind == "postman" {
		wantCalls = int64(len(tc.reach))
	}
	if calls != wantCalls {
		t.Fatalf("partner calls = %d, want %d", calls, wantCalls)
	}
}

// TestHostileBodyWithoutDeadLetterQueue: with no DEAD_LETTER_QUEUE_URL the
// unparseable record is a batch item failure (the redrive policy takes it
// to the DLQ), and the log line says why without quoting the body.
func TestHostileBodyWithoutDeadLetterQueue(t *testing.T) {
	live := postmandouble.NewAPIKey()
	logs := &lockedBuffer{}
	queues := map[finding.Partner]Sink{}
	for _, p := range registry.Names() {
		queues[p] = &sqsSink{}
	}
	d, err := NewDispatcher(DispatcherConfig{Common: hostileCommon(&sqsSink{}, nil, logs), PartnerQueues: queues})
	if err != nil {
		t.Fatal(err)
	}
	body := mustMarshal(t, hostileDoc(hostileFinding("f-1", "Postman API token", live), hostileFinding("f-1", "Postman API token", live)))
	resp, _ := d.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{record(t, "m", 1, body)}})
	if len(resp.BatchItemFailures) != 1 {
		t.Fatalf("failures = %v, want the record", resp.BatchItemFailures)
	}
	if !strings.Contains(logs.String(), "duplicate of findings[0].id") {
		t.Fatalf("no log line names the problem:\n%s", logs.String())
	}
	assertNoLeak(t, logs.String(), []string{live})
}

// TestHostileLargestBatchThatFits sends the largest scan that fits one
// SQS message, 4,000 findings, through the dispatcher and then each
// forward through the Postman function: every finding ends with exactly
// one terminal result, from one function or the other.
func TestHostileLargestBatchThatFits(t *testing.T) {
	double, err := postmandouble.Start("")
	if err != nil {
		t.Fatal(err)
	}
	defer double.Close()
	const n = 4000
	fs := make([]any, n)
	var secrets []string
	want := map[string]finding.Reason{}
	for i := range fs {
		id := fmt.Sprintf("f%04d", i)
		switch {
		case i%8 == 0:
			tok := postmandouble.NewAPIKey()
			secrets = append(secrets, tok)
			want[id] = finding.ReasonPartnerRejected
			if i%16 == 0 {
				double.AddKey(tok, i+1)
				want[id] = finding.ReasonPartnerConfirmed
			}
			fs[i] = hostileFinding(id, "Postman API token", tok)
		case i%2 == 0:
			fs[i], want[id] = hostileFinding(id, "AWS", "x"), finding.ReasonMalformedToken
		default:
			fs[i], want[id] = hostileFinding(id, "Slack", "x"), finding.ReasonUnsupportedTokenType
		}
	}
	body := mustMarshal(t, hostileDoc(fs...))
	if len(body) > finding.MaxBodyBytes {
		t.Fatalf("the scan is %d bytes, over the limit: the case must fit", len(body))
	}
	disp := newHostileDispatcher(t)
	failures, alloc := disp.run(t, record(t, "scan", 1, body))
	if len(failures) != 0 {
		t.Fatalf("dispatcher failures: %v", failures)
	}
	t.Logf("the dispatcher allocated %d KiB for a %d-byte message", alloc>>10, len(body))
	if alloc > maxHandleAlloc {
		t.Errorf("the dispatcher allocated %d MiB for a %d-byte message", alloc>>20, len(body))
	}
	worker := newHostileWorker(t, double)
	forwards := disp.queues[finding.PartnerPostman].all()
	for i := 0; i < len(forwards); i += 10 { // SQS delivers up to 10 records per invocation
		var recs []events.SQSMessage
		for j := i; j < min(i+10, len(forwards)); j++ {
			recs = append(recs, record(t, fmt.Sprintf("fwd-%d", j), 1, string(forwards[j])))
		}
		if failures, _ := worker.run(t, recs...); len(failures) != 0 {
			t.Fatalf("worker failures: %v", failures)
		}
	}
	got := map[string]finding.Reason{}
	for _, r := range append(disp.results.results(t), worker.results.results(t)...) {
		if _, dup := got[r.FindingID]; dup {
			t.Fatalf("finding %q got two results", r.FindingID)
		}
		got[r.FindingID] = r.Reason
	}
	if len(got) != n {
		t.Fatalf("%d of %d findings got a result", len(got), n)
	}
	for id, reason := range want {
		if got[id] != reason {
			t.Fatalf("finding %q: %s, want %s", id, got[id], reason)
		}
	}
	assertNoLeak(t, disp.secretText()+worker.secretText(), secrets)
}

// TestHostileOversizedForward: a finding whose message grows past the SQS
// limit when it is re-encoded (U+2028 takes 3 bytes in, 6 bytes out) or
// whose rule_id or project path is huge must still get a clear terminal
// outcome, not a forward or result that SQS refuses forever.
func TestHostileOversizedForward(t *testing.T) {
	lineSep := strings.Repeat("\u2028", finding.MaxContextValueBytes/3)
	cases := []struct {
		name string
		doc  func(live string) map[string]any
		// want is the message of the malformed_token result, or with
		// dlqField set the dead-letter reason.
		want, dlqField string
	}{
		{"many context values that double in size", func(live string) map[string]any {
			f := hostileFinding("f-1", "Postman API token", live)
			ctx := map[string]any{}
			for i := range 60 {
				ctx[fmt.Sprintf("k%02d", i)] = lineSep
			}
			f["context"] = ctx
			return hostileDoc(f)
		}, "findings[0].context: 60 entries, limit 8", ""},
		{"context key of 80k line separators", func(live string) map[string]any {
			f := hostileFinding("f-1", "Postman API token", live)
			f["context"] = map[string]any{strings.Repeat("\u2028", 80_000): "v"}
			return hostileDoc(f)
		}, "findings[0].context.<key>: key is 80000 characters, limit 128", ""},
		{"rule_id of 80k line separators", func(string) map[string]any {
			return hostileDoc(hostileFinding("f-1", strings.Repeat("\u2028", 80_000), "x"))
		}, "findings[0].rule_id: 80000 characters, limit 128", ""},
		{"rule_id of 80k line separators and a token of the wrong type", func(string) map[string]any {
			return hostileDoc(hostileFinding("f-1", strings.Repeat("\u2028", 80_000), 5))
		}, "findings[0]: token: wrong type number", ""},
		{"project path of 80k line separators", func(live string) map[string]any {
			d := hostileDoc(hostileFinding("f-1", "Postman API token", live))
			d["project"].(map[string]any)["full_path"] = strings.Repeat("\u2028", 80_000)
			return d
		}, "80000 characters, limit 8192", "project.full_path"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			live := postmandouble.NewAPIKey()
			raw := tc.doc(live)
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(raw); err != nil {
				t.Fatal(err)
			}
			msg := strings.ReplaceAll(buf.String(), `\u2028`, "\u2028")
			if len(msg) > finding.MaxBodyBytes {
				t.Fatalf("message is %d bytes; the case must fit the limit", len(msg))
			}
			rig := newHostileDispatcher(t)
			failures, _ := rig.run(t, record(t, "m", 1, msg))
			if len(failures) != 0 {
				t.Fatalf("the record was left to SQS forever: %s", finding.Scrub(rig.logs.String(), live))
			}
			assertNoLeak(t, rig.secretText(), []string{live})
			if tc.dlqField != "" {
				assertDeadLettered(t, rig, tc.dlqField, tc.want, 0)
				return
			}
			assertOutcomes(t, rig, "dispatcher", hostileCase{concluded: map[string]concluded{"f-1": {finding.ReasonMalformedToken, tc.want}}}, 0)
			if r := rig.results.results(t)[0]; utf8.RuneCountInString(r.RuleID) > finding.MaxRuleIDLength {
				t.Fatalf("the result copies a rule_id of %d characters", utf8.RuneCountInString(r.RuleID))
			}
		})
	}
}

// TestHostileServiceAccountTokenURICanary plants service-account keys
// whose token_uri names a canary server and runs them through the
// dispatcher and the GCP function with the real verifier against the
// Google double: the verdicts come from the configured endpoint and the
// canary sees no request at all.
func TestHostileServiceAccountTokenURICanary(t *testing.T) {
	var canaryHits atomic.Int64
	canary := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		canaryHits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"ya29.canary","expires_in":3599,"token_type":"Bearer"}`))
	}))
	defer canary.Close()
	g := googledouble.New(t)
	const email = "canary@test-project.iam.gserviceaccount.com"
	live, _, err := g.NewServiceAccountKey(email)
	if err != nil {
		t.Fatal(err)
	}
	deleted, kid, err := g.NewServiceAccountKey(email)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.DeleteServiceAccountKey(kid); err != nil {
		t.Fatal(err)
	}
	var secrets []string
	planted := func(key []byte, uri string) string {
		var m map[string]any
		if err := json.Unmarshal(key, &m); err != nil {
			t.Fatal(err)
		}
		m["token_uri"] = uri
		pemKey, _ := m["private_key"].(string)
		for _, line := range strings.Split(pemKey, "\n") {
			if line != "" && !strings.HasPrefix(line, "-----") {
				secrets = append(secrets, line)
			}
		}
		return mustMarshal(t, m)
	}
	const rule = "Google (GCP) Service-account"
	body := mustMarshal(t, hostileDoc(
		hostileFinding("sa-live", rule, planted(live, canary.URL+"/token")),
		hostileFinding("sa-deleted", rule, planted(deleted, canary.URL)),
		hostileFinding("sa-live-auth", rule, planted(live, canary.URL+"/o/oauth2/token?x=1")),
	))

	disp := newHostileDispatcher(t)
	if failures, _ := disp.run(t, record(t, "scan", 1, body)); len(failures) != 0 {
		t.Fatalf("dispatcher failures: %v", failures)
	}
	forwards := disp.queues[finding.PartnerGCP].all()
	if len(forwards) != 3 {
		t.Fatalf("%d forwards to the GCP queue, want 3", len(forwards))
	}
	disc, _ := url.Parse(g.Discovery.URL)
	oauth, _ := url.Parse(g.OAuth.URL)
	v, err := gcppartner.New(partnerhttp.Options{Endpoints: []*url.URL{disc, oauth}, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	results, logs := &sqsSink{}, &lockedBuffer{}
	w, err := NewWorker(WorkerConfig{Common: hostileCommon(results, &deadLetterLog{}, logs), Partner: finding.PartnerGCP,
		Verifier: v, Requeue: &delays{}, MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	var recs []events.SQSMessage
	for i, fwd := range forwards {
		recs = append(recs, record(t, fmt.Sprintf("fwd-%d", i), 1, string(fwd)))
	}
	resp, _ := w.Handle(context.Background(), events.SQSEvent{Records: recs})
	if len(resp.BatchItemFailures) != 0 {
		t.Fatalf("worker failures: %v", resp.BatchItemFailures)
	}
	want := map[string]finding.Reason{"sa-live": finding.ReasonPartnerConfirmed, "sa-deleted": finding.ReasonPartnerRejected, "sa-live-auth": finding.ReasonPartnerConfirmed}
	got := byID(results.results(t))
	for id, reason := range want {
		if got[id].Reason != reason {
			t.Errorf("%s: %s, want %s", id, got[id].Reason, reason)
		}
	}
	if n := canaryHits.Load(); n != 0 {
		t.Fatalf("the canary named in token_uri saw %d requests", n)
	}
	var all strings.Builder
	all.WriteString(disp.secretText() + logs.String())
	for _, b := range results.all() {
		all.Write(b)
	}
	assertNoLeak(t, all.String(), secrets)
}
