package awspartner_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	awspartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/aws"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

// The credentials the fuzzer's responses may echo, by placeholder. They are
// generated from a fixed seed so that a failing input reproduces, and the
// corpus holds only the placeholders.
var (
	fuzzRand   = rand.New(rand.NewPCG(0xa115, 0xf022))
	fuzzKeyID  = "AKIA" + fuzzPick("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)
	fuzzSecret = fuzzPick("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/+", 40)
)

func fuzzPick(alphabet string, n int) string {
	var b strings.Builder
	for range n {
		b.WriteByte(alphabet[fuzzRand.IntN(len(alphabet))])
	}
	return b.String()
}

// fuzzResponse is one answer the fuzzed server gives.
type fuzzResponse struct {
	status int // 0: close the connection without an answer
	header http.Header
	body   []byte
	// truncate declares a longer Content-Length than the body it sends.
	truncate bool
}

var fuzzHeaderName = regexp.MustCompile(`^[A-Za-z0-9-]{1,64}$`)

// newFuzzResponse turns the fuzzer's arguments into an answer: mode's low
// bits choose a normal answer, a dropped connection or a truncated body;
// a status outside 200..999 is a dropped connection too; header lines
// "Name: value" are kept when HTTP can carry them; the placeholders
// {{TOKEN}} and {{SECRET}} become the credentials under test.
func newFuzzResponse(mode byte, status int, header string, body []byte, token, secret string) fuzzResponse {
	expand := func(s string) string {
		return strings.ReplaceAll(strings.ReplaceAll(s, "{{TOKEN}}", token), "{{SECRET}}", secret)
	}
	r := fuzzResponse{status: status, header: http.Header{}, body: []byte(expand(string(body)))}
	if r.status < 200 || r.status > 999 || mode&3 == 1 {
		r.status = 0
	}
	r.truncate = mode&3 == 2
	for _, line := range strings.Split(header, "\n") {
		name, value, ok := strings.Cut(line, ":")
		name, value = strings.TrimSpace(name), strings.TrimSpace(expand(value))
		switch strings.ToLower(name) {
		case "content-length", "transfer-encoding", "connection", "trailer", "content-encoding":
			continue
		}
		if ok && fuzzHeaderName.MatchString(name) && !strings.ContainsAny(value, "\r\n\x00") {
			r.header.Add(name, value)
		}
	}
	return r
}

// fuzzServer answers every request with the current fuzzResponse.
type fuzzServer struct {
	*httptest.Server
	current atomic.Pointer[fuzzResponse]
}

func newFuzzServer(tb testing.TB) *fuzzServer {
	s := &fuzzServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		resp := s.current.Load()
		if resp.status == 0 || resp.truncate {
			conn, buf, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			if resp.status != 0 {
				fmt.Fprintf(buf, "HTTP/1.1 %d %s\r\n", resp.status, http.StatusText(resp.status))
				_ = resp.header.Write(buf)
				fmt.Fprintf(buf, "Content-Length: %d\r\n\r\n", len(resp.body)+16)
				_, _ = buf.Write(resp.body)
				_ = buf.Flush()
			}
			return
		}
		for k, vs := range resp.header {
			w.Header()[k] = vs
		}
		w.WriteHeader(resp.status)
		_, _ = w.Write(resp.body)
	}))
	tb.Cleanup(s.Close)
	return s
}

// FuzzSTSAnswer feeds arbitrary STS answers (status, headers, body, a
// dropped or truncated connection) to the real verifier and holds its
// classification to the contract: it never panics; a fault (no answer,
// a truncated body, 429, 5xx) is always a *verify.Fault, never a verdict;
// partner_rejected comes only from a 403 whose body is STS's own
// ErrorResponse naming InvalidClientTokenId; and neither the key id nor
// the secret appears in any verdict or fault text.
func FuzzSTSAnswer(f *testing.F) {
	srv := newFuzzServer(f)
	u, err := url.Parse(srv.URL)
	if err != nil {
		f.Fatal(err)
	}
	v, err := awspartner.New(awspartner.Config{Endpoint: u, Timeout: 5 * time.Second})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, mode byte, status int, header string, body []byte) {
		resp := newFuzzResponse(mode, status, header, body, fuzzKeyID, fuzzSecret)
		srv.current.Store(&resp)
		fd := finding.Finding{ID: "f-1", RuleID: "AWS", Token: finding.Secret(fuzzKeyID)}
		if mode&4 != 0 {
			fd.Context = map[string]finding.Secret{finding.ContextAWSSecretAccessKey: finding.Secret(fuzzSecret)}
		}
		verdict, err := v.Verify(context.Background(), finding.TokenAWSAccessKey, fd)
		checkSTSOutcome(t, resp, verdict, err)
	})
}

func checkSTSOutcome(t *testing.T, resp fuzzResponse, verdict verify.Verdict, err error) {
	t.Helper()
	text := verdict.Message + fmt.Sprint(verdict.Details)
	if err != nil {
		text += err.Error()
	}
	for _, c := range []string{fuzzKeyID, fuzzSecret} {
		if strings.Contains(text, c) {
			t.Fatalf("a credential (%d bytes) appears in the verdict or fault text", len(c))
		}
	}
	if err != nil {
		fault, ok := verify.AsFault(err)
		if !ok {
			t.Fatalf("error %q is not a *verify.Fault", err)
		}
		if verdict.Reason != "" {
			t.Fatalf("both a verdict (%s) and a fault", verdict.Reason)
		}
		if resp.status == http.StatusTooManyRequests && fault.Kind != verify.RateLimited {
			t.Fatalf("a 429 is a %s fault, want rate limited", fault.Kind)
		}
		return
	}
	switch {
	case resp.status == 0:
		t.Fatalf("no answer yielded verdict %s", verdict.Reason)
	case resp.truncate:
		t.Fatalf("a truncated answer (http %d) yielded verdict %s", resp.status, verdict.Reason)
	case resp.status == http.StatusTooManyRequests || resp.status >= 500:
		t.Fatalf("http %d yielded verdict %s", resp.status, verdict.Reason)
	}
	switch verdict.Reason {
	case finding.ReasonPartnerConfirmed:
	case finding.ReasonPartnerRejected:
		if !isSTSRejection(resp.status, resp.body) {
			t.Fatalf("partner_rejected from http %d with a body that is not STS's InvalidClientTokenId answer: %q", resp.status, finding.Scrub(string(resp.body), fuzzKeyID, fuzzSecret))
		}
	default:
		t.Fatalf("verdict %q for a well-formed key", verdict.Reason)
	}
}

// isSTSRejection is STS's answer for an unknown or deleted key id: a 403
// whose whole body is one well-formed ErrorResponse document with one
// Error element whose Code is InvalidClientTokenId.
func isSTSRejection(status int, body []byte) bool {
	if status != http.StatusForbidden {
		return false
	}
	dec := xml.NewDecoder(bytes.NewReader(body))
	var root *xml.StartElement
	depth, nErrors, code := 0, 0, ""
	var path []string
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return false
		}
		switch el := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				if root != nil {
					return false // a second root element
				}
				root = &el
			}
			path = append(path, el.Name.Local)
			depth++
			if depth == 2 && el.Name.Local == "Error" {
				nErrors++
			}
		case xml.EndElement:
			depth--
			path = path[:len(path)-1]
		case xml.CharData:
			if depth == 3 && path[1] == "Error" && path[2] == "Code" {
				code += string(el)
			} else if depth == 0 && len(bytes.TrimSpace(el)) > 0 {
				return false // text outside the document
			}
		}
	}
	return root != nil && root.Name.Local == "ErrorResponse" && nErrors == 1 && code == "InvalidClientTokenId"
}

// TestFuzzOracle shows the rejection oracle and the response builder do
// what the fuzz target relies on.
func TestFuzzOracle(t *testing.T) {
	const sts = `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>InvalidClientTokenId</Code><Message>The security token included in the request is invalid.</Message></Error><RequestId>0f6c8d0e</RequestId></ErrorResponse>`
	cases := []struct {
		name   string
		status int
		body   string
		want   bool
	}{
		{"STS's answer", 403, sts, true},
		{"with an XML declaration", 403, `<?xml version="1.0"?>` + "\n" + sts + "\n", true},
		{"same body with 400", 400, sts, false},
		{"another code", 403, strings.Replace(sts, "InvalidClientTokenId", "SignatureDoesNotMatch", 1), false},
		{"bare Error element", 403, `<Error><Code>InvalidClientTokenId</Code></Error>`, false},
		{"lower-case error element", 403, `<ErrorResponse><error><Code>InvalidClientTokenId</Code></error></ErrorResponse>`, false},
		{"truncated document", 403, sts[:len(sts)-len("</ErrorResponse>")], false},
		{"two Error elements", 403, `<ErrorResponse><Error><Code>InvalidClientTokenId</Code></Error><Error><Code>X</Code></Error></ErrorResponse>`, false},
		{"trailing text", 403, sts + "garbage", false},
		{"HTML page", 403, `<html><body><h1>403 Forbidden</h1></body></html>`, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := isSTSRejection(tc.status, []byte(tc.body)); got != tc.want {
				t.Fatalf("isSTSRejection = %v, want %v", got, tc.want)
			}
		})
	}
	r := newFuzzResponse(0, 403, "X-Echo: {{TOKEN}}\nContent-Length: 1\nbad header\n", []byte("{{SECRET}}"), "tok", "sec")
	if r.header.Get("X-Echo") != "tok" || r.header.Get("Content-Length") != "" || len(r.header) != 1 || string(r.body) != "sec" {
		t.Fatalf("newFuzzResponse = %+v", r)
	}
	if r := newFuzzResponse(1, 200, "", nil, "", ""); r.status != 0 {
		t.Fatalf("mode 1 is a dropped connection, got status %d", r.status)
	}
	if r := newFuzzResponse(2, 200, "", nil, "", ""); !r.truncate {
		t.Fatal("mode 2 is a truncated body")
	}
	if r := newFuzzResponse(0, 99, "", nil, "", ""); r.status != 0 {
		t.Fatalf("status 99 is a dropped connection, got %d", r.status)
	}
}
