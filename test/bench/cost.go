package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/ecs-remediator/ecs-remediator/test/nstest"
)

// foreignRules writes a restore file with n foreign rules in the "mixed"
// distribution (nstest.MixedRules), the one the package benchmarks use.
func foreignRules(dir string, n int) (string, error) {
	p := filepath.Join(dir, "foreign.rules")
	return p, os.WriteFile(p, []byte(nstest.MixedRules(n)), 0o644)
}

// costResult is the reconcile cost on one backend at one ruleset size.
type costResult struct {
	size                      int
	load                      time.Duration // iptables-restore of the foreign rules
	applySteady, applyRepair  sample        // wall time of one `ecs-remediator apply`
	passSteady, passRepair    sample        // the daemon's own pass (its histogram)
	inexactSteady, inexactRep int           // passes measured as a mean of two or more
}

// apply runs `ecs-remediator apply` in the host and times it.
func apply(bin string, h *host, busAddr string) (time.Duration, error) {
	cmd := exec.Command(bin, "apply", "--config", h.policy)
	cmd.Env = append(os.Environ(), "DBUS_SYSTEM_BUS_ADDRESS="+busAddr)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := h.ns.Run(cmd)
	took := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("ecs-remediator apply (%s): %v\n%s", h.b.Name, err, out.String())
	}
	return took, nil
}

func reconcileCost(bin, root string, b backend, busAddr string, size, k int) (*costResult, error) {
	h, err := newHost(root, b, fmt.Sprintf("cost-%s-%d", b.Name, size))
	if err != nil {
		return nil, err
	}
	defer h.Close()
	r := &costResult{size: size}
	file, err := foreignRules(h.dir, size)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if _, err := h.ns.Sh(b.Restore + " < " + file); err != nil {
		return nil, err
	}
	r.load = time.Since(start)
	if _, err := apply(bin, h, busAddr); err != nil { // the first one installs our rules
		return nil, err
	}
	for i := 0; i < k; i++ {
		d, err := apply(bin, h, busAddr)
		if err != nil {
			return nil, err
		}
		r.applySteady = append(r.applySteady, d)
	}
	for i := 0; i < k; i++ {
		if err := h.ipt("-t nat -D " + redirectRule); err != nil {
			return nil, err
		}
		d, err := apply(bin, h, busAddr)
		if err != nil {
			return nil, err
		}
		if !h.ruleThere() {
			return nil, fmt.Errorf("%s, %d foreign rules: apply did not restore the REDIRECT rule", b.Name, size)
		}
		r.applyRepair = append(r.applyRepair, d)
	}

	d, err := startDaemon(bin, h, busAddr)
	if err != nil {
		return nil, err
	}
	defer d.Stop()
	// A steady pass: rewrite ecs.config unchanged (an inotify event, nothing to repair).
	for i := 0; i < k; i++ {
		pause()
		took, exact, err := d.nextPass(func() error { return os.WriteFile(h.ecsConfig, []byte(goodConfig), 0o644) },
			func(prev, cur snapshot) bool { return true })
		if err != nil {
			return nil, err
		}
		r.passSteady = append(r.passSteady, took)
		if !exact {
			r.inexactSteady++
		}
	}
	// A repair pass: delete the REDIRECT rule; the pass that counts the repair.
	for i := 0; i < min(k, fightFree); i++ {
		pause()
		took, exact, err := d.nextPass(func() error { return h.ipt("-t nat -D " + redirectRule) },
			func(prev, cur snapshot) bool { return cur.repairs > prev.repairs })
		if err != nil {
			return nil, err
		}
		r.passRepair = append(r.passRepair, took)
		if !exact {
			r.inexactRep++
		}
	}
	return r, nil
}

// nextPass runs trigger and returns the duration of the first reconcile
// pass after it for which want holds, from the daemon's histogram
// (ecs_remediator_reconcile_duration_seconds: _sum and _count, scraped
// every millisecond). exact is false when two passes finished between two
// scrapes and the figure is their mean.
func (d *daemon) nextPass(trigger func() error, want func(prev, cur snapshot) bool) (time.Duration, bool, error) {
	prev, err := d.scrape()
	if err != nil {
		return 0, false, err
	}
	if err := trigger(); err != nil {
		return 0, false, err
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(probeEvery)
		cur, err := d.scrape()
		if err != nil {
			return 0, false, err
		}
		if cur.passes == prev.passes {
			continue
		}
		if !want(prev, cur) {
			prev = cur
			continue
		}
		n := cur.passes - prev.passes
		took := time.Duration((cur.seconds - prev.seconds) / n * 1e9)
		return took, n == 1, nil
	}
	return 0, false, fmt.Errorf("%s daemon: no reconcile pass within 60s of the trigger\n%s", d.h.b.Name, d.logs.String())
}
