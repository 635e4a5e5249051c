package logging

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/journal"
	"go.uber.org/zap/zapcore"
)

// sendFunc is journal.Send.
type sendFunc func(message string, priority journal.Priority, vars map[string]string) error

// journalCore is a zapcore.Core that sends each entry to journald as one
// native message with structured fields.
type journalCore struct {
	zapcore.LevelEnabler
	ident  string
	fields []zapcore.Field // added by With
	send   sendFunc
}

func newJournalCore(lvl zapcore.LevelEnabler, ident string, send sendFunc) *journalCore {
	return &journalCore{LevelEnabler: lvl, ident: ident, send: send}
}

func (c *journalCore) With(fs []zapcore.Field) zapcore.Core {
	clone := *c
	clone.fields = append(c.fields[:len(c.fields):len(c.fields)], fs...)
	return &clone
}

func (c *journalCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *journalCore) Write(e zapcore.Entry, fs []zapcore.Field) error {
	all := fs
	if len(c.fields) > 0 {
		all = append(c.fields[:len(c.fields):len(c.fields)], fs...)
	}
	if err := c.send(e.Message, priority(e.Level), journalFields(c.ident, e, all)); err != nil {
		return fmt.Errorf("send to journald: %w", err)
	}
	return nil
}

func (c *journalCore) Sync() error { return nil }

// priority maps a zap level to a syslog priority.
func priority(l zapcore.Level) journal.Priority {
	switch {
	case l <= zapcore.DebugLevel:
		return journal.PriDebug
	case l == zapcore.InfoLevel:
		return journal.PriInfo
	case l == zapcore.WarnLevel:
		return journal.PriWarning
	case l == zapcore.ErrorLevel:
		return journal.PriErr
	default: // DPanic, Panic, Fatal
		return journal.PriCrit
	}
}

// reserved are the names journal.Send writes itself; a zap field that
// maps to one is renamed with a ZAP_ prefix instead of clashing.
var reserved = map[string]bool{"MESSAGE": true, "PRIORITY": true}

// journalFields turns an entry's zap fields into journald fields (without
// MESSAGE and PRIORITY, which journal.Send adds).
func journalFields(ident string, e zapcore.Entry, fs []zapcore.Field) map[string]string {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range fs {
		f.AddTo(enc)
	}
	vars := map[string]string{"SYSLOG_IDENTIFIER": ident}
	flatten(vars, "", enc.Fields)
	if e.LoggerName != "" {
		vars["LOGGER"] = e.LoggerName
	}
	if e.Caller.Defined {
		vars["CODE_FILE"] = e.Caller.File
		vars["CODE_LINE"] = strconv.Itoa(e.Caller.Line)
		if e.Caller.Function != "" {
			vars["CODE_FUNC"] = e.Caller.Function
		}
	}
	if e.Stack != "" {
		vars["STACKTRACE"] = e.Stack
	}
	return vars
}

// flatten writes m into vars; a zap.Namespace (nested map) becomes a name
// prefix: namespace "req", key "id" -> REQ_ID.
func flatten(vars map[string]string, prefix string, m map[string]interface{}) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys) // deterministic when two keys map to one name
	for _, k := range keys {
		name := k
		if prefix != "" {
			name = prefix + "_" + k
		}
		if sub, ok := m[k].(map[string]interface{}); ok {
			flatten(vars, name, sub)
			continue
		}
		f := FieldName(name)
		if reserved[f] {
			f = "ZAP_" + f
		}
		vars[f] = fieldValue(m[k])
	}
}

// FieldName turns a zap field key into a valid journald field name:
// upper case, only A-Z, 0-9 and _, not starting with _ or a digit, at most
// 64 characters ("message_id" -> "MESSAGE_ID", "old-value" -> "OLD_VALUE").
func FieldName(key string) string {
	var b strings.Builder
	for _, r := range strings.ToUpper(key) {
		if (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	s := strings.TrimLeft(b.String(), "_")
	if s == "" {
		s = "FIELD"
	}
	if s[0] >= '0' && s[0] <= '9' {
		s = "F_" + s
	}
	if len(s) > 64 {
		s = s[:64]
	}
	return s
}

// fieldValue renders one encoded zap value as text.
func fieldValue(v interface{}) string {
	switch x := v.(type) {
	case string:
		return x
	case []byte:
		return string(x)
	case bool:
		return strconv.FormatBool(x)
	case time.Time:
		return x.Format(time.RFC3339Nano)
	case time.Duration:
		return x.String()
	case fmt.Stringer:
		return x.String()
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, uintptr, float32, float64, complex64, complex128:
		return fmt.Sprint(x)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
