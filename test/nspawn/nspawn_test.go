package nspawn

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestRootfs builds (or reuses) the cached rootfs and checks that it holds
// what the end-to-end suite relies on. `make e2e-rootfs` runs only this.
func TestRootfs(t *testing.T) {
	root := Rootfs(t)
	for _, f := range []string{
		"usr/lib/systemd/systemd", "usr/bin/systemctl", "usr/bin/journalctl", "usr/bin/systemd-analyze",
		"usr/bin/dbus-daemon", "usr/sbin/iptables", "usr/sbin/iptables-legacy", "usr/sbin/netfilter-persistent",
		"usr/bin/rpm", "usr/sbin/ip", "usr/bin/pgrep",
		"usr/lib/systemd/system/netfilter-persistent.service",
		"etc/systemd/system/multi-user.target.wants/netfilter-persistent.service",
	} {
		if _, err := os.Lstat(filepath.Join(root, f)); err != nil {
			t.Errorf("rootfs %s lacks %s: %v (delete the cache directory to rebuild it)", root, f, err)
		}
	}
	if data, err := os.ReadFile(filepath.Join(root, "etc/iptables/rules.v4")); err != nil || len(data) != 0 {
		t.Errorf("rootfs rules.v4 must start empty (got %q, %v)", data, err)
	}
}

// TestDockerRootfs builds (or reuses) the cached Docker variant and checks
// that it holds Docker and busybox, with Docker's units disabled.
// `make e2e-rootfs` runs it too, so CI builds it once before the suite.
func TestDockerRootfs(t *testing.T) {
	root := RootfsOf(t, Docker)
	for _, f := range []string{"usr/sbin/dockerd", "usr/bin/docker", "usr/sbin/runc", "usr/bin/containerd", "bin/busybox", "usr/sbin/ip"} {
		if _, err := os.Lstat(filepath.Join(root, f)); err != nil {
			t.Errorf("rootfs %s lacks %s: %v (delete the cache directory to rebuild it)", root, f, err)
		}
	}
	for _, f := range []string{"etc/systemd/system/multi-user.target.wants/docker.service", "etc/systemd/system/sockets.target.wants/docker.socket"} {
		if _, err := os.Lstat(filepath.Join(root, f)); err == nil {
			t.Errorf("rootfs %s has %s: Docker must not start at boot", root, f)
		}
	}
}

// TestBoot boots a container and checks the helper's promises: commands run
// inside (its own PID 1, its own network namespace), files written land
// inside and survive a reboot, and the host's network namespace is not
// touched.
func TestBoot(t *testing.T) {
	c := Boot(t, NewRoot(t))
	if out := strings.TrimSpace(c.MustExec(t, "cat", "/proc/1/comm")); out != "systemd" {
		t.Fatalf("PID 1 inside is %q, want systemd", out)
	}
	hostNet, _ := os.Readlink("/proc/self/ns/net")
	inNet := strings.TrimSpace(c.MustExec(t, "readlink", "/proc/self/ns/net"))
	if inNet == hostNet {
		t.Fatalf("the container shares the host's network namespace %s", hostNet)
	}
	c.MustExec(t, "iptables", "-t", "nat", "-A", "OUTPUT", "-d", "192.0.2.99/32", "-j", "RETURN", "-m", "comment", "--comment", "nspawn-helper-test")
	if out, err := exec.Command("iptables-save", "-t", "nat").CombinedOutput(); err == nil && strings.Contains(string(out), "nspawn-helper-test") {
		t.Fatalf("a rule added inside the container shows up on the host:\n%s", out)
	}

	c.WriteFile(t, "/etc/e2e/marker", []byte("hello\n"), 0o600)
	if got, err := c.ReadFile("/etc/e2e/marker"); err != nil || got != "hello\n" {
		t.Fatalf("ReadFile after WriteFile = %q, %v", got, err)
	}
	if mode := strings.TrimSpace(c.MustExec(t, "stat", "-c", "%a", "/etc/e2e/marker")); mode != "600" {
		t.Fatalf("mode = %s, want 600", mode)
	}
	firstPID := c.PID
	c.Reboot(t)
	if c.PID == firstPID {
		t.Fatalf("Reboot kept PID %d", c.PID)
	}
	if got, _ := c.ReadFile("/etc/e2e/marker"); got != "hello\n" {
		t.Fatalf("file lost across reboot: %q", got)
	}
	if out := c.MustExec(t, "iptables-save", "-t", "nat"); strings.Contains(out, "nspawn-helper-test") {
		t.Fatalf("an unsaved rule survived the reboot:\n%s", out)
	}
	if j := c.Journal("-b", "-n", "5"); !strings.Contains(j, " ") {
		t.Fatalf("journal looks empty: %q", j)
	}
}
