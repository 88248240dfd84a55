// Package stsdouble is a double of AWS STS that serves GetCallerIdentity over
// the Query protocol and verifies each request's SigV4 signature against a
// key table, answering in STS's own XML formats, so that the real
// aws-sdk-go-v2 STS client cannot tell it from the service.
package stsdouble

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
)

// STS protocol constants the double holds requests to.
const (
	// Region is the signing region of the global endpoint sts.amazonaws.com.
	Region = "us-east-1"
	// Service is the signing name of STS.
	Service = "sts"
	// APIVersion is the only Query API version STS serves.
	APIVersion = "2011-06-15"

	xmlns        = "https://sts.amazonaws.com/doc/2011-06-15/"
	amzDateFmt   = "20060102T150405Z"
	algorithm    = "AWS4-HMAC-SHA256"
	maxBodyBytes = 64 * 1024
	// maxClockSkew is how far X-Amz-Date may be from the server's clock.
	maxClockSkew = 15 * time.Minute
)

// Messages STS sends with its error codes. The codes, their statuses
// (InvalidClientTokenId 403, MissingAuthenticationToken 403,
// IncompleteSignature 400, MalformedQueryString, InvalidAction 400,
// Throttling 400) are AWS's common errors
// (https://docs.aws.amazon.com/STS/latest/APIReference/CommonErrors.html;
// the same list in the SDKs' error enums). The messages are as observed in
// the aws-cli/SDK error strings users quote; AWS documents none of them word
// for word, and the verifier reads the code, never the message.
// ../shared/PARTNERS.md has no STS section.
const (
	msgInvalidClientTokenID = "The security token included in the request is invalid."
	msgSignatureMismatch    = "The request signature we calculated does not match the signature you provided. " +
		"Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
	msgMissingAuth = "Request is missing Authentication Token"
	msgThrottling  = "Rate exceeded"
)

type identity struct {
	secret, account, userID, arn string
}

// Server is a running STS double.
type Server struct {
	*partnertest.Server

	mu       sync.RWMutex
	keys     map[string]identity
	skew     time.Duration
	throttle atomic.Int64
	users    atomic.Int64
}

// Start serves the double on addr ("" picks a free loopback port).
func Start(addr string) (*Server, error) {
	s := &Server{keys: map[string]identity{}}
	ps, err := partnertest.Serve(addr, http.HandlerFunc(s.serveHTTP), writeError)
	if err != nil {
		return nil, fmt.Errorf("stsdouble: start: %w", err)
	}
	s.Server = ps
	return s, nil
}

// AddKey registers a live access key: requests signed with keyID and secret
// get the caller identity of an IAM user. As with STS, the account is the
// one a current-format key id encodes (see AccountOf); account is the
// account of a legacy key id (AKIAI…, AKIAJ…), which encodes none.
func (s *Server) AddKey(keyID, secret, account string) {
	if a, ok := AccountOf(keyID); ok {
		account = a
	}
	n := s.users.Add(1)
	id := identity{
		secret:  secret,
		account: account,
		userID:  "AIDA" + randomBase32(17),
		arn:     fmt.Sprintf("arn:aws:iam::%s:user/double-user-%d", account, n),
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[keyID] = id
}

// DeleteKey removes a key, as deleting an IAM access key does: requests with
// it then get InvalidClientTokenId.
func (s *Server) DeleteKey(keyID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.keys, keyID)
}

// PushThrottling makes the next n requests get STS's 400 Throttling answer.
func (s *Server) PushThrottling(n int) { s.throttle.Add(int64(n)) }

// SetClockSkew moves the double's clock by d, to provoke STS's "Signature
// expired" answer to requests signed with the caller's clock.
func (s *Server) SetClockSkew(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.skew = d
}

// takeThrottle consumes one pushed Throttling answer, if any is left.
func (s *Server) takeThrottle() bool {
	for {
		n := s.throttle.Load()
		if n <= 0 {
			return false
		}
		if s.throttle.CompareAndSwap(n, n-1) {
			return true
		}
	}
}

func (s *Server) now() time.Time {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return time.Now().Add(s.skew)
}

func (s *Server) lookup(keyID string) (identity, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	id, ok := s.keys[keyID]
	return id, ok
}

// authHeader is a parsed SigV4 Authorization header.
type authHeader struct {
	keyID, date, region, service string
	signedHeaders                string
	signature                    string
}

// parseAuth reads "AWS4-HMAC-SHA256 Credential=K/D/R/S/aws4_request,
// SignedHeaders=a;b, Signature=hex".
func parseAuth(h string) (authHeader, bool) {
	alg, rest, ok := strings.Cut(h, " ")
	if !ok || alg != algorithm {
		return authHeader{}, false
	}
	var a authHeader
	var cred string
	for part := range strings.SplitSeq(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return authHeader{}, false
		}
		switch k {
		case "Credential":
			cred = v
		case "SignedHeaders":
			a.signedHeaders = v
		case "Signature":
			a.signature = v
		}
	}
	scope := strings.Split(cred, "/")
	if len(scope) != 5 || scope[4] != "aws4_request" || a.signedHeaders == "" || a.signature == "" {
		return authHeader{}, false
	}
	a.keyID, a.date, a.region, a.service = scope[0], scope[1], scope[2], scope[3]
	return a, a.keyID != ""
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	if err != nil {
		return // the client went away
	}
	if len(body) > maxBodyBytes {
		writeError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "Request body too large")
		return
	}
	auth, hasAuth := parseAuth(r.Header.Get("Authorization"))
	if hasAuth {
		s.Controls.CountKey(auth.keyID)
	}
	if s.takeThrottle() {
		// STS throttles with 400 Throttling "Rate exceeded" (common errors,
		// above), not 429, and sends no Retry-After: the wait is the
		// verifier's own backoff. Its quota is per calling account (IAM and
		// STS quotas, the Rate.Source of the aws Definition).
		writeError(w, http.StatusBadRequest, "Throttling", msgThrottling)
		return
	}
	switch {
	case r.Header.Get("Authorization") == "":
		// Without the required Authorization header: 403
		// MissingAuthenticationToken (common errors, above).
		writeError(w, http.StatusForbidden, "MissingAuthenticationToken", msgMissingAuth)
		return
	case !hasAuth:
		writeError(w, http.StatusBadRequest, "IncompleteSignature",
			"Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters.")
		return
	}
	signedAt, err := time.Parse(amzDateFmt, r.Header.Get("X-Amz-Date"))
	if err != nil || auth.date != signedAt.Format("20060102") {
		writeError(w, http.StatusBadRequest, "IncompleteSignature",
			"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP.")
		return
	}
	if auth.service != Service {
		writeError(w, http.StatusForbidden, "SignatureDoesNotMatch", "Credential should be scoped to correct service: 'sts'.")
		return
	}
	if auth.region != Region {
		writeError(w, http.StatusForbidden, "SignatureDoesNotMatch", "Credential should be scoped to a valid region.")
		return
	}
	// A request signed more than 15 minutes from the server's clock: 403
	// SignatureDoesNotMatch "Signature expired" (SigV4 docs, "Elements of an
	// AWS API request signature": 15 minutes; the common errors list it as
	// RequestExpired for some services, STS answers SignatureDoesNotMatch as
	// observed in SDK issues; sources disagree, the verifier treats both as
	// partner_error).
	if now := s.now(); signedAt.Sub(now).Abs() > maxClockSkew {
		writeError(w, http.StatusForbidden, "SignatureDoesNotMatch", fmt.Sprintf(
			"Signature expired: %s is now earlier than %s (%s - 15 min.)",
			signedAt.Format(amzDateFmt), now.Add(-maxClockSkew).UTC().Format(amzDateFmt), now.UTC().Format(amzDateFmt)))
		return
	}
	// An unknown or deleted key id: 403 InvalidClientTokenId; a known key id
	// signed with the wrong secret: 403 SignatureDoesNotMatch (common errors,
	// above). STS checks the key id first, which is why a key id alone proves
	// a key live: the "valid but restricted" answer of STS, as the README's
	// verifier table says. GetCallerIdentity needs no permission
	// (STS API reference, GetCallerIdentity), so no AccessDenied exists here.
	id, ok := s.lookup(auth.keyID)
	if !ok {
		writeError(w, http.StatusForbidden, "InvalidClientTokenId", msgInvalidClientTokenID)
		return
	}
	if !signatureMatches(r, body, auth, id.secret, signedAt) {
		writeError(w, http.StatusForbidden, "SignatureDoesNotMatch", msgSignatureMismatch)
		return
	}
	params, err := queryParams(r, body)
	if err != nil {
		writeError(w, http.StatusBadRequest, "MalformedQueryString", "The query string is malformed.")
		return
	}
	action, version := params.Get("Action"), params.Get("Version")
	if action != "GetCallerIdentity" || version != APIVersion {
		writeError(w, http.StatusBadRequest, "InvalidAction",
			fmt.Sprintf("Could not find operation %s for version %s", xmlText(action), xmlText(version)))
		return
	}
	writeIdentity(w, id)
}

// signatureMatches recomputes the signature with the SDK's signer over a
// request rebuilt from exactly the headers the client said it signed, the
// received body's hash and the client's X-Amz-Date, and compares in
// constant time. A request changed after signing (body, signed header,
// path, query) or signed with another secret does not match.
func signatureMatches(r *http.Request, body []byte, auth authHeader, secret string, signedAt time.Time) bool {
	u := &url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
	re, err := http.NewRequestWithContext(context.Background(), r.Method, u.String(), nil)
	if err != nil {
		return false
	}
	re.Host = r.Host
	for name := range strings.SplitSeq(auth.signedHeaders, ";") {
		switch name {
		case "host":
		case "content-length":
			re.ContentLength = r.ContentLength
		default:
			ck := textproto.CanonicalMIMEHeaderKey(name)
			if vs := r.Header.Values(ck); len(vs) > 0 {
				re.Header[ck] = append([]string(nil), vs...)
			}
		}
	}
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: auth.keyID, SecretAccessKey: secret}
	// A new signer each time: the SDK's caches the derived key by key id
	// and day, not by secret, so a shared one would keep checking a
	// re-added key against its old secret.
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, re, hex.EncodeToString(sum[:]), auth.service, auth.region, signedAt); err != nil {
		return false
	}
	want, ok := parseAuth(re.Header.Get("Authorization"))
	if !ok {
		return false
	}
	// The signed-header list is compared too: a client that left a header
	// out of the signature must not pass because the rebuilt request did.
	headersOK := subtle.ConstantTimeCompare([]byte(want.signedHeaders), []byte(auth.signedHeaders))
	sigOK := subtle.ConstantTimeCompare([]byte(want.signature), []byte(auth.signature))
	return headersOK&sigOK == 1
}

// queryParams merges the URL query and, for a form POST, the body, as STS
// accepts Query-protocol parameters in either.
func queryParams(r *http.Request, body []byte) (url.Values, error) {
	params, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, err
	}
	if r.Method == http.MethodPost && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, err
		}
		for k, vs := range form {
			params[k] = append(params[k], vs...)
		}
	}
	return params, nil
}

type responseMetadata struct {
	RequestID string `xml:"RequestId"`
}

type callerIdentityResponse struct {
	XMLName xml.Name `xml:"GetCallerIdentityResponse"`
	Xmlns   string   `xml:"xmlns,attr"`
	Result  struct {
		Arn     string `xml:"Arn"`
		UserID  string `xml:"UserId"`
		Account string `xml:"Account"`
	} `xml:"GetCallerIdentityResult"`
	Metadata responseMetadata `xml:"ResponseMetadata"`
}

type errorResponse struct {
	XMLName xml.Name `xml:"ErrorResponse"`
	Xmlns   string   `xml:"xmlns,attr"`
	Error   struct {
		Type    string `xml:"Type"`
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	} `xml:"Error"`
	RequestID string `xml:"RequestId"`
}

// writeIdentity is the 200 of GetCallerIdentity: Arn, UserId, Account and
// ResponseMetadata.RequestId in the 2011-06-15 namespace
// (https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html).
func writeIdentity(w http.ResponseWriter, id identity) {
	resp := callerIdentityResponse{Xmlns: xmlns}
	resp.Result.Arn, resp.Result.UserID, resp.Result.Account = id.arn, id.userID, id.account
	resp.Metadata.RequestID = requestID()
	writeXML(w, http.StatusOK, resp.Metadata.RequestID, resp)
}

// writeError answers in STS's ErrorResponse format (Type Sender/Receiver,
// Code, Message, RequestId: the Query protocol's error document, as the
// SDK's awsquery error deserializer reads it); it is also the
// partnertest.ErrorWriter for the generic faults. STS's own 429 and 503 are
// not documented for GetCallerIdentity; the double serves them in this
// format so the verifier's status rules are exercised.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	resp := errorResponse{Xmlns: xmlns, RequestID: requestID()}
	resp.Error.Type = "Sender"
	if status >= 500 {
		resp.Error.Type = "Receiver"
	}
	resp.Error.Code, resp.Error.Message = code, msg
	writeXML(w, status, resp.RequestID, resp)
}

func writeXML(w http.ResponseWriter, status int, reqID string, v any) {
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	if err := xml.NewEncoder(&buf).Encode(v); err != nil {
		http.Error(w, "stsdouble: encode response", http.StatusInternalServerError)
		return
	}
	buf.WriteByte('\n')
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("X-Amzn-Requestid", reqID)
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// xmlText bounds a request value echoed in an error message.
func xmlText(s string) string {
	if len(s) > 64 {
		return s[:64]
	}
	return s
}

// requestID is a random UUID-shaped id, like STS's x-amzn-RequestId.
func requestID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

const base32Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

func randomBase32(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = base32Alphabet[int(b[i])%len(base32Alphabet)]
	}
	return string(b)
}

// NewKeyPair generates a random long-term access key pair in AWS's formats
// (AKIA + 16 base32 characters, a 40-character base64 secret), for tests.
// The key id is of the current format, in a random account.
func NewKeyPair() (keyID, secret string) {
	var n [8]byte
	_, _ = rand.Read(n[:])
	account := fmt.Sprintf("%012d", (uint64(n[0])<<32|uint64(n[1])<<24|uint64(n[2])<<16|uint64(n[3])<<8|uint64(n[4]))%1_000_000_000_000)
	return NewKeyPairIn(account)
}

// NewKeyPairIn is NewKeyPair with a key id of the given 12-digit account.
func NewKeyPairIn(account string) (keyID, secret string) {
	raw := make([]byte, 30)
	_, _ = rand.Read(raw)
	return KeyID("AKIA", account), base64.StdEncoding.EncodeToString(raw)
}

// KeyID returns a random current-format key id with prefix (AKIA, ASIA)
// that encodes account: 16 base32 characters holding a 1 (the generation
// bit), the account in 40 bits, then random bits. It panics on an account
// that is not 12 digits: a test's mistake.
func KeyID(prefix, account string) string {
	var n uint64
	if _, err := fmt.Sscanf(account, "%012d", &n); err != nil || len(account) != 12 {
		panic("stsdouble: KeyID: account is not 12 digits")
	}
	var tail [8]byte
	_, _ = rand.Read(tail[:])
	// 80 bits, most significant first: generation, account, 39 random bits.
	hi := uint64(1)<<40 | n // the first 41 bits
	lo := uint64(tail[0])<<32 | uint64(tail[1])<<24 | uint64(tail[2])<<16 | uint64(tail[3])<<8 | uint64(tail[4])
	lo &= 1<<39 - 1
	out := make([]byte, 16)
	for i := range out {
		bit := 5 * i // the first of this character's five bits
		var v uint64
		for j := 0; j < 5; j++ {
			b := bit + j
			var x uint64
			if b < 41 {
				x = hi >> (40 - b) & 1
			} else {
				x = lo >> (79 - b) & 1
			}
			v = v<<1 | x
		}
		out[i] = base32Alphabet[v]
	}
	return prefix + string(out)
}

// AccountOf is the account a current-format AKIA or ASIA key id encodes,
// decoded bit by bit as KeyID encodes it: the double's own reading, kept
// apart from the verifier's so that each checks the other.
func AccountOf(keyID string) (string, bool) {
	if len(keyID) != 20 || (!strings.HasPrefix(keyID, "AKIA") && !strings.HasPrefix(keyID, "ASIA")) {
		return "", false
	}
	var bits uint64 // the first 45 bits: nine characters
	for _, c := range keyID[4:13] {
		v := strings.IndexRune(base32Alphabet, c)
		if v < 0 {
			return "", false
		}
		bits = bits<<5 | uint64(v)
	}
	if strings.IndexFunc(keyID[13:], func(c rune) bool { return !strings.ContainsRune(base32Alphabet, c) }) >= 0 {
		return "", false
	}
	if bits>>44 == 0 {
		return "", false // legacy: no account
	}
	n := bits >> 4 & (1<<40 - 1)
	if n > 999_999_999_999 {
		return "", false
	}
	return fmt.Sprintf("%012d", n), true
}
