// Package atomicfile replaces files so that a reader (or a crash) only ever
// sees the old content or the new content, never a mix. It owns temp-file
// naming, fsync and rename; it knows nothing about what the files mean.
//
// Temp files are named ".<name>.ecs-remediator-tmp-<random>" beside the
// file and are held under an exclusive flock(2) from creation until they
// are renamed (or linked) into place. A process killed in the middle of a
// write leaves its temp file behind, unlocked; the next write of the same
// file (or RemoveStale) removes every such file that no live process
// holds, so kills never pile up stray copies.
package atomicfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Options say how a new file is created. Mode and owner of an existing file
// always win over them.
type Options struct {
	// Perm is the mode of a file that does not exist yet (0644 when zero).
	Perm os.FileMode
	// DirPerm is the mode of missing parent directories (0755 when zero).
	DirPerm os.FileMode
	// Unchanged, when set, is called once the new content is on disk, just
	// before it takes path's place: an error leaves path as it is and is
	// returned. It lets a caller that judged path's old content make sure
	// nobody rewrote it meanwhile (the window left is a few system calls,
	// not the write and fsync).
	Unchanged func() error
	// Create says path is expected not to exist: the new file is linked
	// into place instead of renamed, so a file that appeared meanwhile is
	// never replaced (the error then wraps os.ErrExist).
	Create bool
}

// Replace writes data to path atomically: a temp file in the same
// directory is written, given the old file's mode and owner, fsynced, renamed
// over path, and the directory is fsynced. Missing parent directories are
// created. path must not be a symlink: resolve it first (see Resolve).
func Replace(path string, data []byte, o Options) (err error) {
	if o.Perm == 0 {
		o.Perm = 0o644
	}
	if o.DirPerm == 0 {
		o.DirPerm = 0o755
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, o.DirPerm); err != nil {
		return fmt.Errorf("create directory %s: %w", dir, err)
	}
	perm, uid, gid := o.Perm, -1, -1
	if fi, err := os.Lstat(path); err == nil {
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("%s is not a regular file (%s): refusing to replace it", path, fi.Mode().Type())
		}
		perm = fi.Mode().Perm()
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			uid, gid = int(st.Uid), int(st.Gid)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("stat %s: %w", path, err)
	}

	RemoveStale(path)
	tmp, err := createTemp(dir, path)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.Remove(tmp.Name())
			tmp.Close()
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err = tmp.Chmod(perm); err != nil {
		return fmt.Errorf("chmod %s: %w", tmp.Name(), err)
	}
	if uid >= 0 {
		if err = tmp.Chown(uid, gid); err != nil && !errors.Is(err, os.ErrPermission) {
			return fmt.Errorf("chown %s: %w", tmp.Name(), err)
		}
		err = nil
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", tmp.Name(), err)
	}
	if o.Unchanged != nil {
		if err = o.Unchanged(); err != nil {
			return err
		}
	}
	// Put in place while still open and locked: closed (unlocked) first,
	// it would look abandoned to a concurrent RemoveStale.
	linked := false
	if o.Create {
		err = os.Link(tmp.Name(), path)
		switch {
		case err == nil:
			linked = true
			os.Remove(tmp.Name())
		case errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EOPNOTSUPP):
			err = nil // no hard links on this file system: rename below
		default:
			return fmt.Errorf("create %s: %w", path, err)
		}
	}
	if !linked {
		if err = os.Rename(tmp.Name(), path); err != nil {
			return fmt.Errorf("rename %s over %s: %w", tmp.Name(), path, err)
		}
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	return syncDir(dir)
}

const tempMarker = ".ecs-remediator-tmp-"

// tempPrefix is the name prefix of path's temp files.
func tempPrefix(path string) string { return "." + filepath.Base(path) + tempMarker }

// createTemp creates a temp file for path in dir and locks it (flock,
// exclusive) for as long as it stays open.
func createTemp(dir, path string) (*os.File, error) {
	for attempt := 0; attempt < 5; attempt++ {
		f, err := os.CreateTemp(dir, tempPrefix(path))
		if err != nil {
			return nil, fmt.Errorf("create temp file in %s: %w", dir, err)
		}
		// Blocking: a RemoveStale that got the lock first holds it only
		// while it removes the file.
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if errors.Is(err, syscall.ENOLCK) || errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.EINVAL) {
			// No locks on this file system: then RemoveStale cannot lock
			// (so never removes) temp files here either.
			return f, nil
		}
		if err != nil {
			os.Remove(f.Name())
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
		}
		// Between create and lock a RemoveStale may have taken the file
		// for abandoned and removed it: then take a new one.
		if isNamed(f, f.Name()) {
			return f, nil
		}
		f.Close()
	}
	return nil, fmt.Errorf("create temp file in %s: it keeps disappearing (another process removing files there?)", dir)
}

// isNamed reports whether name still refers to the open file f.
func isNamed(f *os.File, name string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Lstat(name)
	return err == nil && os.SameFile(a, b)
}

// RemoveStale removes the temp files of path (see the package comment) that
// no live process holds: those a killed writer left behind. Errors are
// ignored; a file that cannot be removed now is tried again next time.
func RemoveStale(path string) {
	dir, prefix := filepath.Dir(path), tempPrefix(path)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), prefix) || !e.Type().IsRegular() {
			continue
		}
		name := filepath.Join(dir, e.Name())
		f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
		if err != nil {
			continue
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil && isNamed(f, name) {
			os.Remove(name)
		}
		f.Close()
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}

// BackupOnce writes data, the content of a file as the caller read and
// validated it (pkg/safefile), to dst unless dst already exists; an
// existing backup is never overwritten. The source is never opened again
// by name, so a file swapped in since it was judged (a FIFO, a link) is
// neither read nor copied. info (of the source's descriptor, may be nil)
// gives the copy its mode and owner. It reports whether it made a new
// backup.
func BackupOnce(data []byte, info os.FileInfo, dst string) (bool, error) {
	RemoveStale(dst)
	if _, err := os.Lstat(dst); err == nil {
		return false, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return false, fmt.Errorf("stat backup %s: %w", dst, err)
	}
	perm, uid, gid := os.FileMode(0o600), -1, -1
	if info != nil {
		perm = info.Mode().Perm()
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			uid, gid = int(st.Uid), int(st.Gid)
		}
	}
	// Link the finished temp file into place with link(2): it fails when dst
	// appeared meanwhile, so a concurrent backup is never overwritten.
	dir := filepath.Dir(dst)
	tmp, err := createTemp(dir, dst)
	if err != nil {
		return false, err
	}
	// Removed before it is closed (unlocked), so that it never looks
	// abandoned while it still has its name.
	defer tmp.Close()
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		return false, fmt.Errorf("write backup %s: %w", tmp.Name(), err)
	}
	if err := tmp.Chmod(perm); err != nil {
		return false, fmt.Errorf("chmod backup %s: %w", tmp.Name(), err)
	}
	if uid >= 0 {
		_ = tmp.Chown(uid, gid)
	}
	if err := tmp.Sync(); err != nil {
		return false, fmt.Errorf("fsync backup %s: %w", tmp.Name(), err)
	}
	if err := os.Link(tmp.Name(), dst); err != nil {
		if errors.Is(err, os.ErrExist) {
			return false, nil
		}
		return false, fmt.Errorf("create backup %s: %w", dst, err)
	}
	return true, syncDir(dir)
}
