package watch

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The sysctl source sends one event per change of the value, none while it
// stays, and notices a file that disappears and comes back.
func TestSysctlsSendsOnChange(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "route_localnet")
	if err := os.WriteFile(p, []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := make(chan Event, 16)
	Sysctls(ctx, []string{p}, 5*time.Millisecond, out)

	quiet := func(what string) {
		t.Helper()
		select {
		case ev := <-out:
			t.Fatalf("%s: unexpected event %+v", what, ev)
		case <-time.After(100 * time.Millisecond):
		}
	}
	expect := func(what string) {
		t.Helper()
		select {
		case ev := <-out:
			if ev.Source != SourceSysctl || ev.Name != p {
				t.Fatalf("%s: event %+v", what, ev)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no event", what)
		}
	}
	quiet("unchanged value")
	// Written in place, as sysctl -w does (same inode: inotify-free), and
	// in one write as the kernel takes it: os.WriteFile would truncate
	// first, and a poll between the two would see a second change ("").
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("0\n"), 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	expect("1 -> 0")
	quiet("after the change")
	// A value that cannot be read yet (an interface's conf/ not there)
	// counts when it appears.
	later := filepath.Join(dir, "later")
	Sysctls(ctx, []string{later}, 5*time.Millisecond, out)
	quiet("missing file")
	os.WriteFile(later, []byte("0\n"), 0o644)
	select {
	case ev := <-out:
		if ev.Name != later {
			t.Fatalf("appeared: event %+v", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("appeared: no event")
	}
}
