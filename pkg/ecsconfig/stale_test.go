package ecsconfig

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
)

// Regression: temp files of a run killed in the middle of a repair (of
// ecs.config or of its backup) piled up, one per kill
// (test/reliability's kill loop). The next Apply removes them even when
// there is nothing to repair; a dry run and Check touch nothing.
func TestApplyRemovesTempFilesOfKilledRuns(t *testing.T) {
	c, _ := setup(t, both, "")
	dir := filepath.Dir(c.Path)
	stale := []string{
		filepath.Join(dir, ".ecs.config.ecs-remediator-tmp-123"),
		filepath.Join(dir, ".ecs.config.ecs-remediator.orig.ecs-remediator-tmp-456"),
	}
	for _, s := range stale {
		os.WriteFile(s, []byte("half a file"), 0o600)
	}
	e := New(c)
	e.Check(context.Background())
	e.Apply(context.Background(), true, io.Discard)
	for _, s := range stale {
		if _, err := os.Lstat(s); err != nil {
			t.Fatalf("check or dry run removed %s: %v", s, err)
		}
	}
	fs, cs := e.Apply(context.Background(), false, io.Discard)
	if len(cs) != 0 || !finding.Compliant(fs) {
		t.Fatalf("%+v %+v", fs, cs)
	}
	for _, s := range stale {
		if _, err := os.Lstat(s); !os.IsNotExist(err) {
			t.Fatalf("%s kept: %v", s, err)
		}
	}
	if b, _ := os.ReadFile(c.Path); string(b) != both {
		t.Fatalf("file changed: %q", b)
	}
}
