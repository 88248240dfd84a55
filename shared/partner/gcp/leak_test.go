package gcppartner

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

// leakLog is the suite's record of every verification outcome, written as
// the functions would log it (slog JSON), plus every credential the suite
// generated. TestMain checks that no credential reached the record.
type leakLog struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	log     *slog.Logger
	secrets []string
}

func newLeakLog() *leakLog {
	l := &leakLog{}
	l.log = slog.New(slog.NewJSONHandler(&lockedWriter{l}, nil))
	return l
}

type lockedWriter struct{ l *leakLog }

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.l.mu.Lock()
	defer w.l.mu.Unlock()
	return w.l.buf.Write(p)
}

var leaks = newLeakLog()

// window is the length of the fragments the leak check looks for: a
// credential is leaked when any 20 consecutive characters of it surface.
const window = 20

// secret registers credential material. A key file is reduced to its
// private key (its email and ids are not secret and may appear in details);
// a PEM key is reduced to its base64 lines, so that part of a key counts.
func (l *leakLog) secret(ss ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range ss {
		var key struct {
			PrivateKey string `json:"private_key"`
		}
		if json.Unmarshal([]byte(s), &key) == nil && key.PrivateKey != "" {
			l.secrets = append(l.secrets, pemLines(key.PrivateKey)...)
			continue
		}
		if strings.Contains(s, "PRIVATE KEY") {
			l.secrets = append(l.secrets, pemLines(s)...)
			continue
		}
		if len(s) >= 8 {
			l.secrets = append(l.secrets, s)
		}
	}
}

func pemLines(p string) []string {
	var out []string
	for _, line := range strings.Split(p, "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "-----") {
			out = append(out, line)
		}
	}
	return out
}

// finding registers a finding's token and its secret context values. An
// OAuth client id is public (it is in every consent-screen URL) and shares
// its ".apps.googleusercontent.com" suffix with format messages, so it is
// not registered.
func (l *leakLog) finding(f finding.Finding) {
	l.secret(f.Token.Reveal())
	for k, v := range f.Context {
		if k != finding.ContextGCPClientID {
			l.secret(v.Reveal())
		}
	}
}

// outcome records one verification the way a function logs it, plus every
// string a caller could derive from the verdict and error.
func (l *leakLog) outcome(name string, tt finding.TokenType, v verify.Verdict, err error) {
	attrs := []any{"case", name, "token_type", tt, "status", v.Status(), "reason", v.Reason, "details", v.Details, "message", v.Message}
	if err != nil {
		attrs = append(attrs, "error", err)
		if f, ok := verify.AsFault(err); ok {
			attrs = append(attrs, "fault", fmt.Sprintf("%+v", *f))
		}
	}
	attrs = append(attrs, "verdict", fmt.Sprintf("%+v %#v", v, v))
	l.log.Info("verification", attrs...)
}

// check returns an error naming (by index and length only) any secret of
// which some window-long fragment, or the whole when shorter, was logged.
func (l *leakLog) check() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.buf.String()
	if !strings.Contains(out, `"msg":"verification"`) {
		return fmt.Errorf("leak check: no verification was logged")
	}
	fragments := make(map[string]struct{}, len(out))
	for i := 0; i+window <= len(out); i++ {
		fragments[out[i:i+window]] = struct{}{}
	}
	for i, s := range l.secrets {
		if len(s) < window {
			if strings.Contains(out, s) {
				return fmt.Errorf("leak check: secret #%d (%d bytes) appears in the verification log", i, len(s))
			}
			continue
		}
		for j := 0; j+window <= len(s); j++ {
			if _, ok := fragments[s[j:j+window]]; ok {
				return fmt.Errorf("leak check: %d bytes of secret #%d (%d bytes) appear in the verification log", window, i, len(s))
			}
		}
	}
	return nil
}

func TestMain(m *testing.M) {
	code := m.Run()
	// With -run or -skip only some tests ran: what they logged is still
	// checked, but they need not have exercised the verifier.
	whole := flag.Lookup("test.run").Value.String() == "" && flag.Lookup("test.skip").Value.String() == ""
	leaks.mu.Lock()
	n := len(leaks.secrets)
	logged := leaks.buf.Len() > 0
	leaks.mu.Unlock()
	if code == 0 && (whole || logged) {
		if err := leaks.check(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
		if whole && n < 20 {
			fmt.Fprintf(os.Stderr, "leak check: only %d secrets registered; the suite did not exercise the verifier\n", n)
			code = 1
		}
	}
	os.Exit(code)
}

// TestLeakLogDetects shows the leak check can fail: a secret in an error, a
// single PEM line, and a secret in a verdict message are all caught.
func TestLeakLogDetects(t *testing.T) {
	pemKey := "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----\n"
	cases := []struct {
		name   string
		secret string
		v      verify.Verdict
		err    error
	}{
		{"token in error", "AIzaSyTESTTESTTESTTESTTESTTESTTESTTEST", verify.Verdict{}, &verify.Fault{Msg: "key AIzaSyTESTTESTTESTTESTTESTTESTTESTTEST"}},
		{"pem line in message", pemKey, verify.Verdict{Reason: finding.ReasonMalformedToken, Message: "bad MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"}, nil},
		{"secret in details", "GOCSPX-abcdefghijklmnopqrstuvwxyz12", verify.Verdict{Reason: finding.ReasonPartnerConfirmed, Details: finding.Details{"x": "GOCSPX-abcdefghijklmnopqrstuvwxyz12"}}, nil},
		{"part of a token", "ya29.abcdefghijklmnopqrstuvwxyz0123456789", verify.Verdict{}, &verify.Fault{Msg: "token ...fghijklmnopqrstuvwxyz012..."}},
		{"part of a key file's private key", `{"type":"service_account","client_email":"a@b.iam.gserviceaccount.com","private_key":"` + strings.ReplaceAll(pemKey, "\n", `\n`) + `"}`,
			verify.Verdict{Reason: finding.ReasonMalformedToken, Message: "near QIBADANBgkqhkiG9w0BAQ"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := newLeakLog()
			l.secret(tc.secret)
			l.outcome(tc.name, finding.TokenGCPAPIKey, tc.v, tc.err)
			if l.check() == nil {
				t.Fatal("leak not detected")
			}
		})
	}
	t.Run("a key file's email is not a secret", func(t *testing.T) {
		l := newLeakLog()
		l.secret(`{"type":"service_account","client_email":"a@b.iam.gserviceaccount.com","private_key":"` + strings.ReplaceAll(pemKey, "\n", `\n`) + `"}`)
		l.outcome("email", finding.TokenGCPServiceAccountKey, verify.Verdict{Reason: finding.ReasonPartnerConfirmed, Details: finding.Details{DetailClientEmail: "a@b.iam.gserviceaccount.com"}}, nil)
		if err := l.check(); err != nil {
			t.Fatal(err)
		}
	})
}
