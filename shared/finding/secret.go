package finding

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"strings"
)

// Secret holds credential material (a token or a companion value such as an
// AWS secret access key). Every way of printing it (fmt verbs, slog) yields a
// redacted form, so that a finding passed to a logger or wrapped into an error
// by mistake does not leak; only Reveal and JSON encoding (needed to forward a
// finding to a partner queue) give the raw value.
type Secret string

// Reveal returns the raw secret; call it only where the value goes to a partner.
func (s Secret) Reveal() string { return string(s) }

// String returns the redacted form, so %s and %v never print the value.
func (s Secret) String() string { return Redact(string(s)) }

// GoString returns the redacted form, so %#v never prints the value.
func (s Secret) GoString() string { return Redact(string(s)) }

// Format makes every fmt verb (including %x and %q) print the redacted form.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(Redact(string(s)))) }

// LogValue makes slog print the redacted form.
func (s Secret) LogValue() slog.Value { return slog.StringValue(Redact(string(s))) }

// MarshalJSON writes the raw value: findings are forwarded between queues in
// the contract's schema. Never JSON-encode a Finding into a log line.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(string(s)) }

// Redact describes a secret without revealing any of its characters.
func Redact(s string) string {
	return fmt.Sprintf("[REDACTED len=%d]", len(s))
}

// Fingerprint is the contract's identifier of a token: "sha256:" + hex SHA-256
// of the token bytes.
func Fingerprint(token string) string {
	sum := sha256.Sum256([]byte(token))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Scrub replaces every occurrence of each secret in msg with its redacted
// form. Verifiers pass partner-provided text (error messages, bodies) through
// it before the text can reach an error string or log line.
func Scrub(msg string, secrets ...string) string {
	for _, s := range secrets {
		if len(s) < 4 { // too short to be credential material; replacing would mangle text
			continue
		}
		msg = strings.ReplaceAll(msg, s, Redact(s))
	}
	return msg
}

// LogValue keeps a finding handed to slog from leaking: slog's JSON handler
// would otherwise encode the struct through Secret.MarshalJSON, which writes
// the raw token and context values.
func (f Finding) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("id", f.ID),
		slog.String("rule_id", f.RuleID),
		slog.String("token", Redact(f.Token.Reveal())),
		slog.String("fingerprint", f.Fingerprint()),
	}
	if len(f.Context) > 0 {
		keys := make([]string, 0, len(f.Context))
		for k := range f.Context {
			keys = append(keys, safeName(k))
		}
		sort.Strings(keys)
		attrs = append(attrs, slog.Any("context_keys", keys))
	}
	if f.Recheck {
		attrs = append(attrs, slog.Bool("recheck", true))
	}
	if f.Problem != nil {
		attrs = append(attrs, slog.String("problem", f.Problem.Error()))
	}
	return slog.GroupValue(attrs...)
}

// LogValue describes a batch without its findings' secrets, for the same
// reason as Finding.LogValue.
func (b Batch) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Int("version", b.Version),
		slog.String("scan_id", b.ScanID),
		slog.Int64("project_id", b.Project.ID),
		slog.String("project_full_path", b.Project.FullPath),
		slog.Int("findings", len(b.Findings)),
	)
}
