package sysctl

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
	"github.com/ecs-remediator/ecs-remediator/pkg/reconcile"
)

var _ reconcile.Enforcer = (*Enforcer)(nil)

// fakeProc makes a ProcSys tree in a temp dir holding value.
func fakeProc(t *testing.T, value string) (Config, string) {
	t.Helper()
	dir := t.TempDir()
	c := Config{
		ProcSys:     filepath.Join(dir, "proc/sys"),
		PersistPath: filepath.Join(dir, "etc/sysctl.d/90-ecs-remediator.conf"),
		Enforce:     true,
	}
	p := filepath.Join(c.ProcSys, "net/ipv4/conf/all/route_localnet")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
		t.Fatal(err)
	}
	return c, p
}

func TestLive(t *testing.T) {
	c, p := fakeProc(t, "0\n")
	c.PersistPath = ""
	e := New(c)
	fs := e.Check(context.Background())
	if len(fs) != 1 || fs[0].Item != ItemRouteLocalnet || fs[0].Status != finding.Drift || !strings.Contains(fs[0].Detail, "= 0") {
		t.Fatalf("%+v", fs)
	}
	var plan strings.Builder
	if _, cs := e.Apply(context.Background(), true, &plan); len(cs) != 1 || !strings.Contains(plan.String(), "sysctl -w net.ipv4.conf.all.route_localnet=1") {
		t.Fatalf("dry run: %+v %q", cs, plan.String())
	}
	if b, _ := os.ReadFile(p); string(b) != "0\n" {
		t.Fatalf("dry run wrote %q", b)
	}
	fs, cs := e.Apply(context.Background(), false, io.Discard)
	if b, _ := os.ReadFile(p); string(b) != "1\n" {
		t.Fatalf("wrote %q", b)
	}
	if !finding.Compliant(fs) || len(cs) != 1 {
		t.Fatalf("%+v %+v", fs, cs)
	}
	want := finding.Change{Item: ItemRouteLocalnet, Action: "wrote 1", Target: p, Old: "0", New: "1"}
	got := cs[0]
	if got.Item != want.Item || got.Action != want.Action || got.Target != want.Target || got.Old != want.Old || got.New != want.New ||
		got.AgentRestart || !strings.Contains(got.Reason, "post-stop") {
		t.Errorf("change %+v", got)
	}
	if _, cs := e.Apply(context.Background(), false, io.Discard); len(cs) != 0 {
		t.Errorf("second apply changed: %+v", cs)
	}
}

func TestLiveMissingIsError(t *testing.T) {
	c := Config{ProcSys: t.TempDir(), Enforce: true}
	fs, cs := New(c).Apply(context.Background(), false, io.Discard)
	if len(cs) != 0 || fs[0].Status != finding.Error || !strings.Contains(fs[0].Detail, "route_localnet") {
		t.Fatalf("%+v %+v", fs, cs)
	}
	// Never created.
	if _, err := os.Stat(filepath.Join(c.ProcSys, "net")); err == nil {
		t.Fatal("created the proc file")
	}
}

func TestOff(t *testing.T) {
	c, _ := fakeProc(t, "0\n")
	c.Enforce = false
	if fs := New(c).Check(context.Background()); fs != nil {
		t.Fatalf("%+v", fs)
	}
	if fs, cs := New(c).Apply(context.Background(), false, io.Discard); fs != nil || cs != nil {
		t.Fatalf("%+v %+v", fs, cs)
	}
}

func TestPersistCreated(t *testing.T) {
	c, _ := fakeProc(t, "1\n")
	e := New(c)
	fs := e.Check(context.Background())
	if len(fs) != 2 || fs[1].Item != ItemPersist || fs[1].Status != finding.Drift || !strings.Contains(fs[1].Detail, "does not exist") {
		t.Fatalf("%+v", fs)
	}
	var plan strings.Builder
	e.Apply(context.Background(), true, &plan)
	if !strings.Contains(plan.String(), "+"+PersistLine) || !strings.Contains(plan.String(), "+++ b/"+strings.TrimPrefix(c.PersistPath, "/")) {
		t.Fatalf("plan %q", plan.String())
	}
	if _, err := os.Stat(c.PersistPath); err == nil {
		t.Fatal("dry run wrote the file")
	}
	fs, cs := e.Apply(context.Background(), false, io.Discard)
	if !finding.Compliant(fs) || len(cs) != 1 || cs[0].Action != "created file" || cs[0].Old != "(unset)" || cs[0].New != "1" || cs[0].AgentRestart {
		t.Fatalf("%+v %+v", fs, cs)
	}
	b, _ := os.ReadFile(c.PersistPath)
	if string(b) != Header+PersistLine+"\n" || !strings.HasPrefix(string(b), "# Written by ecs-remediator") {
		t.Fatalf("content %q", b)
	}
	fi, _ := os.Stat(c.PersistPath)
	di, _ := os.Stat(filepath.Dir(c.PersistPath))
	if fi.Mode().Perm() != 0o644 || di.Mode().Perm() != 0o755 {
		t.Errorf("modes %v %v", fi.Mode(), di.Mode())
	}
	// Written only when the content changes: same inode afterwards.
	if _, cs := e.Apply(context.Background(), false, io.Discard); len(cs) != 0 {
		t.Fatalf("%+v", cs)
	}
	if fi2, _ := os.Stat(c.PersistPath); !os.SameFile(fi, fi2) {
		t.Error("rewritten without a change")
	}
}

// A file the user wrote keeps their lines, mode and owner; only our line
// is fixed.
func TestPersistUserFile(t *testing.T) {
	c, _ := fakeProc(t, "1\n")
	os.MkdirAll(filepath.Dir(c.PersistPath), 0o755)
	in := "# mine\r\nvm.swappiness = 10\r\nnet.ipv4.conf.all.route_localnet = 0\r\nkernel.x = y"
	os.WriteFile(c.PersistPath, []byte(in), 0o640)
	os.Chown(c.PersistPath, 1234, 1234)
	fs, cs := New(c).Apply(context.Background(), false, io.Discard)
	if !finding.Compliant(fs) || len(cs) != 1 || cs[0].Action != "rewrote line 3" || cs[0].Old != "0" {
		t.Fatalf("%+v %+v", fs, cs)
	}
	want := "# mine\r\nvm.swappiness = 10\r\n" + PersistLine + "\r\nkernel.x = y"
	if b, _ := os.ReadFile(c.PersistPath); string(b) != want {
		t.Fatalf("got %q want %q", b, want)
	}
	fi, _ := os.Stat(c.PersistPath)
	if st := fi.Sys().(*syscall.Stat_t); fi.Mode().Perm() != 0o640 || st.Uid != 1234 {
		t.Errorf("mode/owner not kept: %v %d", fi.Mode(), st.Uid)
	}
}

func TestPersistRefusals(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		make       func(p, dir string)
	}{
		{"directory", "not a regular file", func(p, _ string) { os.MkdirAll(p, 0o755) }},
		{"fifo", "not a regular file", func(p, _ string) { os.MkdirAll(filepath.Dir(p), 0o755); syscall.Mkfifo(p, 0o644) }},
		{"masked with /dev/null", "symlink to /dev/null", func(p, _ string) { os.MkdirAll(filepath.Dir(p), 0o755); os.Symlink("/dev/null", p) }},
		{"parent is a file", "parent", func(p, _ string) {
			os.MkdirAll(filepath.Dir(filepath.Dir(p)), 0o755)
			os.WriteFile(filepath.Dir(p), nil, 0o644)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := fakeProc(t, "1\n")
			tc.make(c.PersistPath, filepath.Dir(c.PersistPath))
			fs, cs := New(c).Apply(context.Background(), false, io.Discard)
			if len(cs) != 0 || fs[1].Status != finding.Error || !strings.Contains(fs[1].Detail, tc.want) || !strings.Contains(fs[1].Detail, c.PersistPath) {
				t.Fatalf("%+v %+v", fs, cs)
			}
		})
	}
}

// A later file of the same directory that sets the key to 0 wins at boot:
// our file is fine, but the finding warns and names it.
func TestPersistOverriddenByLaterFile(t *testing.T) {
	c, _ := fakeProc(t, "1\n")
	dir := filepath.Dir(c.PersistPath)
	os.MkdirAll(dir, 0o755)
	os.WriteFile(c.PersistPath, []byte(PersistLine+"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "10-early.conf"), []byte("net.ipv4.conf.all.route_localnet = 0\n"), 0o644)
	f := New(c).Check(context.Background())[1]
	if f.Status != finding.OK {
		t.Fatalf("an earlier file must not warn: %+v", f)
	}
	os.WriteFile(filepath.Join(dir, "99-late.conf"), []byte("net/ipv4/conf/all/route_localnet=0\n"), 0o644)
	f = New(c).Check(context.Background())[1]
	if f.Status != finding.Warn || !strings.Contains(f.Detail, "99-late.conf line 1") {
		t.Fatalf("%+v", f)
	}
}

// TestReadLive: the daemon's legacy poller compares route_localnet as
// ReadLive returns it; a missing file is an error.
func TestReadLive(t *testing.T) {
	c, p := fakeProc(t, "1\n")
	if LivePath(c.ProcSys) != p {
		t.Fatalf("LivePath = %s, want %s", LivePath(c.ProcSys), p)
	}
	if v, err := ReadLive(c.ProcSys); err != nil || v != "1" {
		t.Fatalf("ReadLive = %q, %v; want 1", v, err)
	}
	if err := os.WriteFile(p, []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if v, err := ReadLive(c.ProcSys); err != nil || v != "0" {
		t.Fatalf("ReadLive = %q, %v; want 0", v, err)
	}
	if _, err := ReadLive(t.TempDir()); err == nil {
		t.Fatal("ReadLive of a missing file: no error")
	}
}
