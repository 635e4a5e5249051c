// Package ecsconfig owns /etc/ecs/ecs.config: a lossless model of the file,
// the effective values exactly as ecs-init hands them to the ECS agent, and
// the minimal, atomic repair of the lines that decide a wrong value. It never
// writes the base file (/var/lib/ecs/ecs.config) and touches no other file
// than the one it enforces, its backup and its temp files; it reads the
// agent's JSON configuration file (/etc/ecs/ecs.config.json) to say what
// decides a flag the environment does not set, and never writes it.
//
// How ecs-init reads the file (docs/ecs-config.md, read from its source): for
// each line, TrimSpace, then SplitN(line, "=", 2); lines without "=" are
// skipped; there is no comment handling ("#ECS_X=1" sets a variable named
// "#ECS_X"); quotes are kept literally; spaces around "=" stay in the key and
// value; "export X=1" sets a variable named "export X"; the last duplicate
// wins. The agent then judges booleans with TrimSpace + strconv.ParseBool.
// systemd reads the same file for ecs-init's own process (pkg/envfile): a
// repair keeps what that reader had too (a near-miss NO_PROXY's entries),
// and a file systemd refuses (invalid UTF-8) is a warning.
//
// Symlinks: reading follows them. Writing through a symlink is allowed only
// when its final target is a regular file in the same directory as the link
// (the target is replaced atomically and the link stays); any other symlink
// is refused with an error that names link and target, so the daemon never
// rewrites a file elsewhere on the host.
//
// Refusals: a file larger than MaxSize, a file holding a NUL byte, a path
// that is a directory, FIFO, socket or device (checked with stat; nothing
// but a regular file is ever opened), a parent path that is a file, and a
// symlink as above make every item an error and change nothing.
//
// Writes: one atomic replace (pkg/atomicfile) per repair keeps mode and
// owner; a missing file and directory are created 0644 / 0755; the first
// change to an existing file is preceded by a one-time backup that is never
// overwritten.
package ecsconfig

import (
	"bytes"
	"strings"
)

// Line is one line of the file: its text without the terminator, and the
// terminator itself ("\n", "\r\n", or "" for a last line without one).
type Line struct {
	Text []byte
	EOL  []byte
}

// File is the whole file, line by line; Bytes gives back exactly what
// Parse was given.
type File struct {
	Lines []Line
}

// Parse splits data into lines, keeping every byte.
func Parse(data []byte) *File {
	f := &File{}
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			f.Lines = append(f.Lines, Line{Text: data})
			break
		}
		text, eol := data[:i], data[i:i+1]
		if i > 0 && data[i-1] == '\r' {
			text, eol = data[:i-1], data[i-1:i+1]
		}
		f.Lines = append(f.Lines, Line{Text: text, EOL: eol})
		data = data[i+1:]
	}
	return f
}

// Bytes returns the file's content.
func (f *File) Bytes() []byte {
	var b bytes.Buffer
	for _, l := range f.Lines {
		b.Write(l.Text)
		b.Write(l.EOL)
	}
	return b.Bytes()
}

// KV splits one line as ecs-init does. ok is false for a line without "=".
func KV(text []byte) (key, value string, ok bool) {
	s := strings.TrimSpace(string(text))
	key, value, ok = strings.Cut(s, "=")
	if !ok {
		return "", "", false
	}
	return key, value, true
}

// Assignment is a line that sets a variable, as ecs-init sees it.
type Assignment struct {
	Index int // index in File.Lines
	Key   string
	Value string
}

// LineNo is the 1-based line number.
func (a Assignment) LineNo() int { return a.Index + 1 }

// Last returns the last line that sets exactly key: the one that decides
// the value ecs-init passes on.
func (f *File) Last(key string) (Assignment, bool) {
	for i := len(f.Lines) - 1; i >= 0; i-- {
		if k, v, ok := KV(f.Lines[i].Text); ok && k == key {
			return Assignment{Index: i, Key: k, Value: v}, true
		}
	}
	return Assignment{}, false
}

// All returns every line that sets exactly key, in order.
func (f *File) All(key string) []Assignment {
	var out []Assignment
	for i, l := range f.Lines {
		if k, v, ok := KV(l.Text); ok && k == key {
			out = append(out, Assignment{Index: i, Key: k, Value: v})
		}
	}
	return out
}

// NearMiss returns the last line that was clearly meant to set key but sets
// a different variable for ecs-init: spaces around "=" ("KEY = true") or an
// "export " prefix. Comment lines (# or ;) are not near misses: systemd
// skips them, and the variable ecs-init makes of them ("#KEY") is harmless.
func (f *File) NearMiss(key string) (Assignment, bool) {
	for i := len(f.Lines) - 1; i >= 0; i-- {
		k, v, ok := KV(f.Lines[i].Text)
		if !ok || k == key || strings.HasPrefix(k, "#") || strings.HasPrefix(k, ";") {
			continue
		}
		if normalizeKey(k) == key {
			return Assignment{Index: i, Key: k, Value: v}, true
		}
	}
	return Assignment{}, false
}

func normalizeKey(k string) string {
	k = strings.TrimSpace(k)
	if rest, ok := strings.CutPrefix(k, "export"); ok && rest != strings.TrimLeft(rest, " \t") {
		k = strings.TrimSpace(rest)
	}
	return k
}

// eol is the line terminator the file uses (CRLF when its first
// terminated line has one), for lines we add.
func (f *File) eol() []byte {
	for _, l := range f.Lines {
		if len(l.EOL) > 0 {
			return l.EOL
		}
	}
	return []byte("\n")
}

// Set makes key's effective value value with the smallest change: it
// rewrites the line that decides the value, else the last near-miss line
// meant for key, else it appends a line. It returns what it did and the
// 1-based line number.
func (f *File) Set(key, value string) (action string, lineNo int) {
	text := []byte(key + "=" + value)
	if a, ok := f.Last(key); ok {
		f.Lines[a.Index].Text = text
		return "rewrote line", a.LineNo()
	}
	if a, ok := f.NearMiss(key); ok {
		f.Lines[a.Index].Text = text
		return "rewrote line", a.LineNo()
	}
	eol := f.eol()
	if n := len(f.Lines); n > 0 && len(f.Lines[n-1].EOL) == 0 {
		f.Lines[n-1].EOL = eol
	}
	f.Lines = append(f.Lines, Line{Text: text, EOL: eol})
	return "appended line", len(f.Lines)
}

// Commented returns the last comment line ("#" or ";") that would set key
// without its comment marker. It is only used to explain a missing value:
// a commented line is never rewritten.
func (f *File) Commented(key string) (Assignment, bool) {
	for i := len(f.Lines) - 1; i >= 0; i-- {
		k, v, ok := KV(f.Lines[i].Text)
		if !ok || !(strings.HasPrefix(k, "#") || strings.HasPrefix(k, ";")) {
			continue
		}
		if normalizeKey(strings.TrimLeft(k, "#; \t")) == key {
			return Assignment{Index: i, Key: k, Value: v}, true
		}
	}
	return Assignment{}, false
}

// SetLine rewrites the 1-based line lineNo to key=value.
func (f *File) SetLine(lineNo int, key, value string) {
	f.Lines[lineNo-1].Text = []byte(key + "=" + value)
}

// RemoveOnlyQuotes removes every line that sets exactly key to a value that
// is only quotes (`""`, `”`) and returns their 1-based numbers as they
// were before the removal.
func (f *File) RemoveOnlyQuotes(key string) []int {
	var removed []int
	kept := f.Lines[:0:0]
	for i, l := range f.Lines {
		if k, v, ok := KV(l.Text); ok && k == key && onlyQuotes(v) {
			removed = append(removed, i+1)
			continue
		}
		kept = append(kept, l)
	}
	f.Lines = kept
	return removed
}
