// Package stripepartner verifies Stripe live-mode API keys (sk_live_ secret
// keys, rk_live_ restricted keys): GET /v1/balance with the key as a Bearer
// token, the least intrusive read every secret key may make. A 200 balance
// object means the key is live; a 403 saying the key lacks a permission
// means a live restricted key (Stripe checked the key before refusing the
// call); a 401 carrying Stripe's "Invalid API Key provided" or
// "Expired API Key provided" error means it is not. Every other answer
// proves nothing and is a *verify.Fault (partnerhttp turns resets, 429s,
// 5xx and HTML pages into faults before this package looks).
package stripepartner

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

// EnvEndpoint names the variable holding Stripe's base URL (contract §7).
const EnvEndpoint = "PARTNER_ENDPOINT_STRIPE"

// DefaultEndpoint is Stripe's API base URL.
const DefaultEndpoint = "https://api.stripe.com"

// DetailLivemode is the details key of the balance's livemode flag: true
// for a live-mode key, so a reader sees the key reaches real money.
const DetailLivemode = "stripe_livemode"

// op names the one call in faults.
const op = "GET /v1/balance"

// Verifier checks stripe_secret_key and stripe_restricted_key findings. Build
// one per function instance and share it: its HTTP client keeps connections alive.
type Verifier struct{ c *partnerhttp.Client }

var _ verify.Verifier = (*Verifier)(nil)

// New returns a verifier that talks only to o.Endpoints[0], Stripe's API.
func New(o partnerhttp.Options) (*Verifier, error) {
	c, err := partnerhttp.NewSingle(o, Name, "stripe: new verifier", "api")
	if err != nil {
		return nil, err
	}
	return &Verifier{c: c}, nil
}

// Verify asks Stripe whether the finding's key is live. It returns a
// Verdict with a nil error, or a *verify.Fault when the answer proves nothing.
func (v *Verifier) Verify(ctx context.Context, tokenType finding.TokenType, f finding.Finding) (verify.Verdict, error) {
	if tokenType != TokenSecretKey && tokenType != TokenRestrictedKey {
		return verify.Unsupported(Name, tokenType, TokenSecretKey, TokenRestrictedKey), nil
	}
	key := f.Token.Reveal()
	r := partnerhttp.Request{Op: op, Path: "v1/balance", Secrets: []string{key},
		Header: http.Header{"Authorization": {"Bearer " + key}, "Accept": {"application/json"}}}
	a, err := v.c.Do(ctx, r)
	if err != nil {
		return verify.Verdict{}, err
	}
	switch e := stripeError(a.Body); {
	case a.Status == http.StatusOK:
		livemode, ok := balance(a.Body)
		if !ok {
			return verify.Verdict{}, v.c.Unusable(ctx, r, a, "200 body is not a Stripe balance object, which proves nothing")
		}
		var d finding.Details
		if livemode != nil {
			d = finding.Details{DetailLivemode: *livemode}
		}
		return verify.Verdict{Reason: finding.ReasonPartnerConfirmed, Details: d}, nil
	case a.Status == http.StatusUnauthorized && e.isKeyRejection():
		return verify.Verdict{Reason: finding.ReasonPartnerRejected}, nil
	case a.Status == http.StatusUnauthorized:
		return verify.Verdict{}, v.c.Unusable(ctx, r, a, "401 without Stripe's invalid or expired API key error (a proxy's answer, or no key reached Stripe)")
	case a.Status == http.StatusForbidden && e.isMissingPermission():
		// Stripe authenticated the key before refusing it this endpoint:
		// a live restricted key without the balance read permission.
		return verify.Verdict{Reason: finding.ReasonPartnerConfirmed}, nil
	case a.Status == http.StatusForbidden:
		return verify.Verdict{}, v.c.Unusable(ctx, r, a, "403 without Stripe's missing-permission error, which proves nothing")
	default:
		return verify.Verdict{}, v.c.Unusable(ctx, r, a, "unexpected http status "+strconv.Itoa(a.Status))
	}
}

// balance reports whether body is Stripe's balance object ({"object":
// "balance",...}, one JSON document) and returns its livemode flag when it
// carries one. Keys are matched exactly, as Stripe writes them.
func balance(body []byte) (*bool, bool) {
	var doc map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&doc); err != nil || dec.More() {
		return nil, false
	}
	var object string
	if json.Unmarshal(doc["object"], &object) != nil || object != "balance" {
		return nil, false
	}
	var livemode bool
	if json.Unmarshal(doc["livemode"], &livemode) != nil || string(doc["livemode"]) == "null" {
		return nil, true
	}
	return &livemode, true
}

// apiError is the part of Stripe's error document the verdict rests on:
// {"error":{"type":…,"code":…,"message":…}}. ok is false unless the body is
// exactly one such document.
type apiError struct {
	ok                 bool
	typ, code, message string
}

func stripeError(body []byte) apiError {
	var doc, obj map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&doc); err != nil || dec.More() || json.Unmarshal(doc["error"], &obj) != nil || obj == nil {
		return apiError{}
	}
	var e apiError
	if json.Unmarshal(obj["type"], &e.typ) != nil || json.Unmarshal(obj["message"], &e.message) != nil {
		return apiError{}
	}
	_ = json.Unmarshal(obj["code"], &e.code) // optional: absent on "Invalid API Key provided"
	e.ok = true
	return e
}

// isKeyRejection is Stripe's answer for a key it does not accept: an
// invalid_request_error saying "Invalid API Key provided: …" (unknown or
// deleted key) or "Expired API Key provided: …" (code api_key_expired, a
// rolled key). Stripe's other 401, "You did not provide an API key", means
// the key never reached it (a proxy dropped the header) and proves nothing.
func (e apiError) isKeyRejection() bool {
	return e.ok && e.typ == "invalid_request_error" &&
		(e.code == "api_key_expired" || strings.HasPrefix(e.message, "Invalid API Key provided") || strings.HasPrefix(e.message, "Expired API Key provided"))
}

// isMissingPermission is Stripe's 403 for a restricted key that lacks a
// permission: "The provided key 'rk_…' does not have the required
// permissions for this endpoint on account 'acct_…'…".
func (e apiError) isMissingPermission() bool {
	return e.ok && e.typ == "invalid_request_error" && strings.Contains(e.message, "does not have the required permissions")
}
