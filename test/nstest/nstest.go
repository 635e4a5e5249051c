// Package nstest runs test code inside a private network namespace, so
// tests can use the real iptables, sysctls and sockets without touching the
// machine they run on. It is for tests only.
//
// Run locks the calling goroutine to a fresh OS thread, unshares that
// thread's network namespace and runs fn there. Processes started from fn
// (iptables, iptables-save, the daemon binary, awscli) inherit the
// namespace; sockets created from fn (net.Listen) live in it; reads of
// /proc/sys/net from fn see the namespace's own values. The thread is thrown
// away afterwards, so the namespace disappears with it. Goroutines started
// by fn run on other threads and are NOT in the namespace: create sockets
// and start processes from fn itself.
package nstest

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Backend is one iptables flavour.
type Backend struct {
	Name     string // "nft" or "legacy"
	Iptables string // binary: iptables-nft or iptables-legacy
	Save     string // iptables-nft-save or iptables-legacy-save
	Restore  string // iptables-nft-restore or iptables-legacy-restore
}

// Backends are both iptables backends; tests run once per backend.
var Backends = []Backend{
	{"nft", "iptables-nft", "iptables-nft-save", "iptables-nft-restore"},
	{"legacy", "iptables-legacy", "iptables-legacy-save", "iptables-legacy-restore"},
}

// Require skips the test with a clear message when a namespace cannot be
// had here (not root, or a binary missing). In CI .ci/run installs
// everything, and ECS_REMEDIATOR_REQUIRE_NS=1 turns these skips into
// failures so a missing dependency cannot pass silently.
func Require(t testing.TB, binaries ...string) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (network namespaces need CAP_SYS_ADMIN)")
	}
	for _, b := range binaries {
		if _, err := exec.LookPath(b); err != nil {
			missing = append(missing, b+" (apt-get install -y iptables iproute2)")
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := "needs " + strings.Join(missing, ", ")
	if os.Getenv("ECS_REMEDIATOR_REQUIRE_NS") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// Run runs fn in a fresh network namespace with loopback up. It fails the
// test when the namespace cannot be made.
func Run(t testing.TB, fn func()) {
	t.Helper()
	Require(t)
	errc := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		// Never unlock: the thread dies with the goroutine, and the
		// namespace with it.
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare(CLONE_NEWNET): %w", err)
			return
		}
		if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
			errc <- fmt.Errorf("ip link set lo up: %v: %s", err, out)
			return
		}
		errc <- nil
		fn()
	}()
	if err := <-errc; err != nil {
		<-done
		t.Fatal(err)
	}
	<-done
}

// Sh runs a shell command (from inside Run, it runs in the namespace) and
// fails the test with its output when it fails.
func Sh(t testing.TB, script string) string {
	t.Helper()
	out, err := exec.Command("sh", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("sh -c %q: %v\n%s", script, err, out)
	}
	return string(out)
}
