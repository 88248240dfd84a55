package awspartner

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/stsdouble"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
)

// TestAccountID: the published vectors, the legacy ids that carry no
// account, and what is not a key id at all.
func TestAccountID(t *testing.T) {
	tests := []struct {
		keyID, want string
	}{
		// Aidan Steele's example key, decoded by Tal Be'ery (both cited on AccountID).
		{"ASIAY34FZKBOKMUTVV7A", "609629065308"},
		// The same bits under the long-term prefix.
		{"AKIAY34FZKBOKMUTVV7A", "609629065308"},
		// The last seven characters do not touch the account (Steele).
		{"ASIAY34FZKBOKAAAAAAA", "609629065308"},
		// Made with encodeKeyID below; the smallest and largest accounts.
		{encodeKeyID("AKIA", 0, 0), "000000000000"},
		{encodeKeyID("ASIA", 999_999_999_999, 1<<39-1), "999999999999"},
		{encodeKeyID("AKIA", 52310077262, 12345), "052310077262"},
		// AWS's documentation examples are legacy ids: no account.
		{"AKIAIOSFODNN7EXAMPLE", ""},
		{"AKIAI44QH8DHBEXAMPLE", ""},
		{"ASIAIOSFODNN7EXAMPLE", ""},
		{"AKIAJ" + strings.Repeat("A", 15), ""},
		// Generation bit set, but 40 bits above any 12-digit account.
		{encodeKeyID("AKIA", 1<<40-1, 0), ""},
		// Not a decodable access key id.
		{"AROAY34FZKBOKMUTVV7A", ""},
		{"AKIAY34FZKBOKMUTVV7", ""},
		{"AKIAY34FZKBOKMUTVV7AA", ""},
		{"AKIAY34FZKBOKMUTVV71", ""},
		{"akiay34fzkbokmutvv7a", ""},
		{"AKIAY34FZKBOKMUTVV=A", ""},
		{"", ""},
	}
	for _, tc := range tests {
		got, ok := AccountID(tc.keyID)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("AccountID(%q) = %q, %v; want %q", tc.keyID, got, ok, tc.want)
		}
	}
}

// encodeKeyID is the test's own encoder, written from the bit layout
// rather than from AccountID: prefix, then 80 bits as 16 base32
// characters: the generation bit 1, the account in 40 bits, the low 39
// bits of tail, zeros.
func encodeKeyID(prefix string, account, tail uint64) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	bits := "1" + fmt.Sprintf("%040b", account&(1<<40-1)) + fmt.Sprintf("%039b", tail&(1<<39-1))
	var b strings.Builder
	b.WriteString(prefix)
	for i := 0; i < 80; i += 5 {
		var v int
		fmt.Sscanf(bits[i:i+5], "%b", &v)
		b.WriteByte(alphabet[v])
	}
	return b.String()
}

// FuzzAccountID: every account a key id can encode decodes back from it,
// under either prefix, whatever the other bits; and any string AccountID
// accepts is a 20-character AKIA or ASIA id whose account re-encodes into
// an id with the same first 41 bits.
func FuzzAccountID(f *testing.F) {
	f.Add(uint64(609629065308), uint64(0), true, "ASIAY34FZKBOKMUTVV7A")
	f.Add(uint64(0), uint64(1<<39-1), false, "AKIAIOSFODNN7EXAMPLE")
	f.Add(uint64(999_999_999_999), uint64(42), false, "AKIA234567ABCDEFGHIJ")
	f.Fuzz(func(t *testing.T, account, tail uint64, asia bool, raw string) {
		prefix := "AKIA"
		if asia {
			prefix = "ASIA"
		}
		account %= 1_000_000_000_000
		id := encodeKeyID(prefix, account, tail)
		if got, ok := AccountID(id); !ok || got != fmt.Sprintf("%012d", account) {
			t.Fatalf("AccountID(%q) = %q, %v; want %012d", id, got, ok, account)
		}
		got, ok := AccountID(raw)
		if !ok {
			return
		}
		var n uint64
		if len(got) != 12 || strings.Trim(got, "0123456789") != "" {
			t.Fatalf("AccountID(%q) = %q, not 12 digits", raw, got)
		}
		fmt.Sscanf(got, "%d", &n)
		if len(raw) != 20 || (raw[:4] != "AKIA" && raw[:4] != "ASIA") {
			t.Fatalf("AccountID accepted %q, not an AKIA/ASIA key id", raw)
		}
		// The first 41 bits are eight characters and the top bit of the ninth.
		const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
		again := encodeKeyID(raw[:4], n, 0)
		if again[:12] != raw[:12] || strings.IndexByte(alphabet, again[12])>>4 != strings.IndexByte(alphabet, raw[12])>>4 {
			t.Fatalf("AccountID(%q) = %s, which encodes as %s…", raw, got, again[:13])
		}
	})
}

// TestSTSAgreesWithDecodedAccount: the account STS's GetCallerIdentity
// names for a live key (the double reads it from the key id with its own
// decoder) is the one AccountID decodes, for the published vector's
// account and random ones, AKIA keys with their secret and without.
func TestSTSAgreesWithDecodedAccount(t *testing.T) {
	d := partnertest.StartDouble(t, stsdouble.Start)
	v := harness.NewVerifier(t, 5*time.Second, nil, d.URL)
	for _, account := range []string{"609629065308", testAccount, "000000000001", "999999999999"} {
		id, secret := stsdouble.NewKeyPairIn(account)
		d.AddKey(id, secret, "")
		decoded, ok := AccountID(id)
		if !ok || decoded != account {
			t.Fatalf("AccountID(%s) = %q, %v; want %s", id, decoded, ok, account)
		}
		verdict, err := v.Verify(context.Background(), finding.TokenAWSAccessKey, awsFinding(id, secret))
		if err != nil || verdict.Details[DetailAccountID] != decoded {
			t.Errorf("STS says account %v (%v), the key id %s", verdict.Details[DetailAccountID], err, decoded)
		}
		if got := known(awsFinding(id, "")); got[DetailAccountID] != decoded || got[DetailCanary] != nil {
			t.Errorf("known = %v", got)
		}
	}
	if got, ok := stsdouble.AccountOf("ASIAY34FZKBOKMUTVV7A"); !ok || got != "609629065308" {
		t.Errorf("the double decodes the published vector as %q, %v", got, ok)
	}
}

// TestCanaryCheckComesFirst: a canary account's key id is refused by the
// format gate before anything else about it is judged (ASIA, a bad
// secret), so no call is ever made for it; a key id of another account
// is not.
func TestCanaryCheckComesFirst(t *testing.T) {
	for account := range canaryAccounts {
		for _, f := range []finding.Finding{
			awsFinding(stsdouble.KeyID("AKIA", account), ""),
			awsFinding(stsdouble.KeyID("ASIA", account), ""),
			awsFinding(stsdouble.KeyID("AKIA", account), "not a secret"),
		} {
			_, reason, msg := Definition.Examine(f)
			if reason != finding.ReasonCanaryToken || !strings.Contains(msg, "canary") || strings.Contains(msg, f.Token.Reveal()) {
				t.Errorf("account %s: %s (%q), want canary_token", account, reason, msg)
			}
			if got := known(f); got[DetailAccountID] != account || got[DetailCanary] != true {
				t.Errorf("account %s: known = %v", account, got)
			}
		}
	}
	if _, reason, _ := Definition.Examine(awsFinding(stsdouble.KeyID("AKIA", "052310077263"), "")); reason != "" {
		t.Errorf("a neighbour of a canary account: %s", reason)
	}
	if len(canaryAccounts) < 10 {
		t.Errorf("%d canary accounts; Thinkst's alone are 10", len(canaryAccounts))
	}
}
