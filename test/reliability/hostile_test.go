package reliability

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	compliant = "ECS_CLUSTER=prod\nECS_ENABLE_TASK_IAM_ROLE=true\nECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST=true\n"
	drifted   = "ECS_CLUSTER=prod\nECS_ENABLE_TASK_IAM_ROLE=false\nECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST=true\n"
	// modestRSS bounds the peak resident set of a process that was shown
	// a 100 MiB file: reading it whole would need more than 100 MiB.
	modestRSSKiB = 64 << 10
)

// snapshot describes every entry under dir: type, mode, content digest or
// link target. FIFOs and sockets are never opened.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			lines = append(lines, p+" error "+err.Error())
			return nil
		}
		if e.Name() == "metrics" && e.IsDir() {
			return filepath.SkipDir // the daemon's metrics textfile changes, as it should
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return nil
		}
		line := fmt.Sprintf("%s %v", p, fi.Mode())
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			line += " -> " + target
		case fi.Mode().IsRegular():
			f, err := os.Open(p)
			if err == nil {
				h := sha256.New()
				buf := make([]byte, 1<<20)
				for {
					n, err := f.Read(buf)
					h.Write(buf[:n])
					if err != nil {
						break
					}
				}
				f.Close()
				line += fmt.Sprintf(" %d %x", fi.Size(), h.Sum(nil))
			}
		}
		lines = append(lines, line)
		return nil
	})
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// hostileCase is a file the daemon must refuse: make turns a host's
// ecs.config into it, want are the fragments of the message (besides the
// path it names) that say what is wrong and what to do.
type hostileCase struct {
	name string
	make func(t *testing.T, h host)
	want []string
}

func hostileCases() []hostileCase {
	return []hostileCase{
		{
			// Safest: read through the link (ecs-init does), but never write
			// through a link that leaves its directory and never replace
			// the link itself; the target, elsewhere on the host, is not
			// ours to rewrite. Drift in the target is an error with the fix.
			name: "symlink out of its directory",
			make: func(t *testing.T, h host) {
				outside := filepath.Join(h.dir, "elsewhere/ecs.config")
				os.MkdirAll(filepath.Dir(outside), 0o755)
				if err := os.WriteFile(outside, []byte(drifted), 0o644); err != nil {
					t.Fatal(err)
				}
				os.Remove(h.ecsConfig)
				if err := os.Symlink(outside, h.ecsConfig); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{"outside its directory", "replace the link with a regular file"},
		},
		{
			name: "FIFO",
			make: func(t *testing.T, h host) {
				os.Remove(h.ecsConfig)
				if err := syscall.Mkfifo(h.ecsConfig, 0o644); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{"is a FIFO", "move it away"},
		},
		{
			name: "100 MiB",
			make: func(t *testing.T, h host) {
				line := []byte("ECS_ENABLE_TASK_IAM_ROLE=false # padding padding padding padding padding\n")
				buf := bytes.Repeat(line, (1<<20)/len(line)+1)[:1<<20]
				f, err := os.Create(h.ecsConfig + ".new")
				if err != nil {
					t.Fatal(err)
				}
				for i := 0; i < 100; i++ {
					if _, err := f.Write(buf); err != nil {
						t.Fatal(err)
					}
				}
				f.Close()
				os.Rename(h.ecsConfig+".new", h.ecsConfig)
			},
			want: []string{"104857600 bytes, larger than", "check it by hand"},
		},
		{
			name: "NUL bytes",
			make: func(t *testing.T, h host) {
				writeAtomic(t, h.ecsConfig, "ECS_CLUSTER=prod\x00\x00\nECS_ENABLE_TASK_IAM_ROLE=false\n")
			},
			want: []string{"NUL byte at offset 16", "restore it from its backup or fix it by hand"},
		},
		{
			name: "directory replaced by a file",
			make: func(t *testing.T, h host) {
				dir := filepath.Dir(h.ecsConfig)
				os.RemoveAll(dir)
				if err := os.WriteFile(dir, []byte("I am not a directory\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{"a parent of this path is a file", "remove or rename it"},
		},
	}
}

func writeAtomic(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path+".hostile-tmp", []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".hostile-tmp", path); err != nil {
		t.Fatal(err)
	}
}

// restore puts a regular, drifted ecs.config back (undoing any case).
func restore(t *testing.T, h host) {
	t.Helper()
	dir := filepath.Dir(h.ecsConfig)
	if fi, err := os.Lstat(dir); err == nil && !fi.IsDir() {
		os.Remove(dir)
	}
	os.MkdirAll(dir, 0o755)
	os.Remove(h.ecsConfig)
	writeAtomic(t, h.ecsConfig, drifted)
}

func hasAll(s string, want ...string) bool {
	for _, w := range want {
		if !strings.Contains(s, w) {
			return false
		}
	}
	return true
}

// Hostile files through check and apply: check exits 2 with a message
// naming the file and the fix, apply exits 2 and changes nothing at all,
// and neither hangs (run enforces a time bound) nor reads a huge file into
// memory.
func TestHostileFilesOneShot(t *testing.T) {
	for _, tc := range hostileCases() {
		t.Run(tc.name, func(t *testing.T) {
			h := newHost(t, compliant)
			tc.make(t, h)
			before := snapshot(t, h.dir)
			r := run(t, "check", "--config", h.policy)
			if r.code != 2 || !hasAll(r.stdout+r.stderr, append([]string{h.ecsConfig}, tc.want...)...) {
				t.Fatalf("check: exit %d, want 2 and %q\n%s%s", r.code, tc.want, r.stdout, r.stderr)
			}
			r = run(t, "apply", "--config", h.policy)
			if r.code != 2 || !hasAll(r.stdout+r.stderr, append([]string{h.ecsConfig}, tc.want...)...) {
				t.Fatalf("apply: exit %d, want 2 and %q\n%s%s", r.code, tc.want, r.stdout, r.stderr)
			}
			if after := snapshot(t, h.dir); after != before {
				t.Fatalf("apply changed files:\nbefore\n%s\nafter\n%s", before, after)
			}
			// Both commands stayed small, whatever the file's size.
			for _, args := range [][]string{{"check"}, {"apply"}, {"apply", "--dry-run"}} {
				cmd := exec.Command(bin, append(args, "--config", h.policy)...)
				cmd.Run()
				if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && ru.Maxrss > modestRSSKiB {
					t.Errorf("%v: peak RSS %d KiB: the file was read into memory", args, ru.Maxrss)
				}
			}
		})
	}
}

// Hostile files under the running daemon: it logs one clear error naming
// the file and the fix, changes nothing, stays up with a modest memory
// peak, and repairs again once a regular file is back.
func TestHostileFilesDaemon(t *testing.T) {
	for _, tc := range hostileCases() {
		t.Run(tc.name, func(t *testing.T) {
			h := newHost(t, compliant, resync1s)
			d := startDaemon(t, h.policy)
			d.waitUp(t)
			tc.make(t, h)
			before := snapshot(t, h.dir)
			eventually(t, "the daemon reports the file", d, func() bool {
				for _, l := range strings.Split(d.logs.String(), "\n") {
					if strings.Contains(l, `"action": "repair-impossible"`) && hasAll(l, append([]string{h.ecsConfig}, tc.want...)...) {
						return true
					}
				}
				return false
			})
			// Let a few resync passes (resync_interval 1s) run: still up,
			// still nothing changed, and the error is not logged again on
			// every pass.
			time.Sleep(2500 * time.Millisecond)
			if !d.alive() {
				t.Fatalf("daemon died\n%s", d.logs.String())
			}
			if after := snapshot(t, h.dir); after != before {
				t.Fatalf("daemon changed files:\nbefore\n%s\nafter\n%s\nlog:\n%s", before, after, d.logs.String())
			}
			if rss := peakRSSKiB(t, d.cmd.Process.Pid); rss > modestRSSKiB {
				t.Fatalf("daemon peak RSS %d KiB: the file was read into memory", rss)
			}
			restore(t, h)
			eventually(t, "repaired after the file is regular again", d, func() bool {
				b, _ := os.ReadFile(h.ecsConfig)
				return string(b) == compliant
			})
			eventually(t, "recovery logged", d, func() bool { return strings.Contains(d.logs.String(), `"action": "recovered"`) })
			if c := strings.Count(d.logs.String(), `"action": "repair-impossible"`); c > 3 { // one per item
				t.Fatalf("the error was logged %d times (want once per item)\n%s", c, d.logs.String())
			}
			d.stop(t)
		})
	}
}
