// Package redact keeps secrets out of everything ecs-remediator prints:
// check (table and --json), apply and its --dry-run diff, the journal's
// fields, metrics and doctor. It owns the rule of what is a secret and the
// way one is shown; it is pure (no I/O, no state beyond a Scrubber's list)
// and imports nothing of the project.
//
// A secret is
//   - the value of a key that holds credentials: ECS_ENGINE_AUTH_DATA and
//     any key whose name contains AUTH, PASSWORD, SECRET or TOKEN (in any
//     case), wherever it is set (ecs.config, its base file, the agent's
//     drop-ins, the policy's extra_settings);
//   - the userinfo of a URL (http://user:password@proxy:3128), in any
//     *_PROXY value and anywhere in text.
//
// A secret is shown as "<redacted, N bytes>", so that a change of it is
// still visible as a change of length, and nothing of it can be read back.
package redact

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// secretWords make a key a credential when its name contains one.
var secretWords = []string{"AUTH", "PASSWORD", "SECRET", "TOKEN"}

// IsSecretKey reports whether the value of key holds credentials. Quotes,
// spaces and an "export " prefix around the name (ecs-init keeps them in
// the key) do not hide it.
func IsSecretKey(key string) bool {
	k := strings.ToUpper(key)
	for _, w := range secretWords {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

// IsProxyKey reports whether key names a proxy URL (HTTP_PROXY,
// https_proxy, ALL_PROXY, ...), whose userinfo is secret.
func IsProxyKey(key string) bool {
	return strings.HasSuffix(strings.ToUpper(strings.TrimSpace(key)), "_PROXY")
}

// Placeholder is what is printed instead of secret s.
func Placeholder(s string) string { return fmt.Sprintf("<redacted, %d bytes>", len(s)) }

// Secrets lists the strings of one assignment key=value that must never be
// printed: the value of a credential key (as written and unquoted), the
// userinfo of a proxy URL. Nothing for other keys.
func Secrets(key, value string) []string {
	var out []string
	add := func(s string) {
		if s != "" {
			out = append(out, s)
		}
	}
	switch {
	case IsSecretKey(key):
		add(value)
		t := strings.TrimSpace(value)
		add(t)
		if u, err := strconv.Unquote(t); err == nil {
			add(u)
		} else if len(t) >= 2 && (t[0] == '"' || t[0] == '\'') && t[len(t)-1] == t[0] {
			add(t[1 : len(t)-1])
		}
	case IsProxyKey(key):
		for _, m := range userinfoRE.FindAllStringSubmatch(value, -1) {
			add(m[2])
			if _, pw, ok := strings.Cut(m[2], ":"); ok {
				add(pw)
			}
		}
		// host:port without a scheme may still carry user:password@.
		if !strings.Contains(value, "://") {
			if ui, _, ok := strings.Cut(strings.Trim(strings.TrimSpace(value), `"'`), "@"); ok {
				add(ui)
				if _, pw, ok := strings.Cut(ui, ":"); ok {
					add(pw)
				}
			}
		}
	}
	return out
}

// FromEnvFile lists the secrets of a KEY=VALUE file (ecs.config and its
// base file), read leniently line by line: whatever ecs-init or systemd
// would take for an assignment is covered.
func FromEnvFile(data []byte) []string {
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok {
			continue
		}
		k = strings.TrimSpace(strings.TrimPrefix(strings.TrimLeft(k, "#; \t"), "export "))
		out = append(out, Secrets(k, strings.TrimRight(v, "\r"))...)
	}
	return out
}

// minKnown is the shortest known secret replaced wherever it appears in
// text; a shorter one ("1", "yes") would garble unrelated words, and is
// still hidden where its key is in sight (Line, String's assignments).
const minKnown = 4

// Scrubber replaces known secrets, and secrets recognisable by their
// shape, in text. The zero value knows no secret yet. Not safe for
// concurrent Add.
type Scrubber struct {
	known []string // longest first
}

// Add makes s known: every later occurrence is replaced.
func (s *Scrubber) Add(secrets ...string) {
	for _, v := range secrets {
		if len(v) < minKnown || strings.HasPrefix(v, "<redacted,") {
			continue
		}
		s.known = append(s.known, v)
		// The forms it is printed in: Go-quoted (details quote odd values).
		if q := strconv.Quote(v); q[1:len(q)-1] != v {
			s.known = append(s.known, q[1:len(q)-1])
		}
	}
	sort.Slice(s.known, func(i, j int) bool { return len(s.known[i]) > len(s.known[j]) })
}

// String returns text with every secret replaced: known ones, URL
// userinfo, and values assigned to a credential key (KEY=value, up to a
// blank, a quote, ';' or ',').
func (s *Scrubber) String(text string) string {
	if text == "" {
		return text
	}
	for _, k := range s.known {
		if strings.Contains(text, k) {
			text = strings.ReplaceAll(text, k, Placeholder(k))
		}
	}
	text = userinfoRE.ReplaceAllStringFunc(text, maskUserinfo)
	return assignRE.ReplaceAllStringFunc(text, func(m string) string {
		sub := assignRE.FindStringSubmatch(m)
		if strings.HasPrefix(sub[3], "<redacted") {
			return m
		}
		return sub[1] + sub[2] + Placeholder(sub[3])
	})
}

// Line returns one line of a file or of a diff of one (a leading "+", "-"
// or " " is kept) with secrets replaced; a line that assigns a credential
// key has its whole value, to the end of the line, replaced.
func (s *Scrubber) Line(line string) string {
	prefix := ""
	if line != "" && strings.ContainsRune("+- ", rune(line[0])) && !strings.HasPrefix(line, "+++") && !strings.HasPrefix(line, "---") {
		prefix, line = line[:1], line[1:]
	}
	if m := lineAssignRE.FindStringSubmatchIndex(line); m != nil {
		key := line[m[2]:m[3]]
		if IsSecretKey(key) {
			val := line[m[1]:]
			end := strings.TrimRight(val, "\r")
			cr := val[len(end):]
			return prefix + line[:m[1]] + Placeholder(end) + cr
		}
	}
	return prefix + s.String(line)
}

// Lines applies Line to every line of text.
func (s *Scrubber) Lines(text string) string {
	if text == "" {
		return text
	}
	ls := strings.Split(text, "\n")
	for i, l := range ls {
		ls[i] = s.Line(l)
	}
	return strings.Join(ls, "\n")
}

var (
	// userinfoRE: scheme://userinfo@ (group 1 the scheme, 2 the userinfo).
	userinfoRE = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://)([^/?#\s@"'<>]+)@`)
	// assignRE: an upper-case credential name assigned in prose or a
	// quoted line (group 1 the name, 2 "=", 3 the value). Upper case only:
	// prose such as "HttpTokens=optional" is no assignment of a secret.
	assignRE = regexp.MustCompile(`\b([A-Z0-9_]*(?:AUTH|PASSWORD|SECRET|TOKEN)[A-Z0-9_]*)(\s*=\s*)([^\s"';,]+)`)
	// lineAssignRE: a whole line that assigns (ecs.config, or a drop-in's
	// Environment= word): the key is group 1, the value starts at the end.
	lineAssignRE = regexp.MustCompile(`^\s*(?:Environment\s*=\s*["']?)?(?:export\s+)?["']?([^=\s"']+)\s*=`)
)

func maskUserinfo(m string) string {
	sub := userinfoRE.FindStringSubmatch(m)
	if strings.HasPrefix(sub[2], "<redacted,") {
		return m
	}
	return sub[1] + Placeholder(sub[2]) + "@"
}
