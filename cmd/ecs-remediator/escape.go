package main

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// escapeTerminal makes untrusted text (process names, policy and trust
// policy strings, file content) safe to print on a terminal: C0 and C1
// control characters (ESC, CR, BEL, backspace, tab...), DEL, the Unicode
// line and paragraph separators and bidirectional overrides become
// visible escapes (\x1b, \u202e), invalid UTF-8 bytes \xNN. Nothing can
// move the cursor, recolour, retitle or hide text. Printable text is
// returned unchanged.
func escapeTerminal(s string) string {
	clean := true
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if needsEscape(r, n) {
			clean = false
			break
		}
		i += n
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case needsEscape(r, n) && r < 0x80:
			fmt.Fprintf(&b, `\x%02x`, r)
		case needsEscape(r, n):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

func needsEscape(r rune, n int) bool {
	switch {
	case r == utf8.RuneError && n == 1:
		return true
	case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f:
		return true
	case r == 0x2028, r == 0x2029, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e, r == 0x200f:
		return true
	}
	return false
}
