package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// pollInterval is the policy's poll_interval (the default): on legacy the
// safety net for writers that bypass the xtables lock.
const pollInterval = 5 * time.Second

// probeEvery is the observer's poll period for rules and for ecs.config.
const probeEvery = time.Millisecond

// trial is one drift and its repair as the observer saw it.
type trial struct {
	lat      time.Duration
	repaired bool // false: not back within the timeout
	verified bool // iptables -C (or the file) agrees afterwards
}

// ruleDrift deletes our REDIRECT rule with the backend's iptables and
// measures from the first probe that sees it gone to the first probe that
// sees it back. An error is a setup error (the delete itself failed).
// With raw, the delete bypasses the host's xtables lock (another
// $XTABLES_LOCKFILE): to the daemon it is a raw setsockopt writer, which
// only its fingerprint poll finds.
func ruleDrift(h *host, p ruleProbe, timeout time.Duration, raw bool) (trial, error) {
	cmd := exec.Command(h.b.Iptables, append([]string{"-t", "nat", "-D"}, strings.Fields(redirectRule)...)...)
	if raw {
		cmd.Env = append(os.Environ(), "XTABLES_LOCKFILE="+filepath.Join(h.dir, "not-the-hosts.lock"))
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := h.ns.Start(cmd); err != nil {
		return trial{}, fmt.Errorf("start %s: %w", h.b.Iptables, err)
	}
	type exit struct {
		at  time.Time
		err error
	}
	exited := make(chan exit, 1)
	go func() { err := cmd.Wait(); exited <- exit{time.Now(), err} }()

	var (
		t0, t1     time.Time
		gone, done bool
		ex         exit
	)
	deadline := time.Now().Add(timeout)
	for {
		if !done {
			select {
			case ex = <-exited:
				done = true
				if ex.err != nil {
					return trial{}, fmt.Errorf("%s -t nat -D %s: %v: %s", h.b.Iptables, redirectRule, ex.err, out.String())
				}
			default:
			}
		}
		n, err := p.Count()
		now := time.Now()
		if err != nil {
			return trial{}, err
		}
		if !gone && n == 0 {
			gone, t0 = true, now
		} else if !gone && done {
			// Deleted and back between two probes: count from the
			// moment the delete finished.
			gone, t0 = true, ex.at
		}
		if gone && n >= 1 {
			t1 = now
			break
		}
		if now.After(deadline) {
			if !done {
				<-exited
			}
			return trial{}, nil
		}
		time.Sleep(probeEvery)
	}
	if !done {
		<-exited
	}
	return trial{lat: t1.Sub(t0), repaired: true, verified: h.ruleThere()}, nil
}

// configDrift writes ECS_ENABLE_TASK_IAM_ROLE=false, in place or (rename)
// as an editor does (write a temp file, rename it over), and measures
// until the file reads right again, polling it every probeEvery.
func configDrift(h *host, timeout time.Duration, rename bool) (trial, error) {
	if rename {
		tmp := h.ecsConfig + ".swp"
		if err := os.WriteFile(tmp, []byte(badConfig), 0o644); err != nil {
			return trial{}, err
		}
		if err := os.Rename(tmp, h.ecsConfig); err != nil {
			return trial{}, err
		}
	} else if err := os.WriteFile(h.ecsConfig, []byte(badConfig), 0o644); err != nil {
		return trial{}, err
	}
	t0 := time.Now()
	deadline := t0.Add(timeout)
	for {
		now := time.Now()
		if fileRight(h.ecsConfig) {
			return trial{lat: now.Sub(t0), repaired: true, verified: true}, nil
		}
		if now.After(deadline) {
			return trial{}, nil
		}
		time.Sleep(probeEvery)
	}
}

// driftResult is one set of trials against one repairer.
type driftResult struct {
	rules, files sample
	rulesRaw     sample // legacy: the delete bypasses the xtables lock
	filesRename  sample // ecs.config replaced by a rename
	failed       int    // trials not repaired within the timeout
	unverified   int    // probe said back, iptables -C disagreed
	daemons      int    // daemon processes used (ours)
	selfCPU      time.Duration
	wall         time.Duration
}

func (r *driftResult) add(t trial, into *sample) {
	switch {
	case !t.repaired:
		r.failed++
	case !t.verified:
		r.unverified++
	default:
		*into = append(*into, t.lat)
	}
}

// fightFree is how many repairs of one item a daemon process gets in the
// bench: the daemon treats 5 repairs of one item within a minute as a
// fight with another tool and backs off (by design), which is not the
// isolated drift this figure is about.
const fightFree = 4

// oursHost is the host of the daemon's figures (the drift and the fight):
// the rule probe in its namespace, and compliant before the first daemon
// starts, as after `apply` at boot (otherwise that daemon's start counts
// as one repair of each item and its 4th drift would already be a fight).
type oursHost struct {
	*host
	p ruleProbe
}

func newOursHost(bin, root string, b backend, name, busAddr string) (*oursHost, error) {
	h, err := newHost(root, b, name)
	if err != nil {
		return nil, err
	}
	var p ruleProbe
	h.ns.Do(func() { p, err = newRuleProbe(b.Name) })
	if err != nil {
		h.Close()
		return nil, err
	}
	o := &oursHost{host: h, p: p}
	if _, err := apply(bin, h, busAddr); err != nil {
		o.Close()
		return nil, err
	}
	return o, nil
}

func (o *oursHost) Close() {
	o.p.Close()
	o.host.Close()
}

// startDaemon starts a daemon on o and waits until o is compliant.
func (o *oursHost) startDaemon(bin, busAddr string) (*daemon, error) {
	d, err := startDaemon(bin, o.host, busAddr)
	if err != nil {
		return nil, err
	}
	if err := waitCompliant(o.host, o.p, 30*time.Second); err != nil {
		d.Stop()
		return nil, fmt.Errorf("%s daemon: %w\n%s", o.b.Name, err, d.logs.String())
	}
	return d, nil
}

// oursDrift measures the daemon: trials rule deletions and trials bad
// ecs.config writes, fightFree of each per daemon process.
func oursDrift(bin, root string, b backend, busAddr string, trials int) (*driftResult, error) {
	h, err := newOursHost(bin, root, b, "drift-"+b.Name, busAddr)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	r := &driftResult{}
	start, cpu0 := time.Now(), selfCPU()
	rawTrials := 0
	if b.Name == "legacy" {
		rawTrials = max(trials/5, 4) // each waits for the 5 s poll: fewer
	}
	need := func() bool {
		return len(r.rules)+r.failed+r.unverified < trials || len(r.files) < trials || len(r.filesRename) < trials
	}
	for need() {
		d, err := h.startDaemon(bin, busAddr)
		if err != nil {
			return nil, err
		}
		r.daemons++
		for i := 0; i < fightFree && len(r.rules)+r.failed+r.unverified < trials; i++ {
			pause()
			t, err := ruleDrift(h.host, h.p, 30*time.Second, false)
			if err != nil {
				d.Stop()
				return nil, err
			}
			r.add(t, &r.rules)
		}
		// ecs.config: in place and rename-over by turns (one item: 4
		// repairs in all per daemon process).
		for i := 0; i < fightFree && (len(r.files) < trials || len(r.filesRename) < trials); i++ {
			rename := i%2 == 1
			if len(r.files) >= trials {
				rename = true
			} else if len(r.filesRename) >= trials {
				rename = false
			}
			pause()
			t, err := configDrift(h.host, 30*time.Second, rename)
			if err != nil {
				d.Stop()
				return nil, err
			}
			if os.Getenv("BENCH_VERBOSE") != "" {
				progress("%s daemon %d: ecs.config trial %d (rename %v): %s", b.Name, r.daemons, i, rename, t.lat)
			}
			into := &r.files
			if rename {
				into = &r.filesRename
			}
			r.add(t, into)
		}
		d.Stop()
	}
	for len(r.rulesRaw) < rawTrials {
		d, err := h.startDaemon(bin, busAddr)
		if err != nil {
			return nil, err
		}
		r.daemons++
		for i := 0; i < fightFree && len(r.rulesRaw) < rawTrials; i++ {
			// A drift at a random point of the poll period.
			time.Sleep(rand.N(pollInterval))
			t, err := ruleDrift(h.host, h.p, 30*time.Second, true)
			if err != nil {
				d.Stop()
				return nil, err
			}
			r.add(t, &r.rulesRaw)
		}
		d.Stop()
	}
	r.wall, r.selfCPU = time.Since(start), selfCPU()-cpu0
	return r, nil
}

// pause waits a random 50-300 ms between trials, so the daemon's re-check
// after its own repair has run.
func pause() { time.Sleep(50*time.Millisecond + rand.N(250*time.Millisecond)) }

func waitCompliant(h *host, p ruleProbe, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		n, err := p.Count()
		if err != nil {
			return err
		}
		if n == 1 && fileRight(h.ecsConfig) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not compliant after %s (REDIRECT rules seen: %d)", timeout, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// peerScript is flannel's approach, in shell: every period, check the
// rule and re-add it if missing, check the flag and rewrite it if wrong.
const peerScript = `R='%[2]s'
while :; do
  %[1]s -t nat -C $R 2>/dev/null || %[1]s -t nat -A $R
  grep -qx 'ECS_ENABLE_TASK_IAM_ROLE=true' '%[3]s' || { sed 's/^ECS_ENABLE_TASK_IAM_ROLE=.*/ECS_ENABLE_TASK_IAM_ROLE=true/' '%[3]s' > '%[3]s.tmp' && mv '%[3]s.tmp' '%[3]s'; }
  sleep %[4]g
done`

// peerDrift measures the peer loop: workers hosts, each with its own loop,
// run their share of trials side by side (each trial waits for the loop's
// next tick, seconds). A trial deletes the rule and breaks the file at the
// same moment, at a random phase of the loop, and times both repairs.
func peerDrift(root string, b backend, trials, workers int, period time.Duration) (*driftResult, error) {
	r := &driftResult{}
	var mu sync.Mutex
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < workers; w++ {
		n := trials / workers
		if w < trials%workers {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- peerWorker(root, b, w, n, period, r, &mu)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return nil, err
		}
	}
	r.wall = time.Since(start)
	return r, nil
}

func peerWorker(root string, b backend, w, n int, period time.Duration, r *driftResult, mu *sync.Mutex) error {
	h, err := newHost(root, b, fmt.Sprintf("peer-%s-%d", b.Name, w))
	if err != nil {
		return err
	}
	defer h.Close()
	if err := h.ipt("-t nat -A " + redirectRule); err != nil {
		return err
	}
	var p ruleProbe
	h.ns.Do(func() { p, err = newRuleProbe(b.Name) })
	if err != nil {
		return err
	}
	defer p.Close()
	loop := exec.Command("sh", "-c", fmt.Sprintf(peerScript, h.b.Iptables, redirectRule, h.ecsConfig, period.Seconds()))
	loop.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := h.ns.Start(loop); err != nil {
		return fmt.Errorf("start the peer loop: %w", err)
	}
	defer func() {
		syscall.Kill(-loop.Process.Pid, syscall.SIGTERM) // the loop's own group: sh and its sleep
		loop.Wait()
	}()
	timeout := 3*period + 10*time.Second
	for i := 0; i < n; i++ {
		time.Sleep(rand.N(period))
		var ft trial
		var ferr error
		fdone := make(chan struct{})
		go func() { defer close(fdone); ft, ferr = configDrift(h, timeout, false) }()
		rt, err := ruleDrift(h, p, timeout, false)
		<-fdone
		if err != nil {
			return err
		}
		if ferr != nil {
			return ferr
		}
		mu.Lock()
		r.add(rt, &r.rules)
		r.add(ft, &r.files)
		mu.Unlock()
	}
	return nil
}

// selfCPU is the bench process's own CPU time (the observer's cost).
func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
