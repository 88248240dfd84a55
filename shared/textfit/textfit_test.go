package textfit

import (
	"testing"
	"unicode/utf8"
)

func TestFit(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly-10", 10, "exactly-10"},
		{"eleven-char", 10, "eleven-..."},
		{"ééééé", 8, "éé..."},
		{"ééééé", 7, "éé..."},
		{"日本語のテキスト", 10, "日本..."},
		{"🙂🙂", 6, "..."},
		{"abcdef", 3, ""},
		{"abcdef", 0, ""},
		{"abcdef", -1, ""},
		{"", 0, ""},
	}
	for _, tt := range tests {
		got := Fit(tt.in, tt.n)
		if got != tt.want || len(got) > max(tt.n, 0) || !utf8.ValidString(got) {
			t.Errorf("Fit(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}
