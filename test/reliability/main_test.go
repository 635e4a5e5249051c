// Package reliability proves, with the real binary, that ecs-remediator
// keeps its promises under stress: a kill -9 at any moment never leaves a
// partial ecs.config, a fight with another tool is noticed once and backed
// off from, hostile files are refused clearly without losing a byte, and
// every mistake in the policy file is named by file, line and key.
//
// Every path is a temporary directory; the kernel side is off (network
// mode ignore) and the agent unit is one that does not exist, so nothing on
// the host is touched. Mount namespaces (read-only and full file systems)
// are private to a thread of the test and die with it.
package reliability

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ecs-remediator/ecs-remediator/pkg/policy"
	"github.com/ecs-remediator/ecs-remediator/test/testbin"
	"github.com/ecs-remediator/ecs-remediator/test/testpolicy"
)

// bin is the real binary, built once.
var bin string

func TestMain(m *testing.M) { testbin.Main(m, &bin) }

// cmdTimeout bounds every one-shot command: a hang (a FIFO read, a lock)
// fails the test instead of blocking it.
const cmdTimeout = 20 * time.Second

type result struct {
	code           int
	stdout, stderr string
}

// run runs the binary to completion within cmdTimeout.
func run(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := nsCommand(ctx, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%v did not return within %s (hung?)\nstdout:\n%s\nstderr:\n%s", args, cmdTimeout, out.String(), errb.String())
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code, out.String(), errb.String()}
}

// host is a temp dir with a policy that points every path into it
// (test/testpolicy).
type host struct {
	dir, policy, ecsConfig, backup string
	pol                            *policy.Policy // as last written
}

// newHost writes ecsConfig (unless it is "") and a policy with edits.
func newHost(t *testing.T, ecsConfig string, edits ...func(*policy.Policy)) host {
	t.Helper()
	dir := t.TempDir()
	h := host{
		dir:       dir,
		policy:    filepath.Join(dir, "config.yaml"),
		ecsConfig: filepath.Join(dir, "etc/ecs/ecs.config"),
	}
	h.backup = h.ecsConfig + ".ecs-remediator.orig"
	h.pol = h.basePolicy()
	if err := os.MkdirAll(filepath.Dir(h.ecsConfig), 0o755); err != nil {
		t.Fatal(err)
	}
	if ecsConfig != "" {
		if err := os.WriteFile(h.ecsConfig, []byte(ecsConfig), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h.writePolicy(t, edits...)
	return h
}

// basePolicy is the policy of every host: the kernel side off, nothing
// restarted, the network checks of doctor at a closed port, the files
// where the tests look for them in h.dir.
func (h host) basePolicy() *policy.Policy {
	p := func(s string) string { return filepath.Join(h.dir, s) }
	pol := testpolicy.New(h.dir)
	pol.Network.Mode = policy.Ignore
	pol.Persist.Iptables, pol.Persist.Sysctl = p("persist/rules.v4"), p("persist/90-ecs.conf")
	pol.Persist.SystemdDir = p("systemd")
	pol.Agent.Restart = policy.RestartNever
	pol.Agent.ProxyDropinDir = p("ecs.service.d")
	pol.Doctor.IMDSEndpoint, pol.Doctor.CredentialsURL = "http://127.0.0.1:9", "http://127.0.0.1:9/v2/credentials/"
	pol.Metrics.Textfile = p("metrics/ecs_remediator.prom")
	return pol
}

// writePolicy applies edits to h's policy (ecs_config and backup are h's)
// and writes it; every path must be in the test's temporary directories
// (h.dir's parent holds every t.TempDir() of t).
func (h host) writePolicy(t *testing.T, edits ...func(*policy.Policy)) {
	t.Helper()
	h.pol.ECSConfig, h.pol.Backup = h.ecsConfig, h.backup
	for _, e := range edits {
		e(h.pol)
	}
	testpolicy.Write(t, h.policy, h.pol, filepath.Dir(h.dir))
}

// resync1s is the edit of the tests that wait for the periodic resync.
func resync1s(p *policy.Policy) { p.ResyncInterval = time.Second }

// syncBuffer collects a daemon's log lines while it runs.
type syncBuffer = testbin.Log

// daemon is a running `ecs-remediator run`.
type daemon struct {
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan struct{}
	err  error
}

// startDaemon starts the daemon; it is stopped (SIGTERM, then SIGKILL) when
// the test ends unless the test stopped it.
func startDaemon(t *testing.T, policy string) *daemon {
	t.Helper()
	d := &daemon{logs: &syncBuffer{}, done: make(chan struct{})}
	d.cmd = exec.Command(bin, "run", "--config", policy)
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

func (d *daemon) alive() bool {
	select {
	case <-d.done:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM and fails the test unless the daemon exits cleanly
// within a generous bound.
func (d *daemon) stop(t *testing.T) {
	t.Helper()
	if !d.alive() {
		t.Fatalf("daemon is not running any more (%v)\nlog:\n%s", d.err, d.logs.String())
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(20 * time.Second):
		d.cmd.Process.Kill()
		<-d.done
		t.Fatalf("daemon ignored SIGTERM\nlog:\n%s", d.logs.String())
	}
	if d.err != nil {
		t.Fatalf("daemon exited with %v after SIGTERM\nlog:\n%s", d.err, d.logs.String())
	}
	if !strings.Contains(d.logs.String(), "stopping on request") {
		t.Fatalf("daemon did not log its orderly stop\nlog:\n%s", d.logs.String())
	}
}

// waitUp waits for the daemon's "is running" line.
func (d *daemon) waitUp(t *testing.T) {
	t.Helper()
	eventually(t, "daemon up", d, func() bool { return strings.Contains(d.logs.String(), "is running") })
}

// eventually polls cond until it holds or a generous limit passes; it
// asserts behaviour, never speed. It also fails at once when the daemon
// died.
func eventually(t *testing.T, what string, d *daemon, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		if d != nil && !d.alive() {
			t.Fatalf("%s: daemon exited (%v)\nlog:\n%s", what, d.err, d.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	log := ""
	if d != nil {
		log = d.logs.String()
	}
	t.Fatalf("%s: not reached\ndaemon log:\n%s", what, log)
}

// cpuSeconds returns utime+stime of pid in seconds.
func cpuSeconds(t *testing.T, pid int) float64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// The command name may hold spaces: fields start after the last ')'.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	// fields[0] is field 3 (state); utime and stime are fields 14 and 15.
	ut, _ := strconv.ParseFloat(fields[11], 64)
	st, _ := strconv.ParseFloat(fields[12], 64)
	const clkTck = 100 // sysconf(_SC_CLK_TCK) on Linux
	return (ut + st) / clkTck
}

// peakRSSKiB returns VmHWM (the peak resident set) of pid in KiB.
func peakRSSKiB(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			f := strings.Fields(l)
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", pid)
	return 0
}

// strays lists atomicfile temp files left in dir.
func strays(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.Contains(e.Name(), "ecs-remediator-tmp-") {
			out = append(out, e.Name())
		}
	}
	return out
}
