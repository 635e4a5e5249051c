package reliability

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/ecs-remediator/ecs-remediator/pkg/policy"
)

// idleClients opens n idle TCP connections to addr from uid 65534 (the
// local user nobody), in bash processes of at most 900 connections each,
// and returns once all are open, with the function that closes them (also
// called when the test ends).
func idleClients(t *testing.T, addr string, n int) (closeAll func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run the clients as uid 65534")
	}
	host, port, _ := strings.Cut(addr, ":")
	var cmds []*exec.Cmd
	closeAll = func() {
		for _, c := range cmds {
			c.Process.Kill()
			c.Wait()
		}
		cmds = nil
	}
	t.Cleanup(func() { closeAll() })
	for n > 0 {
		k := min(n, 900)
		n -= k
		script := fmt.Sprintf(`for i in $(seq %d); do exec {fd}<>/dev/tcp/%s/%s || exit 1; done; echo ready; exec sleep 600`, k, host, port)
		cmd := exec.Command("bash", "-c", script)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
		line, _ := bufio.NewReader(out).ReadString('\n')
		if strings.TrimSpace(line) != "ready" {
			t.Fatalf("idle clients as uid 65534 did not connect (%q)", line)
		}
	}
	return closeAll
}

// openFDs counts pid's open file descriptors.
func openFDs(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// Thousands of idle connections to /metrics from an unprivileged uid do not
// exhaust the daemon: its descriptors and memory stay bounded, a drifted
// ecs.config is still repaired, and /metrics answers again once they are
// gone.
func TestMetricsListenerIdleConnections(t *testing.T) {
	port := freePort(t)
	h := newHost(t, compliant, func(p *policy.Policy) { p.Metrics.Listen = fmt.Sprintf("localhost:%d", port) })
	d := startDaemon(t, h.policy)
	d.waitUp(t)
	url := fmt.Sprintf("http://127.0.0.1:%d/metrics", port)
	scrape := func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusOK && strings.Contains(string(b), "ecs_remediator_build_info")
	}
	eventually(t, "/metrics answers on 127.0.0.1 (localhost taken literally)", d, scrape)
	pid := d.cmd.Process.Pid
	fdsBefore := openFDs(t, pid)

	closeAll := idleClients(t, fmt.Sprintf("127.0.0.1:%d", port), 3000)

	writeAtomic(t, h.ecsConfig, drifted)
	eventually(t, "repaired while the connections are held", d, func() bool {
		b, _ := os.ReadFile(h.ecsConfig)
		return string(b) == compliant
	})
	if fds := openFDs(t, pid); fds > fdsBefore+40 {
		t.Errorf("daemon holds %d descriptors with 3000 idle connections (%d before): the listener accepts without bound", fds, fdsBefore)
	}
	if rss := peakRSSKiB(t, pid); rss > modestRSSKiB {
		t.Errorf("daemon peak RSS %d KiB with 3000 idle connections", rss)
	}
	closeAll()
	eventually(t, "/metrics answers again", d, scrape)
	d.stop(t)
}
