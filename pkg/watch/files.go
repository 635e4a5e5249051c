package watch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/fsnotify/fsnotify"
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
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("start file watcher: %w (raise fs.inotify.max_user_instances)", err)
	}
	fw := &fileWatcher{w: w, targets: ts, watched: map[string]bool{}, out: out}
	if _, err := fw.arm(); err != nil {
		w.Close()
		return err
	}
	go fw.loop(ctx)
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

type fileWatcher struct {
	w       *fsnotify.Watcher
	targets []target
	watched map[string]bool // directories with a watch
	out     chan<- Event
}

// ops are the changes that concern a file's content or existence; Chmod
// alone does not.
const ops = fsnotify.Create | fsnotify.Write | fsnotify.Remove | fsnotify.Rename

func (fw *fileWatcher) loop(ctx context.Context) {
	defer fw.w.Close()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-fw.w.Events:
			if !ok {
				return
			}
			fw.handle(ev)
		case err, ok := <-fw.w.Errors:
			if !ok {
				return
			}
			// A queue overflow (or worse) may have hidden any change,
			// including a directory that appeared: re-arm and ask for a
			// full look.
			send(fw.out, Event{Source: SourceResync, Name: "file watcher: " + err.Error()})
			fw.rearm()
		}
	}
}

func (fw *fileWatcher) handle(ev fsnotify.Event) {
	if ev.Op&ops == 0 {
		return
	}
	name := filepath.Clean(ev.Name)
	if fw.matches(name) {
		send(fw.out, Event{Source: SourceFile, Name: name})
	}
	if ev.Op&(fsnotify.Remove|fsnotify.Rename) != 0 && fw.watched[name] {
		// The watched directory itself went away (fsnotify drops its
		// watch); forget it so that rearm adds it again when it is back.
		delete(fw.watched, name)
		_ = fw.w.Remove(name)
	}
	if ev.Op&(fsnotify.Create|fsnotify.Remove|fsnotify.Rename) != 0 && fw.onTargetPath(name) {
		fw.rearm()
	}
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
			if fw.watched[d] {
				continue
			}
			err := fw.w.Add(d)
			if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ENOTDIR) {
				continue // removed between stat and add: the next look moves up
			}
			if err != nil {
				return added, fmt.Errorf("watch directory %s: %w (for ENOSPC raise fs.inotify.max_user_watches)", d, err)
			}
			fw.watched[d] = true
			added = append(added, d)
		}
		for d := range fw.watched {
			if !want[d] {
				delete(fw.watched, d)
				_ = fw.w.Remove(d)
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

func subset(a, b map[string]bool) bool {
	for k := range a {
		if !b[k] {
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
