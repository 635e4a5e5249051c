package atomicfile

import (
	"strings"
	"testing"
)

func TestDiff(t *testing.T) {
	if d := Diff("/etc/ecs/ecs.config", []byte("A=1\n"), []byte("A=1\n")); d != "" {
		t.Errorf("equal content gave a diff:\n%s", d)
	}
	d := Diff("/etc/ecs/ecs.config", []byte("A=1\n"), []byte("A=1\nB=2"))
	for _, want := range []string{"--- a/etc/ecs/ecs.config\n", "+++ b/etc/ecs/ecs.config\n", "+B=2\n", `\ No newline at end of file`} {
		if !strings.Contains(d, want) {
			t.Errorf("diff lacks %q:\n%s", want, d)
		}
	}
}
