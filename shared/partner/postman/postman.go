// Package postmanpartner verifies Postman API keys: GET /me with the key in
// the X-API-Key header. A 200 carrying a user object means the key is live,
// a 401 whose JSON body names AuthenticationError means it is not; every
// other answer (a proxy's HTML page, a 5xx, a 429, a body that is not
// Postman's) proves nothing and is reported as a *verify.Fault.
package postmanpartner

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/metrics"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

// EnvEndpoint names the variable holding Postman's base URL (contract §6).
const EnvEndpoint = "PARTNER_ENDPOINT_POSTMAN"

// DefaultEndpoint is Postman's API base URL.
const DefaultEndpoint = "https://api.getpostman.com"

// DetailUserID is the details key of a confirmed key's (non-secret) user id.
const DetailUserID = "postman_user_id"

// maxBody bounds a /me answer: the real document is a few KiB.
const maxBody = 64 * 1024

// op names the partner call in faults.
const op = "GET /me"

const partner = finding.PartnerPostman

// Config configures a Verifier.
type Config struct {
	// Endpoint is Postman's base URL; requests go nowhere else.
	Endpoint *url.URL
	// Timeout bounds one request; 0 means partnerhttp.DefaultTimeout.
	Timeout time.Duration
	// Transport overrides the network transport (tests inject one).
	Transport http.RoundTripper
}

// FromEnv reads the configuration from PARTNER_ENDPOINT_POSTMAN.
func FromEnv() (Config, error) {
	u, err := partnerhttp.Endpoint(EnvEndpoint, DefaultEndpoint)
	if err != nil {
		return Config{}, fmt.Errorf("postman: %w", err)
	}
	return Config{Endpoint: u}, nil
}

// Verifier checks postman_api_key findings. Build one per function instance
// and share it: its HTTP client keeps connections alive.
type Verifier struct {
	me     *url.URL
	client *http.Client
}

var _ verify.Verifier = (*Verifier)(nil)

// New returns a verifier that talks only to cfg.Endpoint.
func New(cfg Config) (*Verifier, error) {
	if cfg.Endpoint == nil || cfg.Endpoint.Host == "" || (cfg.Endpoint.Scheme != "http" && cfg.Endpoint.Scheme != "https") {
		return nil, errors.New("postman: new verifier: endpoint must be an absolute http(s) URL")
	}
	return &Verifier{
		me: cfg.Endpoint.JoinPath("me"),
		client: partnerhttp.NewClient(partnerhttp.Options{
			Partner:   string(partner),
			Endpoints: []*url.URL{cfg.Endpoint},
			Timeout:   cfg.Timeout,
			Transport: cfg.Transport,
		}),
	}, nil
}

// Verify asks Postman whether the finding's API key is live. It returns a
// Verdict with a nil error, or a *verify.Fault when the answer proves nothing.
func (v *Verifier) Verify(ctx context.Context, tokenType finding.TokenType, f finding.Finding) (verify.Verdict, error) {
	if tokenType != finding.TokenPostmanAPIKey {
		return verify.Verdict{Reason: finding.ReasonUnsupportedTokenType, Message: "postman verifies postman_api_key only, not " + string(tokenType)}, nil
	}
	if _, reason, msg := Definition.Check(tokenType, f); reason != "" {
		return verify.Verdict{Reason: reason, Message: msg}, nil
	}
	key := f.Token.Reveal()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.me.String(), nil)
	if err != nil {
		return verify.Verdict{}, v.fault(verify.PartnerError, 0, "build request: "+finding.Scrub(err.Error(), key))
	}
	req.Header.Set("X-API-Key", key)
	req.Header.Set("Accept", "application/json")

	resp, err := v.client.Do(req)
	if err != nil {
		fl := v.fault(verify.PartnerError, 0, describeNetErr(err, key))
		fl.Network = true
		return verify.Verdict{}, fl
	}

	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		drain(resp)
		fl := v.fault(verify.RateLimited, resp.StatusCode, "rate limited by Postman")
		fl.RetryAfter = partnerhttp.RetryAfter(resp.Header, time.Now())
		return verify.Verdict{}, fl
	case resp.StatusCode >= 500:
		drain(resp)
		return verify.Verdict{}, v.fault(verify.PartnerError, resp.StatusCode, "server error")
	}

	// From here on a response arrived that the transport counted as a
	// success; if it proves nothing, it is an unusable response.
	unusable := func(msg string) error {
		metrics.FromContext(ctx).Unusable(string(partner))
		return v.fault(verify.PartnerError, resp.StatusCode, msg)
	}
	body, err := partnerhttp.ReadBody(resp, maxBody)
	if err != nil {
		return verify.Verdict{}, unusable("read body: " + finding.Scrub(err.Error(), key))
	}
	switch resp.StatusCode {
	case http.StatusOK:
		id, ok := userID(body)
		if !ok {
			return verify.Verdict{}, unusable("200 body is not a Postman user document, which proves nothing")
		}
		return verify.Verdict{Reason: finding.ReasonPartnerConfirmed, Details: map[string]string{DetailUserID: id}}, nil
	case http.StatusUnauthorized:
		if isAuthenticationError(body) {
			return verify.Verdict{Reason: finding.ReasonPartnerRejected}, nil
		}
		return verify.Verdict{}, unusable("401 without Postman's AuthenticationError body (a proxy's answer?)")
	default:
		return verify.Verdict{}, unusable("unexpected http status " + strconv.Itoa(resp.StatusCode))
	}
}

func (v *Verifier) fault(kind verify.FaultKind, status int, msg string) *verify.Fault {
	return &verify.Fault{Kind: kind, Partner: partner, Op: op, HTTPStatus: status, Msg: msg}
}

// userID returns the id of the body's user object: Postman's /me answer is
// {"user":{"id":<positive integer>,...},...}; anything else proves nothing.
func userID(body []byte) (string, bool) {
	var doc struct {
		User *struct {
			ID json.RawMessage `json:"id"`
		} `json:"user"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&doc); err != nil || dec.More() || doc.User == nil {
		return "", false
	}
	// The raw JSON must be a bare integer: a quoted or fractional id is not
	// Postman's document.
	id, err := strconv.ParseInt(string(doc.User.ID), 10, 64)
	if err != nil || id <= 0 {
		return "", false
	}
	return strconv.FormatInt(id, 10), true
}

// isAuthenticationError reports whether a 401 body is Postman's own
// {"error":{"name":"AuthenticationError",...}}, the only 401 that says the
// key is invalid rather than that something in between refused us. Keys
// are matched exactly: decoding into a struct would also take "ERROR" or
// "Name", which is not Postman's document.
func isAuthenticationError(body []byte) bool {
	var doc, errObj map[string]json.RawMessage
	var name string
	return json.Unmarshal(body, &doc) == nil &&
		json.Unmarshal(doc["error"], &errObj) == nil &&
		json.Unmarshal(errObj["name"], &name) == nil && name == "AuthenticationError"
}

// drain reads a little of an ignored body so the connection can be reused.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
	_ = resp.Body.Close()
}

// describeNetErr names a transport failure without the request URL's
// details beyond what url.Error prints (no key is ever in the URL) and
// scrubs the key in case a lower layer echoes a header.
func describeNetErr(err error, key string) string {
	var ne net.Error
	switch {
	case errors.Is(err, partnerhttp.ErrEndpointNotAllowed):
		return "request blocked: " + partnerhttp.ErrEndpointNotAllowed.Error()
	case errors.Is(err, context.Canceled):
		return "request cancelled"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout waiting for Postman"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return "network error: " + finding.Scrub(err.Error(), key)
}
