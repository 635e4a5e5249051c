// Package safefile is the one way the daemon and its commands read a file
// they do not own: ecs.config and its base file, the saved ruleset, the
// sysctl.d file, the agent's drop-ins, the policy file, a trust policy, and
// (through the content it returns) the source of a first-change backup.
// No read can hang or exhaust memory:
//
//   - the path is stat'ed first, and anything but a regular file (a FIFO,
//     a socket, a device such as /dev/zero, a directory) is refused
//     without being opened;
//   - the open is O_NONBLOCK|O_CLOEXEC (O_NOFOLLOW where a final symlink is
//     refused), so a FIFO swapped in after the stat does not block the
//     open, and the opened descriptor is checked again with fstat: only a
//     regular file is read, and O_NONBLOCK is cleared before reading;
//   - at most Max+1 bytes are read (io.LimitReader): a file over the cap is
//     an error that says the cap, never a truncated read.
//
// The content returned is the content of the validated descriptor: a
// caller that must copy the file (a backup) copies these bytes, and never
// opens the path by name a second time.
//
// It also owns the one symlink rule for the files we rewrite (WriteTarget):
// a write goes through a symlink only to a regular file in the link's own
// directory. It reads; it never writes, and it knows nothing about what the
// files mean.
package safefile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// Follow says what a final symlink may do.
type Follow int

const (
	// FollowAny reads through a symlink, wherever it points; the target
	// must still be a regular file.
	FollowAny Follow = iota
	// FollowNone refuses a final symlink (O_NOFOLLOW).
	FollowNone
	// FollowSameDir reads through a symlink only when its target is in
	// the link's own directory (the rule of WriteTarget).
	FollowSameDir
)

// Options say how a file is read.
type Options struct {
	// Max is the largest size accepted, in bytes; it must be positive.
	Max int64
	// Follow is the symlink rule (FollowAny when zero).
	Follow Follow
}

// File is one validated read.
type File struct {
	// Path is the path asked for; Target the regular file that was read
	// (Path itself, or where its symlink leads).
	Path, Target string
	// Data is the whole content, at most Max bytes.
	Data []byte
	// Info describes the opened descriptor (mode, owner, size).
	Info os.FileInfo
}

// The kinds of refusal; test with errors.Is. A missing file wraps
// fs.ErrNotExist.
var (
	ErrNotRegular  = errors.New("not a regular file")
	ErrTooLarge    = errors.New("larger than allowed")
	ErrSymlink     = errors.New("symlink refused")
	ErrParentNoDir = errors.New("a parent of the path is not a directory")
)

// Error is a refusal. Its text names the path and, for a size, the cap;
// callers add what to do.
type Error struct {
	Path   string
	Kind   error       // one of the Err* values above
	Mode   fs.FileMode // ErrNotRegular: what the path is
	Size   int64       // ErrTooLarge: the size seen (-1: it grew while read)
	Max    int64       // ErrTooLarge: the cap
	Target string      // ErrSymlink: where the link points
	msg    string
}

func (e *Error) Error() string { return e.msg }
func (e *Error) Unwrap() error { return e.Kind }

// Describe says what a mode is, in words: "a FIFO", "a directory".
func Describe(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m&fs.ModeSymlink != 0:
		return "a symlink"
	case m.IsRegular():
		return "a regular file"
	}
	return "not a regular file (" + m.Type().String() + ")"
}

func notRegular(path string, m fs.FileMode) error {
	return &Error{Path: path, Kind: ErrNotRegular, Mode: m,
		msg: fmt.Sprintf("%s is %s, not a regular file", path, Describe(m))}
}

func tooLarge(path string, size, max int64) error {
	msg := fmt.Sprintf("%s is %d bytes, larger than the %d bytes allowed", path, size, max)
	if size < 0 {
		msg = fmt.Sprintf("%s is larger than the %d bytes allowed (it grew while being read)", path, max)
	}
	return &Error{Path: path, Kind: ErrTooLarge, Size: size, Max: max, msg: msg}
}

func statErr(path string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s does not exist: %w", path, fs.ErrNotExist)
	case errors.Is(err, syscall.ENOTDIR):
		return &Error{Path: path, Kind: ErrParentNoDir, msg: path + ": a parent of this path is a file, not a directory"}
	}
	return fmt.Errorf("stat %s: %w", path, err)
}

// Read reads path under o's rules. A missing file is an error wrapping
// fs.ErrNotExist; a refusal is an *Error.
func Read(path string, o Options) (*File, error) {
	if o.Max <= 0 {
		return nil, fmt.Errorf("safefile: read %s without a size cap", path)
	}
	target := path
	flags := os.O_RDONLY | syscall.O_NONBLOCK | syscall.O_CLOEXEC
	lfi, err := os.Lstat(path)
	if err != nil {
		return nil, statErr(path, err)
	}
	if lfi.Mode()&fs.ModeSymlink != 0 {
		switch o.Follow {
		case FollowNone:
			dest, _ := os.Readlink(path)
			return nil, &Error{Path: path, Kind: ErrSymlink, Target: dest,
				msg: fmt.Sprintf("%s is a symlink to %s", path, dest)}
		case FollowSameDir:
			if target, err = WriteTarget(path); err != nil {
				return nil, err
			}
		}
	}
	if o.Follow != FollowAny {
		flags |= syscall.O_NOFOLLOW
	}
	// Nothing but a regular file is opened: opening a device can have
	// side effects, and a FIFO would block a plain open.
	fi, err := os.Stat(target)
	if err != nil {
		return nil, statErr(path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, notRegular(path, fi.Mode())
	}
	if fi.Size() > o.Max {
		return nil, tooLarge(path, fi.Size(), o.Max)
	}
	f, err := os.OpenFile(target, flags, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			dest, _ := os.Readlink(target)
			return nil, &Error{Path: path, Kind: ErrSymlink, Target: dest,
				msg: fmt.Sprintf("%s became a symlink to %s while being read", path, dest)}
		}
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil, statErr(path, err)
		}
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	// The path may have been swapped since the stat: judge what was opened.
	ofi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	if !ofi.Mode().IsRegular() {
		return nil, notRegular(path, ofi.Mode())
	}
	if ofi.Size() > o.Max {
		return nil, tooLarge(path, ofi.Size(), o.Max)
	}
	if err := clearNonblock(f); err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	data, err := io.ReadAll(io.LimitReader(f, o.Max+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(data)) > o.Max {
		return nil, tooLarge(path, -1, o.Max)
	}
	return &File{Path: path, Target: target, Data: data, Info: ofi}, nil
}

func clearNonblock(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	err = rc.Control(func(fd uintptr) {
		fl, err := unix.FcntlInt(fd, unix.F_GETFL, 0)
		if err != nil {
			ferr = err
			return
		}
		_, ferr = unix.FcntlInt(fd, unix.F_SETFL, fl&^unix.O_NONBLOCK)
	})
	if err != nil {
		return err
	}
	return ferr
}

// ReadLimited reads r (standard input) to its end, refusing more than max
// bytes: what is over the cap is an error that names what and the cap,
// never a silent truncation.
func ReadLimited(r io.Reader, what string, max int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	if int64(len(data)) > max {
		return nil, &Error{Path: what, Kind: ErrTooLarge, Size: -1, Max: max,
			msg: fmt.Sprintf("%s is larger than the %d bytes allowed", what, max)}
	}
	return data, nil
}

// WriteTarget is the file a write to path really replaces: path itself,
// or the target of a symlink that is a regular file in path's own
// directory. Any other symlink is an *Error (ErrSymlink) naming link and
// target, so nothing elsewhere on the host is ever rewritten.
func WriteTarget(path string) (string, error) {
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		return path, nil
	}
	target, err := filepath.EvalSymlinks(path)
	if err != nil {
		dest, _ := os.Readlink(path)
		return "", &Error{Path: path, Kind: ErrSymlink, Target: dest,
			msg: fmt.Sprintf("%s is a symlink whose target cannot be resolved (%v); replace the link with a regular file", path, err)}
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(path))
	if err != nil {
		return "", fmt.Errorf("resolve directory of %s: %w", path, err)
	}
	if filepath.Dir(target) != dir {
		return "", &Error{Path: path, Kind: ErrSymlink, Target: target,
			msg: fmt.Sprintf("%s is a symlink to %s, outside its directory: refusing to rewrite a file elsewhere on the host; replace the link with a regular file", path, target)}
	}
	if tfi, err := os.Stat(target); err == nil && !tfi.Mode().IsRegular() {
		return "", &Error{Path: path, Kind: ErrSymlink, Target: target,
			msg: fmt.Sprintf("%s is a symlink to %s, which is %s: replace the link with a regular file", path, target, Describe(tfi.Mode()))}
	}
	return target, nil
}
