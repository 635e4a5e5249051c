package logging

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/journal"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func TestFieldName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"item", "ITEM"},
		{"message_id", "MESSAGE_ID"},
		{"old", "OLD"},
		{"resync_interval", "RESYNC_INTERVAL"},
		{"old-value", "OLD_VALUE"},
		{"a.b c", "A_B_C"},
		{"_private", "PRIVATE"},
		{"__x", "X"},
		{"9lives", "F_9LIVES"},
		{"", "FIELD"},
		{"___", "FIELD"},
		{"ünïcode", "N_CODE"},
		{"x234567890123456789012345678901234567890123456789012345678901234567890", "X234567890123456789012345678901234567890123456789012345678901234"},
	} {
		if got := FieldName(tc.in); got != tc.want {
			t.Errorf("FieldName(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if got := FieldName(tc.in); !validJournalField(got) {
			t.Errorf("FieldName(%q) = %q is not a valid journald field name", tc.in, got)
		}
	}
}

// validJournalField is journald's rule (journal_field_valid in systemd).
func validJournalField(s string) bool {
	if s == "" || len(s) > 64 || s[0] == '_' || (s[0] >= '0' && s[0] <= '9') {
		return false
	}
	for _, r := range s {
		if !((r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') || r == '_') {
			return false
		}
	}
	return true
}

type sent struct {
	msg  string
	pri  journal.Priority
	vars map[string]string
}

func captureJournal(lvl zapcore.Level) (*zap.Logger, *[]sent) {
	var got []sent
	core := newJournalCore(lvl, "ecs-remediator", func(m string, p journal.Priority, v map[string]string) error {
		got = append(got, sent{m, p, v})
		return nil
	})
	return zap.New(core), &got
}

func TestJournalFieldsOfARepair(t *testing.T) {
	log, got := captureJournal(zapcore.InfoLevel)
	log.With(zap.String("component", "reconcile")).Info("ecs_config.task_iam_role: rewrote line 4 (was \"true\" with quotes)",
		zap.String("item", "ecs_config.task_iam_role"),
		zap.String("action", "rewrote line 4"),
		zap.String("target", "/etc/ecs/ecs.config"),
		zap.String("old", `"true"`),
		zap.String("new", "true"),
		zap.String("reason", "quoted value is invalid"),
		MessageID(DriftRepaired),
		zap.Int("flips", 3),
		zap.Bool("compliant", false),
		zap.Duration("took", 1500*time.Millisecond),
		zap.Error(errors.New("boom")),
		zap.Strings("list", []string{"a", "b"}),
		zap.String("message", "user field named message"),
		zap.Namespace("req"), zap.String("id", "42"),
	)
	if len(*got) != 1 {
		t.Fatalf("sent %d entries, want 1", len(*got))
	}
	s := (*got)[0]
	if s.msg != `ecs_config.task_iam_role: rewrote line 4 (was "true" with quotes)` || s.pri != journal.PriInfo {
		t.Errorf("MESSAGE %q PRIORITY %d", s.msg, s.pri)
	}
	want := map[string]string{
		"SYSLOG_IDENTIFIER": "ecs-remediator",
		"COMPONENT":         "reconcile",
		"ITEM":              "ecs_config.task_iam_role",
		"ACTION":            "rewrote line 4",
		"TARGET":            "/etc/ecs/ecs.config",
		"OLD":               `"true"`,
		"NEW":               "true",
		"REASON":            "quoted value is invalid",
		"MESSAGE_ID":        DriftRepaired,
		"FLIPS":             "3",
		"COMPLIANT":         "false",
		"TOOK":              "1.5s",
		"ERROR":             "boom",
		"LIST":              `["a","b"]`,
		"ZAP_MESSAGE":       "user field named message",
		"REQ_ID":            "42",
	}
	if !reflect.DeepEqual(s.vars, want) {
		t.Errorf("fields:\n got %v\nwant %v", s.vars, want)
	}
	for k := range s.vars {
		if !validJournalField(k) {
			t.Errorf("field %q is not a valid journald field name", k)
		}
	}
}

func TestJournalPriorityAndLevel(t *testing.T) {
	log, got := captureJournal(zapcore.InfoLevel)
	log.Debug("hidden")
	log.Info("i")
	log.Warn("w")
	log.Error("e")
	want := []journal.Priority{journal.PriInfo, journal.PriWarning, journal.PriErr}
	if len(*got) != len(want) {
		t.Fatalf("sent %d entries, want %d (debug must be filtered at info)", len(*got), len(want))
	}
	for i, p := range want {
		if (*got)[i].pri != p {
			t.Errorf("entry %d (%s): priority %d, want %d", i, (*got)[i].msg, (*got)[i].pri, p)
		}
	}
	if priority(zapcore.DPanicLevel) != journal.PriCrit || priority(zapcore.FatalLevel) != journal.PriCrit {
		t.Error("panic and fatal must map to crit")
	}
}

func TestJournalWithDoesNotLeakBetweenChildren(t *testing.T) {
	log, got := captureJournal(zapcore.InfoLevel)
	a := log.With(zap.String("item", "a"))
	b := log.With(zap.String("item", "b"))
	a.Info("x")
	b.Info("y", zap.String("extra", "1"))
	a.Info("z")
	items := []string{(*got)[0].vars["ITEM"], (*got)[1].vars["ITEM"], (*got)[2].vars["ITEM"]}
	if !reflect.DeepEqual(items, []string{"a", "b", "a"}) {
		t.Errorf("ITEM per entry = %v", items)
	}
	if _, ok := (*got)[2].vars["EXTRA"]; ok {
		t.Error("a field of one entry leaked into the next")
	}
}

func TestJournalSendErrorIsReported(t *testing.T) {
	core := newJournalCore(zapcore.InfoLevel, "x", func(string, journal.Priority, map[string]string) error {
		return errors.New("socket gone")
	})
	err := core.Write(zapcore.Entry{Level: zapcore.InfoLevel, Message: "m"}, nil)
	if err == nil || err.Error() != "send to journald: socket gone" {
		t.Errorf("Write error = %v", err)
	}
}
