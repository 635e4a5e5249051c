package reliability

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ecs-remediator/ecs-remediator/test/nstest"
)

// overlayHostDirs puts a private overlay over /etc and /var in the current
// (private) mount namespace: the built-in defaults the daemon falls back
// to name /etc/ecs/ecs.config and friends, and every write of theirs lands
// in upper/, never on the host.
func overlayHostDirs(t *testing.T, dir string) (upper func(hostDir string) string) {
	t.Helper()
	for _, d := range []string{"/etc", "/var"} {
		u, w := filepath.Join(dir, "upper"+d), filepath.Join(dir, "work"+d)
		os.MkdirAll(u, 0o755)
		os.MkdirAll(w, 0o755)
		if err := unix.Mount("overlay", d, "overlay", 0, "lowerdir="+d+",upperdir="+u+",workdir="+w); err != nil {
			t.Fatalf("overlay over %s: %v", d, err)
		}
	}
	return func(hostDir string) string { return filepath.Join(dir, "upper", hostDir) }
}

// A policy file named with --config that is deleted while the daemon runs:
// the daemon keeps running on the policy in force and logs that once; a
// SIGHUP then falls back to the built-in defaults (as a missing default
// file does) instead of being refused. In a private mount namespace (an
// overlay over /etc and /var) and network namespace: the defaults' writes
// never reach the host.
func TestPolicyFileDeletedWhileRunning(t *testing.T) {
	nstest.Require(t, "unshare", "iptables-nft")
	h := newHost(t, compliant, resync1s)
	hostBefore := snapshot(t, "/etc/ecs")
	inMountNS(t, func() {
		upper := overlayHostDirs(t, t.TempDir())
		// Safety first: a file made here, and seen by a child process, is
		// in the overlay and not on the host.
		probe := "/etc/.ecs-remediator-overlay-probe"
		if err := os.WriteFile(probe, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(upper("/etc"), filepath.Base(probe))); err != nil {
			t.Fatalf("the overlay does not take the writes: %v", err)
		}
		if err := exec.Command("unshare", "-n", "--", "test", "-e", probe).Run(); err != nil {
			t.Fatalf("a child process does not see the overlay: %v", err)
		}
		fromHost(func() {
			if _, err := os.Lstat(probe); err == nil {
				t.Errorf("the probe reached the host's /etc")
			}
		})
		if t.Failed() {
			return
		}
		d := startDaemonNS(t, h.policy)
		d.waitUp(t)
		if err := os.Remove(h.policy); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the deletion is logged", d, func() bool { return strings.Contains(d.logs.String(), `"action": "policy-file-deleted"`) })
		time.Sleep(2500 * time.Millisecond) // a few resync passes
		if n := strings.Count(d.logs.String(), `"action": "policy-file-deleted"`); n != 1 {
			t.Fatalf("the deletion was logged %d times, want once\n%s", n, d.logs.String())
		}
		// Still serving the policy in force: a drift of its ecs.config is
		// repaired.
		writeAtomic(t, h.ecsConfig, drifted)
		eventually(t, "repaired on the policy in force", d, func() bool {
			b, _ := os.ReadFile(h.ecsConfig)
			return string(b) == compliant
		})
		d.cmd.Process.Signal(syscall.SIGHUP)
		eventually(t, "reloaded with the built-in defaults", d, func() bool {
			l := d.logs.String()
			return strings.Contains(l, `"action": "policy-defaults"`) && strings.Contains(l, `"action": "policy-reloaded"`)
		})
		if strings.Contains(d.logs.String(), `"action": "policy-rejected"`) {
			t.Fatalf("the reload was rejected\n%s", d.logs.String())
		}
		// The defaults are in force: they repair /etc/ecs/ecs.config (in the
		// overlay).
		eventually(t, "the default ecs.config is repaired", d, func() bool {
			b, _ := os.ReadFile(filepath.Join(upper("/etc"), "ecs/ecs.config"))
			return strings.Contains(string(b), "ECS_ENABLE_TASK_IAM_ROLE=true")
		})
		d.stop(t)
	})
	if after := snapshot(t, "/etc/ecs"); after != hostBefore {
		t.Errorf("the host's /etc/ecs changed:\nbefore\n%s\nafter\n%s", hostBefore, after)
	}
}
