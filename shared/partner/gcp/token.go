package gcppartner

import (
	"context"
	"errors"
	"net/http"

	"golang.org/x/oauth2"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

// tokenAnswer is a token-endpoint answer that partnerhttp did not classify
// as a fault: a granted token, or an RFC 6749 error with its status.
type tokenAnswer struct {
	token  *oauth2.Token // nil unless granted
	status int
	code   string
	desc   string
}

// exchange runs one oauth2 library call against the configured token
// endpoint through the partner client, and sorts out what came back: the
// library flattens network and body errors into strings, so partnerhttp's
// record of the exchange decides what was a fault. ErrNotSent means the
// library could not build the request. Partner text leaves this function
// only as the answer's code and description, which callers compare against
// constants and never print.
func (v *Verifier) exchange(ctx context.Context, r partnerhttp.Request, run func(context.Context) (*oauth2.Token, error)) (*tokenAnswer, error) {
	ctx, ex := v.c.Exchange(ctx)
	tok, err := run(context.WithValue(ctx, oauth2.HTTPClient, ex.HTTPClient()))
	a, cerr := v.c.Classify(ctx, r, ex, err)
	switch {
	case cerr != nil:
		return nil, cerr
	case err == nil && a.Status != http.StatusOK:
		return nil, v.c.Unusable(ctx, r, a, "token granted with an unexpected http status")
	case err == nil:
		return &tokenAnswer{token: tok, status: a.Status}, nil
	}
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		// A 2xx the library could not read as a token (garbled, empty).
		return nil, v.c.Unusable(ctx, r, a, "not a token response")
	}
	e, ok := parseOAuthError(a.Body)
	if !ok {
		return nil, v.c.Unusable(ctx, r, a, "not an OAuth error body")
	}
	return &tokenAnswer{status: a.Status, code: e.Error, desc: e.ErrorDescription}, nil
}

// proveNothing is the fault for a readable token-endpoint answer whose error
// says nothing about the credential.
func (v *Verifier) proveNothing(ctx context.Context, r partnerhttp.Request, a *tokenAnswer) *verify.Fault {
	return v.c.Unusable(ctx, r, &partnerhttp.Answer{Status: a.status}, "error "+safeCode(a.code, oauthCodeRE)+" proves nothing about the credential")
}
