package ecsconfig

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
)

// More symlink shapes: only a link to a regular file in the same directory
// is written through.
func TestSymlinkRefusals(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		make       func(t *testing.T, path, dir string)
	}{
		{"dangling", "cannot be resolved", func(t *testing.T, p, dir string) {
			os.Remove(p)
			os.Symlink("nowhere.config", p)
		}},
		{"to a directory in the same dir", "a directory", func(t *testing.T, p, dir string) {
			os.Remove(p)
			os.Mkdir(p+".d", 0o755)
			os.Symlink(filepath.Base(p)+".d", p)
		}},
		{"chain leaving the dir", "outside its directory", func(t *testing.T, p, dir string) {
			outside := filepath.Join(dir, "outside.config")
			os.WriteFile(outside, []byte("X=1\n"), 0o644)
			os.Remove(p)
			os.Symlink(outside, p+".hop")
			os.Symlink(filepath.Base(p)+".hop", p)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, dir := setup(t, "", "")
			tc.make(t, c.Path, dir)
			before := snapshot(t, dir)
			fs, cs := New(c).Apply(context.Background(), false, io.Discard)
			if len(cs) != 0 {
				t.Errorf("changes: %+v", cs)
			}
			for _, f := range fs {
				if f.Status != finding.Error || !strings.Contains(f.Detail, tc.want) || !strings.Contains(f.Detail, c.Path) {
					t.Errorf("%s: %s %q, want error with %q", f.Item, f.Status, f.Detail, tc.want)
				}
			}
			if after := snapshot(t, dir); after != before {
				t.Errorf("files changed:\n%s---\n%s", before, after)
			}
		})
	}
}

// The error names link, target and the fix.
func TestSymlinkOutsideMessage(t *testing.T) {
	c, dir := setup(t, "", "")
	outside := filepath.Join(dir, "elsewhere", "ecs.config")
	os.MkdirAll(filepath.Dir(outside), 0o755)
	os.WriteFile(outside, nil, 0o644)
	os.Remove(c.Path)
	os.Symlink(outside, c.Path)
	f := New(c).Check(context.Background())[0]
	for _, want := range []string{c.Path, outside, "point ecs_config at", "replace the link with a regular file"} {
		if !strings.Contains(f.Detail, want) {
			t.Errorf("detail %q lacks %q", f.Detail, want)
		}
	}
}

// A base file that cannot be read makes every item an error naming it; the
// main file is not touched.
func TestBaseFileRefused(t *testing.T) {
	c, dir := setup(t, "ECS_ENABLE_TASK_IAM_ROLE=false\n", "")
	os.MkdirAll(c.BasePath, 0o755) // a directory where the base file should be
	before := snapshot(t, dir)
	fs, cs := New(c).Apply(context.Background(), false, io.Discard)
	if len(cs) != 0 {
		t.Fatalf("%+v", cs)
	}
	for _, f := range fs {
		if f.Status != finding.Error || !strings.Contains(f.Detail, c.BasePath) || !strings.Contains(f.Detail, "base file") {
			t.Errorf("%+v", f)
		}
	}
	if snapshot(t, dir) != before {
		t.Error("files changed")
	}
}

// A read-only file system (root ignores directory modes, so the directory
// is bind-mounted read-only in a private mount namespace): the repair fails
// with an error naming the file, and nothing changes.
func TestReadOnlyDirectory(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a private mount namespace")
	}
	in := "ECS_ENABLE_TASK_IAM_ROLE=false\n"
	c, dir := setup(t, in, "")
	c.BackupPath = filepath.Join(dir, "backup.orig") // writable: the write itself must fail
	etc := filepath.Dir(c.Path)
	var fs []finding.Finding
	var cs []finding.Change
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the thread, and its mount namespace, die with
		// this goroutine.
		runtime.LockOSThread()
		for _, step := range []func() error{
			func() error { return unix.Unshare(unix.CLONE_NEWNS) },
			func() error { return unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, "") },
			func() error { return unix.Mount(etc, etc, "", unix.MS_BIND, "") },
			func() error { return unix.Mount("", etc, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, "") },
		} {
			if err := step(); err != nil {
				errc <- err
				return
			}
		}
		fs, cs = New(c).Apply(context.Background(), false, io.Discard)
		errc <- nil
	}()
	if err := <-errc; err != nil {
		t.Fatalf("read-only bind mount: %v", err)
	}
	if len(cs) != 0 {
		t.Errorf("changes reported: %+v", cs)
	}
	if fs[0].Status != finding.Error || !strings.Contains(fs[0].Detail, "read-only file system") || !strings.Contains(fs[0].Detail, c.Path) {
		t.Errorf("%+v", fs[0])
	}
	if b, _ := os.ReadFile(c.Path); string(b) != in {
		t.Errorf("file changed: %q", b)
	}
	// Outside the namespace the directory is writable, so apply works.
	if fs, _ := New(c).Apply(context.Background(), false, io.Discard); !finding.Compliant(fs) {
		t.Errorf("%+v", fs)
	}
}
