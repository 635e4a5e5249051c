package main

import (
	"os"
	"path/filepath"
	"testing"
)

// ecs-init's switches as its process gets them: systemd's EnvironmentFile
// parse (comments, quotes, KEY = v, trailing blanks), then ParseBool of
// the raw value without trimming; a file systemd skips sets nothing.
func TestEcsInitSwitchesRead(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		allow      bool
		line       string // AllowWhere's line
	}{
		{"plain", "ECS_ALLOW_OFFHOST_INTROSPECTION_ACCESS=true\n", true, "line 1"},
		{"double quotes removed", "X=1\nECS_ALLOW_OFFHOST_INTROSPECTION_ACCESS=\"TRUE\"\n", true, "line 2"},
		{"blanks around = (systemd takes it)", "ECS_ALLOW_OFFHOST_INTROSPECTION_ACCESS = 1\n", true, "line 1"},
		{"a quoted blank is kept: ParseBool fails", "ECS_ALLOW_OFFHOST_INTROSPECTION_ACCESS=\" true\"\n", false, ""},
		{"yes is not a bool", "ECS_ALLOW_OFFHOST_INTROSPECTION_ACCESS=yes\n", false, ""},
		{"comment", "# ECS_ALLOW_OFFHOST_INTROSPECTION_ACCESS=true\n", false, ""},
		{"last one wins", "ECS_ALLOW_OFFHOST_INTROSPECTION_ACCESS=true\nECS_ALLOW_OFFHOST_INTROSPECTION_ACCESS=false\n", false, ""},
		{"invalid UTF-8: systemd skips the file", "ECS_ALLOW_OFFHOST_INTROSPECTION_ACCESS=true\nECS_CLUSTER=caf\xe9\n", false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "ecs.config")
			if err := os.WriteFile(p, []byte(tc.file), 0o644); err != nil {
				t.Fatal(err)
			}
			sw := ecsInitSwitches(p)()
			if sw.AllowOffhostIntrospection != tc.allow {
				t.Errorf("allow = %v, want %v", sw.AllowOffhostIntrospection, tc.allow)
			}
			if tc.allow && sw.AllowWhere != p+" "+tc.line {
				t.Errorf("where = %q, want %q", sw.AllowWhere, p+" "+tc.line)
			}
		})
	}
	if sw := ecsInitSwitches(filepath.Join(t.TempDir(), "absent"))(); sw.AllowOffhostIntrospection || sw.SkipLocalhostFilter {
		t.Errorf("a missing file set switches: %+v", sw)
	}
}
