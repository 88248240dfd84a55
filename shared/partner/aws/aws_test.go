package awspartner

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/stsdouble"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/verifiertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/metrics"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

const testAccount = "210987654321"

// harness is the shared verifier harness bound to aws.
var harness = verifiertest.Harness{Def: Definition, Op: op}

func awsFinding(keyID, secret string) finding.Finding {
	f := finding.Finding{ID: "f-1", RuleID: "AWS", Token: finding.Secret(keyID)}
	if secret != "" {
		f.Context = map[string]finding.Secret{finding.ContextAWSSecretAccessKey: finding.Secret(secret)}
	}
	return f
}

// liveKey registers a fresh key pair with the double.
func liveKey(d *stsdouble.Server) (string, string) {
	id, secret := stsdouble.NewKeyPairIn(testAccount)
	d.AddKey(id, secret, testAccount)
	return id, secret
}

func liveWithSecret(_ *testing.T, d *stsdouble.Server) finding.Finding {
	return awsFinding(liveKey(d))
}

func faultOnLive(faults ...partnertest.Fault) func(*testing.T, *stsdouble.Server) finding.Finding {
	return func(_ *testing.T, d *stsdouble.Server) finding.Finding {
		d.Controls.Push(faults...)
		return awsFinding(liveKey(d))
	}
}

// transportFunc lets a row answer in place of the network.
type transportFunc func(*http.Request) (*http.Response, error)

func (f transportFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func staticResponse(r *http.Request, status int, contentType, body string) *http.Response {
	return &http.Response{
		StatusCode: status, Status: http.StatusText(status), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:  http.Header{"Content-Type": {contentType}},
		Body:    io.NopCloser(strings.NewReader(body)),
		Request: r, ContentLength: int64(len(body)),
	}
}

type verifyRow struct {
	name      string
	tokenType finding.TokenType // aws_access_key when empty
	arrange   func(*testing.T, *stsdouble.Server) finding.Finding
	timeout   time.Duration
	// transport, when set, answers instead of the double (for answers the
	// double never gives: an oversized body, a partner echoing credentials).
	transport func(finding.Finding) http.RoundTripper

	want        finding.Reason // for a verdict
	wantDetails finding.Details
	fault       bool
	kind        verify.FaultKind
	network     bool
	httpStatus  int
	retryAfter  time.Duration
	calls       int64 // requests that reached the double
	// metrics the call must leave (PartnerAPIErrors, ...NetworkErrors, ...RateLimitHits).
	errs, netErrs, limited int
}

func verifyRows() []verifyRow {
	return []verifyRow{
		{name: "active with secret", arrange: liveWithSecret,
			want: finding.ReasonPartnerConfirmed, wantDetails: finding.Details{DetailAccountID: testAccount, DetailSecretMatches: "true"}, calls: 1},
		{name: "active probe without secret", arrange: func(_ *testing.T, d *stsdouble.Server) finding.Finding {
			id, _ := liveKey(d)
			return awsFinding(id, "")
		}, want: finding.ReasonPartnerConfirmed, calls: 1},
		{name: "SignatureDoesNotMatch with a wrong secret", arrange: func(_ *testing.T, d *stsdouble.Server) finding.Finding {
			id, _ := liveKey(d)
			_, other := stsdouble.NewKeyPair()
			return awsFinding(id, other)
		}, want: finding.ReasonPartnerConfirmed, wantDetails: finding.Details{DetailSecretMatches: "false"}, calls: 1},
		{name: "inactive with secret (unknown key)", arrange: func(*testing.T, *stsdouble.Server) finding.Finding {
			return awsFinding(stsdouble.NewKeyPair())
		}, want: finding.ReasonPartnerRejected, calls: 1},
		{name: "inactive probe (deleted key)", arrange: func(_ *testing.T, d *stsdouble.Server) finding.Finding {
			id, _ := liveKey(d)
			d.DeleteKey(id)
			return awsFinding(id, "")
		}, want: finding.ReasonPartnerRejected, calls: 1},
		{name: "ASIA key id unsupported", arrange: func(_ *testing.T, d *stsdouble.Server) finding.Finding {
			id, secret := liveKey(d)
			return awsFinding("ASIA"+id[4:], secret)
		}, want: finding.ReasonUnsupportedTokenType},
		{name: "other prefix unsupported", arrange: func(*testing.T, *stsdouble.Server) finding.Finding {
			id, _ := stsdouble.NewKeyPair()
			return awsFinding("AIDA"+id[4:], "")
		}, want: finding.ReasonUnsupportedTokenType},
		{name: "malformed key id", arrange: func(*testing.T, *stsdouble.Server) finding.Finding {
			id, _ := stsdouble.NewKeyPair()
			return awsFinding(strings.ToLower(id), "")
		}, want: finding.ReasonMalformedToken},
		{name: "malformed secret", arrange: func(_ *testing.T, d *stsdouble.Server) finding.Finding {
			id, secret := liveKey(d)
			return awsFinding(id, secret[:20])
		}, want: finding.ReasonMalformedToken},
		{name: "token type not aws", tokenType: finding.TokenPostmanAPIKey, arrange: liveWithSecret,
			want: finding.ReasonUnsupportedTokenType},
		{name: "400 Throttling", arrange: func(_ *testing.T, d *stsdouble.Server) finding.Finding {
			d.PushThrottling(1)
			return awsFinding(liveKey(d))
		}, fault: true, kind: verify.RateLimited, httpStatus: 400, calls: 1, limited: 1},
		{name: "429 with Retry-After", arrange: func(_ *testing.T, d *stsdouble.Server) finding.Finding {
			d.Controls.SetRetryAfter("7")
			d.Controls.Push(partnertest.Fault429)
			return awsFinding(liveKey(d))
		}, fault: true, kind: verify.RateLimited, httpStatus: 429, retryAfter: 7 * time.Second, calls: 1, limited: 1},
		{name: "503", arrange: faultOnLive(partnertest.Fault503),
			fault: true, kind: verify.RateLimited, httpStatus: 503, calls: 1, errs: 1},
		{name: "500", arrange: faultOnLive(partnertest.Fault500),
			fault: true, kind: verify.PartnerError, httpStatus: 500, calls: 1, errs: 1},
		{name: "502 HTML", arrange: faultOnLive(partnertest.Fault502),
			fault: true, kind: verify.PartnerError, httpStatus: 502, calls: 1, errs: 1},
		{name: "504 HTML", arrange: faultOnLive(partnertest.Fault504),
			fault: true, kind: verify.PartnerError, httpStatus: 504, calls: 1, errs: 1},
		{name: "connection reset", arrange: faultOnLive(partnertest.FaultReset),
			fault: true, kind: verify.PartnerError, network: true, calls: 1, errs: 1, netErrs: 1},
		{name: "hang until timeout", arrange: faultOnLive(partnertest.FaultHang), timeout: 300 * time.Millisecond,
			fault: true, kind: verify.PartnerError, network: true, calls: 1, errs: 1, netErrs: 1},
		{name: "garbled 200", arrange: faultOnLive(partnertest.FaultGarbled),
			fault: true, kind: verify.PartnerError, httpStatus: 200, calls: 1, errs: 1},
		{name: "empty 200", arrange: faultOnLive(partnertest.FaultEmpty),
			fault: true, kind: verify.PartnerError, httpStatus: 200, calls: 1, errs: 1},
		{name: "truncated 200", arrange: faultOnLive(partnertest.FaultTruncated),
			fault: true, kind: verify.PartnerError, httpStatus: 200, calls: 1, errs: 1},
		{name: "HTML 401 from a proxy", arrange: faultOnLive(partnertest.FaultHTML401),
			fault: true, kind: verify.PartnerError, httpStatus: 401, calls: 1, errs: 1},
		{name: "HTML 403 from a WAF", arrange: faultOnLive(partnertest.FaultHTML403),
			fault: true, kind: verify.PartnerError, httpStatus: 403, calls: 1, errs: 1},
		{name: "signature expired (clock skew) proves nothing", arrange: func(_ *testing.T, d *stsdouble.Server) finding.Finding {
			d.SetClockSkew(time.Hour)
			return awsFinding(liveKey(d))
		}, fault: true, kind: verify.PartnerError, httpStatus: 403, calls: 1, errs: 1},
		{name: "oversized body", arrange: liveWithSecret, transport: func(finding.Finding) http.RoundTripper {
			return transportFunc(func(r *http.Request) (*http.Response, error) {
				return staticResponse(r, 200, "text/xml", "<GetCallerIdentityResponse>"+strings.Repeat(" ", 2*partnerhttp.DefaultMaxBody)), nil
			})
		}, fault: true, kind: verify.PartnerError, httpStatus: 200, errs: 1},
		{name: "other STS error echoing the credential", arrange: liveWithSecret, transport: func(f finding.Finding) http.RoundTripper {
			return transportFunc(func(r *http.Request) (*http.Response, error) {
				msg := "key " + f.Token.Reveal() + " secret " + f.ContextValue(finding.ContextAWSSecretAccessKey) + " auth " + r.Header.Get("Authorization")
				body := `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>` +
					`<Code>AccessDenied</Code><Message>` + msg + `</Message></Error><RequestId>x</RequestId></ErrorResponse>`
				return staticResponse(r, 403, "text/xml", body), nil
			})
		}, fault: true, kind: verify.PartnerError, httpStatus: 403, errs: 1},
		{name: "200 without an account", arrange: liveWithSecret, transport: func(finding.Finding) http.RoundTripper {
			return transportFunc(func(r *http.Request) (*http.Response, error) {
				body := `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult>` +
					`<Arn>arn:aws:iam::x:user/y</Arn></GetCallerIdentityResult></GetCallerIdentityResponse>`
				return staticResponse(r, 200, "text/xml", body), nil
			})
		}, fault: true, kind: verify.PartnerError, httpStatus: 200, errs: 1},
	}
}

func runRow(t *testing.T, rc verifyRow) (finding.Finding, verifiertest.Outcome, *stsdouble.Server) {
	t.Helper()
	d := partnertest.StartDouble(t, stsdouble.Start)
	f := rc.arrange(t, d)
	var rt http.RoundTripper
	if rc.transport != nil {
		rt = rc.transport(f)
	}
	v := harness.NewVerifier(t, rc.timeout, rt, d.URL)
	tt := rc.tokenType
	if tt == "" {
		tt = finding.TokenAWSAccessKey
	}
	return f, harness.Run(v, tt, f), d
}

// harnessWant is the row's expectation for verifiertest.Check: a request
// is made when the double or the row's transport is reached.
func (rc verifyRow) harnessWant() verifiertest.Want {
	requests := int(rc.calls)
	if rc.transport != nil {
		requests = 1
	}
	w := verifiertest.Want{Reason: rc.want, Details: rc.wantDetails, Kind: rc.kind, HTTPStatus: rc.httpStatus, Network: rc.network,
		RetryMin: rc.retryAfter, RetryMax: rc.retryAfter,
		Metrics: metrics.Summary{Requests: requests, Errors: rc.errs, NetworkErrors: rc.netErrs, RateLimitHits: rc.limited}}
	if requests == 0 {
		w.Metrics = metrics.Summary{}
	}
	return w
}

func TestVerify(t *testing.T) {
	for _, rc := range verifyRows() {
		t.Run(rc.name, func(t *testing.T) {
			_, o, d := runRow(t, rc)
			if got := d.Controls.Requests(); got != rc.calls {
				t.Errorf("requests to the double = %d, want %d", got, rc.calls)
			}
			harness.Check(t, o, rc.harnessWant())
			if flt, ok := verify.AsFault(o.Err); ok && flt.Msg == "" {
				t.Errorf("fault does not name its cause: %q", flt.Error())
			}
		})
	}
}

func TestNoFaultYieldsInactive(t *testing.T) {
	faults := partnertest.Faults()[1:]
	if len(faults) < 12 {
		t.Fatalf("found only %d faults in partnertest", len(faults))
	}
	for _, withSecret := range []bool{true, false} {
		for _, fl := range faults {
			t.Run(fmt.Sprintf("%s/secret=%v", fl, withSecret), func(t *testing.T) {
				d := partnertest.StartDouble(t, stsdouble.Start)
				id, secret := stsdouble.NewKeyPair() // unknown to STS: a real answer would be inactive
				if !withSecret {
					secret = ""
				}
				d.Controls.Push(fl)
				v := harness.NewVerifier(t, 300*time.Millisecond, nil, d.URL)
				verdict, err := v.Verify(context.Background(), finding.TokenAWSAccessKey, awsFinding(id, secret))
				if _, ok := verify.AsFault(err); !ok || verdict.Status() == finding.StatusInactive {
					t.Errorf("fault %s: verdict %q, err %v; want a *verify.Fault and no verdict", fl, verdict.Reason, err)
				}
			})
		}
	}
}

// TestSecretsNotReusedAcrossCalls guards against the SDK signer's key cache,
// which is keyed by key id and day, not secret: each call must sign with
// its own finding's secret (or the probe secret).
func TestSecretsNotReusedAcrossCalls(t *testing.T) {
	d := partnertest.StartDouble(t, stsdouble.Start)
	v := harness.NewVerifier(t, 0, nil, d.URL)
	id, secret := liveKey(d)
	_, wrong := stsdouble.NewKeyPair()
	steps := []struct {
		name, secret string
		want         finding.Details
	}{
		{"wrong secret first", wrong, finding.Details{DetailSecretMatches: "false"}},
		{"right secret", secret, finding.Details{DetailAccountID: testAccount, DetailSecretMatches: "true"}},
		{"wrong secret after the right one", wrong, finding.Details{DetailSecretMatches: "false"}},
		{"right secret again", secret, finding.Details{DetailAccountID: testAccount, DetailSecretMatches: "true"}},
		{"probe after the right one", "", nil},
	}
	for _, s := range steps {
		verdict, err := v.Verify(context.Background(), finding.TokenAWSAccessKey, awsFinding(id, s.secret))
		if err != nil || verdict.Reason != finding.ReasonPartnerConfirmed || !maps.Equal(verdict.Details, s.want) {
			t.Errorf("%s: verdict %q details %v err %v; want confirmed with %v", s.name, verdict.Reason, verdict.Details, err, s.want)
		}
	}
}

// TestNoCredentialLeaks runs every row, logs each outcome as the functions
// would (slog JSON) and checks that no key id or secret appears anywhere in
// what a verification produces.
func TestNoCredentialLeaks(t *testing.T) {
	sweep := harness.LeakSweep(t, nil)
	for _, rc := range verifyRows() {
		t.Run(rc.name, func(t *testing.T) {
			f, o, _ := runRow(t, rc)
			sweep.Record(rc.name, f, o.Verdict, o.Err)
			sweep.Secret(f.ContextValue(finding.ContextAWSSecretAccessKey))
		})
	}
	sweep.Check([]string{`"reason":"partner_confirmed"`, "[REDACTED"}, nil)
}

// recorder remembers what the verifier put on the wire.
type recorder struct {
	mu   sync.Mutex
	reqs []*http.Request
	body []string
	base http.RoundTripper
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	b, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	req.Body = io.NopCloser(bytes.NewReader(b))
	r.mu.Lock()
	r.reqs = append(r.reqs, req)
	r.body = append(r.body, string(b))
	r.mu.Unlock()
	return r.base.RoundTrip(req)
}

func TestRequestsGoOnlyToTheConfiguredEndpoint(t *testing.T) {
	d := partnertest.StartDouble(t, stsdouble.Start)
	canary := partnertest.StartDouble(t, stsdouble.Start)
	// The SDK's own endpoint and region settings must not redirect the verifier.
	t.Setenv("AWS_ENDPOINT_URL", canary.URL)
	t.Setenv("AWS_ENDPOINT_URL_STS", canary.URL)
	t.Setenv("AWS_REGION", "eu-west-3")
	t.Setenv("AWS_STS_REGIONAL_ENDPOINTS", "regional")
	rec := &recorder{base: http.DefaultTransport}
	v := harness.NewVerifier(t, 0, rec, d.URL)
	id, secret := liveKey(d)
	for _, s := range []string{secret, ""} {
		if verdict, err := v.Verify(context.Background(), finding.TokenAWSAccessKey, awsFinding(id, s)); err != nil || verdict.Reason != finding.ReasonPartnerConfirmed {
			t.Fatalf("Verify = %q, %v; want partner_confirmed", verdict.Reason, err)
		}
	}
	if canary.Controls.Requests() != 0 {
		t.Errorf("the canary got %d requests", canary.Controls.Requests())
	}
	want, _ := url.Parse(d.URL)
	if len(rec.reqs) != 2 {
		t.Fatalf("sent %d requests, want 2", len(rec.reqs))
	}
	for i, r := range rec.reqs {
		if r.URL.Host != want.Host || r.Method != http.MethodPost {
			t.Errorf("request %d: %s %s, want POST to %s", i, r.Method, r.URL.Host, want.Host)
		}
		if ua := r.Header.Get("User-Agent"); ua != partnerhttp.UserAgent {
			t.Errorf("request %d: User-Agent %q, want %q", i, ua, partnerhttp.UserAgent)
		}
		form, err := url.ParseQuery(rec.body[i])
		if err != nil || form.Get("Action") != "GetCallerIdentity" || form.Get("Version") != stsdouble.APIVersion {
			t.Errorf("request %d: body is not a GetCallerIdentity query: %v", i, err)
		}
		if !strings.Contains(r.Header.Get("Authorization"), "/"+SigningRegion+"/sts/aws4_request") {
			t.Errorf("request %d: not signed for %s/sts", i, SigningRegion)
		}
	}
	if got := d.Controls.CountFor(id); got != 2 {
		t.Errorf("the double counted %d requests for the key, want 2", got)
	}
}

func TestNew(t *testing.T) {
	verifiertest.RefusesEndpoints(t, New, "awspartner: new verifier: ", DefaultEndpoint, "", "ftp://sts.example", "/relative", "http://")
}

func TestOtherTokenTypeUnsupported(t *testing.T) {
	v := harness.NewVerifier(t, 0, nil, "http://127.0.0.1:1")
	verdict, err := v.Verify(context.Background(), finding.TokenPostmanAPIKey, awsFinding(stsdouble.NewKeyPair()))
	if err != nil || verdict.Reason != finding.ReasonUnsupportedTokenType {
		t.Fatalf("Verify = %q, %v; want unsupported_token_type without a call", verdict.Reason, err)
	}
}

func TestCancelledContextIsAFault(t *testing.T) {
	d := partnertest.StartDouble(t, stsdouble.Start)
	verifiertest.CancelledIsAFault(t, harness.NewVerifier(t, 0, nil, d.URL), finding.TokenAWSAccessKey, awsFinding(stsdouble.NewKeyPair()))
}
