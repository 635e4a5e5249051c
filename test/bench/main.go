// Command bench measures the ecs-remediator daemon on real iptables (both
// backends) in private network namespaces and prints one Markdown table:
// drift-to-repair latency against a 5 s poll-and-check peer loop, the
// reconcile cost as the ruleset grows, the idle cost, and a burst of
// ecs.config writes. It is run by `make bench` (as root).
//
// Nothing on the machine is changed: every daemon, peer loop and iptables
// call runs in a network namespace of its own, every path of every policy
// is in a temp dir, and the agent unit is a fake one served on a private
// D-Bus. It exits non-zero only when the bench cannot be set up; a missed
// target is a "no" in the table.
//
//	go run ./test/bench [-bin bin/ecs-remediator] [-trials 50] [-idle 60s] ...
//
// The defaults take about five minutes; BENCH_TRIALS, BENCH_IDLE,
// BENCH_COST_TRIALS and BENCH_SIZES (or the flags) shorten it.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/ecs-remediator/ecs-remediator/test/testbin"
)

type options struct {
	bin         string
	trials      int
	idle        time.Duration
	costTrials  int
	sizes       []int
	peerPeriod  time.Duration
	peerWorkers int
	burstWrites int
	pollIval    time.Duration // the policy's poll_interval (the default)
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func envDur(name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	if d, err := time.ParseDuration(v); err == nil {
		return d
	}
	if n, err := strconv.Atoi(v); err == nil { // plain seconds
		return time.Duration(n) * time.Second
	}
	return def
}

func main() {
	o := options{pollIval: pollInterval}
	var sizes string
	flag.StringVar(&o.bin, "bin", "", "the ecs-remediator binary (default: go build ./cmd/ecs-remediator into a temp dir)")
	flag.IntVar(&o.trials, "trials", envInt("BENCH_TRIALS", 50), "drift trials per figure and backend (env BENCH_TRIALS)")
	flag.DurationVar(&o.idle, "idle", envDur("BENCH_IDLE", 60*time.Second), "idle window (env BENCH_IDLE, e.g. 10s)")
	flag.IntVar(&o.costTrials, "cost-trials", envInt("BENCH_COST_TRIALS", 5), "runs per reconcile-cost cell (env BENCH_COST_TRIALS)")
	flag.StringVar(&sizes, "sizes", envStr("BENCH_SIZES", "0,1000,20000,50000"), "foreign ruleset sizes (env BENCH_SIZES)")
	flag.DurationVar(&o.peerPeriod, "peer-period", 5*time.Second, "the peer loop's period (flannel's)")
	flag.IntVar(&o.peerWorkers, "peer-workers", 10, "peer loops run side by side per backend (each trial waits seconds)")
	flag.IntVar(&o.burstWrites, "burst-writes", 1000, "writes to ecs.config in the one-second burst")
	flag.Parse()
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			fatal(fmt.Errorf("-sizes %q: %w", sizes, err))
		}
		o.sizes = append(o.sizes, n)
	}
	if err := run(o); err != nil {
		fatal(err)
	}
}

func envStr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func fatal(err error) {
	fmt.Fprintf(os.Stderr, "bench: setup error: %v\n", err)
	os.Exit(1)
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

func run(o options) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root (network namespaces): run sudo make bench")
	}
	for _, b := range backends {
		for _, bin := range []string{b.Iptables, b.Save, b.Restore} {
			if _, err := exec.LookPath(bin); err != nil {
				return fmt.Errorf("%s not found: apt-get install -y iptables", bin)
			}
		}
	}
	root, err := os.MkdirTemp("", "ecs-remediator-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	if o.bin == "" {
		progress("building ecs-remediator in %s", root)
		if o.bin, err = testbin.Build(root); err != nil {
			return err
		}
	} else if o.bin, err = filepath.Abs(o.bin); err != nil {
		return err
	}
	busDir := filepath.Join(root, "dbus")
	if err := os.MkdirAll(busDir, 0o755); err != nil {
		return err
	}
	bus, err := startFakeSystemd(busDir)
	if err != nil {
		return err
	}
	defer bus.Close()
	began := time.Now()
	rep := &report{o: o}

	for _, b := range backends {
		progress("%s: observer cost", b.Name)
		oc, err := observerCost(root, b)
		if err != nil {
			return err
		}
		rep.observer = append(rep.observer, oc)
	}
	for _, b := range backends {
		progress("%s: drift -> repaired, ours (%d + %d trials)", b.Name, o.trials, o.trials)
		r, err := oursDrift(o.bin, root, b, bus.addr, o.trials)
		if err != nil {
			return err
		}
		rep.ours = append(rep.ours, r)
	}
	progress("drift -> repaired, peer %s loop (%d trials per backend, %d loops side by side)", o.peerPeriod, o.trials, o.peerWorkers)
	peers := make([]*driftResult, len(backends))
	perrs := make(chan error, len(backends))
	for i, b := range backends {
		go func() {
			var err error
			peers[i], err = peerDrift(root, b, o.trials, min(o.peerWorkers, o.trials), o.peerPeriod)
			perrs <- err
		}()
	}
	for range backends {
		if err := <-perrs; err != nil {
			return err
		}
	}
	rep.peer = peers
	for _, b := range backends {
		for _, n := range o.sizes {
			progress("%s: reconcile cost, %d foreign rules", b.Name, n)
			c, err := reconcileCost(o.bin, root, b, bus.addr, n, o.costTrials)
			if err != nil {
				return err
			}
			rep.cost = append(rep.cost, c)
		}
	}
	for _, b := range backends {
		progress("%s: burst of %d writes", b.Name, o.burstWrites)
		r, err := burst(o.bin, root, b, o.burstWrites)
		if r != nil {
			defer r.Finish()
		}
		if err != nil {
			return err
		}
		rep.bursts = append(rep.bursts, r)
	}
	for _, b := range backends {
		n := max(o.trials/2, fightFree)
		progress("%s: credential rule drift while ecs.config is in a fight (%d trials)", b.Name, n)
		f, err := fightDrift(o.bin, root, b, bus.addr, n)
		if err != nil {
			return err
		}
		rep.fights = append(rep.fights, f)
	}
	progress("idle %s (both backends side by side)", o.idle)
	idles := make([]*idleResult, len(backends))
	ierrs := make(chan error, len(backends))
	for i, b := range backends {
		h, err := newHost(root, b, "idle-"+b.Name)
		if err != nil {
			return err
		}
		defer h.Close()
		if _, err := apply(o.bin, h, bus.addr); err != nil {
			return err
		}
		d, err := startDaemon(o.bin, h, bus.addr)
		if err != nil {
			return err
		}
		defer d.Stop()
		go func() {
			var err error
			idles[i], err = measureIdle(d, o.idle)
			ierrs <- err
		}()
	}
	for range backends {
		if err := <-ierrs; err != nil {
			return err
		}
	}
	rep.idle = idles
	for _, r := range rep.bursts {
		r.Finish()
		r.bus, r.d, r.h = nil, nil, nil
	}
	rep.took = time.Since(began)
	rep.print(os.Stdout)
	return nil
}

// observerResult is what one observation costs.
type observerResult struct {
	b             backend
	probe, checkC sample // one kernel read of the rules; one iptables -C
	file          sample // one read of ecs.config
}

func observerCost(root string, b backend) (*observerResult, error) {
	h, err := newHost(root, b, "observer-"+b.Name)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	if err := h.ipt("-t nat -A " + redirectRule); err != nil {
		return nil, err
	}
	var p ruleProbe
	h.ns.Do(func() { p, err = newRuleProbe(b.Name) })
	if err != nil {
		return nil, err
	}
	defer p.Close()
	r := &observerResult{b: b}
	for i := 0; i < 200; i++ {
		t := time.Now()
		n, err := p.Count()
		if err != nil {
			return nil, err
		}
		if n != 1 {
			return nil, fmt.Errorf("%s probe counts %d REDIRECT rules for 169.254.170.2, want 1 (the probe does not understand this kernel)", b.Name, n)
		}
		r.probe = append(r.probe, time.Since(t))
		t = time.Now()
		fileRight(h.ecsConfig)
		r.file = append(r.file, time.Since(t))
	}
	if err := h.ipt("-t nat -D " + redirectRule); err != nil {
		return nil, err
	}
	if n, err := p.Count(); err != nil || n != 0 {
		return nil, fmt.Errorf("%s probe counts %d rules after the delete (%v), want 0", b.Name, n, err)
	}
	if err := h.ipt("-t nat -A " + redirectRule); err != nil {
		return nil, err
	}
	for i := 0; i < 10; i++ {
		t := time.Now()
		if !h.ruleThere() {
			return nil, fmt.Errorf("%s -t nat -C %s: not found", b.Iptables, redirectRule)
		}
		r.checkC = append(r.checkC, time.Since(t))
	}
	return r, nil
}

func machine() string {
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	ipt, _ := exec.Command("iptables-nft", "--version").Output()
	return fmt.Sprintf("nproc %d, kernel %s, %s, %s, %s", runtime.NumCPU(), strings.TrimSpace(string(kernel)), model,
		strings.TrimSpace(string(ipt)), runtime.Version())
}
