package watch

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// inotify is one inotify instance read through Go's poller. fsnotify
// (v1.10) keeps IN_CLOSE_WRITE and IN_OPEN unexported, and the daemon
// needs both: a finished write is acted on at once, and the xtables lock
// is watched for opens; so the watchers use the kernel interface directly.
//
// Events are read and handled under mu.
type inotify struct {
	f  *os.File
	rc syscall.RawConn
	mu sync.Mutex
	// handle is called for each event, under mu. name is "" for an event
	// of the watched object itself.
	handle func(wd int, mask uint32, name string)
	buf    []byte
}

func newInotify(handle func(wd int, mask uint32, name string)) (*inotify, error) {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("start file watcher (inotify_init1): %w (raise fs.inotify.max_user_instances)", err)
	}
	f := os.NewFile(uintptr(fd), "inotify")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("start file watcher: %w", err)
	}
	return &inotify{f: f, rc: rc, handle: handle, buf: make([]byte, 64<<10)}, nil
}

// add watches path for mask and returns the watch descriptor.
func (n *inotify) add(path string, mask uint32) (int, error) {
	var wd int
	var err error
	if cerr := n.rc.Control(func(fd uintptr) { wd, err = unix.InotifyAddWatch(int(fd), path, mask) }); cerr != nil {
		return -1, cerr
	}
	return wd, err
}

// rm removes a watch; the kernel then queues IN_IGNORED for it.
func (n *inotify) rm(wd int) {
	_ = n.rc.Control(func(fd uintptr) { _, _ = unix.InotifyRmWatch(int(fd), uint32(wd)) })
}

// run reads and handles events until ctx ends or the descriptor fails.
func (n *inotify) run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { n.f.Close() })
	defer stop()
	defer n.f.Close()
	for {
		var rerr error
		err := n.rc.Read(func(fd uintptr) bool {
			n.mu.Lock()
			defer n.mu.Unlock()
			err := n.readOnce(int(fd))
			if errors.Is(err, unix.EAGAIN) {
				return false // wait until readable
			}
			rerr = err
			return true
		})
		if ctx.Err() != nil || errors.Is(err, os.ErrClosed) {
			return nil
		}
		if err != nil {
			return err
		}
		if rerr != nil {
			return rerr
		}
	}
}

// drainLocked handles every event already queued, without waiting; mu
// is held by the caller.
func (n *inotify) drainLocked() {
	_ = n.rc.Control(func(fd uintptr) {
		for n.readOnce(int(fd)) == nil {
		}
	})
}

// readOnce reads one buffer of events and handles them; mu is held.
func (n *inotify) readOnce(fd int) error {
	r, err := unix.Read(fd, n.buf)
	for errors.Is(err, unix.EINTR) {
		r, err = unix.Read(fd, n.buf)
	}
	if err != nil {
		return err
	}
	if r == 0 {
		return fmt.Errorf("inotify: end of file")
	}
	parseInotify(n.buf[:r], n.handle)
	return nil
}

// parseInotify calls fn for every struct inotify_event in b.
func parseInotify(b []byte, fn func(wd int, mask uint32, name string)) {
	const hdr = unix.SizeofInotifyEvent // wd, mask, cookie, len; then len bytes of name
	for len(b) >= hdr {
		wd := int32(binary.NativeEndian.Uint32(b))
		mask := binary.NativeEndian.Uint32(b[4:])
		end := hdr + int(binary.NativeEndian.Uint32(b[12:]))
		if end > len(b) || end < hdr {
			return
		}
		name := b[hdr:end]
		for i, c := range name {
			if c == 0 {
				name = name[:i]
				break
			}
		}
		fn(int(wd), mask, string(name))
		b = b[end:]
	}
}
