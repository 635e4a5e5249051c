package ecsconfig

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
)

// A repair never writes a file larger than the reader accepts: a file
// just under MaxSize that the repair would push over is an error naming
// both sizes, and apply leaves it as it is (it used to write it and then
// refuse its own file forever).
func TestRepairNeverWritesPastMaxSize(t *testing.T) {
	pad := bytes.Repeat([]byte("# padding\n"), MaxSize/10)[:MaxSize-40]
	c, _ := setup(t, string(pad), "")
	e := New(c)
	for _, f := range e.Check(context.Background()) {
		if f.Item == ItemPrefix+KeyNoProxy {
			continue // no proxy: nothing to repair there
		}
		if f.Status != finding.Error || !strings.Contains(f.Detail, "more than the 1048576 bytes allowed") || !strings.Contains(f.Detail, c.Path) {
			t.Fatalf("check: %+v", f)
		}
	}
	fs, cs := e.Apply(context.Background(), false, io.Discard)
	if len(cs) != 0 || finding.Compliant(fs) {
		t.Fatalf("apply: %+v %+v", fs, cs)
	}
	if b, _ := os.ReadFile(c.Path); !bytes.Equal(b, pad) {
		t.Fatal("the file was rewritten")
	}
	// Room enough: repaired as usual.
	small := pad[:MaxSize-400]
	os.WriteFile(c.Path, small, 0o644)
	if fs, cs := e.Apply(context.Background(), false, io.Discard); len(cs) == 0 || !finding.Compliant(fs) {
		t.Fatalf("apply with room: %+v %+v", fs, cs)
	}
}
