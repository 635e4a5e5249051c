package watch

import (
	"bytes"
	"context"
	"os"
	"time"
)

// SourceSysctl: a value under /proc/sys changed.
const SourceSysctl = "sysctl"

// Sysctls watches values under /proc/sys that the kernel announces to
// nobody: inotify sees no write there, and no netlink message carries
// them. ecs-init's post-stop writes net.ipv4.conf.default.route_localnet
// into conf.all without touching a rule, so nothing else would notice.
//
// Every interval it reads each file once (one pread of a descriptor kept
// open) and sends an Event (SourceSysctl, Name the path) when the value
// differs from the one it read last. A file that cannot be opened or read
// is tried again at the next tick; its appearance counts as a change.
// The descriptor stays open: a /proc/sys file is never replaced (a
// regular file renamed over would not be seen). It returns at once; one goroutine does the reading and
// closes the files when ctx ends. An interval <= 0 or no path sends
// nothing.
func Sysctls(ctx context.Context, paths []string, every time.Duration, out chan<- Event) {
	if every <= 0 || len(paths) == 0 {
		return
	}
	go func() {
		ws := make([]sysctlFile, len(paths))
		for i, p := range paths {
			ws[i] = sysctlFile{path: p}
			ws[i].read() // the baseline
		}
		defer func() {
			for i := range ws {
				ws[i].close()
			}
		}()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				for i := range ws {
					if ws[i].read() {
						send(out, Event{Source: SourceSysctl, Name: ws[i].path})
					}
				}
			}
		}
	}()
}

// sysctlFile is one watched value.
type sysctlFile struct {
	path     string
	f        *os.File
	buf      [64]byte
	last     []byte
	readable bool // last is the value read; false: unreadable
	seen     bool // read at least once
}

// read reads the value and reports whether it changed since the last
// read.
func (s *sysctlFile) read() bool {
	if s.f == nil {
		f, err := os.Open(s.path)
		if err != nil {
			return s.set(nil, false)
		}
		s.f = f
	}
	n, err := s.f.ReadAt(s.buf[:], 0)
	if n == 0 && err != nil {
		s.close()
		return s.set(nil, false)
	}
	return s.set(s.buf[:n], true)
}

// set records the value read and reports whether it differs.
func (s *sysctlFile) set(v []byte, readable bool) bool {
	changed := s.seen && (readable != s.readable || !bytes.Equal(v, s.last))
	s.last = append(s.last[:0], v...)
	s.readable, s.seen = readable, true
	return changed
}

func (s *sysctlFile) close() {
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
}
