package pipeline

import (
	"bytes"
	"context"
	"log/slog"
	"net/url"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/stsdouble"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	awspartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/aws"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

// thinkstAccount is one of Thinkst Canarytokens' AWS accounts.
const thinkstAccount = "052310077262"

func awsScan(fs ...map[string]any) map[string]any {
	return map[string]any{"version": 1, "scan_id": "s", "project": map[string]any{"id": 7, "full_path": "a/b"}, "findings": fs}
}

func newAWSWorker(t *testing.T, v verify.Verifier, gate Gate) (*Worker, *sink) {
	t.Helper()
	results := &sink{}
	w, err := NewWorker(WorkerConfig{
		Common:  Common{Results: results, Gate: gate, Now: func() time.Time { return fixed }, Logger: slog.New(slog.DiscardHandler)},
		Partner: finding.PartnerAWS, Verifier: v, Requeue: &delays{}, MaxAttempts: 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	return w, results
}

// TestAWSAccountOnEveryResult: the account a key id encodes reaches every
// result of its finding, whatever the verdict or fault, in the worker and
// the dispatcher; a legacy key id gets none.
func TestAWSAccountOnEveryResult(t *testing.T) {
	const account = "123456789012"
	akia, asia := stsdouble.KeyID("AKIA", account), stsdouble.KeyID("ASIA", account)
	legacy := "AKIAIOSFODNN7EXAMPLE"
	fault := func(k verify.FaultKind) func() (verify.Verdict, error) {
		return func() (verify.Verdict, error) {
			return verify.Verdict{}, &verify.Fault{Kind: k, Partner: "aws", Op: "sts GetCallerIdentity"}
		}
	}
	verdict := func(r finding.Reason, d finding.Details) func() (verify.Verdict, error) {
		return func() (verify.Verdict, error) { return verify.Verdict{Reason: r, Details: d}, nil }
	}
	tests := []struct {
		name        string
		token       string
		context     map[string]string
		answer      func() (verify.Verdict, error)
		gate        bool
		wantReason  finding.Reason
		wantDetails finding.Details
	}{
		{"active", akia, nil, verdict(finding.ReasonPartnerConfirmed, nil), true, finding.ReasonPartnerConfirmed, finding.Details{"aws_account_id": account}},
		{"active with STS's details", akia, nil, verdict(finding.ReasonPartnerConfirmed, finding.Details{"aws_account_id": account, "secret_matches": "true"}), true,
			finding.ReasonPartnerConfirmed, finding.Details{"aws_account_id": account, "secret_matches": "true"}},
		{"inactive", akia, nil, verdict(finding.ReasonPartnerRejected, nil), true, finding.ReasonPartnerRejected, finding.Details{"aws_account_id": account}},
		{"rate limited", akia, nil, fault(verify.RateLimited), true, finding.ReasonRateLimited, finding.Details{"aws_account_id": account}},
		{"partner error", akia, nil, fault(verify.PartnerError), true, finding.ReasonPartnerError, finding.Details{"aws_account_id": account}},
		{"feature disabled", akia, nil, nil, false, finding.ReasonFeatureDisabled, finding.Details{"aws_account_id": account}},
		{"malformed secret", akia, map[string]string{"aws_secret_access_key": "short"}, nil, true, finding.ReasonMalformedToken, finding.Details{"aws_account_id": account}},
		{"ASIA", asia, nil, nil, true, finding.ReasonUnsupportedTokenType, finding.Details{"aws_account_id": account}},
		{"legacy active", legacy, nil, verdict(finding.ReasonPartnerConfirmed, nil), true, finding.ReasonPartnerConfirmed, nil},
		{"legacy inactive", legacy, nil, verdict(finding.ReasonPartnerRejected, nil), true, finding.ReasonPartnerRejected, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := map[string]any{"id": "f1", "rule_id": "AWS", "token": tc.token}
			if tc.context != nil {
				f["context"] = tc.context
			}
			v := &scriptedVerifier{by: map[string]func() (verify.Verdict, error){"f1": tc.answer}}
			w, results := newAWSWorker(t, v, gateAll(tc.gate))
			// The third receive is the last attempt: a fault is terminal.
			w.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{record(t, "w", 3, awsScan(f))}})
			rs := results.results(t)
			if len(rs) != 1 || rs[0].Reason != tc.wantReason {
				t.Fatalf("worker results = %+v, want one %s", rs, tc.wantReason)
			}
			assertDetails(t, "worker", rs[0].Details, tc.wantDetails)
			if tc.answer != nil {
				return // the dispatcher forwards what the worker verifies
			}
			d, dres, _, _ := newDispatcher(t, gateAll(tc.gate), &bytes.Buffer{})
			d.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{record(t, "d", 1, awsScan(f))}})
			rs = dres.results(t)
			if len(rs) != 1 || rs[0].Reason != tc.wantReason {
				t.Fatalf("dispatcher results = %+v, want one %s", rs, tc.wantReason)
			}
			assertDetails(t, "dispatcher", rs[0].Details, tc.wantDetails)
		})
	}
}

func assertDetails(t *testing.T, who string, got, want finding.Details) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s details = %v, want %v", who, got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("%s details = %v, want %v", who, got, want)
		}
	}
}

// TestCanaryKeyNeverSent: a key id of a canary-token account, AKIA or
// ASIA, with its secret or without, is concluded unknown/canary_token
// with its account and canary: true by the dispatcher (nothing is
// forwarded) and by the worker (for a message put straight on the AWS
// queue), and the STS double sees no request at all, although the key is
// live in it.
func TestCanaryKeyNeverSent(t *testing.T) {
	double, err := stsdouble.Start("")
	if err != nil {
		t.Fatal(err)
	}
	defer double.Close()
	u, _ := url.Parse(double.URL)
	v, err := awspartner.New(partnerhttp.Options{Endpoints: []*url.URL{u}})
	if err != nil {
		t.Fatal(err)
	}
	akia, secret := stsdouble.NewKeyPairIn(thinkstAccount)
	double.AddKey(akia, secret, "")
	asia := stsdouble.KeyID("ASIA", thinkstAccount)
	live, liveSecret := stsdouble.NewKeyPairIn("123456789012")
	double.AddKey(live, liveSecret, "")
	scan := awsScan(
		map[string]any{"id": "canary-akia", "rule_id": "AWS", "token": akia, "context": map[string]string{"aws_secret_access_key": secret}},
		map[string]any{"id": "canary-akia-id-only", "rule_id": "aws-access-token", "token": akia},
		map[string]any{"id": "canary-asia", "rule_id": "AWS", "token": asia},
	)
	want := finding.Details{"aws_account_id": thinkstAccount, "canary": true}

	d, dres, queues, _ := newDispatcher(t, gateAll(true), &bytes.Buffer{})
	d.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{record(t, "d", 1, scan)}})
	for p, q := range queues {
		if len(q.bodies) != 0 {
			t.Errorf("dispatcher forwarded %d canary findings to %s", len(q.bodies), p)
		}
	}
	w, wres := newAWSWorker(t, v, gateAll(true))
	w.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{record(t, "w", 1, scan)}})
	for who, rs := range map[string][]finding.Result{"dispatcher": dres.results(t), "worker": wres.results(t)} {
		if len(rs) != 3 {
			t.Fatalf("%s: %d results, want 3", who, len(rs))
		}
		for _, r := range rs {
			if r.Status != finding.StatusUnknown || r.Reason != finding.ReasonCanaryToken || r.Message == "" {
				t.Errorf("%s %s: %s/%s (%q), want unknown/canary_token with a message", who, r.FindingID, r.Status, r.Reason, r.Message)
			}
			assertDetails(t, who+" "+r.FindingID, r.Details, want)
		}
	}
	if n := double.Controls.Requests(); n != 0 {
		t.Fatalf("STS got %d requests for canary keys", n)
	}
	// The same worker does call STS for a key that is no canary: the
	// count above could have moved.
	w.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{record(t, "live", 1,
		awsScan(map[string]any{"id": "live", "rule_id": "AWS", "token": live, "context": map[string]string{"aws_secret_access_key": liveSecret}}))}})
	if n := double.Controls.Requests(); n != 1 {
		t.Fatalf("STS got %d requests for one live key, want 1", n)
	}
	if rs := byID(wres.results(t)); rs["live"].Reason != finding.ReasonPartnerConfirmed || rs["live"].Details["aws_account_id"] != "123456789012" {
		t.Fatalf("live key: %+v", rs["live"])
	}
}
