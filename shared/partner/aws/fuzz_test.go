package awspartner_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/verifiertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	awspartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/aws"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

// The credentials the fuzzer's responses may echo, by placeholder, drawn
// from a fixed seed; the corpus holds only the placeholders.
var (
	fuzzRand   = verifiertest.NewFuzzRand(0xa115, 0xf022)
	fuzzKeyID  = "AKIA" + fuzzRand.Pick("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)
	fuzzSecret = fuzzRand.Pick("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/+", 40)
)

// FuzzSTSAnswer feeds arbitrary STS answers (status, headers, body, a
// dropped or truncated connection) to the real verifier and holds its
// classification to the contract: it never panics; a fault (no answer,
// a truncated body, 429, 5xx) is always a *verify.Fault, never a verdict;
// partner_rejected comes only from a 403 whose body is STS's own
// ErrorResponse naming InvalidClientTokenId; and neither the key id nor
// the secret appears in any verdict or fault text.
func FuzzSTSAnswer(f *testing.F) {
	srv, v := verifiertest.FuzzTarget(f, awspartner.New)
	f.Fuzz(func(t *testing.T, mode byte, status int, header string, body []byte) {
		resp := partnertest.NewFuzzAnswer(mode, status, header, body, "{{TOKEN}}", fuzzKeyID, "{{SECRET}}", fuzzSecret)
		srv.Set(resp)
		fd := finding.Finding{ID: "f-1", RuleID: "AWS", Token: finding.Secret(fuzzKeyID)}
		if mode&4 != 0 {
			fd.Context = map[string]finding.Secret{finding.ContextAWSSecretAccessKey: finding.Secret(fuzzSecret)}
		}
		verdict, err := v.Verify(context.Background(), finding.TokenAWSAccessKey, fd)
		checkSTSOutcome(t, resp, verdict, err)
	})
}

func checkSTSOutcome(t *testing.T, resp partnertest.FuzzAnswer, verdict verify.Verdict, err error) {
	t.Helper()
	// STS's client reads the status before the body: a 429 cut short is
	// still a rate limit.
	if !(verifiertest.FuzzContract{Secrets: []string{fuzzKeyID, fuzzSecret}, Truncated429: true}).Check(t, resp, verdict, err) {
		return
	}
	switch verdict.Reason {
	case finding.ReasonPartnerConfirmed:
	case finding.ReasonPartnerRejected:
		if !isSTSRejection(resp.Status, resp.Body) {
			t.Fatalf("partner_rejected from http %d with a body that is not STS's InvalidClientTokenId answer: %q", resp.Status, finding.Scrub(string(resp.Body), fuzzKeyID, fuzzSecret))
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

// TestFuzzOracle shows the rejection oracle tells STS's answer from
// look-alikes (partnertest tests the response builder).
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
}
