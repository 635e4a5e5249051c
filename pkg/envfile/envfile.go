// Package envfile reads a file as systemd's EnvironmentFile= does (the
// environment of a unit's own process: ecs-init's from /etc/ecs/ecs.config,
// Docker's from /etc/sysconfig/docker). Pure logic: it opens no file.
// docs/ecs-config.md ("systemd's EnvironmentFile parse") holds the rules and
// where they were verified.
package envfile

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Var is one variable of ecs-init's own process environment: its
// value as systemd's EnvironmentFile= parse gives it, and the 1-based line
// of the file where its (last) assignment starts.
type Var struct {
	Value string
	Line  int
}

// View is ecs.config as systemd reads it for ecs-init's own process
// (ecs.service: EnvironmentFile=-/etc/ecs/ecs.config). docs/ecs-config.md
// ("systemd's EnvironmentFile parse") says where each rule comes from.
type View struct {
	// Vars are the valid assignments; the last one of a name wins. When
	// the file is skipped, they are what systemd would read once the bad
	// bytes are fixed (the assignments holding them left out).
	Vars map[string]Var
	// Skipped is non-nil when systemd refuses the whole file: the "-" prefix
	// of EnvironmentFile= then makes ecs-init start without any of it.
	Skipped *SkipError
}

// SkipError says why systemd skips the whole file.
type SkipError struct {
	Line int    // 1-based line of the assignment
	Key  string // the key as written (may hold the bad bytes)
	Msg  string
}

func (e *SkipError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// Lookup returns a variable of the view ("", false when the file is skipped
// or does not set it).
func (v *View) Lookup(key string) (Var, bool) {
	if v == nil || v.Skipped != nil {
		return Var{}, false
	}
	sv, ok := v.Vars[key]
	return sv, ok
}

// LookupAnyway is Lookup as if the file were not skipped: what systemd would
// give the process once the assignment with the bad bytes is fixed. A
// repair that rewrites a line keeps what this reader would read from it.
func (v *View) LookupAnyway(key string) (Var, bool) {
	if v == nil {
		return Var{}, false
	}
	sv, ok := v.Vars[key]
	return sv, ok
}

// Parse reads data as systemd's parse_env_file_internal (env-file.c,
// systemd 219 to 253; Amazon Linux 2 has 219, Amazon Linux 2023 252) and
// load_env_file_push do, then drops the assignments systemd's
// strv_env_clean removes:
//
//   - a line whose first non-white character is # or ; is a comment; a
//     comment ending in a backslash also swallows the next line (changed
//     only in systemd 254);
//   - "\n" and "\r" both end a line;
//   - KEY=VALUE with white space around the key and before the value
//     skipped, trailing white space of an unquoted value removed;
//   - '…' keeps everything literally; "…" keeps everything but \" \\ \`
//     \$ (unescaped) and backslash-newline (removed); outside quotes a
//     backslash keeps the next character, and backslash-newline joins lines;
//     quoted and unquoted parts of a value are concatenated (A="x"y is xy);
//   - a key or value that is not valid UTF-8 makes systemd refuse the whole
//     file (a comment line may hold any bytes);
//   - a name that is not [A-Za-z_][A-Za-z0-9_]* ("export X", "X Y", a
//     name after a UTF-8 BOM) is dropped, the rest of the file kept.
func Parse(data []byte) *View {
	const (
		preKey = iota
		inKey
		preValue
		inValue
		valueEscape
		singleQuote
		doubleQuote
		doubleQuoteEscape
		comment
		commentEscape
	)
	v := &View{Vars: map[string]Var{}}
	state := preKey
	var key, value []byte
	keyStart := 0
	lastKeyWS, lastValueWS := -1, -1
	haveValue := false
	push := func() {
		if lastKeyWS >= 0 {
			key = key[:lastKeyWS]
		}
		if lastValueWS >= 0 && state == inValue {
			value = value[:lastValueWS]
		}
		line := 1 + bytes.Count(data[:keyStart], []byte("\n"))
		var skip *SkipError
		if !utf8.Valid(key) {
			skip = &SkipError{Line: line, Key: string(key), Msg: "invalid UTF-8 in the name"}
		} else if !utf8.Valid(value) {
			skip = &SkipError{Line: line, Key: string(key), Msg: "invalid UTF-8 in the value of " + strconv.Quote(string(key))}
		}
		if skip != nil {
			// systemd stops here and refuses the file; the rest is read
			// on only for LookupAnyway.
			if v.Skipped == nil {
				v.Skipped = skip
			}
		} else if ValidName(string(key)) {
			v.Vars[string(key)] = Var{Value: string(value), Line: line}
		}
		key, value, haveValue = key[:0], value[:0], false
	}
	isWS := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
	isNL := func(c byte) bool { return c == '\n' || c == '\r' }
	for i := 0; i < len(data); i++ {
		c := data[i]
		if c == 0 {
			break // systemd reads a C string
		}
		switch state {
		case preKey:
			switch {
			case c == '#' || c == ';':
				state = comment
			case !isWS(c):
				state = inKey
				lastKeyWS = -1
				keyStart = i
				key = append(key[:0], c)
			}
		case inKey:
			switch {
			case isNL(c):
				state = preKey
				key = key[:0]
			case c == '=':
				state = preValue
				lastValueWS = -1
				haveValue = true
			default:
				if !isWS(c) {
					lastKeyWS = -1
				} else if lastKeyWS < 0 {
					lastKeyWS = len(key)
				}
				key = append(key, c)
			}
		case preValue:
			switch {
			case isNL(c):
				push()
				state = preKey
			case c == '\'':
				state = singleQuote
			case c == '"':
				state = doubleQuote
			case c == '\\':
				state = valueEscape
			case !isWS(c):
				state = inValue
				value = append(value, c)
			}
		case inValue:
			switch {
			case isNL(c):
				push()
				state = preKey
			case c == '\\':
				state = valueEscape
				lastValueWS = -1
			default:
				if !isWS(c) {
					lastValueWS = -1
				} else if lastValueWS < 0 {
					lastValueWS = len(value)
				}
				value = append(value, c)
			}
		case valueEscape:
			state = inValue
			if !isNL(c) {
				value = append(value, c)
			}
		case singleQuote:
			if c == '\'' {
				state = preValue
			} else {
				value = append(value, c)
			}
		case doubleQuote:
			switch c {
			case '"':
				state = preValue
			case '\\':
				state = doubleQuoteEscape
			default:
				value = append(value, c)
			}
		case doubleQuoteEscape:
			state = doubleQuote
			switch {
			case strings.IndexByte("\"\\`$", c) >= 0:
				value = append(value, c)
			case c != '\n':
				value = append(value, '\\', c)
			}
		case comment:
			if c == '\\' {
				state = commentEscape
			} else if isNL(c) {
				state = preKey
			}
		case commentEscape:
			state = comment
		}
	}
	switch state {
	case preValue, inValue, valueEscape, singleQuote, doubleQuote, doubleQuoteEscape:
		if haveValue {
			push()
		}
	}
	return v
}

// ValidName is systemd's env_name_is_valid for what a file can hold.
func ValidName(k string) bool {
	if k == "" || (k[0] >= '0' && k[0] <= '9') {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
			return false
		}
	}
	return true
}
