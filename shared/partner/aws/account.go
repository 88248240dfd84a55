package awspartner

import (
	"encoding/base32"
	"encoding/binary"
	"fmt"
)

// keyIDEncoding reads the 16 characters after an access key id's prefix:
// base32, RFC 4648 alphabet, no padding (80 bits).
var keyIDEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// AccountID returns the AWS account id an access key id encodes, without
// any call: AKIA and ASIA key ids of the current format carry it. The
// layout is public research, not AWS documentation: Aidan Steele found the
// account in the base32 characters after the prefix
// (https://awsteele.com/blog/2020/09/26/aws-access-key-format.html), Tal
// Be'ery the one-bit shift (https://medium.com/@TalBeerySec/a-short-note-on-aws-key-id-f88cc4317489),
// and WithSecure's bitwise analysis the generation bit
// (https://labs.withsecure.com/publications/a-bitwise-analysis-of-aws-access-key-identifiers.html):
// the first bit after the prefix is 1 in current ids, whose next 40 bits
// are the account; legacy ids (AKIAI…, AKIAJ…) have it 0 and carry no
// account. ok is false for anything else, and for a decoded value of more
// than 12 digits, which no account has.
func AccountID(keyID string) (account string, ok bool) {
	if len(keyID) != 20 || (keyID[:4] != "AKIA" && keyID[:4] != "ASIA") {
		return "", false
	}
	raw, err := keyIDEncoding.DecodeString(keyID[4:])
	if err != nil || len(raw) != 10 {
		return "", false
	}
	var head [8]byte
	copy(head[2:], raw[:6])
	bits := binary.BigEndian.Uint64(head[:]) // the first 48 bits, right-aligned
	if bits>>47 == 0 {
		return "", false // legacy generation
	}
	n := (bits >> 7) & (1<<40 - 1)
	if n > 999_999_999_999 {
		return "", false
	}
	return fmt.Sprintf("%012d", n), true
}
