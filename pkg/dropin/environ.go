package dropin

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// envWord is one word of an Environment= value, as systemd's
// extract_first_word(EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE) returns it.
type envWord struct {
	// text is unquoted and unescaped; specifiers are not resolved (see
	// resolveSpecifiers).
	text string
	// start and end are the word's raw bytes in the value, quotes included.
	start, end int
	// portable is false when quotes sit inside the word (NO_PROXY="a,b"):
	// systemd before v233 (Amazon Linux 2 has v219) removes only quotes
	// around a whole word and would keep these literally.
	portable bool
}

const separators = " \t\n\r"

var errUnbalanced = errors.New("unbalanced quoting")

// splitEnviron splits an Environment= value into words with systemd's
// rules: words are separated by whitespace; single or double quotes
// anywhere in a word group characters (and are removed); a backslash
// escape (C style, plus \s for space) is decoded inside and outside
// quotes. On a syntax error (unbalanced quote, bad escape, trailing
// backslash) the words before it are returned with the error: systemd
// applies those and ignores the rest of the line.
func splitEnviron(v string) ([]envWord, error) {
	var ws []envWord
	i := 0
	for {
		for i < len(v) && strings.IndexByte(separators, v[i]) >= 0 {
			i++
		}
		if i == len(v) {
			return ws, nil
		}
		start := i
		var b strings.Builder
		var quote byte
		portable := true
	word:
		for i < len(v) {
			c := v[i]
			switch {
			case c == '\\':
				r, n, err := cunescapeOne(v[i+1:])
				if err != nil {
					return ws, fmt.Errorf("at %q: %w", v[i:], err)
				}
				b.WriteString(r)
				i += 1 + n
			case quote != 0 && c == quote:
				quote = 0
				i++
				if i < len(v) && strings.IndexByte(separators, v[i]) < 0 {
					portable = false // text continues after the closing quote
				}
			case quote != 0:
				b.WriteByte(c)
				i++
			case c == '\'' || c == '"':
				if i != start {
					portable = false // quote opens inside the word
				}
				quote = c
				i++
			case strings.IndexByte(separators, c) >= 0:
				break word
			default:
				b.WriteByte(c)
				i++
			}
		}
		if quote != 0 {
			return ws, fmt.Errorf("at %q: %w", v[start:], errUnbalanced)
		}
		ws = append(ws, envWord{text: b.String(), start: start, end: i, portable: portable})
	}
}

// cunescapeOne decodes the escape after a backslash (s starts after it),
// as systemd's cunescape_one without accepting NUL. It returns the
// decoded bytes and how many bytes of s it used.
func cunescapeOne(s string) (string, int, error) {
	if s == "" {
		return "", 0, errors.New("trailing backslash")
	}
	switch s[0] {
	case 'a':
		return "\a", 1, nil
	case 'b':
		return "\b", 1, nil
	case 'f':
		return "\f", 1, nil
	case 'n':
		return "\n", 1, nil
	case 'r':
		return "\r", 1, nil
	case 't':
		return "\t", 1, nil
	case 'v':
		return "\v", 1, nil
	case '\\', '"', '\'':
		return s[:1], 1, nil
	case 's':
		return " ", 1, nil
	case 'x':
		if len(s) < 3 {
			return "", 0, fmt.Errorf("bad escape \\%s", s)
		}
		a, b := unhex(s[1]), unhex(s[2])
		if a < 0 || b < 0 || a|b == 0 {
			return "", 0, fmt.Errorf("bad escape \\%s", s[:3])
		}
		return string([]byte{byte(a<<4 | b)}), 3, nil
	case 'u', 'U':
		n := 4
		if s[0] == 'U' {
			n = 8
		}
		if len(s) < 1+n {
			return "", 0, fmt.Errorf("bad escape \\%s", s)
		}
		var r rune
		for _, c := range []byte(s[1 : 1+n]) {
			h := unhex(c)
			if h < 0 {
				return "", 0, fmt.Errorf("bad escape \\%s", s[:1+n])
			}
			r = r<<4 | rune(h)
		}
		if r == 0 || !utf8.ValidRune(r) {
			return "", 0, fmt.Errorf("bad escape \\%s", s[:1+n])
		}
		return string(r), 1 + n, nil
	case '0', '1', '2', '3', '4', '5', '6', '7':
		if len(s) < 3 || !isOct(s[1]) || !isOct(s[2]) {
			return "", 0, fmt.Errorf("bad escape \\%s", s[:min(3, len(s))])
		}
		m := int(s[0]-'0')<<6 | int(s[1]-'0')<<3 | int(s[2]-'0')
		if m == 0 || m > 255 {
			return "", 0, fmt.Errorf("bad escape \\%s", s[:3])
		}
		return string([]byte{byte(m)}), 3, nil
	}
	return "", 0, fmt.Errorf("unknown escape \\%c", s[0])
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

func isOct(c byte) bool { return c >= '0' && c <= '7' }

// resolveSpecifiers turns %% into %. Other specifiers (%n, %H, ...) name
// the unit or host and are kept as written: no value this package checks
// (proxy URLs, NO_PROXY entries) is expected to use them.
func resolveSpecifiers(s string) string { return strings.ReplaceAll(s, "%%", "%") }

// validAssignment is systemd's env_assignment_is_valid: KEY=VALUE with a
// bash variable name (letters, digits, _; not starting with a digit) and
// a value of valid UTF-8 without control characters other than tab and
// newline.
func validAssignment(s string) (key, value string, ok bool) {
	key, value, found := strings.Cut(s, "=")
	if !found || key == "" || (key[0] >= '0' && key[0] <= '9') {
		return "", "", false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
			return "", "", false
		}
	}
	if !utf8.ValidString(value) {
		return "", "", false
	}
	for _, r := range value {
		if (r < 0x20 && r != '\t' && r != '\n') || r == 0x7f {
			return "", "", false
		}
	}
	return key, value, true
}

// quoteAssignment renders KEY=VALUE as one double-quoted Environment=
// word that every systemd version reads back as exactly KEY=VALUE. value
// is in the unresolved form (a literal % is already %%).
func quoteAssignment(key, value string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, c := range []byte(key + "=" + value) {
		switch {
		case c == '\\' || c == '"':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\t':
			b.WriteString(`\t`)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}
