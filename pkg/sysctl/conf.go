package sysctl

import (
	"fmt"
	"strings"
)

// This file is the pure model of a sysctl.d file (sysctl.d(5)): one
// assignment per line, "#" and ";" comment lines, "key = value" with spaces
// allowed around "=", "/" or "." as separators, a leading "-" that only
// silences errors, and the last assignment of a key wins. Every byte of a
// line we do not rewrite is kept.

// PersistLine is the line our sysctl.d file holds.
const PersistLine = Key + " = 1"

// Header opens a file we create, saying who wrote it.
const Header = "# Written by ecs-remediator. ECS task IAM roles need route_localnet=1 so\n" +
	"# that 169.254.170.2 reaches the ECS agent on 127.0.0.1; ecs-remediator also\n" +
	"# keeps the localhost guard rule that must come with it. To stop managing\n" +
	"# this file set persist.sysctl: off in the ecs-remediator policy.\n"

// confLine is one line: its text and its terminator ("\n", "\r\n" or "").
type confLine struct{ text, eol string }

func splitLines(s string) []confLine {
	var out []confLine
	for s != "" {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			out = append(out, confLine{text: s})
			break
		}
		text, eol := s[:i], "\n"
		if strings.HasSuffix(text, "\r") {
			text, eol = text[:len(text)-1], "\r\n"
		}
		out = append(out, confLine{text, eol})
		s = s[i+1:]
	}
	return out
}

func joinLines(ls []confLine) string {
	var b strings.Builder
	for _, l := range ls {
		b.WriteString(l.text)
		b.WriteString(l.eol)
	}
	return b.String()
}

// keyPath turns a sysctl.d key into its path under /proc/sys: when the
// first separator is ".", dots and slashes swap; when it is "/", the key is
// the path already.
func keyPath(k string) string {
	i := strings.IndexAny(k, "./")
	if i < 0 || k[i] == '/' {
		return k
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case '.':
			return '/'
		case '/':
			return '.'
		}
		return r
	}, k)
}

// assignment parses one line; ok is false for blanks, comments and lines
// without "=" (such as a "-key" glob exclusion).
func assignment(text string) (path, value string, ok bool) {
	t := strings.TrimSpace(text)
	if t == "" || t[0] == '#' || t[0] == ';' {
		return "", "", false
	}
	k, v, ok := strings.Cut(t, "=")
	if !ok {
		return "", "", false
	}
	k = strings.TrimPrefix(strings.TrimSpace(k), "-")
	return keyPath(k), strings.TrimSpace(v), true
}

var ourPath = keyPath(Key)

// lastSetting returns the 0-based index and value of the last line that
// sets Key (index -1 when none does).
func lastSetting(ls []confLine) (int, string) {
	for i := len(ls) - 1; i >= 0; i-- {
		if p, v, ok := assignment(ls[i].text); ok && p == ourPath {
			return i, v
		}
	}
	return -1, ""
}

// edit is the repair of a sysctl.d file.
type edit struct {
	content string // the new content
	action  string // "created file", "rewrote line N", "appended line N"
}

// desired returns the content the file must have so that it sets Key to 1,
// changing as little as possible; ok is false when it already does. A
// missing or empty file gets Header and PersistLine; otherwise the line
// that decides the value is rewritten in place, or PersistLine is appended
// in the file's own line-ending style.
func desired(old string, exists bool) (e edit, ok bool) {
	if !exists || old == "" {
		return edit{content: Header + PersistLine + "\n", action: "created file"}, true
	}
	ls := splitLines(old)
	i, v := lastSetting(ls)
	switch {
	case i >= 0 && v == "1":
		return edit{}, false
	case i >= 0:
		ls[i].text = PersistLine
		return edit{content: joinLines(ls), action: fmt.Sprintf("rewrote line %d", i+1)}, true
	}
	eol := "\n"
	for _, l := range ls {
		if l.eol != "" {
			eol = l.eol
			break
		}
	}
	if last := &ls[len(ls)-1]; last.eol == "" {
		last.eol = eol
	}
	ls = append(ls, confLine{PersistLine, eol})
	return edit{content: joinLines(ls), action: fmt.Sprintf("appended line %d", len(ls))}, true
}
