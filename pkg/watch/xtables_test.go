package watch

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ecs-remediator/ecs-remediator/test/nstest"
)

func startLock(t *testing.T, path string) (*LockWatch, chan Event) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	out := make(chan Event, 64)
	w := NewLockWatch(path)
	if err := w.Start(ctx, out); err != nil {
		t.Fatal(err)
	}
	return w, out
}

// touchLock does what an iptables-legacy tool does with the lock: open
// (O_RDONLY|O_CREAT), then close.
func touchLock(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func lockEvent(settled bool) func(Event) bool {
	return func(ev Event) bool { return ev.Source == SourceXtablesLock && ev.Settled == settled }
}

func TestXtablesLockOpenAndClose(t *testing.T) {
	lock := filepath.Join(t.TempDir(), "xtables.lock")
	touchLock(t, lock)
	_, ch := startLock(t, lock)
	touchLock(t, lock)
	seen := waitFor(t, ch, "close of the lock", lockEvent(true))
	if len(seen) != 2 || seen[0].Settled || !strings.HasSuffix(seen[0].Name, "opened") {
		t.Errorf("events %v, want an open (in progress), then the close (settled)", seen)
	}
	for _, ev := range seen {
		if ev.Culprit != "" {
			t.Errorf("%v: inotify names no culprit", ev)
		}
	}
}

// Before any iptables-legacy ran there is no lock file: the first tool
// creates it, and is seen.
func TestXtablesLockCreatedLater(t *testing.T) {
	dir := t.TempDir()
	lock := filepath.Join(dir, "xtables.lock")
	_, ch := startLock(t, lock)
	os.WriteFile(filepath.Join(dir, "other"), nil, 0o600) // not ours
	touchLock(t, lock)
	seen := waitFor(t, ch, "creation of the lock", lockEvent(false))
	if len(seen) != 1 {
		t.Errorf("events %v, want only the lock's", seen)
	}
	touchLock(t, lock)
	waitFor(t, ch, "a later use", lockEvent(true))

	// Deleted and created again: still watched.
	os.Remove(lock)
	touchLock(t, lock)
	waitFor(t, ch, "the re-created lock", lockEvent(false))
	touchLock(t, lock)
	waitFor(t, ch, "a use of the re-created lock", lockEvent(true))
}

// The daemon's own pass takes the lock too: Pause..Resume drops those
// events (and says so), and lets the next ones through.
func TestXtablesLockPause(t *testing.T) {
	lock := filepath.Join(t.TempDir(), "xtables.lock")
	touchLock(t, lock)
	w, ch := startLock(t, lock)
	w.Pause()
	touchLock(t, lock)
	touchLock(t, lock)
	if !w.Resume() {
		t.Error("Resume reported nothing dropped")
	}
	if w.Resume() {
		t.Error("a second Resume reported a drop again")
	}
	touchLock(t, lock) // the sentinel: events keep their order
	seen := waitFor(t, ch, "the use after Resume", lockEvent(true))
	if len(seen) != 2 {
		t.Errorf("events %v, want only the open and close after Resume", seen)
	}
	w.Pause()
	if w.Resume() {
		t.Error("nothing happened while paused, yet Resume reported a drop")
	}
}

// With the real tools (in a namespace, the lock moved by
// $XTABLES_LOCKFILE): iptables-legacy reads and writes take the lock,
// iptables-legacy-save does not.
func TestXtablesLockRealTools(t *testing.T) {
	nstest.Require(t, "iptables-legacy", "iptables-legacy-save")
	lock := filepath.Join(t.TempDir(), "xtables.lock")
	touchLock(t, lock)
	_, ch := startLock(t, lock)
	nstest.Run(t, func() {
		privateNS(t)
		run := func(args ...string) {
			cmd := exec.Command(args[0], args[1:]...)
			cmd.Env = append(os.Environ(), "XTABLES_LOCKFILE="+lock)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("%v: %v: %s", args, err, out)
			}
		}
		run("iptables-legacy", "-t", "nat", "-A", "OUTPUT", "-d", "169.254.170.2/32", "-j", "ACCEPT")
		waitFor(t, ch, "iptables-legacy -A", lockEvent(true))
		run("iptables-legacy-save")
		run("iptables-legacy", "-t", "nat", "-S")
		if seen := waitFor(t, ch, "iptables-legacy -S", lockEvent(true)); len(seen) != 2 {
			t.Errorf("events %v: iptables-legacy-save takes no lock, so only -S's open and close", seen)
		}
	})
}
