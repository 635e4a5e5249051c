package watch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Files sends an Event (SourceFile, Name = the path) whenever one of paths
// is created, written, removed or renamed. The last element of a path may
// be a glob (/etc/systemd/system/ecs.service.d/*.conf).
//
// It watches each file's directory, not the file, so every way a file
// changes is seen: a write in place, an editor's write-temp-then-rename
// (ours too: atomicfile's temp files have other names and are not
// reported; the rename over the file is, once, and the re-check that
// follows finds nothing to do, so there is no feedback loop), deletion and
// re-creation. A directory that does not exist yet (/etc/ecs before the
// first boot script) is waited for on its nearest existing ancestor and
// re-armed as it appears, or disappears again; each re-arm sends an Event
// too (Name = the directory), as files may already be inside.
//
// A finished write is Settled: the file closed after writing
// (IN_CLOSE_WRITE) or renamed into place (IN_MOVED_TO). A write still in
// progress (IN_MODIFY, IN_CREATE before the close), a deletion or rename
// away (often the first half of a replacement) and a re-arm are not: the
// daemon debounces those.
//
// Files returns once the watches are in place; a goroutine then sends until
// ctx ends. Events for other files in the same directories are dropped.
func Files(ctx context.Context, paths []string, out chan<- Event) error {
	if len(paths) == 0 {
		return nil
	}
	ts, err := parseTargets(paths)
	if err != nil {
		return err
	}
	fw := &fileWatcher{targets: ts, watched: map[string]int{}, dirs: map[int]string{}, out: out}
	fw.in, err = newInotify(fw.handle)
	if err != nil {
		return err
	}
	if _, err := fw.arm(); err != nil {
		fw.in.f.Close()
		return err
	}
	go func() {
		if err := fw.in.run(ctx); err != nil {
			send(out, Event{Source: SourceResync, Name: "file watcher stopped: " + err.Error()})
		}
	}()
	return nil
}

// target is one watched path: a directory and a file name or glob in it.
type target struct {
	dir, pattern string
}

func parseTargets(paths []string) ([]target, error) {
	var ts []target
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, fmt.Errorf("watch %s: %w", p, err)
		}
		t := target{dir: filepath.Dir(abs), pattern: filepath.Base(abs)}
		if strings.ContainsAny(t.dir, "*?[") {
			return nil, fmt.Errorf("watch %s: only the last element may be a glob", p)
		}
		if _, err := filepath.Match(t.pattern, ""); err != nil {
			return nil, fmt.Errorf("watch %s: bad glob %q: %w", p, t.pattern, err)
		}
		ts = append(ts, t)
	}
	return ts, nil
}

// fileWatcher's maps belong to the goroutine handling events (and to
// Files before it starts).
type fileWatcher struct {
	in      *inotify
	targets []target
	watched map[string]int // directory -> watch descriptor
	dirs    map[int]string // watch descriptor -> directory
	out     chan<- Event
}

// dirMask: the changes that concern a file's content or existence, and the
// directory's own removal. Attribute changes (chmod) are not asked for.
const dirMask = unix.IN_CREATE | unix.IN_MODIFY | unix.IN_CLOSE_WRITE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO |
	unix.IN_DELETE | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF | unix.IN_ONLYDIR

// settled: after these the file is complete. A deletion or a rename away
// is not: it is often the first half of a replacement (rm, then write; a
// directory removed and put back), so it is debounced.
const settled = unix.IN_CLOSE_WRITE | unix.IN_MOVED_TO

func (fw *fileWatcher) handle(wd int, mask uint32, base string) {
	if mask&unix.IN_Q_OVERFLOW != 0 {
		// The queue overflowed: any change may be hidden, including a
		// directory that appeared. Re-arm and ask for a full look.
		send(fw.out, Event{Source: SourceResync, Name: "file watcher: inotify queue overflow"})
		fw.rearm()
		return
	}
	dir, ok := fw.dirs[wd]
	if !ok {
		return // a watch already removed
	}
	if base == "" { // the directory itself
		if mask&(unix.IN_DELETE_SELF|unix.IN_MOVE_SELF|unix.IN_IGNORED) != 0 {
			// Gone or moved (a moved directory keeps its watch, and its
			// files are not ours any more): forget it, so that rearm
			// watches where the target is now.
			fw.forget(wd, dir)
			fw.rearm()
		}
		return
	}
	name := filepath.Join(dir, base)
	if fw.matches(name) {
		send(fw.out, Event{Source: SourceFile, Name: name, Settled: mask&settled != 0})
	}
	if mask&(unix.IN_CREATE|unix.IN_DELETE|unix.IN_MOVED_FROM|unix.IN_MOVED_TO) != 0 && fw.onTargetPath(name) {
		fw.rearm()
	}
}

func (fw *fileWatcher) forget(wd int, dir string) {
	delete(fw.dirs, wd)
	if fw.watched[dir] == wd {
		delete(fw.watched, dir)
	}
	fw.in.rm(wd)
}

// matches reports whether name is one of the watched files.
func (fw *fileWatcher) matches(name string) bool {
	dir, base := filepath.Split(name)
	dir = filepath.Clean(dir)
	for _, t := range fw.targets {
		if t.dir == dir {
			if ok, _ := filepath.Match(t.pattern, base); ok {
				return true
			}
		}
	}
	return false
}

// onTargetPath reports whether name is a target's directory or one of its
// ancestors: its appearance or disappearance moves a watch.
func (fw *fileWatcher) onTargetPath(name string) bool {
	for _, t := range fw.targets {
		if t.dir == name || strings.HasPrefix(t.dir, name+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

func (fw *fileWatcher) rearm() {
	added, err := fw.arm()
	if err != nil {
		send(fw.out, Event{Source: SourceResync, Name: err.Error()})
	}
	for _, d := range added {
		send(fw.out, Event{Source: SourceFile, Name: d})
	}
}

// arm puts a watch on the nearest existing directory of every target and
// removes watches no target needs any more. It returns the directories it
// added. It repeats until the set is stable: a directory created inside a
// new watch before the watch was in place is found by the next look.
func (fw *fileWatcher) arm() ([]string, error) {
	var added []string
	for attempt := 0; ; attempt++ {
		want := fw.wanted()
		for d := range want {
			if _, ok := fw.watched[d]; ok {
				continue
			}
			wd, err := fw.in.add(d, dirMask)
			if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ENOTDIR) {
				continue // removed between stat and add: the next look moves up
			}
			if err != nil {
				return added, fmt.Errorf("watch directory %s: %w (for ENOSPC raise fs.inotify.max_user_watches)", d, err)
			}
			if old, ok := fw.dirs[wd]; ok && old != d {
				delete(fw.watched, old) // the same directory under a new name
			}
			fw.watched[d], fw.dirs[wd] = wd, d
			added = append(added, d)
		}
		for d, wd := range fw.watched {
			if !want[d] {
				fw.forget(wd, d)
			}
		}
		if again := fw.wanted(); sameSet(again, want) && subset(want, fw.watched) {
			return added, nil
		}
		if attempt == 20 {
			return added, fmt.Errorf("watch: directories keep appearing and disappearing; relying on the periodic resync")
		}
	}
}

func (fw *fileWatcher) wanted() map[string]bool {
	want := map[string]bool{}
	for _, t := range fw.targets {
		want[nearestDir(t.dir)] = true
	}
	return want
}

func sameSet(a, b map[string]bool) bool {
	return len(a) == len(b) && subset(a, b)
}

func subset[V any](a map[string]bool, b map[string]V) bool {
	for k := range a {
		if _, ok := b[k]; !ok {
			return false
		}
	}
	return true
}

// nearestDir is dir, or its nearest ancestor that exists as a directory.
func nearestDir(dir string) string {
	for {
		if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return dir
		}
		dir = parent
	}
}
