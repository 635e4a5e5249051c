package metrics

import (
	"github.com/ecs-remediator/ecs-remediator/pkg/policy"
	"os"
	"path/filepath"
	"testing"
)

func TestResolveTextfile(t *testing.T) {
	dir := t.TempDir()
	present := filepath.Join(dir, "textfile_collector", "ecs_remediator.prom")
	if err := os.Mkdir(filepath.Dir(present), 0o755); err != nil {
		t.Fatal(err)
	}
	absent := filepath.Join(dir, "no_node_exporter", "ecs_remediator.prom")
	notDir := filepath.Join(dir, "file")
	if err := os.WriteFile(notDir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		setting, auto, want string
	}{
		{"auto", present, present},
		{"auto", absent, ""},
		{"auto", filepath.Join(notDir, "x.prom"), ""},
		{"auto", "", ""},
		{policy.Resolve(policy.Off), present, ""},
		{"", present, ""},
		{"/srv/metrics/ecs.prom", present, "/srv/metrics/ecs.prom"},
	} {
		if got := ResolveTextfile(c.setting, c.auto); got != c.want {
			t.Errorf("ResolveTextfile(%q, %q) = %q, want %q", c.setting, c.auto, got, c.want)
		}
	}
}
