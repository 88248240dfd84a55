package verifiertest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

// FuzzRand draws the credentials a fuzz target's answers may echo from a
// fixed seed, so that a failing input reproduces while the corpus holds
// only placeholders. One FuzzRand serves every credential of a target, in
// the order they are drawn.
type FuzzRand struct {
	r *rand.Rand
}

// NewFuzzRand seeds a FuzzRand (math/rand/v2's PCG with seed1, seed2).
func NewFuzzRand(seed1, seed2 uint64) *FuzzRand {
	return &FuzzRand{r: rand.New(rand.NewPCG(seed1, seed2))}
}

// Pick is n characters drawn from alphabet.
func (f *FuzzRand) Pick(alphabet string, n int) string {
	var b strings.Builder
	for range n {
		b.WriteByte(alphabet[f.r.IntN(len(alphabet))])
	}
	return b.String()
}

// FuzzToken is prefix and n characters of alphabet drawn from a FuzzRand
// seeded with seed1, seed2: a fuzz target's one token.
func FuzzToken(seed1, seed2 uint64, prefix, alphabet string, n int) string {
	return prefix + NewFuzzRand(seed1, seed2).Pick(alphabet, n)
}

// FuzzTarget starts the FuzzServer a partner's fuzz target answers from
// and builds the partner's verifier against it with newV (its New), with
// a timeout long enough for any answer the server gives.
func FuzzTarget[V any](tb testing.TB, newV func(partnerhttp.Options) (V, error)) (*partnertest.FuzzServer, V) {
	tb.Helper()
	srv := partnertest.NewFuzzServer(tb)
	v, err := newV(partnerhttp.Options{Endpoints: []*url.URL{srv.Endpoint()}, Timeout: 5 * time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	return srv, v
}

// FuzzContract is what every partner's fuzz target holds the verifier's
// outcome for one fuzzed answer to, before the partner's own oracle judges
// a verdict: no secret in any text; an error is a *verify.Fault and comes
// without a verdict; a 429 is RateLimited; no answer, a truncated answer,
// a 429 and a 5xx never yield a verdict. The fields are what partners
// differ in.
type FuzzContract struct {
	// Secrets are the fragments no verdict message, detail or fault text
	// may contain: the token, the parts of it that identify it, other
	// credentials of the finding.
	Secrets []string
	// FoldCase looks for the secrets in any case, for verifiers that
	// might echo a token the partner matches case-insensitively.
	FoldCase bool
	// Window, when positive, also fails on any Window-byte run of a
	// secret longer than that (a private key quoted line by line).
	Window int
	// Label starts every failure message (the token type, for a target
	// that fuzzes several).
	Label string
	// NoVerdict lists statuses besides 429 and 5xx that must never yield
	// a verdict.
	NoVerdict []int
	// WantRetryAfter requires a 429's fault to carry a wait.
	WantRetryAfter bool
	// Unreadable429 lets a 429 end as a network fault: a header value
	// net/http refuses to parse means no 429 ever reached the verifier.
	Unreadable429 bool
	// Truncated429 holds a 429 whose body is cut short to RateLimited
	// too, for verifiers that classify the status before reading a body.
	Truncated429 bool
}

// Check holds one fuzzed answer's outcome to c, ending t at the first
// breach. It reports whether the outcome is a verdict that the partner's
// oracle must now judge; false means a fault, which Check has judged.
func (c FuzzContract) Check(t testing.TB, resp partnertest.FuzzAnswer, verdict verify.Verdict, err error) (oracleDecides bool) {
	t.Helper()
	fatalf := func(format string, args ...any) {
		t.Helper()
		if c.Label != "" {
			format, args = "%s: "+format, append([]any{c.Label}, args...)
		}
		t.Fatalf(format, args...)
	}
	text := verdict.Message + fmt.Sprint(verdict.Details)
	if err != nil {
		text += err.Error()
	}
	if c.leaked(text) {
		fatalf("a secret or a part of one appears in the verdict, its details or the fault text")
	}
	if err != nil {
		fault, ok := verify.AsFault(err)
		switch {
		case !ok:
			fatalf("error %q is not a *verify.Fault", err)
		case verdict.Reason != "":
			fatalf("both a verdict (%s) and a fault", verdict.Reason)
		case resp.Status != http.StatusTooManyRequests || (resp.Truncate && !c.Truncated429) || (fault.Network && c.Unreadable429):
		case fault.Kind != verify.RateLimited:
			fatalf("a 429 is a %s fault, want rate limited", fault.Kind)
		case c.WantRetryAfter && fault.RetryAfter <= 0:
			fatalf("a 429 is a fault waiting %v, want a wait", fault.RetryAfter)
		}
		return false
	}
	switch {
	case resp.Status == 0:
		fatalf("no answer yielded verdict %s", verdict.Reason)
	case resp.Truncate:
		fatalf("a truncated answer (http %d) yielded verdict %s", resp.Status, verdict.Reason)
	case resp.Status == http.StatusTooManyRequests || resp.Status >= 500 || slices.Contains(c.NoVerdict, resp.Status):
		fatalf("http %d yielded verdict %s", resp.Status, verdict.Reason)
	}
	return true
}

func (c FuzzContract) leaked(text string) bool {
	norm := func(s string) string { return s }
	if c.FoldCase {
		norm = strings.ToLower
	}
	text = norm(text)
	for _, s := range c.Secrets {
		s = norm(s)
		if s != "" && strings.Contains(text, s) {
			return true
		}
		for i := 0; c.Window > 0 && i+c.Window <= len(s); i++ {
			if strings.Contains(text, s[i:i+c.Window]) {
				return true
			}
		}
	}
	return false
}

// JSONObject decodes a body that is one JSON object and nothing else,
// keys kept exactly as sent: the fuzz oracles' own reading, written apart
// from the verifiers' decoders so that the two can disagree.
func JSONObject(body []byte) (map[string]json.RawMessage, bool) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, false
	}
	var doc map[string]json.RawMessage
	return doc, json.Unmarshal(trimmed, &doc) == nil
}

// JSONString is the string under exactly key in doc; false when the key
// is absent or holds anything but a string.
func JSONString(doc map[string]json.RawMessage, key string) (string, bool) {
	var s string
	return s, json.Unmarshal(doc[key], &s) == nil
}
