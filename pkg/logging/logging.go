// Package logging builds the one zap logger of ecs-remediator. Under
// systemd, with journald listening, entries go to the journal natively
// (journal.Send): MESSAGE, PRIORITY, SYSLOG_IDENTIFIER and every zap field
// as its own upper-case journald field (item -> ITEM, message_id ->
// MESSAGE_ID), so `journalctl -u ecs-remediator ITEM=ecs_config.task_iam_role`
// and the message catalog (systemd/ecs-remediator.catalog) work. Anywhere
// else it writes one human-readable line per entry to stderr.
//
// It owns the MESSAGE_ID constants, which are fixed forever. It touches
// nothing but the journal socket and the writer it is given.
package logging

import (
	"fmt"
	"io"
	"os"

	"github.com/coreos/go-systemd/v22/journal"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Identifier is the default SYSLOG_IDENTIFIER.
const Identifier = "ecs-remediator"

// Output chooses where entries go.
type Output int

const (
	// Auto writes to journald when running under systemd with journald
	// listening, otherwise to the console.
	Auto Output = iota
	// Console always writes human-readable lines.
	Console
	// Journal always writes to journald; New fails when it is not there.
	Journal
)

// Format is the shape of console lines.
type Format string

const (
	// Text is time (left out when stderr already goes to the journal),
	// level, message, then the fields as JSON.
	Text Format = "text"
	// Human is the message only, "warning: " or "error: " before it: for
	// a person at a terminal. The fields go to the journal or JSON.
	Human Format = "human"
	// JSON is one JSON object per entry: ts, level, msg and every field.
	JSON Format = "json"
)

// Formats lists the console formats, for flag help and errors.
var Formats = []Format{Human, Text, JSON}

// Options tune New. The zero value is what the daemon wants.
type Options struct {
	Output Output
	// Format of console lines; "" means Text.
	Format Format
	// Writer receives console lines; nil means os.Stderr.
	Writer io.Writer
	// Identifier is SYSLOG_IDENTIFIER; "" means Identifier.
	Identifier string
}

// Seams for tests: the real journal and environment.
var (
	journalEnabled = journal.Enabled
	journalSend    = journal.Send
	getenv         = os.Getenv
)

// New returns a logger at level ("debug", "info", "warn" or "error").
func New(level string, o Options) (*zap.Logger, error) {
	lvl, err := ParseLevel(level)
	if err != nil {
		return nil, err
	}
	if o.Writer == nil {
		o.Writer = os.Stderr
	}
	if o.Identifier == "" {
		o.Identifier = Identifier
	}
	useJournal := false
	switch o.Output {
	case Journal:
		if !journalEnabled() {
			return nil, fmt.Errorf("journald is not listening on /run/systemd/journal/socket: run under systemd or log to the console")
		}
		useJournal = true
	case Auto:
		useJournal = JournalAvailable()
	}
	var core zapcore.Core
	if useJournal {
		core = newJournalCore(lvl, o.Identifier, journalSend)
	} else {
		switch o.Format {
		case Human:
			core = newHumanCore(lvl, o.Writer)
		case JSON:
			core = newJSONCore(lvl, o.Writer)
		case Text, "":
			core = newConsoleCore(lvl, o.Writer, getenv("JOURNAL_STREAM") != "")
		default:
			return nil, fmt.Errorf("log format %q: use human, text or json", o.Format)
		}
	}
	return zap.New(core, zap.ErrorOutput(zapcore.AddSync(o.Writer))), nil
}

// JournalAvailable reports whether New with Output Auto logs to journald:
// the process runs under systemd (INVOCATION_ID or JOURNAL_STREAM is set)
// and journald's native socket accepts messages.
func JournalAvailable() bool {
	if getenv("INVOCATION_ID") == "" && getenv("JOURNAL_STREAM") == "" {
		return false
	}
	return journalEnabled()
}

// ParseLevel reads a log_level value.
func ParseLevel(level string) (zapcore.Level, error) {
	switch level {
	case "debug":
		return zapcore.DebugLevel, nil
	case "info", "":
		return zapcore.InfoLevel, nil
	case "warn":
		return zapcore.WarnLevel, nil
	case "error":
		return zapcore.ErrorLevel, nil
	}
	return 0, fmt.Errorf("log_level %q: use debug, info, warn or error", level)
}

// newConsoleCore writes one line per entry: time (left out when stderr
// already goes to the journal, which stamps it), level, message, then the
// fields as JSON.
func newConsoleCore(lvl zapcore.Level, w io.Writer, journalStream bool) zapcore.Core {
	enc := zapcore.EncoderConfig{
		TimeKey:          "ts",
		LevelKey:         "level",
		MessageKey:       "msg",
		StacktraceKey:    "stack",
		LineEnding:       zapcore.DefaultLineEnding,
		EncodeLevel:      zapcore.CapitalLevelEncoder,
		EncodeTime:       zapcore.ISO8601TimeEncoder,
		EncodeDuration:   zapcore.StringDurationEncoder,
		ConsoleSeparator: " ",
	}
	if journalStream {
		enc.TimeKey = ""
	}
	return zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.AddSync(w), lvl)
}
