package reliability

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// inMountNS runs fn on a thread with a private mount namespace (mounts
// never propagate to the host); processes fn starts inherit it. The thread
// is thrown away afterwards, and the namespace and its mounts with it.
// Goroutines fn starts run on other threads, in the host's namespace.
func inMountNS(t *testing.T, fn func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		msg := "needs root for a private mount namespace"
		if os.Getenv("ECS_REMEDIATOR_REQUIRE_NS") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	errc := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread dies with the namespace
		if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
			errc <- err
			return
		}
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			errc <- err
			return
		}
		errc <- nil
		fn()
	}()
	if err := <-errc; err != nil {
		<-done
		t.Fatalf("private mount namespace: %v", err)
	}
	<-done
}

// fromHost runs fn on another goroutine, hence in the host's mount
// namespace, and waits for it.
func fromHost(fn func()) {
	done := make(chan struct{})
	go func() { defer close(done); fn() }()
	<-done
}

// A read-only file system under ecs.config (a read-only bind mount in a
// private mount namespace): check reports the drift (exit 1), apply exits
// 2 naming the file and the read-only file system and changes nothing; the
// daemon, shown the drift while it runs, logs the same, changes nothing
// and stays up.
func TestReadOnlyFileSystem(t *testing.T) {
	h := newHost(t, drifted, resync1s)
	etc := filepath.Dir(h.ecsConfig)
	inMountNS(t, func() {
		if err := unix.Mount(etc, etc, "", unix.MS_BIND, ""); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mount("", etc, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			t.Fatal(err)
		}
		before := snapshot(t, h.dir)
		if r := run(t, "check", "--config", h.policy); r.code != 1 || !strings.Contains(r.stdout, "ECS_ENABLE_TASK_IAM_ROLE=false") {
			t.Fatalf("check: exit %d, want 1 (drift)\n%s%s", r.code, r.stdout, r.stderr)
		}
		r := run(t, "apply", "--config", h.policy)
		if r.code != 2 || !hasAll(r.stderr, h.ecsConfig, "read-only file system", "nothing was changed") {
			t.Fatalf("apply: exit %d, want 2 naming the file and the read-only file system\n%s", r.code, r.stderr)
		}
		if after := snapshot(t, h.dir); after != before {
			t.Fatalf("apply changed files:\n%s\n---\n%s", before, after)
		}

		// The daemon starts on a compliant file; the drift is made from
		// the host's view, where the directory is writable.
		fromHost(func() { writeAtomic(t, h.ecsConfig, compliant) })
		d := startDaemon(t, h.policy)
		d.waitUp(t)
		fromHost(func() { writeAtomic(t, h.ecsConfig, drifted) })
		eventually(t, "read-only file system reported", d, func() bool {
			for _, l := range strings.Split(d.logs.String(), "\n") {
				if strings.Contains(l, `"action": "repair-impossible"`) && hasAll(l, h.ecsConfig, "read-only file system") {
					return true
				}
			}
			return false
		})
		if b, _ := os.ReadFile(h.ecsConfig); string(b) != drifted {
			t.Fatalf("file changed on a read-only file system: %q", b)
		}
		if _, err := os.Lstat(h.backup); !os.IsNotExist(err) {
			t.Fatalf("backup: %v", err)
		}
		if s := strays(t, etc); len(s) > 0 {
			t.Fatalf("temp files: %v", s)
		}
		d.stop(t)
	})
}

// A full disk (a 64 KiB tmpfs in a private mount namespace, filled up):
// apply exits 2 naming the file and "no space left on device" and the
// original is intact, whether the backup or the new file is what does not
// fit; the daemon logs the same, keeps the original and stays up, and
// repairs once there is room again.
func TestFullDisk(t *testing.T) {
	h := newHost(t, "", resync1s)
	etc := filepath.Dir(h.ecsConfig)
	inMountNS(t, func() {
		if err := unix.Mount("tmpfs", etc, "tmpfs", 0, "size=64k,mode=0755"); err != nil {
			t.Fatal(err)
		}
		fill := filepath.Join(etc, "filler")
		fillUp := func() {
			f, err := os.OpenFile(fill, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			buf := make([]byte, 512)
			for {
				if _, err := f.Write(buf); err != nil {
					return // ENOSPC: full
				}
			}
		}
		if err := os.WriteFile(h.ecsConfig, []byte(drifted), 0o644); err != nil {
			t.Fatal(err)
		}
		fillUp()

		// The backup does not fit.
		r := run(t, "apply", "--config", h.policy)
		if r.code != 2 || !hasAll(r.stderr, h.ecsConfig, "no space left on device") {
			t.Fatalf("apply: exit %d, want 2 naming the file and the full disk\n%s", r.code, r.stderr)
		}
		// The backup fits elsewhere; the new ecs.config does not.
		other := newHost(t, "")
		other.ecsConfig, other.backup = h.ecsConfig, filepath.Join(other.dir, "ecs.config.orig")
		other.writePolicy(t)
		r = run(t, "apply", "--config", other.policy)
		if r.code != 2 || !hasAll(r.stderr, h.ecsConfig, "no space left on device", "was left as it was") {
			t.Fatalf("apply: exit %d, want 2 naming the file and the full disk\n%s", r.code, r.stderr)
		}
		if b, _ := os.ReadFile(h.ecsConfig); string(b) != drifted {
			t.Fatalf("original damaged on a full disk: %q", b)
		}
		if r := run(t, "check", "--config", h.policy); r.code != 1 {
			t.Fatalf("check: exit %d, want 1 (drift)\n%s%s", r.code, r.stdout, r.stderr)
		}

		// The daemon: compliant at start, then the disk fills and the
		// drift appears.
		os.Remove(fill)
		os.WriteFile(h.ecsConfig, []byte(compliant), 0o644)
		d := startDaemon(t, h.policy)
		d.waitUp(t)
		fillUp()
		if err := os.WriteFile(h.ecsConfig, []byte(drifted), 0o644); err != nil { // same size: fits in the freed page
			t.Fatal(err)
		}
		eventually(t, "full disk reported", d, func() bool {
			for _, l := range strings.Split(d.logs.String(), "\n") {
				if strings.Contains(l, `"action": "repair-impossible"`) && hasAll(l, h.ecsConfig, "no space left on device") {
					return true
				}
			}
			return false
		})
		if b, _ := os.ReadFile(h.ecsConfig); string(b) != drifted {
			t.Fatalf("original damaged on a full disk: %q", b)
		}
		if s := strays(t, etc); len(s) > 0 {
			t.Fatalf("temp files left on the full disk: %v", s)
		}
		// Room again: the next pass (resync) repairs.
		os.Remove(fill)
		eventually(t, "repaired once there is room", d, func() bool {
			b, _ := os.ReadFile(h.ecsConfig)
			return string(b) == compliant
		})
		d.stop(t)
	})
}

// Invalid UTF-8 is not an error: ecs-init reads bytes. A repair rewrites
// only the deciding line and keeps every other byte as it was.
func TestInvalidUTF8KeptByteForByte(t *testing.T) {
	in := "# caf\xe9 cr\xe8me\nECS_CLUSTER=\xff\xfe\x80prod\nECS_ENABLE_TASK_IAM_ROLE=\xc3(\nECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST=true\nUNKNOWN=\xed\xa0\x80\n"
	want := "# caf\xe9 cr\xe8me\nECS_CLUSTER=\xff\xfe\x80prod\nECS_ENABLE_TASK_IAM_ROLE=true\nECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST=true\nUNKNOWN=\xed\xa0\x80\n"
	h := newHost(t, in)
	if r := run(t, "check", "--config", h.policy); r.code != 1 {
		t.Fatalf("check: exit %d, want 1\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := run(t, "apply", "--config", h.policy); r.code != 0 {
		t.Fatalf("apply: exit %d\n%s", r.code, r.stderr)
	}
	if b, _ := os.ReadFile(h.ecsConfig); string(b) != want {
		t.Fatalf("apply:\n%q\nwant\n%q", b, want)
	}
	if b, _ := os.ReadFile(h.backup); string(b) != in {
		t.Fatalf("backup:\n%q\nwant\n%q", b, in)
	}
	// The same through the daemon.
	writeAtomic(t, h.ecsConfig, in)
	d := startDaemon(t, h.policy)
	eventually(t, "repaired", d, func() bool {
		b, _ := os.ReadFile(h.ecsConfig)
		return string(b) == want
	})
	d.stop(t)
}
