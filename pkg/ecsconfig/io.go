package ecsconfig

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// MaxSize is the largest ecs.config we read: a real one is a few hundred
// bytes, and a huge one is a mistake we must not load into memory.
const MaxSize = 1 << 20

// readFile reads a regular file of at most MaxSize without NUL bytes.
// exists is false (and err nil) when the file does not exist.
func readFile(path string) (data []byte, exists bool, err error) {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if errors.Is(err, syscall.ENOTDIR) {
		return nil, false, fmt.Errorf("%s: a parent of this path is a file, not a directory; remove or rename it so the directory can exist", path)
	}
	if err != nil {
		return nil, false, fmt.Errorf("stat %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, true, fmt.Errorf("%s is %s, not a regular file; ecs-init reads a regular text file there: move it away and run apply to create one", path, describeMode(fi.Mode()))
	}
	if fi.Size() > MaxSize {
		return nil, true, fmt.Errorf("%s is %d bytes, larger than the %d bytes allowed for ecs.config; it is probably not an ecs.config: check it by hand", path, fi.Size(), MaxSize)
	}
	// O_NONBLOCK: should the path have been swapped for a FIFO since the
	// stat, opening it must not hang the daemon.
	fd, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, true, fmt.Errorf("open %s: %w", path, err)
	}
	defer fd.Close()
	if fi2, err := fd.Stat(); err != nil || !fi2.Mode().IsRegular() {
		return nil, true, fmt.Errorf("%s changed while being read; try again", path)
	}
	data, err = io.ReadAll(io.LimitReader(fd, MaxSize+1))
	if err != nil {
		return nil, true, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > MaxSize {
		return nil, true, fmt.Errorf("%s is larger than the %d bytes allowed for ecs.config; check it by hand", path, MaxSize)
	}
	if i := bytes.IndexByte(data, 0); i >= 0 {
		return nil, true, fmt.Errorf("%s holds a NUL byte at offset %d: it is not a text file (corrupt?); restore it from its backup or fix it by hand", path, i)
	}
	return data, true, nil
}

func describeMode(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&os.ModeNamedPipe != 0:
		return "a FIFO"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m&os.ModeDevice != 0:
		return "a device"
	}
	return "not a regular file (" + m.Type().String() + ")"
}

// writeTarget is the file a write to path really replaces: path itself, or
// the target of a symlink that stays in path's directory.
func writeTarget(path string) (string, error) {
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode()&os.ModeSymlink == 0 {
		return path, nil
	}
	target, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", fmt.Errorf("%s is a symlink whose target cannot be resolved (%v); replace the link with a regular file", path, err)
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(path))
	if err != nil {
		return "", fmt.Errorf("resolve directory of %s: %w", path, err)
	}
	if filepath.Dir(target) != dir {
		return "", fmt.Errorf("%s is a symlink to %s, outside its directory: refusing to rewrite a file elsewhere on the host; point ecs_config at %s or replace the link with a regular file", path, target, target)
	}
	return target, nil
}

// Setting is one variable of the agent's environment from the files, and the
// line that decides it.
type Setting struct {
	Value string
	File  string
	Line  int
}

// ReadAgentEnv reads path and, when base is not "", base (read first,
// overridden by path) with the package's safe reader, and returns the
// variables ecs-init hands the agent from them (without ecs-init's built-in
// defaults): read-only, for doctor. A missing file is no variables.
func ReadAgentEnv(path, base string) (map[string]Setting, error) {
	env := map[string]Setting{}
	for _, p := range []string{base, path} {
		if p == "" {
			continue
		}
		data, exists, err := readFile(p)
		if err != nil {
			return nil, err
		}
		if !exists {
			continue
		}
		for i, l := range Parse(data).Lines {
			if k, v, ok := KV(l.Text); ok {
				env[k] = Setting{Value: v, File: p, Line: i + 1}
			}
		}
	}
	return env, nil
}
