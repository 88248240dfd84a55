package verify

import (
	"testing"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
)

func TestUnsupported(t *testing.T) {
	for _, tc := range []struct {
		verifies []finding.TokenType
		want     string
	}{
		{[]finding.TokenType{"a_key"}, "p verifies a_key only, not x_key"},
		{[]finding.TokenType{"a_key", "b_key"}, "p verifies a_key and b_key only, not x_key"},
		{[]finding.TokenType{"a_key", "b_key", "c_key"}, "p verifies a_key, b_key and c_key only, not x_key"},
	} {
		v := Unsupported("p", "x_key", tc.verifies...)
		if v.Message != tc.want || v.Reason != finding.ReasonUnsupportedTokenType || v.Status() != finding.StatusUnknown {
			t.Errorf("Unsupported(%v) = %+v, want unknown, unsupported_token_type, %q", tc.verifies, v, tc.want)
		}
	}
}
