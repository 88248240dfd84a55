package stsdouble_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/stsdouble"
)

const account = "123456789012"

const queryBody = "Action=GetCallerIdentity&Version=2011-06-15"

func start(t *testing.T) *stsdouble.Server {
	t.Helper()
	s, err := stsdouble.Start("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// sdkCall calls GetCallerIdentity with the real SDK client, as the verifier does.
func sdkCall(t *testing.T, s *stsdouble.Server, keyID, secret string) (*sts.GetCallerIdentityOutput, error) {
	t.Helper()
	c := sts.New(sts.Options{
		Region:       stsdouble.Region,
		BaseEndpoint: aws.String(s.URL),
		Retryer:      aws.NopRetryer{},
		Credentials:  credentials.NewStaticCredentialsProvider(keyID, secret, ""),
	})
	return c.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func TestGetCallerIdentityWithTheSDK(t *testing.T) {
	s := start(t)
	id, secret := stsdouble.NewKeyPairIn(account)
	s.AddKey(id, secret, account)
	out, err := sdkCall(t, s, id, secret)
	if err != nil {
		t.Fatalf("GetCallerIdentity: %v", err)
	}
	if aws.ToString(out.Account) != account {
		t.Errorf("Account = %q, want %q", aws.ToString(out.Account), account)
	}
	if !regexp.MustCompile(`^arn:aws:iam::` + account + `:user/\S+$`).MatchString(aws.ToString(out.Arn)) {
		t.Errorf("Arn = %q, not an IAM user ARN of the account", aws.ToString(out.Arn))
	}
	if !regexp.MustCompile(`^AIDA[A-Z2-7]{17}$`).MatchString(aws.ToString(out.UserId)) {
		t.Errorf("UserId = %q, not an IAM user id", aws.ToString(out.UserId))
	}
}

func TestErrorAnswersWithTheSDK(t *testing.T) {
	tests := []struct {
		name       string
		arrange    func(s *stsdouble.Server) (keyID, secret string)
		wantStatus int
		wantCode   string
		wantMsg    string
	}{
		{"unknown key", func(*stsdouble.Server) (string, string) { return stsdouble.NewKeyPair() },
			403, "InvalidClientTokenId", "The security token included in the request is invalid."},
		{"deleted key", func(s *stsdouble.Server) (string, string) {
			id, secret := stsdouble.NewKeyPair()
			s.AddKey(id, secret, account)
			s.DeleteKey(id)
			return id, secret
		}, 403, "InvalidClientTokenId", "The security token included in the request is invalid."},
		{"wrong secret", func(s *stsdouble.Server) (string, string) {
			id, secret := stsdouble.NewKeyPair()
			s.AddKey(id, secret, account)
			_, other := stsdouble.NewKeyPair()
			return id, other
		}, 403, "SignatureDoesNotMatch", "The request signature we calculated does not match"},
		{"old secret after the key was re-added", func(s *stsdouble.Server) (string, string) {
			id, old := stsdouble.NewKeyPair()
			s.AddKey(id, old, account)
			if _, err := sdkCall(t, s, id, old); err != nil {
				t.Fatalf("first call with the first secret: %v", err)
			}
			_, renewed := stsdouble.NewKeyPair()
			s.AddKey(id, renewed, account)
			return id, old
		}, 403, "SignatureDoesNotMatch", "The request signature we calculated does not match"},
		{"throttled", func(s *stsdouble.Server) (string, string) {
			id, secret := stsdouble.NewKeyPair()
			s.AddKey(id, secret, account)
			s.PushThrottling(1)
			return id, secret
		}, 400, "Throttling", "Rate exceeded"},
		{"clock skew", func(s *stsdouble.Server) (string, string) {
			id, secret := stsdouble.NewKeyPair()
			s.AddKey(id, secret, account)
			s.SetClockSkew(-time.Hour)
			return id, secret
		}, 403, "SignatureDoesNotMatch", "Signature expired"},
		{"generic 500 fault in STS format", func(s *stsdouble.Server) (string, string) {
			s.Controls.Push(partnertest.Fault500)
			return stsdouble.NewKeyPair()
		}, 500, "InternalError", "internal error"},
		{"generic 429 fault in STS format", func(s *stsdouble.Server) (string, string) {
			s.Controls.Push(partnertest.Fault429)
			return stsdouble.NewKeyPair()
		}, 429, "TooManyRequests", "rate limit exceeded"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := start(t)
			id, secret := tc.arrange(s)
			_, err := sdkCall(t, s, id, secret)
			var re interface{ HTTPStatusCode() int }
			if !errors.As(err, &re) || re.HTTPStatusCode() != tc.wantStatus {
				t.Fatalf("err = %v, want HTTP %d", err, tc.wantStatus)
			}
			var ae smithy.APIError
			if !errors.As(err, &ae) || ae.ErrorCode() != tc.wantCode || !strings.HasPrefix(ae.ErrorMessage(), tc.wantMsg) {
				t.Errorf("err = %v, want %s: %s", err, tc.wantCode, tc.wantMsg)
			}
		})
	}
}

func TestThrottlingIsCountedDown(t *testing.T) {
	s := start(t)
	id, secret := stsdouble.NewKeyPairIn(account)
	s.AddKey(id, secret, account)
	s.PushThrottling(2)
	var codes []string
	for range 3 {
		_, err := sdkCall(t, s, id, secret)
		codes = append(codes, apiCode(err))
	}
	if strings.Join(codes, ",") != "Throttling,Throttling," {
		t.Errorf("codes = %q, want two Throttling answers then success", codes)
	}
	if got := s.Controls.CountFor(id); got != 3 {
		t.Errorf("CountFor = %d, want 3", got)
	}
	if got := s.Controls.CountFor("AKIAOTHERKEY00000000"); got != 0 {
		t.Errorf("CountFor(other key) = %d, want 0", got)
	}
}

// signedRequest builds a GetCallerIdentity POST signed as the SDK does.
func signedRequest(t *testing.T, s *stsdouble.Server, keyID, secret, body string, at time.Time) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	sum := sha256.Sum256([]byte(body))
	creds := aws.Credentials{AccessKeyID: keyID, SecretAccessKey: secret}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), stsdouble.Service, stsdouble.Region, at); err != nil {
		t.Fatal(err)
	}
	return req
}

type errorResponse struct {
	XMLName xml.Name `xml:"https://sts.amazonaws.com/doc/2011-06-15/ ErrorResponse"`
	Error   struct {
		Type, Code, Message string
	}
	RequestID string `xml:"RequestId"`
}

type identityResponse struct {
	XMLName xml.Name `xml:"https://sts.amazonaws.com/doc/2011-06-15/ GetCallerIdentityResponse"`
	Result  struct {
		Arn, UserID, Account string
	} `xml:"GetCallerIdentityResult"`
	Metadata struct {
		RequestID string `xml:"RequestId"`
	} `xml:"ResponseMetadata"`
}

// send does a raw request and returns the status, the STS error code ("" on
// success, after checking the success body's shape) and the headers.
func send(t *testing.T, req *http.Request) (int, string, http.Header) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("Content-Type") != "text/xml" || resp.Header.Get("X-Amzn-Requestid") == "" {
		t.Errorf("headers %v: want text/xml and x-amzn-RequestId", resp.Header)
	}
	if resp.StatusCode == http.StatusOK {
		var ok identityResponse
		if err := xml.Unmarshal(b, &ok); err != nil || ok.Result.Account == "" || ok.Metadata.RequestID == "" {
			t.Errorf("200 body is not a GetCallerIdentityResponse: %v", err)
		}
		return resp.StatusCode, "", resp.Header
	}
	var er errorResponse
	if err := xml.Unmarshal(b, &er); err != nil || er.Error.Code == "" || er.RequestID == "" {
		t.Fatalf("HTTP %d body is not an STS ErrorResponse: %v", resp.StatusCode, err)
	}
	wantType := "Sender"
	if resp.StatusCode >= 500 {
		wantType = "Receiver"
	}
	if er.Error.Type != wantType {
		t.Errorf("Error.Type = %q, want %q", er.Error.Type, wantType)
	}
	return resp.StatusCode, er.Error.Code, resp.Header
}

// TestSignatureIsVerified tampers with a correctly signed request in every
// part the signature covers: only the untouched request is accepted.
func TestSignatureIsVerified(t *testing.T) {
	tests := []struct {
		name       string
		tamper     func(*http.Request)
		wantStatus int
		wantCode   string
	}{
		{"untouched", func(*http.Request) {}, 200, ""},
		{"body changed", func(r *http.Request) {
			r.Body = io.NopCloser(strings.NewReader(queryBody + "&Extra=1"))
			r.ContentLength = int64(len(queryBody) + len("&Extra=1"))
		}, 403, "SignatureDoesNotMatch"},
		{"signed header changed", func(r *http.Request) {
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}, 403, "SignatureDoesNotMatch"},
		{"X-Amz-Date moved by a second", func(r *http.Request) {
			at, _ := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
			r.Header.Set("X-Amz-Date", at.Add(time.Second).Format("20060102T150405Z"))
		}, 403, "SignatureDoesNotMatch"},
		{"query added", func(r *http.Request) { r.URL.RawQuery = "Action=AssumeRole" }, 403, "SignatureDoesNotMatch"},
		{"path changed", func(r *http.Request) { r.URL.Path = "/other" }, 403, "SignatureDoesNotMatch"},
		{"signature flipped", func(r *http.Request) {
			a := r.Header.Get("Authorization")
			last := a[len(a)-1]
			flip := byte('0')
			if last == '0' {
				flip = '1'
			}
			r.Header.Set("Authorization", a[:len(a)-1]+string(flip))
		}, 403, "SignatureDoesNotMatch"},
		{"header dropped from SignedHeaders", func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "content-type;", "", 1))
		}, 403, "SignatureDoesNotMatch"},
		{"other key id in the credential", func(r *http.Request) {
			other, _ := stsdouble.NewKeyPair()
			a := r.Header.Get("Authorization")
			i := strings.Index(a, "Credential=") + len("Credential=")
			r.Header.Set("Authorization", a[:i]+other+a[i+20:])
		}, 403, "InvalidClientTokenId"},
		{"wrong region in the scope", func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/us-east-1/", "/eu-west-1/", 1))
		}, 403, "SignatureDoesNotMatch"},
		{"no Authorization", func(r *http.Request) { r.Header.Del("Authorization") }, 403, "MissingAuthenticationToken"},
		{"garbage Authorization", func(r *http.Request) { r.Header.Set("Authorization", "Bearer x") }, 400, "IncompleteSignature"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := start(t)
			id, secret := stsdouble.NewKeyPair()
			s.AddKey(id, secret, account)
			req := signedRequest(t, s, id, secret, queryBody, time.Now())
			tc.tamper(req)
			status, code, _ := send(t, req)
			if status != tc.wantStatus || code != tc.wantCode {
				t.Errorf("answer = %d %q, want %d %q", status, code, tc.wantStatus, tc.wantCode)
			}
		})
	}
}

func TestQueryProtocol(t *testing.T) {
	tests := []struct {
		name, body string
		wantStatus int
		wantCode   string
	}{
		{"GetCallerIdentity", queryBody, 200, ""},
		{"other action", "Action=AssumeRole&Version=2011-06-15", 400, "InvalidAction"},
		{"other version", "Action=GetCallerIdentity&Version=2020-01-01", 400, "InvalidAction"},
		{"no action", "Version=2011-06-15", 400, "InvalidAction"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := start(t)
			id, secret := stsdouble.NewKeyPair()
			s.AddKey(id, secret, account)
			status, code, _ := send(t, signedRequest(t, s, id, secret, tc.body, time.Now()))
			if status != tc.wantStatus || code != tc.wantCode {
				t.Errorf("answer = %d %q, want %d %q", status, code, tc.wantStatus, tc.wantCode)
			}
		})
	}
}

func TestGenericFaultsAreSTSShaped(t *testing.T) {
	for _, tc := range []struct {
		fault      partnertest.Fault
		wantStatus int
		wantCode   string
	}{
		{partnertest.Fault500, 500, "InternalError"},
		{partnertest.Fault503, 503, "ServiceUnavailable"},
		{partnertest.Fault429, 429, "TooManyRequests"},
	} {
		t.Run(tc.fault.String(), func(t *testing.T) {
			s := start(t)
			s.Controls.SetRetryAfter("3")
			s.Controls.Push(tc.fault)
			id, secret := stsdouble.NewKeyPair()
			status, code, hdr := send(t, signedRequest(t, s, id, secret, queryBody, time.Now()))
			if status != tc.wantStatus || code != tc.wantCode {
				t.Errorf("answer = %d %q, want %d %q", status, code, tc.wantStatus, tc.wantCode)
			}
			if tc.fault == partnertest.Fault429 && hdr.Get("Retry-After") != "3" {
				t.Errorf("Retry-After = %q, want 3", hdr.Get("Retry-After"))
			}
		})
	}
}

func TestNewKeyPair(t *testing.T) {
	keyRE := regexp.MustCompile(`^AKIA[A-Z2-7]{16}$`)
	seen := map[string]bool{}
	for range 50 {
		id, secret := stsdouble.NewKeyPair()
		if !keyRE.MatchString(id) {
			t.Fatalf("key id has the wrong format (len %d)", len(id))
		}
		raw, err := base64.StdEncoding.DecodeString(secret)
		if len(secret) != 40 || err != nil || len(raw) != 30 {
			t.Fatalf("secret is not 40 base64 characters (len %d, %v)", len(secret), err)
		}
		if seen[id] || seen[secret] {
			t.Fatal("NewKeyPair repeated a value")
		}
		seen[id], seen[secret] = true, true
	}
}

// TestAccountIsTheKeyIDs: as with STS, a current-format key id answers
// with the account it encodes, whatever AddKey was told; a legacy key id,
// which encodes none, with the account AddKey was given.
func TestAccountIsTheKeyIDs(t *testing.T) {
	s := start(t)
	id, secret := stsdouble.NewKeyPairIn("609629065308")
	s.AddKey(id, secret, account)
	if out, err := sdkCall(t, s, id, secret); err != nil || aws.ToString(out.Account) != "609629065308" {
		t.Errorf("current key id: account %q, %v; want the key id's", aws.ToString(out.Account), err)
	}
	legacy := "AKIAIOSFODNN7EXAMPLE"
	s.AddKey(legacy, secret, account)
	if out, err := sdkCall(t, s, legacy, secret); err != nil || aws.ToString(out.Account) != account {
		t.Errorf("legacy key id: account %q, %v; want %s", aws.ToString(out.Account), err, account)
	}
	for _, tc := range []struct{ id, want string }{
		{"ASIAY34FZKBOKMUTVV7A", "609629065308"}, // Aidan Steele's example, Tal Be'ery's decoding
		{stsdouble.KeyID("ASIA", "000000000042"), "000000000042"},
		{legacy, ""}, {"AROAY34FZKBOKMUTVV7A", ""}, {"AKIAY34FZKBOKMUTVV70", ""},
	} {
		if got, ok := stsdouble.AccountOf(tc.id); got != tc.want || ok != (tc.want != "") {
			t.Errorf("AccountOf(%s) = %q, %v; want %q", tc.id, got, ok, tc.want)
		}
	}
}
