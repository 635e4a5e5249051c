package watch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// DefaultXtablesLock is the lock every iptables-legacy tool takes before
// it reads or writes the tables (iptables 1.8: xshared.c's
// XT_LOCK_NAME); $XTABLES_LOCKFILE moves it, for iptables and for us
// (XtablesLockPath). A documented host path, only ever watched.
const DefaultXtablesLock = "/run/xtables.lock"

// XtablesLockPath is the lock file iptables uses in this environment.
func XtablesLockPath() string {
	if p := os.Getenv("XTABLES_LOCKFILE"); p != "" {
		return p
	}
	return DefaultXtablesLock
}

// LockWatch sends an event whenever an iptables-legacy tool opens
// (IN_OPEN: not Settled, the change is in progress) or closes
// (IN_CLOSE_NOWRITE: Settled, the tool is done) the xtables lock.
// `iptables-legacy` (writes and -S/-L alike), `iptables-legacy-restore` and
// the ip6tables ones take it (open O_RDONLY|O_CREAT, then flock), so every
// legacy change made with the iptables tools (Docker, ecs-init, an
// operator) is seen at once; `iptables-legacy-save` and a program that
// calls setsockopt itself do not take it, which is what the fingerprint
// poll is for. The nf_tables tools do not take it either (they have
// netlink events). Events carry no culprit: inotify does not say who
// opened the file.
//
// While the lock file does not exist yet (no iptables-legacy ran since
// boot) its directory is watched for it. The daemon runs iptables-legacy
// itself: Pause and Resume around its own pass drop the events that pass
// causes. Until Start, and on a nil LockWatch, Pause, Resume and Poke do
// nothing.
type LockWatch struct {
	in      *inotify
	path    string
	out     chan<- Event
	fileWd  int // -1: not watched
	dirWd   int // -1: not watched
	paused  bool
	dropped bool // an event was dropped while paused
}

const (
	lockFileMask = unix.IN_OPEN | unix.IN_CLOSE_NOWRITE | unix.IN_CLOSE_WRITE | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF
	lockDirMask  = unix.IN_CREATE | unix.IN_MOVED_TO | unix.IN_ONLYDIR
)

// NewLockWatch returns the watch of the lock file at path (see
// XtablesLockPath); Start starts it.
func NewLockWatch(path string) *LockWatch {
	return &LockWatch{path: path, fileWd: -1, dirWd: -1}
}

// Start watches the lock file; a goroutine sends on out until ctx ends.
// It is called once, on the goroutine that calls Pause and Resume.
func (w *LockWatch) Start(ctx context.Context, out chan<- Event) error {
	abs, err := filepath.Abs(w.path)
	if err != nil {
		return fmt.Errorf("watch the xtables lock %s: %w", w.path, err)
	}
	w.path, w.out = abs, out
	in, err := newInotify(w.handle)
	if err != nil {
		return err
	}
	w.in = in
	if err := w.arm(); err != nil {
		in.f.Close()
		w.in = nil
		return err
	}
	go func() {
		if err := in.run(ctx); err != nil {
			send(out, Event{Source: SourceResync, Name: "xtables lock watcher stopped: " + err.Error()})
		}
	}()
	return nil
}

// arm watches the lock file, or its directory while the file is missing.
func (w *LockWatch) arm() error {
	for attempt := 0; attempt < 3; attempt++ {
		if w.fileWd < 0 {
			wd, err := w.in.add(w.path, lockFileMask)
			if err == nil {
				w.fileWd = wd
				if w.dirWd >= 0 {
					w.in.rm(w.dirWd)
					w.dirWd = -1
				}
				return nil
			}
			if !errors.Is(err, syscall.ENOENT) {
				return fmt.Errorf("watch the xtables lock %s: %w (for ENOSPC raise fs.inotify.max_user_watches)", w.path, err)
			}
		}
		if w.dirWd < 0 {
			wd, err := w.in.add(filepath.Dir(w.path), lockDirMask)
			if err != nil {
				return fmt.Errorf("watch %s for the xtables lock: %w", filepath.Dir(w.path), err)
			}
			w.dirWd = wd
		}
		// The file may have appeared before the directory watch was in
		// place: look once more.
		if _, err := os.Lstat(w.path); err != nil {
			return nil
		}
	}
	return nil
}

func (w *LockWatch) handle(wd int, mask uint32, name string) {
	switch {
	case mask&unix.IN_Q_OVERFLOW != 0:
		send(w.out, Event{Source: SourceResync, Name: "xtables lock watcher: inotify queue overflow"})
		return
	case wd == w.fileWd && mask&(unix.IN_DELETE_SELF|unix.IN_MOVE_SELF|unix.IN_IGNORED) != 0:
		if mask&unix.IN_IGNORED == 0 {
			w.in.rm(wd)
		}
		w.fileWd = -1
		if err := w.arm(); err != nil {
			send(w.out, Event{Source: SourceResync, Name: err.Error()})
		}
		if w.fileWd >= 0 {
			// Already there again: a tool created it before the watch
			// moved, and may have used it.
			w.event(false)
		}
		return
	case wd == w.fileWd && mask&(unix.IN_OPEN|unix.IN_CLOSE_NOWRITE|unix.IN_CLOSE_WRITE) != 0:
		w.event(mask&(unix.IN_CLOSE_NOWRITE|unix.IN_CLOSE_WRITE) != 0)
	case wd == w.dirWd && name == filepath.Base(w.path) && mask&(unix.IN_CREATE|unix.IN_MOVED_TO) != 0:
		// Created by a tool that is about to take it (O_CREAT): its
		// open happened before our watch.
		if err := w.arm(); err != nil {
			send(w.out, Event{Source: SourceResync, Name: err.Error()})
		}
		w.event(false)
	}
}

func (w *LockWatch) event(closed bool) {
	if w.paused {
		w.dropped = true
		return
	}
	what := "opened"
	if closed {
		what = "closed"
	}
	send(w.out, Event{Source: SourceXtablesLock, Name: w.path + " " + what, Settled: closed})
}

// Pause drops the events that follow until Resume: the daemon's own pass
// runs iptables-legacy, which takes the lock too.
func (w *LockWatch) Pause() {
	if w == nil || w.in == nil {
		return
	}
	w.in.mu.Lock()
	defer w.in.mu.Unlock()
	w.paused, w.dropped = true, false
}

// Resume handles (and drops) every event queued so far, then lets events
// through again. It reports whether any event was dropped since Pause:
// the tools the pass ran, or another writer at the same moment, which
// only a fresh look can tell apart.
func (w *LockWatch) Resume() (dropped bool) {
	if w == nil || w.in == nil {
		return false
	}
	w.in.mu.Lock()
	defer w.in.mu.Unlock()
	w.in.drainLocked()
	dropped, w.paused, w.dropped = w.dropped, false, false
	return dropped
}

// Poke sends one event (not Settled) naming why: a look again the
// daemon asks for itself.
func (w *LockWatch) Poke(why string) {
	if w == nil || w.in == nil {
		return
	}
	send(w.out, Event{Source: SourceXtablesLock, Name: why})
}
