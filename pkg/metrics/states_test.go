package metrics

import (
	"maps"
	"testing"

	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
)

func TestItemStates(t *testing.T) {
	for _, c := range []struct {
		name string
		in   []finding.Finding
		want map[string]bool
	}{
		{"none", nil, map[string]bool{}},
		{"ok", []finding.Finding{f("a", finding.OK)}, map[string]bool{"a": true}},
		{"drift", []finding.Finding{f("a", finding.Drift)}, map[string]bool{"a": false}},
		{"error", []finding.Finding{f("a", finding.Error)}, map[string]bool{"a": false}},
		{"warning is compliant", []finding.Finding{{Item: "a", Status: finding.Warn}}, map[string]bool{"a": true}},
		{"ok then drift", []finding.Finding{f("a", finding.OK), f("a", finding.Drift)}, map[string]bool{"a": false}},
		{"drift then ok", []finding.Finding{f("a", finding.Drift), f("a", finding.OK)}, map[string]bool{"a": false}},
		{"two items", []finding.Finding{f("a", finding.OK), f("b", finding.Error)}, map[string]bool{"a": true, "b": false}},
		{"empty id left out", []finding.Finding{f("", finding.Drift)}, map[string]bool{}},
		{"invalid UTF-8 made valid", []finding.Finding{f("ecs_config.\xff", finding.OK)}, map[string]bool{"ecs_config.\uFFFD": true}},
	} {
		if got := itemStates(c.in); !maps.Equal(got, c.want) {
			t.Errorf("%s: itemStates = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestInvalidUTF8DoesNotPanic(t *testing.T) {
	m := New(Config{Version: "\xff"})
	m.Observe([]finding.Finding{f("x\xfe", finding.OK)}, []finding.Change{{Item: "y\xfe"}}, 0, t0)
	m.Fight("z\xfe")
	m.Doctor(map[string]bool{"c\xfe": true})
	if _, err := m.reg.Gather(); err != nil {
		t.Fatal(err)
	}
}
