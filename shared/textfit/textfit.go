// Package textfit shortens text to a byte budget without splitting a UTF-8
// rune: flag metadata, notification subjects and report lines all have
// limits counted in bytes.
package textfit

import "unicode/utf8"

// Marker ends a string that Fit shortened.
const Marker = "..."

// Fit returns s when it is at most n bytes long; otherwise its longest
// prefix that ends on a rune boundary and, followed by Marker, takes at most
// n bytes. With no room for more than the marker it returns "".
func Fit(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if n <= len(Marker) {
		return ""
	}
	cut := n - len(Marker)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + Marker
}
