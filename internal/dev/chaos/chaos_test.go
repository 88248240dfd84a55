package chaos

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/awstest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/samtemplate"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
)

func TestMain(m *testing.M) { awstest.Main(m) }

// TestShortForm is the short form of `make chaos` that `make test` runs: a
// representative subset of the scenarios on the real functions, every
// invariant checked after each.
func TestShortForm(t *testing.T) {
	root, err := samtemplate.FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	moto := awstest.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cfg := Config{Root: root, Endpoint: moto.Endpoint, Progress: func(l string) { t.Log(l) }}
	if os.Getenv("CHAOS_VERBOSE") != "" {
		cfg.Output = func(src, l string) { t.Log(src, l) }
	}
	rep, err := Run(ctx, cfg, Short())
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	rep.Print(&b)
	t.Log("\n" + b.String())
	if len(rep.Rows) != len(Short()) {
		t.Fatalf("%d rows for %d scenarios", len(rep.Rows), len(Short()))
	}
	if !rep.OK() {
		t.Fatal("an invariant failed; see the table")
	}
}

// clean is an observation that keeps every invariant.
func clean() *Observation {
	live := Cred{Name: "postman-active", Partner: finding.PartnerPostman, Active: true, Token: "PMAK-live-0123456789abcdef0123456789"}
	dead := Cred{Name: "postman-inactive", Partner: finding.PartnerPostman, Token: "PMAK-dead-0123456789abcdef0123456789"}
	o := newObservation("unit")
	o.Secrets = []string{live.Token, dead.Token}
	for _, c := range []Cred{live, dead} {
		x := Truth(c)
		o.Expect[Key{"s", c.Name}] = &x
		o.Results[Key{"s", c.Name}] = []finding.Result{{ScanID: "s", FindingID: c.Name, Status: finding.StatusOf(c.Truth()), Reason: c.Truth()}}
	}
	o.Bodies = []string{`{"finding_id":"postman-active","status":"active"}`}
	o.Lines = []string{`PostmanFunction {"msg":"finding outcome","fingerprint":"sha256:00"}`}
	o.Memory = []Memory{{Function: "PostmanFunction", PeakKB: 20 * 1024, LimitMB: 128, Processes: 1, Samples: 5, Invocations: 2},
		{Function: "AutoRollbackFunction", LimitMB: 128}}
	return o
}

// TestInvariantsCatchViolations breaks a clean observation one way at a
// time: exactly the invariant that guards against it must fail, so no
// column of the table can pass whatever happens.
func TestInvariantsCatchViolations(t *testing.T) {
	index := map[string]int{}
	for i, inv := range Invariants {
		index[inv.Name] = i
	}
	fault := func(o *Observation) {
		for _, k := range []string{"postman-active", "postman-inactive"} {
			o.Expect[Key{"s", k}].Allowed = []finding.Reason{finding.ReasonPartnerError}
		}
	}
	tests := []struct {
		name   string
		mutate func(o *Observation)
		want   []string // invariants that must fail; the others must pass
	}{
		{"clean", func(*Observation) {}, nil},
		{"a finding with no trace", func(o *Observation) { delete(o.Results, Key{"s", "postman-inactive"}) },
			[]string{"nothing lost", "documented outcome"}},
		{"a finding kept in a dead-letter queue is not lost", func(o *Observation) {
			delete(o.Results, Key{"s", "postman-inactive"})
			o.Expect[Key{"s", "postman-inactive"}].Terminal = false
			o.DeadLettered[Key{"s", "postman-inactive"}] = 1
		}, nil},
		{"a record reported done without its result", func(o *Observation) { o.Vanished = []string{"probe"} }, []string{"nothing lost"}},
		{"a live credential reported inactive", func(o *Observation) {
			o.Results[Key{"s", "postman-active"}][0].Status = finding.StatusInactive
			o.Results[Key{"s", "postman-active"}][0].Reason = finding.ReasonPartnerRejected
		}, []string{"no false inactive", "documented outcome"}},
		{"a revoked credential reported inactive while its partner only faulted", func(o *Observation) {
			fault(o)
			o.Results[Key{"s", "postman-active"}][0].Status, o.Results[Key{"s", "postman-active"}][0].Reason = finding.StatusUnknown, finding.ReasonPartnerError
		}, []string{"no false inactive", "documented outcome"}},
		{"a token in a log line", func(o *Observation) {
			o.Lines = append(o.Lines, `PostmanFunction {"msg":"oops","detail":"key PMAK-live-0123456789abcdef0123456789"}`)
		}, []string{"no secret leaked"}},
		{"part of a token in an error string", func(o *Observation) {
			o.Lines = append(o.Lines, `esm {"error":"bad key ...0123456789abcdef01..."}`)
		}, []string{"no secret leaked"}},
		{"a private key in an error string", func(o *Observation) {
			o.Lines = append(o.Lines, `esm {"error":"-----BEGIN PRIVATE KEY-----"}`)
		}, []string{"no secret leaked"}},
		{"a token in a result", func(o *Observation) {
			o.Bodies = append(o.Bodies, `{"message":"PMAK-dead-0123456789abcdef0123456789"}`)
		}, []string{"no secret leaked"}},
		{"the canary was called", func(o *Observation) { o.CanaryHits = 1 }, []string{"canary silent"}},
		{"memory at the limit", func(o *Observation) { o.Memory[0].PeakKB = 128 * 1024 }, []string{"memory bounded"}},
		{"memory never measured", func(o *Observation) { o.Memory[0].Samples = 0 }, []string{"memory bounded"}},
		{"no function measured", func(o *Observation) { o.Memory = nil }, []string{"memory bounded"}},
		{"only functions never invoked", func(o *Observation) { o.Memory = o.Memory[1:] }, []string{"memory bounded"}},
		{"a runtime restarted", func(o *Observation) { o.Memory[0].Processes = 2 }, []string{"documented outcome"}},
		{"a runtime restarted after the scenario killed it", func(o *Observation) {
			o.Memory[0].Processes = 3
			o.Killed["PostmanFunction"] = 2
		}, nil},
		{"a runtime restarted more often than it was killed", func(o *Observation) {
			o.Memory[0].Processes = 3
			o.Killed["PostmanFunction"] = 1
		}, []string{"documented outcome"}},
		{"a wrong unknown reason", func(o *Observation) {
			o.Results[Key{"s", "postman-active"}][0].Status, o.Results[Key{"s", "postman-active"}][0].Reason = finding.StatusUnknown, finding.ReasonRateLimited
		}, []string{"documented outcome"}},
		{"a second result", func(o *Observation) {
			k := Key{"s", "postman-active"}
			o.Results[k] = append(o.Results[k], o.Results[k][0])
		}, []string{"documented outcome"}},
		{"contradicting results where repeats are allowed", func(o *Observation) {
			k := Key{"s", "postman-inactive"}
			o.Expect[k].Exactly = 0
			o.Expect[k].Allowed = append(o.Expect[k].Allowed, finding.ReasonPartnerError)
			o.Results[k] = append(o.Results[k], finding.Result{ScanID: "s", FindingID: k.Finding, Status: finding.StatusUnknown, Reason: finding.ReasonPartnerError})
		}, []string{"documented outcome"}},
		{"an unknown beside a verdict where mixing is allowed", func(o *Observation) {
			k := Key{"s", "postman-inactive"}
			o.Expect[k].Exactly, o.Expect[k].Mixed = 0, true
			o.Expect[k].Allowed = append(o.Expect[k].Allowed, finding.ReasonPartnerError)
			o.Results[k] = append(o.Results[k], finding.Result{ScanID: "s", FindingID: k.Finding, Status: finding.StatusUnknown, Reason: finding.ReasonPartnerError})
		}, nil},
		{"two verdicts disagreeing where mixing is allowed", func(o *Observation) {
			k := Key{"s", "postman-inactive"}
			o.Expect[k].Exactly, o.Expect[k].Mixed = 0, true
			o.Expect[k].Allowed = append(o.Expect[k].Allowed, finding.ReasonPartnerConfirmed)
			o.Results[k] = append(o.Results[k], finding.Result{ScanID: "s", FindingID: k.Finding, Status: finding.StatusActive, Reason: finding.ReasonPartnerConfirmed})
		}, []string{"documented outcome"}},
		{"a result for a finding never sent", func(o *Observation) {
			o.Unexpected = []finding.Result{{ScanID: "s", FindingID: "ghost", Status: finding.StatusInactive}}
		}, []string{"no false inactive", "documented outcome"}},
		{"a scenario check failed", func(o *Observation) { o.Problems = []string{"no retry logged"} }, []string{"documented outcome"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := clean()
			tt.mutate(o)
			row := Evaluate(o)
			want := map[int]bool{}
			for _, n := range tt.want {
				i, ok := index[n]
				if !ok {
					t.Fatalf("no invariant %q", n)
				}
				want[i] = true
			}
			for i, c := range row.Cells {
				if c.Pass() == want[i] {
					t.Errorf("%s: pass=%v, violations %q", Invariants[i].Name, c.Pass(), c.Violations)
				}
				for _, v := range c.Violations {
					if strings.Contains(v, "PMAK-") {
						t.Errorf("%s: a violation quotes the secret: %s", Invariants[i].Name, v)
					}
				}
			}
		})
	}
}

func TestReport(t *testing.T) {
	good, bad := Evaluate(clean()), clean()
	bad.CanaryHits = 3
	r := &Report{Invariants: Invariants, Rows: []Row{good}}
	if !r.OK() {
		t.Fatal("a clean row is not OK")
	}
	r.Rows = append(r.Rows, Evaluate(bad))
	if r.OK() {
		t.Fatal("a failed cell is OK")
	}
	if (&Report{Invariants: Invariants}).OK() {
		t.Fatal("an empty report is OK")
	}
	var b strings.Builder
	r.Print(&b)
	out := b.String()
	for _, want := range []string{"scenario", "canary silent", "FAIL canary silent: the canary received 3 requests", "PASS"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestProxy(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_, _ = w.Write(append([]byte("echo "), b...))
	}))
	defer backend.Close()
	p, err := StartProxy(backend.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	const results = "http://127.0.0.1:1/123456789012/results"
	call := func(target, body string) (int, string, error) {
		req, _ := http.NewRequest(http.MethodPost, p.URL(), strings.NewReader(body))
		req.Header.Set("X-Amz-Target", target)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	send := `{"QueueUrl":"` + results + `","Entries":[]}`
	other := `{"QueueUrl":"http://127.0.0.1:1/123456789012/aws","Entries":[]}`
	steps := []struct {
		name         string
		set          func()
		target, body string
		status       int
		down         bool
	}{
		{"passes through", func() {}, "AmazonSQS.SendMessageBatch", send, 200, false},
		{"refuses sends to the queue", func() { p.Refuse(RefuseSends(results)) }, "AmazonSQS.SendMessageBatch", send, 500, false},
		{"passes sends to another queue", func() {}, "AmazonSQS.SendMessageBatch", other, 200, false},
		{"passes other operations", func() {}, "AmazonSQS.ReceiveMessage", send, 200, false},
		{"refuses all", func() { p.Refuse(RefuseAll) }, "AmazonSSM.GetParameter", `{}`, 500, false},
		{"passes again", func() { p.Refuse(nil) }, "AmazonSSM.GetParameter", `{}`, 200, false},
		{"down refuses connections", func() { p.Down() }, "AmazonSSM.GetParameter", `{}`, 0, true},
		{"up again on the same port", func() {
			if err := p.Up(); err != nil {
				t.Fatal(err)
			}
		}, "AmazonSSM.GetParameter", `{}`, 200, false},
	}
	for _, s := range steps {
		s.set()
		status, body, err := call(s.target, s.body)
		if s.down {
			if err == nil {
				t.Errorf("%s: got %d, want a refused connection", s.name, status)
			}
			continue
		}
		if err != nil || status != s.status {
			t.Errorf("%s: %d %v, want %d", s.name, status, err, s.status)
		}
		if status == 200 && body != "echo "+s.body {
			t.Errorf("%s: body %q not forwarded", s.name, body)
		}
	}
	if p.Refused() != 2 {
		t.Errorf("Refused() = %d, want 2", p.Refused())
	}
}

// TestSoakShort is the short form of `make soak` that `make test` runs:
// 300 findings over every partner with the soak's faults, kills,
// duplicates and flag flip, on a fixed seed (SOAK_SEED replays another).
func TestSoakShort(t *testing.T) {
	root, err := samtemplate.FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	seed := uint64(20251206)
	if v := os.Getenv("SOAK_SEED"); v != "" {
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("SOAK_SEED: %v", err)
		}
	}
	t.Logf("seed %d", seed)
	moto := awstest.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var stats SoakStats
	var obs *Observation
	sc := Soak(SoakOptions{Findings: 300, Seed: seed, KillEvery: 3 * time.Second, Settle: 3 * time.Minute, Progress: func(l string) { t.Log(l) }}, &stats)
	sc.Check = func(o *Observation) []string { obs = o; return nil }
	rep, err := Run(ctx, Config{Root: root, Endpoint: moto.Endpoint, Progress: func(l string) { t.Log(l) }}, []Scenario{sc})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	rep.Print(&b)
	t.Log("\n" + b.String())
	line := SoakLine(obs, rep.Rows[0])
	t.Log(line)
	if !rep.OK() || line != "findings=300 results=300 missing=0 contradictions=0 leaked=0" {
		t.Fatalf("soak: %s", line)
	}
	if stats.Kills == 0 {
		t.Error("no function process was killed: the short soak proved nothing about crashes")
	}
}

// TestSentPartners: a results send is blamed on a partner function only for
// the results a partner function writes; the dispatcher's results name a
// partner too (a canary AWS key, an unsupported Slack token) and must not
// make a crash scenario kill that partner's idle function.
func TestSentPartners(t *testing.T) {
	entry := func(p finding.Partner, r finding.Reason) string {
		return strconv.Quote(`{"partner":"` + string(p) + `","reason":"` + string(r) + `"}`)
	}
	body := `{"QueueUrl":"q","Entries":[{"MessageBody":` + entry("slack", finding.ReasonUnsupportedTokenType) +
		`},{"MessageBody":` + entry("aws", finding.ReasonCanaryToken) + `},{"MessageBody":` + entry("gcp", finding.ReasonPartnerConfirmed) +
		`},{"MessageBody":` + entry("npm", finding.ReasonRateLimited) + `},{"MessageBody":` + entry("gcp", finding.ReasonPartnerRejected) + `}]}`
	got := SentPartners([]byte(body))
	if len(got) != 2 || got[0] != "gcp" || got[1] != "npm" {
		t.Errorf("SentPartners = %v, want [gcp npm]", got)
	}
}
