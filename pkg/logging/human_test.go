package logging

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"go.uber.org/zap"
)

func TestFormats(t *testing.T) {
	emit := func(f Format) string {
		var buf bytes.Buffer
		log, err := New("info", Options{Output: Console, Format: f, Writer: &buf})
		if err != nil {
			t.Fatal(err)
		}
		log.Debug("not shown")
		log.Info("ecs_config.X: rewrote line 1", zap.String("item", "ecs_config.X"), MessageID(DriftRepaired))
		log.With(zap.String("unit", "ecs.service")).Warn("restart deferred")
		log.Error("cannot repair")
		return buf.String()
	}
	if got, want := emit(Human), "ecs_config.X: rewrote line 1\nwarning: restart deferred\nerror: cannot repair\n"; got != want {
		t.Errorf("human:\n%q\nwant\n%q", got, want)
	}
	lines := strings.Split(strings.TrimSuffix(emit(JSON), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("json: %d lines: %q", len(lines), lines)
	}
	var first, second map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatalf("json line %q: %v", lines[0], err)
	}
	json.Unmarshal([]byte(lines[1]), &second)
	if first["msg"] != "ecs_config.X: rewrote line 1" || first["item"] != "ecs_config.X" || first["message_id"] != DriftRepaired ||
		first["level"] != "info" || first["ts"] == nil || second["unit"] != "ecs.service" || second["level"] != "warn" {
		t.Errorf("json: %v / %v", first, second)
	}
	if text := emit(Text); !strings.Contains(text, `"item": "ecs_config.X"`) || !strings.Contains(text, "INFO") {
		t.Errorf("text: %q", text)
	}
	if _, err := New("info", Options{Output: Console, Format: "yaml"}); err == nil || !strings.Contains(err.Error(), "human, text or json") {
		t.Errorf("unknown format: %v", err)
	}
}
