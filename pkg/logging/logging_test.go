package logging

import (
	"bytes"
	"strings"
	"testing"

	"github.com/coreos/go-systemd/v22/journal"
	"go.uber.org/zap"
)

func TestParseLevel(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
		err  bool
	}{
		{"debug", "debug", false},
		{"info", "info", false},
		{"", "info", false},
		{"warn", "warn", false},
		{"error", "error", false},
		{"verbose", "", true},
		{"INFO", "", true},
	} {
		l, err := ParseLevel(tc.in)
		if (err != nil) != tc.err || (err == nil && l.String() != tc.want) {
			t.Errorf("ParseLevel(%q) = %v, %v", tc.in, l, err)
		}
		if err != nil && !strings.Contains(err.Error(), "log_level") {
			t.Errorf("error %q does not name the key", err)
		}
	}
}

// The console path, for real: this machine has no journald socket, so even
// under systemd's environment variables New must fall back to stderr lines.
func TestNewConsoleWithoutJournald(t *testing.T) {
	if journal.Enabled() {
		t.Skip("journald listens on this machine; the console fallback is not reachable")
	}
	t.Setenv("INVOCATION_ID", "0123456789abcdef0123456789abcdef")
	t.Setenv("JOURNAL_STREAM", "")
	if JournalAvailable() {
		t.Fatal("JournalAvailable() = true without a journald socket")
	}
	var buf bytes.Buffer
	log, err := New("info", Options{Writer: &buf})
	if err != nil {
		t.Fatal(err)
	}
	log.Debug("not shown")
	log.Info("agent restarted", zap.String("item", "agent.restart"), MessageID(AgentRestarted))
	log.Warn("second line")
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 lines, got %q", buf.String())
	}
	for _, want := range []string{"INFO", "agent restarted", `"item": "agent.restart"`, AgentRestarted} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("line %q lacks %q", lines[0], want)
		}
	}
	if !strings.Contains(lines[1], "WARN") || !strings.HasPrefix(lines[0], "20") {
		t.Errorf("lines should start with a timestamp and carry the level: %q", lines)
	}
}

func TestConsoleOmitsTimeUnderJournalStream(t *testing.T) {
	var buf bytes.Buffer
	zap.New(newConsoleCore(zap.InfoLevel, &buf, true)).Info("hello")
	if !strings.HasPrefix(buf.String(), "INFO hello") {
		t.Errorf("got %q, want the line to start with the level (journald stamps the time)", buf.String())
	}
}

func TestNewJournalRequiredFailsWithoutJournald(t *testing.T) {
	if journal.Enabled() {
		t.Skip("journald listens on this machine")
	}
	_, err := New("info", Options{Output: Journal})
	if err == nil || !strings.Contains(err.Error(), "/run/systemd/journal/socket") {
		t.Errorf("err = %v, want one naming the journald socket", err)
	}
}

func TestAutoChoosesJournalUnderSystemd(t *testing.T) {
	oldEnabled, oldSend, oldGetenv := journalEnabled, journalSend, getenv
	defer func() { journalEnabled, journalSend, getenv = oldEnabled, oldSend, oldGetenv }()
	var got []sent
	journalSend = func(m string, p journal.Priority, v map[string]string) error {
		got = append(got, sent{m, p, v})
		return nil
	}
	for _, tc := range []struct {
		name        string
		env         map[string]string
		socket      bool
		wantJournal bool
	}{
		{"systemd service", map[string]string{"INVOCATION_ID": "x"}, true, true},
		{"stderr is a journal stream", map[string]string{"JOURNAL_STREAM": "8:123"}, true, true},
		{"terminal on a systemd host", map[string]string{}, true, false},
		{"service without journald", map[string]string{"INVOCATION_ID": "x"}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got = nil
			journalEnabled = func() bool { return tc.socket }
			getenv = func(k string) string { return tc.env[k] }
			var buf bytes.Buffer
			log, err := New("info", Options{Writer: &buf})
			if err != nil {
				t.Fatal(err)
			}
			log.Info("hello", zap.String("item", "x"))
			if tc.wantJournal {
				if len(got) != 1 || buf.Len() != 0 || got[0].vars["ITEM"] != "x" || got[0].vars["SYSLOG_IDENTIFIER"] != Identifier {
					t.Errorf("want one journal entry and no console output; journal %v, console %q", got, buf.String())
				}
			} else if len(got) != 0 || !strings.Contains(buf.String(), "hello") {
				t.Errorf("want a console line and no journal entry; journal %v, console %q", got, buf.String())
			}
		})
	}
}
