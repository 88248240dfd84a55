package gcppartner

import (
	"context"
	"errors"
	"io"
	"net/http"

	"golang.org/x/oauth2"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

// errBodyTooLong ends a token-endpoint body read past partnerhttp.DefaultMaxBody.
var errBodyTooLong = errors.New("response body too long")

// probe is the RoundTripper the oauth2 library sends through, for one
// exchange: it forwards to the verifier's one partnerhttp client and notes
// what happened on the wire. The library folds network and body errors into
// plain strings (fmt %v), so this is how a reset is told from a garbled
// body, and how the body read is bounded.
type probe struct {
	// ctx is the verification's context. golang.org/x/oauth2/jwt sends its
	// request without one (http.Client.PostForm), which would lose the
	// caller's deadline and the metrics recorder the partnerhttp client
	// reads from the request context; the probe puts it back.
	ctx       context.Context
	client    *http.Client
	attempted bool
	sendErr   error // the transport's own error, before the library flattens it
	responded bool
	status    int
	header    http.Header
	bodyErr   error
}

func (p *probe) RoundTrip(req *http.Request) (*http.Response, error) {
	p.attempted = true
	resp, err := p.client.Do(req.WithContext(p.ctx))
	if err != nil {
		p.sendErr = err
		return nil, err
	}
	p.responded, p.status, p.header = true, resp.StatusCode, resp.Header
	resp.Body = &boundedBody{rc: resp.Body, left: partnerhttp.DefaultMaxBody, p: p}
	return resp, nil
}

type boundedBody struct {
	rc   io.ReadCloser
	left int64
	p    *probe
}

func (b *boundedBody) Read(buf []byte) (int, error) {
	if b.left <= 0 {
		// One byte more than allowed tells "exactly the limit" from "longer".
		var one [1]byte
		n, err := b.rc.Read(one[:])
		if n > 0 {
			b.p.bodyErr = errBodyTooLong
			return 0, errBodyTooLong
		}
		return 0, b.record(err)
	}
	if int64(len(buf)) > b.left {
		buf = buf[:b.left]
	}
	n, err := b.rc.Read(buf)
	b.left -= int64(n)
	return n, b.record(err)
}

func (b *boundedBody) record(err error) error {
	if err != nil && !errors.Is(err, io.EOF) {
		b.p.bodyErr = err
	}
	return err
}

func (b *boundedBody) Close() error { return b.rc.Close() }

// tokenAnswer is a token-endpoint error response that could be read: its
// status and RFC 6749 error code and description.
type tokenAnswer struct {
	status    int
	code      string
	desc      string
	notBefore bool // no request was sent (the library could not build it)
}

// exchange runs one oauth2 library call against the token endpoint through
// the verifier's client and sorts out what came back: a token, a readable
// OAuth error answer, or a fault. Partner text never leaves this function
// except as the answer's code and description, which callers compare
// against constants and never print.
func (v *Verifier) exchange(ctx context.Context, op string, run func(context.Context) (*oauth2.Token, error)) (*oauth2.Token, *tokenAnswer, error) {
	p := &probe{ctx: ctx, client: v.client}
	hc := &http.Client{Transport: p, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	tok, err := run(context.WithValue(ctx, oauth2.HTTPClient, hc))
	if err == nil {
		if p.status != http.StatusOK {
			return nil, nil, unusable(ctx, op, p.status, "token granted with an unexpected http status")
		}
		return tok, nil, nil
	}
	if !p.attempted {
		return nil, &tokenAnswer{notBefore: true}, nil
	}
	if !p.responded {
		if p.sendErr != nil {
			err = p.sendErr
		}
		return nil, nil, networkFault(op, err)
	}
	if f := overloadFault(op, p.status, p.header); f != nil {
		return nil, nil, f
	}
	if p.bodyErr != nil {
		return nil, nil, unusable(ctx, op, p.status, "response body unreadable or too long")
	}
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		// A 2xx the library could not read as a token (garbled, empty, HTML).
		return nil, nil, unusable(ctx, op, p.status, "not a token response")
	}
	e, ok := parseOAuthError(re.Body)
	if !ok {
		return nil, nil, unusable(ctx, op, p.status, "not an OAuth error body")
	}
	return nil, &tokenAnswer{status: p.status, code: e.Error, desc: e.ErrorDescription}, nil
}

// proveNothing is the fault for a readable token-endpoint answer whose error
// says nothing about the credential.
func (a *tokenAnswer) proveNothing(ctx context.Context, op string) *verify.Fault {
	return unusable(ctx, op, a.status, "error "+safeCode(a.code, oauthCodeRE)+" proves nothing about the credential")
}
