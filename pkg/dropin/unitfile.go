package dropin

import (
	"bytes"
	"fmt"
	"strings"
)

// directive is one Environment= line of a [Service] section.
type directive struct {
	line int // 1-based line of its first physical line
	// end is the file offset just after its last physical line (after the
	// newline, or len(file) at EOF without one): where a line inserted
	// after it goes.
	end int
	// reset is true for an empty value: it clears the environment list.
	reset bool
	// words are the assignments systemd applies, in order, with spans as
	// file offsets.
	words []assignment
	// err is a syntax error that made systemd ignore the rest of the line.
	err error
}

// assignment is one KEY=VALUE word of a directive.
type assignment struct {
	key, value string // value unresolved (%% not yet turned into %)
	start, end int    // the word's raw bytes in the file, quotes included
	portable   bool
}

// parseError is a mistake for which systemd rejects the whole file.
type parseError struct {
	line int
	msg  string
}

func (e *parseError) Error() string { return fmt.Sprintf("line %d: %s", e.line, e.msg) }

const whitespace = " \t\n\r"

// parseUnit reads a unit file or drop-in as systemd's config_parse does:
// an optional UTF-8 BOM; comment lines (# or ; after leading whitespace)
// skipped, also inside a continuation; a line ending in an odd number of
// backslashes continues on the next, the backslash becoming a space;
// "[Section]" headers; KEY=VALUE with both sides trimmed. It returns the
// Environment= directives of [Service] sections.
func parseUnit(data []byte) ([]directive, error) {
	var out []directive
	section := ""
	pos := 0
	if bytes.HasPrefix(data, []byte("\xef\xbb\xbf")) {
		pos = 3
	}
	lineNo := 0
	var logical []byte // the joined line
	var offs []int     // file offset of each byte of logical
	first := 0         // line number where the logical line started
	for pos < len(data) {
		lineNo++
		eol := bytes.IndexByte(data[pos:], '\n')
		next := len(data)
		raw := data[pos:]
		if eol >= 0 {
			raw = data[pos : pos+eol]
			next = pos + eol + 1
		}
		raw = bytes.TrimSuffix(raw, []byte("\r")) // CRLF ends one line, as in systemd's read_line
		start := pos
		pos = next
		if t := bytes.TrimLeft(raw, whitespace); len(t) > 0 && (t[0] == '#' || t[0] == ';') {
			continue
		}
		if logical == nil {
			first = lineNo
			logical, offs = []byte{}, []int{}
		}
		logical = append(logical, raw...)
		for i := range raw {
			offs = append(offs, start+i)
		}
		if endsEscaped(logical) {
			logical[len(logical)-1] = ' '
			continue
		}
		d, ok, err := parseLine(string(logical), offs, first, &section)
		if err != nil {
			return out, err
		}
		if ok {
			d.end = next
			out = append(out, d)
		}
		logical, offs = nil, nil
	}
	if logical != nil { // continuation at EOF
		d, ok, err := parseLine(string(logical), offs, first, &section)
		if err != nil {
			return out, err
		}
		if ok {
			d.end = len(data)
			out = append(out, d)
		}
	}
	return out, nil
}

// endsEscaped reports whether s ends in an unescaped backslash.
func endsEscaped(s []byte) bool {
	escaped := false
	for _, c := range s {
		if escaped {
			escaped = false
		} else if c == '\\' {
			escaped = true
		}
	}
	return escaped
}

// parseLine handles one logical line; ok is true for an Environment= of
// [Service].
func parseLine(l string, offs []int, lineNo int, section *string) (directive, bool, error) {
	lead := len(l) - len(strings.TrimLeft(l, whitespace))
	l = strings.Trim(l, whitespace)
	offs = offs[lead : lead+len(l)]
	if l == "" {
		return directive{}, false, nil
	}
	if l[0] == '[' {
		if l[len(l)-1] != ']' {
			return directive{}, false, &parseError{lineNo, fmt.Sprintf("invalid section header %q: systemd rejects this file", l)}
		}
		*section = l[1 : len(l)-1]
		return directive{}, false, nil
	}
	eq := strings.IndexByte(l, '=')
	if *section != "Service" || eq <= 0 { // other section, or a line systemd ignores
		return directive{}, false, nil
	}
	if strings.Trim(l[:eq], whitespace) != "Environment" {
		return directive{}, false, nil
	}
	rest := l[eq+1:]
	lead = len(rest) - len(strings.TrimLeft(rest, whitespace))
	value := strings.Trim(rest, whitespace)
	voffs := offs[eq+1+lead : eq+1+lead+len(value)]
	d := directive{line: lineNo}
	if value == "" {
		d.reset = true
		return d, true, nil
	}
	words, err := splitEnviron(value)
	d.err = err
	for _, w := range words {
		key, _, ok := validAssignment(resolveSpecifiers(w.text))
		if !ok {
			continue // systemd: "Invalid environment assignment, ignoring"
		}
		d.words = append(d.words, assignment{
			key:      key,
			value:    w.text[len(key)+1:],
			start:    voffs[w.start],
			end:      voffs[w.end-1] + 1,
			portable: w.portable,
		})
	}
	return d, true, nil
}
