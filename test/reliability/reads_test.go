package reliability

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ecs-remediator/ecs-remediator/pkg/policy"
	"github.com/ecs-remediator/ecs-remediator/test/nstest"
	"github.com/ecs-remediator/ecs-remediator/test/testpolicy"
)

// netHost is a host whose kernel side is on: the binary runs in a private
// network namespace (unshare -n), with the real iptables-nft, so the saved
// ruleset and the sysctl.d file are read as on an ECS host. Every path is
// a temp dir.
type netHost struct {
	host
	saved, sysctlConf, dropins string
}

func newNetHost(t *testing.T) netHost {
	t.Helper()
	nstest.Require(t, "unshare", "nsenter", "iptables-nft", "iptables-nft-save", "iptables-nft-restore")
	h := netHost{host: newHost(t, compliant)}
	h.saved = filepath.Join(h.dir, "persist/rules.v4")
	h.sysctlConf = filepath.Join(h.dir, "persist/90-ecs.conf")
	h.dropins = filepath.Join(h.dir, "ecs.service.d")
	os.MkdirAll(filepath.Dir(h.saved), 0o755)
	os.MkdirAll(h.dropins, 0o755)
	// The kernel side on, in the namespace's own /proc/sys.
	p := h.pol
	resync1s(p)
	p.Network.Mode, p.Network.Iptables, p.Network.ProcSys = policy.Enforce, "iptables-nft", policy.Default().Network.ProcSys
	p.Metrics.Textfile = policy.Off
	testpolicy.Write(t, h.policy, p, filepath.Dir(h.dir), testpolicy.Netns)
	return h
}

// entryOf is the snapshot line of path.
func entryOf(t *testing.T, dir, path string) string {
	t.Helper()
	for _, l := range strings.Split(snapshot(t, dir), "\n") {
		if strings.HasPrefix(l, path+" ") {
			return l + "\n"
		}
	}
	return path + " absent\n"
}

// runNS runs the binary to completion in a fresh network namespace.
func runNS(t *testing.T, args ...string) result {
	t.Helper()
	return run(t, append([]string{"--ns--"}, args...)...)
}

// nsCommand is bin args..., in a fresh network namespace when args start
// with "--ns--" (unshare execs the binary: signals reach it directly).
func nsCommand(ctx context.Context, args ...string) *exec.Cmd {
	if len(args) > 0 && args[0] == "--ns--" {
		return exec.CommandContext(ctx, "unshare", append([]string{"-n", "--", bin}, args[1:]...)...)
	}
	return exec.CommandContext(ctx, bin, args...)
}

// A file the daemon or a command reads, made hostile.
type hostileRead struct {
	name string
	path func(h netHost) string
	make func(t *testing.T, path string)
	want []string // in the message, besides the path
}

func fifo(t *testing.T, path string) {
	t.Helper()
	os.Remove(path)
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Fatal(err)
	}
}

func toDevZero(t *testing.T, path string) {
	t.Helper()
	os.Remove(path)
	if err := os.Symlink("/dev/zero", path); err != nil {
		t.Fatal(err)
	}
}

func hostileReads() []hostileRead {
	saved := func(h netHost) string { return h.saved }
	return []hostileRead{
		{"saved ruleset FIFO", saved, fifo, []string{"is a FIFO, not a regular file", "persist.iptables"}},
		{"saved ruleset symlink to /dev/zero", saved, toDevZero, []string{"is a character device, not a regular file"}},
		{"sysctl.d file FIFO", func(h netHost) string { return h.sysctlConf }, fifo, []string{"is a FIFO, not a regular file", "persist.sysctl"}},
		{"ecs_config_base FIFO", func(h netHost) string {
			p := filepath.Join(h.dir, "var/lib/ecs/ecs.config")
			os.MkdirAll(filepath.Dir(p), 0o755)
			return p
		}, fifo, []string{"base file", "is a FIFO"}},
	}
}

// A FIFO, or a link to /dev/zero, wherever a file is read: check and
// apply return (no hang) with exit 2 and a message naming the path,
// change no file, and stay small in memory.
func TestHostileReadsOneShot(t *testing.T) {
	for _, tc := range hostileReads() {
		t.Run(tc.name, func(t *testing.T) {
			h := newNetHost(t)
			p := tc.path(h)
			tc.make(t, p)
			before := entryOf(t, h.dir, p) + entryOf(t, h.dir, h.ecsConfig)
			for _, args := range [][]string{{"check"}, {"apply", "--dry-run"}, {"apply"}} {
				r := runNS(t, append(args, "--config", h.policy)...)
				if r.code != 2 || !hasAll(r.stdout+r.stderr, append([]string{p}, tc.want...)...) {
					t.Fatalf("%v: exit %d, want 2 naming %s and %q\n%s%s", args, r.code, p, tc.want, r.stdout, r.stderr)
				}
			}
			// The hostile file and ecs.config stay as they were (apply
			// repairs the other items: the rules, the other files).
			if after := entryOf(t, h.dir, p) + entryOf(t, h.dir, h.ecsConfig); after != before {
				t.Fatalf("changed:\nbefore\n%s\nafter\n%s", before, after)
			}
			if _, err := os.Lstat(h.backup); err == nil {
				t.Fatal("a backup was made")
			}
			cmd := nsCommand(context.Background(), "--ns--", "check", "--config", h.policy)
			cmd.Run()
			if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && ru.Maxrss > modestRSSKiB {
				t.Errorf("check: peak RSS %d KiB", ru.Maxrss)
			}
		})
	}
}

// The same files under the running daemon: it gets up (the "is running"
// line comes after the first pass, READY=1 with it), reports the file,
// keeps repairing the other items (a drifted ecs.config), stays small, and
// stops at once on SIGTERM.
func TestHostileReadsDaemon(t *testing.T) {
	for _, tc := range hostileReads() {
		t.Run(tc.name, func(t *testing.T) {
			h := newNetHost(t)
			p := tc.path(h)
			tc.make(t, p)
			d := startDaemonNS(t, h.policy)
			d.waitUp(t)
			eventually(t, "the daemon reports the file", d, func() bool {
				for _, l := range strings.Split(d.logs.String(), "\n") {
					if strings.Contains(l, `"action": "repair-impossible"`) && hasAll(l, append([]string{p}, tc.want...)...) {
						return true
					}
				}
				return false
			})
			// Another item drifts (the REDIRECT rule is deleted in the
			// daemon's namespace) and is repaired meanwhile.
			pid := strconv.Itoa(d.cmd.Process.Pid)
			rule := "-t nat OUTPUT -p tcp -d 169.254.170.2 --dport 80 -j REDIRECT --to-ports 51679"
			if out, err := exec.Command("nsenter", "-t", pid, "-n", "iptables-nft", "-t", "nat", "-D", "OUTPUT", "-p", "tcp", "-d", "169.254.170.2", "--dport", "80", "-j", "REDIRECT", "--to-ports", "51679").CombinedOutput(); err != nil {
				t.Fatalf("delete %s: %v %s", rule, err, out)
			}
			eventually(t, "another item repaired meanwhile", d, func() bool {
				return exec.Command("nsenter", "-t", pid, "-n", "iptables-nft", "-t", "nat", "-C", "OUTPUT", "-p", "tcp", "-d", "169.254.170.2", "--dport", "80", "-j", "REDIRECT", "--to-ports", "51679").Run() == nil
			})
			if rss := peakRSSKiB(t, d.cmd.Process.Pid); rss > modestRSSKiB {
				t.Fatalf("daemon peak RSS %d KiB", rss)
			}
			d.stop(t)
		})
	}
}

func startDaemonNS(t *testing.T, policy string) *daemon {
	t.Helper()
	d := &daemon{logs: &syncBuffer{}, done: make(chan struct{})}
	d.cmd = nsCommand(context.Background(), "--ns--", "run", "--config", policy)
	d.cmd.Stdout, d.cmd.Stderr = d.logs, d.logs
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.err = d.cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		if d.alive() {
			d.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-d.done:
			case <-time.After(10 * time.Second):
				d.cmd.Process.Kill()
				<-d.done
			}
		}
	})
	return d
}

// A FIFO swapped in for ecs.config at any moment, between the checks and
// the backup included: apply never hangs (run bounds every command), and
// the backup, when one is made, is a regular file holding the original.
func TestFIFOSwappedDuringApply(t *testing.T) {
	h := newHost(t, drifted)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		tmpFIFO, tmpFile := h.ecsConfig+".fifo", h.ecsConfig+".reg"
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if i%2 == 0 {
				os.Remove(tmpFIFO)
				if syscall.Mkfifo(tmpFIFO, 0o644) == nil {
					os.Rename(tmpFIFO, h.ecsConfig)
				}
			} else {
				if os.WriteFile(tmpFile, []byte(drifted), 0o644) == nil {
					os.Rename(tmpFile, h.ecsConfig)
				}
			}
			time.Sleep(time.Duration(i%7) * 100 * time.Microsecond)
		}
	}()
	for i := 0; i < 60; i++ {
		r := run(t, "apply", "--config", h.policy) // fails the test on a hang
		if r.code != 0 && r.code != 2 {
			t.Errorf("apply: exit %d\n%s", r.code, r.stderr)
		}
		os.Remove(h.backup)
	}
	close(stop)
	wg.Wait()
}

// A 300 MB policy file (of comments) is refused at once by size: exit 2
// naming the file and the cap, for every command that reads it, without
// reading it into memory.
func TestHugePolicyFile(t *testing.T) {
	h := newHost(t, compliant)
	f, err := os.Create(h.policy)
	if err != nil {
		t.Fatal(err)
	}
	line := bytes.Repeat([]byte("# a comment of a policy file, padding it out\n"), 1<<14)
	for n := 0; n < 300<<20; n += len(line) {
		if _, err := f.Write(line); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	for _, args := range [][]string{{"check"}, {"apply"}, {"doctor"}, {"run"}} {
		cmd := exec.Command(bin, append(args, "--config", h.policy)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		done := make(chan error, 1)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(cmdTimeout):
			cmd.Process.Kill()
			t.Fatalf("%v did not return", args)
		}
		if code := cmd.ProcessState.ExitCode(); code != 2 || !hasAll(out.String(), h.policy, "larger than the 1048576 bytes allowed") {
			t.Errorf("%v: exit %d, want 2 naming the file and the cap:\n%s", args, code, out.String())
		}
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && ru.Maxrss > modestRSSKiB {
			t.Errorf("%v: peak RSS %d KiB: the file was read", args, ru.Maxrss)
		}
	}
}
