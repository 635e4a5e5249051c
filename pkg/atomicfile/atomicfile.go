// Package atomicfile replaces files so that a reader (or a crash) only ever
// sees the old content or the new content, never a mix. It owns temp-file
// naming, fsync and rename; it knows nothing about what the files mean.
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// Options say how a new file is created. Mode and owner of an existing file
// always win over them.
type Options struct {
	// Perm is the mode of a file that does not exist yet (0644 when zero).
	Perm os.FileMode
	// DirPerm is the mode of missing parent directories (0755 when zero).
	DirPerm os.FileMode
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

	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".ecs-remediator-tmp-")
	if err != nil {
		return fmt.Errorf("create temp file in %s: %w", dir, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
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
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp.Name(), err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("rename %s over %s: %w", tmp.Name(), path, err)
	}
	return syncDir(dir)
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

// BackupOnce copies src to dst unless dst already exists; an existing backup
// is never overwritten. The copy keeps src's mode and is written atomically.
// It reports whether it made a new backup. A missing src is not an error
// (there is nothing to back up) and makes no backup.
func BackupOnce(src, dst string) (bool, error) {
	if _, err := os.Lstat(dst); err == nil {
		return false, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return false, fmt.Errorf("stat backup %s: %w", dst, err)
	}
	f, err := os.Open(src)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("open %s for backup: %w", src, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("stat %s: %w", src, err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return false, fmt.Errorf("read %s for backup: %w", src, err)
	}
	// Link the finished temp file into place with link(2): it fails when dst
	// appeared meanwhile, so a concurrent backup is never overwritten.
	dir := filepath.Dir(dst)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(dst)+".ecs-remediator-tmp-")
	if err != nil {
		return false, fmt.Errorf("create temp file in %s: %w", dir, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return false, fmt.Errorf("write backup %s: %w", tmp.Name(), err)
	}
	if err := tmp.Chmod(fi.Mode().Perm()); err != nil {
		tmp.Close()
		return false, fmt.Errorf("chmod backup %s: %w", tmp.Name(), err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		_ = tmp.Chown(int(st.Uid), int(st.Gid))
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return false, fmt.Errorf("fsync backup %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return false, fmt.Errorf("close backup %s: %w", tmp.Name(), err)
	}
	if err := os.Link(tmp.Name(), dst); err != nil {
		if errors.Is(err, os.ErrExist) {
			return false, nil
		}
		return false, fmt.Errorf("create backup %s: %w", dst, err)
	}
	return true, syncDir(dir)
}
