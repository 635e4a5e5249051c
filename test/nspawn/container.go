package nspawn

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BootTimeout bounds how long a boot may take to reach running/degraded.
const BootTimeout = 90 * time.Second

// Container is one booted Debian userland with its own systemd (PID 1),
// journald, system bus and network namespace.
//
// Methods that fail the test take the (sub)test's t; the others return
// errors.
type Container struct {
	// Root is the container's root directory on the host.
	Root string
	// PID is the host PID of the container's systemd.
	PID int

	nspawn  *exec.Cmd
	exited  chan struct{}
	console *os.File
	logDir  string
	boots   int
	opts    Options
	cgroup  string // Docker boots: the run's own cgroup on the host
}

// Options change how a container boots.
type Options struct {
	// Docker boots the container so that Debian's dockerd and runc work
	// inside (the recipe of TESTING.md, "Real Docker inside
	// systemd-nspawn"): SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 (this host's
	// cgroups are hybrid and PID 1 is not systemd: without it the v1
	// controllers are read-only inside and runc fails),
	// --system-call-filter='@keyring bpf' (runc joins a session keyring
	// and attaches BPF_CGROUP_DEVICE programs), and a cgroup of its own
	// per run (two nspawns started from one cgroup share its payload/),
	// killed and removed when the container stops. Use a Docker variant
	// root (NewRootOf(t, Docker)).
	Docker bool
}

// Boot boots systemd on root (a copy from NewRoot) with systemd-nspawn in a
// private network namespace, waits until systemd says running or degraded,
// and stops it when the test ends.
func Boot(t testing.TB, root string) *Container { return BootWith(t, root, Options{}) }

// BootWith is Boot with options.
func BootWith(t testing.TB, root string, o Options) *Container {
	t.Helper()
	Require(t)
	c := &Container{Root: root, opts: o}
	t.Cleanup(func() {
		if t.Failed() && c.running() {
			t.Logf("journal of the container (last 150 lines):\n%s", c.Journal("-n", "150"))
		}
		c.Stop(t)
	})
	c.boot(t)
	return c
}

func (c *Container) boot(t testing.TB) {
	t.Helper()
	c.boots++
	if c.logDir == "" {
		c.logDir = t.TempDir()
	}
	console, err := os.Create(filepath.Join(c.logDir, fmt.Sprintf("console-%d.log", c.boots)))
	if err != nil {
		t.Fatal(err)
	}
	c.console = console
	// --register=no --keep-unit: there is no systemd on the host to register
	// with. --private-network: its own network namespace with only lo, so
	// every rule and sysctl stays inside.
	args := []string{"-q", "--register=no", "--keep-unit", "-D", c.Root, "--boot", "--private-network", "--machine=e2e"}
	cmd := exec.Command("systemd-nspawn", args...)
	if c.opts.Docker {
		cg, err := newRunCgroup()
		if err != nil {
			t.Fatalf("a cgroup for the Docker container: %v", err)
		}
		c.cgroup = cg
		args = append(args, "--system-call-filter=@keyring bpf")
		// The shell moves itself into the run's cgroup, then becomes
		// systemd-nspawn (same PID).
		cmd = exec.Command("/bin/sh", append([]string{"-c", `echo $$ > "$1" && shift && exec "$@"`, "sh",
			filepath.Join(cg, "cgroup.procs"), "systemd-nspawn"}, args...)...)
		cmd.Env = append(os.Environ(), "SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1")
	}
	cmd.Stdout, cmd.Stderr = console, console
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start systemd-nspawn: %v", err)
	}
	c.nspawn = cmd
	c.exited = make(chan struct{})
	go func() { cmd.Wait(); close(c.exited) }()

	deadline := time.Now().Add(BootTimeout)
	for c.PID = 0; c.PID == 0; {
		if pid := childNamed(cmd.Process.Pid, "systemd"); pid > 0 {
			c.PID = pid
			break
		}
		select {
		case <-c.exited:
			t.Fatalf("systemd-nspawn exited during boot: %v\n%s", cmd.ProcessState, c.Console())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no systemd inside systemd-nspawn (pid %d) after %s\n%s", cmd.Process.Pid, BootTimeout, c.Console())
		}
	}
	var state string
	for {
		out, _ := c.Exec("systemctl", "is-system-running")
		state = strings.TrimSpace(out)
		if state == "running" || state == "degraded" {
			break
		}
		if time.Now().After(deadline) {
			failed, _ := c.Exec("systemctl", "list-jobs", "--no-legend")
			t.Fatalf("container did not finish booting in %s: state %q, jobs:\n%s\nconsole:\n%s", BootTimeout, state, failed, c.Console())
		}
		select {
		case <-c.exited:
			t.Fatalf("systemd-nspawn exited during boot: %v\n%s", c.nspawn.ProcessState, c.Console())
		case <-time.After(200 * time.Millisecond):
		}
	}
	if state == "degraded" {
		failed, _ := c.Exec("systemctl", "--failed", "--no-legend")
		errs, _ := c.Exec("journalctl", "--no-pager", "-b", "-p", "warning", "-n", "20")
		t.Logf("container booted degraded; failed units:\n%s\nwarnings and errors of this boot:\n%s", failed, errs)
	}
}

// childNamed finds the child of ppid whose command is comm (the container's
// systemd is the direct child of systemd-nspawn; nsenter into nspawn's own
// PID would land on the host).
func childNamed(ppid int, comm string) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(stat)
		open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || close < open {
			continue
		}
		fields := strings.Fields(s[close+1:])
		if len(fields) < 2 || fields[1] != strconv.Itoa(ppid) {
			continue
		}
		if s[open+1:close] == comm {
			return pid
		}
	}
	return 0
}

func (c *Container) running() bool {
	if c.nspawn == nil {
		return false
	}
	select {
	case <-c.exited:
		return false
	default:
		return true
	}
}

// command builds nsenter into every namespace of the container's PID 1,
// with a clean environment (nothing of the test's leaks in).
func (c *Container) command(args ...string) *exec.Cmd {
	full := append([]string{"-t", strconv.Itoa(c.PID), "-a", "--"}, args...)
	cmd := exec.Command("nsenter", full...)
	cmd.Env = []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"LANG=C.UTF-8", "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0", "HOME=/root",
	}
	return cmd
}

// Exec runs a command inside the container and returns its combined output.
func (c *Container) Exec(args ...string) (string, error) {
	if !c.running() {
		return "", fmt.Errorf("container is not running")
	}
	out, err := c.command(args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// MustExec is Exec that fails the test on error.
func (c *Container) MustExec(t testing.TB, args ...string) string {
	t.Helper()
	out, err := c.Exec(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Sh runs a shell script inside the container.
func (c *Container) Sh(script string) (string, error) { return c.Exec("/bin/sh", "-c", script) }

// MustSh is Sh that fails the test on error.
func (c *Container) MustSh(t testing.TB, script string) string {
	t.Helper()
	return c.MustExec(t, "/bin/sh", "-c", script)
}

// WriteFile writes a file inside the running container (through the
// container's own mount namespace, so its symlinks resolve inside),
// creating missing directories.
func (c *Container) WriteFile(t testing.TB, path string, data []byte, mode os.FileMode) {
	t.Helper()
	cmd := c.command("/bin/sh", "-c", `mkdir -p "$(dirname "$1")" && cat > "$1.e2e-tmp" && chmod "$2" "$1.e2e-tmp" && mv -f "$1.e2e-tmp" "$1"`,
		"sh", path, fmt.Sprintf("%o", mode.Perm()))
	cmd.Stdin = bytes.NewReader(data)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("write %s in the container: %v\n%s", path, err, out)
	}
}

// CopyIn copies a host file into the running container.
func (c *Container) CopyIn(t testing.TB, hostPath, path string, mode os.FileMode) {
	t.Helper()
	data, err := os.ReadFile(hostPath)
	if err != nil {
		t.Fatal(err)
	}
	c.WriteFile(t, path, data, mode)
}

// ReadFile reads a file inside the running container.
func (c *Container) ReadFile(path string) (string, error) {
	out, err := c.command("cat", path).Output()
	if err != nil {
		return "", fmt.Errorf("read %s in the container: %w", path, err)
	}
	return string(out), nil
}

// Journal returns journalctl output (with args such as "-u", "x.service",
// "-o", "json").
func (c *Container) Journal(args ...string) string {
	out, err := c.Exec(append([]string{"journalctl", "--no-pager"}, args...)...)
	if err != nil {
		return fmt.Sprintf("(journalctl failed: %v)", err)
	}
	return out
}

// Console is what the container printed on its console so far.
func (c *Container) Console() string {
	if c.console == nil {
		return ""
	}
	data, _ := os.ReadFile(c.console.Name())
	return tail(string(data), 60)
}

// Reboot shuts the container down cleanly and boots it again on the same
// root, as an instance reboot would.
func (c *Container) Reboot(t testing.TB) {
	t.Helper()
	c.Stop(t)
	c.boot(t)
}

// Stop shuts the container down: SIGTERM to systemd-nspawn makes it halt
// the container cleanly; after 60 seconds it is killed.
func (c *Container) Stop(t testing.TB) {
	if !c.running() {
		return
	}
	c.nspawn.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(60 * time.Second):
		t.Logf("systemd-nspawn did not stop in 60s; killing it")
		syscall.Kill(-c.nspawn.Process.Pid, syscall.SIGKILL)
		<-c.exited
	}
	c.console.Close()
	c.PID = 0
	if c.cgroup != "" {
		if err := removeRunCgroup(c.cgroup); err != nil {
			t.Logf("remove the run cgroup %s: %v", c.cgroup, err)
		}
		c.cgroup = ""
	}
}
