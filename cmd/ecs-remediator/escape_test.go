package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
)

func TestEscapeTerminal(t *testing.T) {
	for in, want := range map[string]string{
		"plain text, ümlaut, 日本":  "plain text, ümlaut, 日本",
		"\x1b[2J\x1b]0;pwned\x07": `\x1b[2J\x1b]0;pwned\x07`,
		"a\rb\tc\x08d\x7f":        `a\x0db\x09c\x08d\x7f`,
		"C1 \u009b31m":            `C1 \u009b31m`,
		"bidi \u202egnp.exe":      `bidi \u202egnp.exe`,
		"bad \xff\xfe utf-8":      `bad \xff\xfe utf-8`,
	} {
		if got := escapeTerminal(in); got != want {
			t.Errorf("escapeTerminal(%q) = %q, want %q", in, got, want)
		}
	}
}

// Every cell of the findings table goes through the escaping: a process
// name or file content with escape sequences cannot reach the terminal.
func TestTableEscapesControlCharacters(t *testing.T) {
	var b bytes.Buffer
	writeTable(&b, []finding.Finding{{Item: "tasks.\x1b[31mx", Status: finding.Drift,
		Detail: "process \x1b]0;owned\x07 (pid 1) lost it\rOVERWRITE", Fix: "kill \x1b[2J"}})
	out := b.String()
	if strings.ContainsAny(out, "\x1b\x07\r") {
		t.Fatalf("control characters reached the table: %q", out)
	}
	for _, want := range []string{`\x1b]0;owned\x07`, `\x0dOVERWRITE`, `tasks.\x1b[31mx`, `kill \x1b[2J`} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}
