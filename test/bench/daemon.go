package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ecs-remediator/ecs-remediator/pkg/policy"
	"github.com/ecs-remediator/ecs-remediator/test/testbin"
	"github.com/ecs-remediator/ecs-remediator/test/testpolicy"
)

// backend is one iptables flavour (as test/nstest.Backends).
type backend struct {
	Name, Iptables, Save, Restore string
}

var backends = []backend{
	{"nft", "iptables-nft", "iptables-nft-save", "iptables-nft-restore"},
	{"legacy", "iptables-legacy", "iptables-legacy-save", "iptables-legacy-restore"},
}

// Our rule, as a user or another tool would delete it.
const redirectRule = "OUTPUT -p tcp -d 169.254.170.2 --dport 80 -j REDIRECT --to-ports 51679"

const goodConfig = "ECS_CLUSTER=bench\nECS_ENABLE_TASK_IAM_ROLE=true\nECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST=true\n"
const badConfig = "ECS_CLUSTER=bench\nECS_ENABLE_TASK_IAM_ROLE=false\nECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST=true\n"

// metricsAddr is where each daemon serves /metrics inside its own namespace.
const metricsAddr = "127.0.0.1:9779"

// host is one simulated instance: a temp dir holding every path of the
// policy, and the namespace its kernel side lives in.
type host struct {
	ns        *netns
	b         backend
	dir       string
	policy    string
	ecsConfig string
	lock      string // this host's xtables lock ($XTABLES_LOCKFILE of everything run in it)
}

func newHost(root string, b backend, name string) (*host, error) {
	dir := filepath.Join(root, name)
	h := &host{b: b, dir: dir, policy: filepath.Join(dir, "config.yaml"), ecsConfig: filepath.Join(dir, "etc/ecs/ecs.config")}
	for _, d := range []string{filepath.Dir(h.ecsConfig), filepath.Join(dir, "metrics"), filepath.Join(dir, "proc")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	if err := os.WriteFile(h.ecsConfig, []byte(goodConfig), 0o644); err != nil {
		return nil, err
	}
	// Every path the product reads or writes is in dir, except
	// network.proc_sys: route_localnet is private to the namespace.
	p := func(s string) string { return filepath.Join(dir, s) }
	pol := testpolicy.NewNetns(dir)
	pol.ECSConfigBase = policy.Off
	pol.Network.Iptables = b.Iptables
	pol.Persist.Iptables, pol.Persist.Sysctl, pol.Persist.SystemdDir = p("rules.v4"), p("90-ecs-remediator.conf"), p("systemd")
	pol.Agent.Unit, pol.Agent.ProxyDropinDir = agentUnit, p("ecs.service.d")
	pol.Doctor.ProcRoot = p("proc")
	pol.Metrics.Textfile, pol.Metrics.Listen = p("metrics/ecs_remediator.prom"), metricsAddr
	if err := testpolicy.WriteFile(h.policy, pol, testpolicy.Netns); err != nil {
		return nil, err
	}
	ns, err := newNetns()
	if err != nil {
		return nil, err
	}
	h.ns = ns
	h.lock = filepath.Join(dir, "xtables.lock")
	ns.env = []string{"XTABLES_LOCKFILE=" + h.lock}
	return h, nil
}

func (h *host) Close() {
	if h.ns != nil {
		h.ns.Close()
	}
}

// ipt runs the backend's iptables with args in the namespace.
func (h *host) ipt(args string) error {
	_, err := h.ns.Sh(h.b.Iptables + " " + args)
	return err
}

// ruleThere is the slow, exact check: iptables -C.
func (h *host) ruleThere() bool {
	return h.ipt("-t nat -C "+redirectRule+" 2>/dev/null") == nil
}

// syncBuffer collects a daemon's log lines while it runs.
type syncBuffer = testbin.Log

// daemon is one `ecs-remediator run` in a host's namespace.
type daemon struct {
	h      *host
	cmd    *exec.Cmd
	logs   *syncBuffer
	client *http.Client
}

func startDaemon(bin string, h *host, busAddr string) (*daemon, error) {
	d := &daemon{h: h, logs: &syncBuffer{}}
	d.cmd = exec.Command(bin, "run", "--config", h.policy)
	d.cmd.Stdout, d.cmd.Stderr = d.logs, d.logs
	d.cmd.Env = append(os.Environ(), "DBUS_SYSTEM_BUS_ADDRESS="+busAddr)
	if err := h.ns.Start(d.cmd); err != nil {
		return nil, fmt.Errorf("start daemon: %w", err)
	}
	// Sockets to /metrics are dialed on the namespace's thread.
	d.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var c net.Conn
			var err error
			h.ns.Do(func() { c, err = (&net.Dialer{}).DialContext(ctx, network, addr) })
			return c, err
		},
		MaxIdleConnsPerHost: 1,
	}}
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(d.logs.String(), "is running") {
		if time.Now().After(deadline) {
			d.Stop()
			return nil, fmt.Errorf("daemon did not start within 60s:\n%s", d.logs.String())
		}
		time.Sleep(2 * time.Millisecond)
	}
	// /metrics is up shortly after.
	for {
		if _, err := d.scrape(); err == nil {
			break
		}
		if time.Now().After(deadline) {
			d.Stop()
			return nil, fmt.Errorf("daemon metrics endpoint %s not reachable:\n%s", metricsAddr, d.logs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	return d, nil
}

func (d *daemon) Pid() int { return d.cmd.Process.Pid }

func (d *daemon) Stop() {
	d.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		d.cmd.Process.Kill()
		<-done
	}
}

// snapshot is what the bench reads from the daemon's /metrics.
type snapshot struct {
	passes  float64 // ecs_remediator_reconcile_duration_seconds_count
	seconds float64 // ..._sum
	repairs float64 // ecs_remediator_repairs_total{item="network.credentials_redirect"}
}

func (d *daemon) scrape() (snapshot, error) {
	var s snapshot
	resp, err := d.client.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		name, val, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil {
			continue
		}
		switch name {
		case "ecs_remediator_reconcile_duration_seconds_count":
			s.passes = v
		case "ecs_remediator_reconcile_duration_seconds_sum":
			s.seconds = v
		case `ecs_remediator_repairs_total{item="network.credentials_redirect"}`:
			s.repairs = v
		}
	}
	io.Copy(io.Discard, resp.Body)
	return s, sc.Err()
}

// procStats is what /proc says about a process and its threads.
type procStats struct {
	at             time.Time
	cpuTicks       int64 // utime+stime
	childTicks     int64 // cutime+cstime: the iptables processes it ran and reaped
	ctxSwitches    int64 // voluntary+nonvoluntary, summed over threads
	threads        int
	rssKiB, hwmKiB int64
}

const clkTck = 100 // USER_HZ on Linux

func readProc(pid int) (procStats, error) {
	s := procStats{at: time.Now()}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// Fields after the command name (which may hold spaces) start at state.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	if len(f) < 15 {
		return s, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	num := func(i int) int64 { v, _ := strconv.ParseInt(f[i], 10, 64); return v }
	s.cpuTicks = num(11) + num(12)   // utime, stime (fields 14, 15)
	s.childTicks = num(13) + num(14) // cutime, cstime (16, 17)
	status := func(path string) map[string]int64 {
		m := map[string]int64{}
		b, err := os.ReadFile(path)
		if err != nil {
			return m
		}
		for _, line := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			fs := strings.Fields(v)
			if len(fs) == 0 {
				continue
			}
			if n, err := strconv.ParseInt(fs[0], 10, 64); err == nil {
				m[k] = n
			}
		}
		return m
	}
	st := status(fmt.Sprintf("/proc/%d/status", pid))
	s.rssKiB, s.hwmKiB = st["VmRSS"], st["VmHWM"]
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	for _, t := range tasks {
		ts := status(t)
		s.ctxSwitches += ts["voluntary_ctxt_switches"] + ts["nonvoluntary_ctxt_switches"]
		s.threads++
	}
	return s, nil
}
