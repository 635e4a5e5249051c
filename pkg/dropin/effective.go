package dropin

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ecs-remediator/ecs-remediator/pkg/safefile"
)

// MaxSize is the largest drop-in read; a real one is a few lines.
const MaxSize = 1 << 20

// dropinFile is one *.conf of the directory, read and parsed.
type dropinFile struct {
	path       string
	data       []byte
	info       os.FileInfo // of the descriptor data was read from
	directives []directive
}

// setting is where a variable got its effective value.
type setting struct {
	file  *dropinFile
	dir   *directive
	a     assignment
	order int // position in reading order (later wins)
}

func (s *setting) where() string { return fmt.Sprintf("%s:%d", s.file.path, s.dir.line) }

// effective is the environment the drop-ins give the unit.
type effective struct {
	files []*dropinFile
	env   map[string]*setting
	// syntax lists "FILE:LINE: error" for lines systemd partly ignores.
	syntax []string
}

// readDir reads the *.conf files of dir in the order systemd applies them
// (lexical by name; hidden files, directories and files masked by a
// symlink to /dev/null are skipped). A missing dir is no drop-ins.
func readDir(dir string) ([]*dropinFile, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read drop-in directory %s: %w", dir, err)
	}
	var names []string
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, ".") || !strings.HasSuffix(n, ".conf") {
			continue
		}
		names = append(names, n)
	}
	sort.Strings(names)
	var out []*dropinFile
	for _, n := range names {
		p := filepath.Join(dir, n)
		fi, err := os.Stat(p) // follows symlinks, as systemd does
		if errors.Is(err, fs.ErrNotExist) {
			continue // dangling symlink
		}
		if err != nil {
			return nil, fmt.Errorf("stat drop-in %s: %w", p, err)
		}
		if !fi.Mode().IsRegular() {
			continue // a directory, or masked (/dev/null)
		}
		rf, err := safefile.Read(p, safefile.Options{Max: MaxSize})
		switch {
		case errors.Is(err, fs.ErrNotExist) || errors.Is(err, safefile.ErrNotRegular):
			continue // gone or swapped since the stat: as above
		case errors.Is(err, safefile.ErrTooLarge):
			return nil, fmt.Errorf("drop-in %v; a drop-in is a few lines: check it by hand", err)
		case err != nil:
			return nil, fmt.Errorf("read drop-in %s: %w", p, err)
		}
		ds, err := parseUnit(rf.Data)
		if err != nil {
			return nil, fmt.Errorf("drop-in %s: %w", p, err)
		}
		out = append(out, &dropinFile{path: p, data: rf.Data, info: rf.Info, directives: ds})
	}
	return out, nil
}

// evaluate applies the files' Environment= directives in order: later
// assignments of a key win, an empty Environment= clears everything
// before it.
func evaluate(files []*dropinFile) *effective {
	e := &effective{files: files, env: map[string]*setting{}}
	order := 0
	for _, f := range files {
		for i := range f.directives {
			d := &f.directives[i]
			if d.err != nil {
				e.syntax = append(e.syntax, fmt.Sprintf("%s:%d: %v (systemd ignores the rest of the line)", f.path, d.line, d.err))
			}
			if d.reset {
				e.env = map[string]*setting{}
				continue
			}
			for _, a := range d.words {
				order++
				e.env[a.key] = &setting{file: f, dir: d, a: a, order: order}
			}
		}
	}
	return e
}

// Proxy and no-proxy variables, as Go's net/http (ecs-init, the agent) and
// curl read them.
var (
	proxyKeys   = []string{"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"}
	noProxyKeys = []string{"NO_PROXY", "no_proxy"}
)

// proxies are the proxy variables set to a non-empty value, in reading
// order.
func (e *effective) proxies() []*setting {
	var out []*setting
	for _, k := range proxyKeys {
		if s := e.env[k]; s != nil && resolveSpecifiers(s.a.value) != "" {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].order < out[j].order })
	return out
}
