package watch

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecs-remediator/ecs-remediator/pkg/atomicfile"
)

// guard bounds every wait so a broken watcher fails instead of hanging. It
// is not a speed requirement (speed is in the benchmarks).
const guard = 10 * time.Second

func startFiles(t *testing.T, paths ...string) chan Event {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	out := make(chan Event, 64)
	if err := Files(ctx, paths, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// waitFor returns the first event that satisfies ok, failing on timeout.
// Events before it are returned too, for assertions about what came first.
func waitFor(t *testing.T, ch <-chan Event, what string, ok func(Event) bool) []Event {
	t.Helper()
	var seen []Event
	timeout := time.After(guard)
	for {
		select {
		case ev := <-ch:
			seen = append(seen, ev)
			if ok(ev) {
				return seen
			}
		case <-timeout:
			t.Fatalf("no event for %s; got %v", what, seen)
		}
	}
}

func fileEvent(path string) func(Event) bool {
	return func(ev Event) bool { return ev.Source == SourceFile && ev.Name == path }
}

// sentinel creates a new marker file (pattern dir/sentinel-*) and waits
// for its event; every other event received before it is returned.
// inotify keeps the order of events, so anything a previous action caused
// has arrived by then: absence is proven without sleeping.
func sentinel(t *testing.T, ch <-chan Event, dir string) []Event {
	t.Helper()
	sentinelN++
	path := filepath.Join(dir, fmt.Sprintf("sentinel-%d", sentinelN))
	if err := os.WriteFile(path, []byte("sentinel\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var other []Event
	for _, ev := range waitFor(t, ch, "sentinel "+path, fileEvent(path)) {
		if !strings.Contains(ev.Name, "sentinel-") {
			other = append(other, ev)
		}
	}
	return other
}

var sentinelN int

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestFilesInPlaceWriteRenameOverDeleteRecreate(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "ecs.config")
	mark := dir
	write(t, cfg, "ECS_CLUSTER=a\n")
	ch := startFiles(t, cfg, filepath.Join(mark, "sentinel-*"))

	t.Run("in-place write", func(t *testing.T) {
		f, err := os.OpenFile(cfg, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString("ECS_ENABLE_TASK_IAM_ROLE=false\n")
		f.Close()
		waitFor(t, ch, "append to "+cfg, fileEvent(cfg))
	})
	t.Run("editor rename over", func(t *testing.T) {
		tmp := filepath.Join(dir, ".ecs.config.swp")
		write(t, tmp, "ECS_CLUSTER=b\n")
		if err := os.Rename(tmp, cfg); err != nil {
			t.Fatal(err)
		}
		waitFor(t, ch, "rename over "+cfg, fileEvent(cfg))
	})
	t.Run("delete", func(t *testing.T) {
		sentinel(t, ch, mark) // drain
		if err := os.Remove(cfg); err != nil {
			t.Fatal(err)
		}
		waitFor(t, ch, "delete of "+cfg, fileEvent(cfg))
	})
	t.Run("recreate", func(t *testing.T) {
		write(t, cfg, "ECS_CLUSTER=c\n")
		waitFor(t, ch, "re-creation of "+cfg, fileEvent(cfg))
	})
	t.Run("our own atomic write: one kind of event, never the temp file", func(t *testing.T) {
		sentinel(t, ch, mark)
		if err := atomicfile.Replace(cfg, []byte("ECS_CLUSTER=d\n"), atomicfile.Options{}); err != nil {
			t.Fatal(err)
		}
		if _, err := atomicfile.BackupOnce([]byte("ECS_CLUSTER=d\n"), nil, cfg+".ecs-remediator.orig"); err != nil {
			t.Fatal(err)
		}
		seen := sentinel(t, ch, mark)
		if len(seen) == 0 {
			t.Fatal("the rename of our temp file over the file sent no event")
		}
		for _, ev := range seen {
			if ev.Name != cfg {
				t.Errorf("event for %q: temp and backup files must not be reported", ev.Name)
			}
		}
	})
	t.Run("chmod alone is not a change", func(t *testing.T) {
		sentinel(t, ch, mark)
		if err := os.Chmod(cfg, 0o600); err != nil {
			t.Fatal(err)
		}
		if seen := sentinel(t, ch, mark); len(seen) != 0 {
			t.Errorf("chmod sent %v", seen)
		}
	})
}

func TestFilesIgnoresOtherFilesInTheDirectory(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "ecs.config")
	mark := dir
	ch := startFiles(t, cfg, filepath.Join(mark, "sentinel-*"))
	write(t, filepath.Join(dir, "ecs.config.bak"), "x")
	write(t, filepath.Join(dir, "other"), "x")
	os.Remove(filepath.Join(dir, "other"))
	os.Mkdir(filepath.Join(dir, "subdir"), 0o755)
	if seen := sentinel(t, ch, mark); len(seen) != 0 {
		t.Errorf("unrelated files sent %v", seen)
	}
}

func TestFilesDirectoryCreatedLaterRemovedAndRecreated(t *testing.T) {
	root := t.TempDir()
	ecsDir := filepath.Join(root, "etc", "ecs")
	cfg := filepath.Join(ecsDir, "ecs.config")
	mark := root
	ch := startFiles(t, cfg, filepath.Join(mark, "sentinel-*")) // neither etc nor etc/ecs exists

	for round := 1; round <= 2; round++ {
		if err := os.MkdirAll(ecsDir, 0o755); err != nil {
			t.Fatal(err)
		}
		// The re-arm itself asks for a look (a file may already be there)...
		waitFor(t, ch, "directory "+ecsDir+" appearing", fileEvent(ecsDir))
		// ...and the file written next is seen.
		write(t, cfg, "ECS_CLUSTER=x\n")
		waitFor(t, ch, "file in the new directory", fileEvent(cfg))
		write(t, cfg, "ECS_CLUSTER=y\n")
		waitFor(t, ch, "second write", fileEvent(cfg))

		// Remove the whole tree: the watch falls back to root.
		if err := os.RemoveAll(filepath.Join(root, "etc")); err != nil {
			t.Fatal(err)
		}
		sentinel(t, ch, mark)
	}
}

func TestFilesDirectoryRenamedAway(t *testing.T) {
	root := t.TempDir()
	ecsDir := filepath.Join(root, "ecs")
	cfg := filepath.Join(ecsDir, "ecs.config")
	os.Mkdir(ecsDir, 0o755)
	ch := startFiles(t, cfg)
	if err := os.Rename(ecsDir, ecsDir+".old"); err != nil {
		t.Fatal(err)
	}
	// Writing into the moved directory is not our file any more...
	write(t, filepath.Join(ecsDir+".old", "ecs.config"), "x")
	// ...a new directory with the file is.
	os.Mkdir(ecsDir, 0o755)
	write(t, cfg, "y")
	// Depending on how fast the watcher re-arms, the file's own event or
	// the re-arm event of its directory (a "look again" that covers it)
	// comes first; after that, writes to the file are seen directly.
	seen := waitFor(t, ch, "re-created directory", func(ev Event) bool { return ev.Name == cfg || ev.Name == ecsDir })
	write(t, cfg, "z")
	seen = append(seen, waitFor(t, ch, "file in the re-created directory", fileEvent(cfg))...)
	for _, ev := range seen {
		if strings.Contains(ev.Name, ".old") {
			t.Errorf("event for the renamed directory: %v", ev)
		}
	}
}

func TestFilesGlob(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ecs.service.d")
	os.Mkdir(dir, 0o755)
	mark := dir
	ch := startFiles(t, filepath.Join(dir, "*.conf"), filepath.Join(dir, "sentinel-*"))
	a := filepath.Join(dir, "http-proxy.conf")
	write(t, a, "[Service]\n")
	waitFor(t, ch, "new drop-in", fileEvent(a))
	write(t, a+".ecs-remediator.orig", "x")
	write(t, filepath.Join(dir, "README"), "x")
	if err := atomicfile.Replace(a, []byte("[Service]\nEnvironment=A=1\n"), atomicfile.Options{}); err != nil {
		t.Fatal(err)
	}
	seen := sentinel(t, ch, mark)
	for _, ev := range seen {
		if ev.Name != a {
			t.Errorf("event for %q: only *.conf files count", ev.Name)
		}
	}
}

func TestFilesStopsWithContext(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "ecs.config")
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan Event, 64)
	if err := Files(ctx, []string{cfg}, out); err != nil {
		t.Fatal(err)
	}
	write(t, cfg, "a")
	waitFor(t, out, "write before cancel", fileEvent(cfg))
	cancel()
	// After cancel the watcher closes; a later watcher on the same file
	// still works (no leaked state), and the old one sends nothing more.
	ch2 := startFiles(t, cfg)
	write(t, cfg, "b")
	waitFor(t, ch2, "write seen by the new watcher", fileEvent(cfg))
	select {
	case ev := <-out:
		// One event may have been in flight before the cancel was seen.
		if ev.Name != cfg {
			t.Errorf("unexpected %v", ev)
		}
	default:
	}
}

func TestFilesBadGlob(t *testing.T) {
	err := Files(context.Background(), []string{"/etc/[x"}, make(chan Event, 1))
	if err == nil || !strings.Contains(err.Error(), "/etc/[x") {
		t.Errorf("err = %v, want one naming the path", err)
	}
}

func TestSendNeverBlocks(t *testing.T) {
	out := make(chan Event, 1)
	send(out, Event{Source: SourceFile, Name: "a"})
	send(out, Event{Source: SourceFile, Name: "b"}) // full: dropped, not blocked
	if ev := <-out; ev.Name != "a" {
		t.Errorf("got %v", ev)
	}
}

func TestPoll(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := make(chan Event, 1)
	Poll(ctx, time.Millisecond, 1, nil, out)
	for i := 0; i < 3; i++ {
		waitFor(t, out, "tick", func(ev Event) bool { return ev.Source == SourcePoll })
	}
	Poll(ctx, 0, 1, nil, out) // no-op, must not panic
}

// With a probe, the poller is quiet only while the state is the one a
// quiet reconcile left; a repair, a drift during a reconcile or a failing
// probe keep it sending events.
func TestPollProbe(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		mu    sync.Mutex
		state = "A"
		err   error
		calls int
	)
	probe := func(bool) (string, string, error) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		return state, "", err
	}
	set := func(s string, e error) { mu.Lock(); state, err = s, e; mu.Unlock() }
	ticks := func(n int) { // wait for n more probes
		mu.Lock()
		want := calls + n
		mu.Unlock()
		for {
			mu.Lock()
			c := calls
			mu.Unlock()
			if c >= want {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}
	out := make(chan Event, 64)
	drain := func() {
		for {
			select {
			case <-out:
			default:
				return
			}
		}
	}
	quiet := func(what string) {
		t.Helper()
		ticks(3)
		drain()
		ticks(5)
		select {
		case ev := <-out:
			t.Fatalf("%s: event %v", what, ev)
		default:
		}
	}
	b := NewBaseline(probe)
	reconcile := func(repair string, changed bool) { // what the daemon does
		b.Before()
		if repair != "" {
			set(repair, nil)
		}
		b.After(changed)
	}
	b.Before() // not polling yet: probes nothing
	b.After(true)
	if calls != 0 || !b.Quiet() {
		t.Fatalf("before Poll: %d probes, quiet %v; want none, quiet", calls, b.Quiet())
	}
	Poll(ctx, time.Millisecond, 1, b, out)
	// Unknown at start: events until a quiet reconcile.
	waitFor(t, out, "baseline unknown at start", func(ev Event) bool { return ev.Source == SourcePoll })
	reconcile("", false)
	quiet("nothing changed")

	// Drift, repair: the repair's own end state is not trusted; the next,
	// quiet reconcile sets the baseline.
	set("B", nil)
	waitFor(t, out, "drift", func(ev Event) bool { return ev.Source == SourcePoll })
	reconcile("A", true)
	waitFor(t, out, "after a repair", func(ev Event) bool { return ev.Source == SourcePoll })
	reconcile("", false)
	quiet("after the quiet reconcile")

	// The same drift made while the repair finished (before After): seen.
	set("B", nil)
	b.Before()
	set("A", nil) // repaired
	set("B", nil) // drifted again at once
	b.After(true)
	drain()
	waitFor(t, out, "drift during the repair", func(ev Event) bool { return ev.Source == SourcePoll })

	// A failing probe cannot tell: events.
	reconcile("A", false)
	set("A", errors.New("cannot read"))
	drain()
	waitFor(t, out, "failing probe", func(ev Event) bool { return ev.Source == SourcePoll })
}

// A change of content that keeps the shape is seen by the deep polls
// only (every deepEvery-th); a change of shape by any poll.
func TestPollDeepEvery(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		mu             sync.Mutex
		shape, content = "S", "C"
		polls, deeps   int
	)
	const deepEvery = 4
	probe := func(deep bool) (string, string, error) {
		mu.Lock()
		defer mu.Unlock()
		polls++
		if !deep {
			return shape, "", nil
		}
		deeps++
		return shape, content, nil
	}
	out := make(chan Event, 64)
	b := NewBaseline(probe)
	Poll(ctx, 2*time.Millisecond, deepEvery, b, out)
	waitFor(t, out, "baseline unknown at start", func(ev Event) bool { return ev.Source == SourcePoll })
	b.Before()
	b.After(false)
	for len(out) > 0 {
		<-out
	}
	mu.Lock()
	deepsBefore, pollsBefore := deeps, polls
	content = "C2" // same shape, new content
	mu.Unlock()
	waitFor(t, out, "content change", func(ev Event) bool { return ev.Source == SourcePoll })
	mu.Lock()
	gotDeeps, gotPolls := deeps-deepsBefore, polls-pollsBefore
	mu.Unlock()
	if gotDeeps < 1 {
		t.Fatalf("a content change was reported without a deep poll (%d polls)", gotPolls)
	}
	if gotPolls > 2*deepEvery+1 {
		t.Fatalf("a content change took %d polls to be seen, want at most about %d", gotPolls, deepEvery)
	}
	if deeps > polls/deepEvery+3 { // Before and After probe deep too
		t.Fatalf("%d of %d polls were deep, want about one in %d", deeps, polls, deepEvery)
	}

	// A change of shape: seen by the next poll, deep or not.
	b.Before()
	b.After(false)
	for len(out) > 0 {
		<-out
	}
	mu.Lock()
	pollsBefore = polls
	shape = "S2"
	mu.Unlock()
	waitFor(t, out, "shape change", func(ev Event) bool { return ev.Source == SourcePoll })
	mu.Lock()
	n := polls - pollsBefore
	mu.Unlock()
	if n > 2 {
		t.Fatalf("a shape change took %d polls to be seen, want 1", n)
	}
}

// BenchmarkFilesRenameToEvent measures the time from an atomic replace of
// the watched file (write temp, fsync, rename) to its event.
func BenchmarkFilesRenameToEvent(b *testing.B) {
	dir := b.TempDir()
	cfg := filepath.Join(dir, "ecs.config")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := make(chan Event, 64)
	if err := Files(ctx, []string{cfg}, ch); err != nil {
		b.Fatal(err)
	}
	var total time.Duration
	for i := 0; i < b.N; i++ {
		tmp := filepath.Join(dir, ".tmp")
		if err := os.WriteFile(tmp, []byte("ECS_CLUSTER=x\n"), 0o644); err != nil {
			b.Fatal(err)
		}
		for len(ch) > 0 {
			<-ch
		}
		start := time.Now()
		if err := os.Rename(tmp, cfg); err != nil {
			b.Fatal(err)
		}
		for ev := range ch {
			if ev.Name == cfg {
				break
			}
		}
		total += time.Since(start)
	}
	b.ReportMetric(float64(total.Microseconds())/float64(b.N), "µs-to-event")
}

// A finished write is Settled (the daemon acts at once); a write still in
// progress is not (the daemon debounces it).
func TestFilesSettledOnlyWhenTheWriteIsFinished(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "ecs.config")
	write(t, cfg, "ECS_CLUSTER=a\n")
	ch := startFiles(t, cfg, filepath.Join(dir, "sentinel-*"))
	settled := func(ev Event) bool { return ev.Name == cfg && ev.Settled }

	// In place: written (in progress) while open, settled on close.
	f, err := os.OpenFile(cfg, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("ECS_ENABLE_TASK_IAM_ROLE=false\n"); err != nil {
		t.Fatal(err)
	}
	seen := sentinel(t, ch, dir)
	if len(seen) == 0 {
		t.Fatal("a write in progress sent no event")
	}
	for _, ev := range seen {
		if ev.Settled {
			t.Errorf("%v: settled while the writer still has the file open", ev)
		}
	}
	f.Close()
	waitFor(t, ch, "close after writing", settled)

	// Rename over: settled at the rename.
	tmp := filepath.Join(dir, ".ecs.config.tmp")
	write(t, tmp, "ECS_CLUSTER=b\n")
	sentinel(t, ch, dir)
	if err := os.Rename(tmp, cfg); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ch, "rename over", settled)

	// Deleted: not settled (often the first half of a replacement).
	sentinel(t, ch, dir)
	if err := os.Remove(cfg); err != nil {
		t.Fatal(err)
	}
	for _, ev := range sentinel(t, ch, dir) {
		if ev.Settled {
			t.Errorf("%v: a deletion is settled; it is debounced", ev)
		}
	}

	// Files carry no culprit: inotify does not say who wrote.
	write(t, cfg, "ECS_CLUSTER=c\n")
	for _, ev := range waitFor(t, ch, "re-creation", settled) {
		if ev.Culprit != "" || ev.PID != 0 {
			t.Errorf("%v: a file event names a culprit; inotify gives none", ev)
		}
	}
}

func TestParseInotify(t *testing.T) {
	ev := func(wd int32, mask uint32, name string) []byte {
		n := (len(name) + 16) &^ 15
		if name == "" {
			n = 0
		}
		b := make([]byte, 16+n)
		binary.NativeEndian.PutUint32(b, uint32(wd))
		binary.NativeEndian.PutUint32(b[4:], mask)
		binary.NativeEndian.PutUint32(b[12:], uint32(n))
		copy(b[16:], name)
		return b
	}
	type got struct {
		wd   int
		mask uint32
		name string
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want []got
	}{
		{"one", ev(1, 8, "ecs.config"), []got{{1, 8, "ecs.config"}}},
		{"self", ev(2, 0x400, ""), []got{{2, 0x400, ""}}},
		{"two", append(ev(1, 2, "a"), ev(3, 0x80, "bbbbbbbbbbbbbbbbbbbb")...), []got{{1, 2, "a"}, {3, 0x80, "bbbbbbbbbbbbbbbbbbbb"}}},
		{"truncated name", ev(1, 8, "ecs.config")[:20], nil},
		{"short header", []byte{1, 2, 3}, nil},
		{"empty", nil, nil},
	} {
		var out []got
		parseInotify(tc.in, func(wd int, mask uint32, name string) { out = append(out, got{wd, mask, name}) })
		if fmt.Sprint(out) != fmt.Sprint(tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, out, tc.want)
		}
	}
}

func FuzzParseInotify(f *testing.F) {
	f.Add([]byte{1, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 'a', 0, 0, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		parseInotify(b, func(int, uint32, string) {})
	})
}
