package ecsconfig

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"github.com/ecs-remediator/ecs-remediator/pkg/safefile"
)

// MaxSize is the largest ecs.config we read: a real one is a few hundred
// bytes, and a huge one is a mistake we must not load into memory.
const MaxSize = 1 << 20

// readFile reads a regular file of at most MaxSize without NUL bytes
// (pkg/safefile: nothing but a regular file is opened, never blocking).
// exists is false (and err nil) when the file does not exist.
func readFile(path string) (data []byte, info os.FileInfo, exists bool, err error) {
	f, err := safefile.Read(path, safefile.Options{Max: MaxSize})
	var se *safefile.Error
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, nil, false, nil
	case errors.Is(err, safefile.ErrParentNoDir):
		return nil, nil, false, fmt.Errorf("%s: a parent of this path is a file, not a directory; remove or rename it so the directory can exist", path)
	case errors.As(err, &se) && se.Kind == safefile.ErrNotRegular:
		return nil, nil, true, fmt.Errorf("%s is %s, not a regular file; ecs-init reads a regular text file there: move it away and run apply to create one", path, safefile.Describe(se.Mode))
	case errors.As(err, &se) && se.Kind == safefile.ErrTooLarge && se.Size >= 0:
		return nil, nil, true, fmt.Errorf("%s is %d bytes, larger than the %d bytes allowed for ecs.config; it is probably not an ecs.config: check it by hand", path, se.Size, MaxSize)
	case errors.As(err, &se) && se.Kind == safefile.ErrTooLarge:
		return nil, nil, true, fmt.Errorf("%s is larger than the %d bytes allowed for ecs.config; check it by hand", path, MaxSize)
	case err != nil:
		return nil, nil, true, err
	}
	if i := bytes.IndexByte(f.Data, 0); i >= 0 {
		return nil, nil, true, fmt.Errorf("%s holds a NUL byte at offset %d: it is not a text file (corrupt?); restore it from its backup or fix it by hand", path, i)
	}
	return f.Data, f.Info, true, nil
}

// writeTarget is the file a write to path really replaces: path itself, or
// the target of a symlink that stays in path's directory (pkg/safefile
// owns the rule, shared with the agent's drop-ins).
func writeTarget(path string) (string, error) {
	t, err := safefile.WriteTarget(path)
	var se *safefile.Error
	if errors.As(err, &se) && se.Target != "" {
		return "", fmt.Errorf("%w; or point ecs_config at %s", err, se.Target)
	}
	return t, err
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
		data, _, exists, err := readFile(p)
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
