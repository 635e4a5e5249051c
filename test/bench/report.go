package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// report gathers every figure and prints the table.
type report struct {
	o        options
	observer []*observerResult
	ours     []*driftResult // per backend
	peer     []*driftResult // per backend
	cost     []*costResult  // backend-major, then size
	bursts   []*burstResult
	fights   []*fightResult // per backend
	idle     []*idleResult
	took     time.Duration
}

// Targets (issue 19).
const (
	eventP50, eventP99 = 5 * time.Millisecond, 15 * time.Millisecond // an event, then one pass
	legacyToolsP99     = 50 * time.Millisecond                       // the xtables lock's event, then one pass
	reconcileAtSize    = 50000
	idleRSSTargetMiB   = 20
	burstCPUBound      = time.Second // CPU for the whole burst: far below one reconcile per write
)

// reconcileTarget is the repair at reconcileAtSize foreign rules.
func reconcileTarget(backend string) time.Duration {
	if backend == "nft" {
		return 100 * time.Millisecond
	}
	return 200 * time.Millisecond
}

// idleCPUTarget is % of one core: legacy polls (issue 19: 0.05 %), nft
// only wakes for events and the resync.
func idleCPUTarget(backend string) float64 {
	if backend == "legacy" {
		return 0.05
	}
	return 0.1
}

func eventMet(s sample) bool { return len(s) > 0 && s.pct(50) <= eventP50 && s.pct(99) <= eventP99 }

func ratios(ours, peer sample) string {
	return fmt.Sprintf("p50 %s, p99 %s", ratio(ours.pct(50), peer.pct(50)), ratio(ours.pct(99), peer.pct(99)))
}

func (r *report) print(w io.Writer) {
	row := func(cells ...string) { fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | ")) }
	row("figure", "backend", "ours", fmt.Sprintf("peer: %s poll-and-check loop", r.o.peerPeriod), "ours/peer", "target", "met")
	row("---", "---", "---", "---", "---", "---", "---")

	for i, b := range backends {
		ours, peer := r.ours[i], r.peer[i]
		if b.Name == "nft" {
			row("iptables drift → repaired ¹", b.Name, ours.rules.latency()+failures(ours), peer.rules.latency()+failures(peer),
				ratios(ours.rules, peer.rules), "p50 ≤ 5 ms, p99 ≤ 15 ms", yesNo(ours.failed == 0 && eventMet(ours.rules)))
			continue
		}
		row("iptables drift by the iptables tools → repaired ¹", b.Name, ours.rules.latency()+failures(ours), peer.rules.latency()+failures(peer),
			ratios(ours.rules, peer.rules), "p99 ≤ 50 ms", yesNo(ours.failed == 0 && len(ours.rules) > 0 && ours.rules.pct(99) <= legacyToolsP99))
		row("iptables drift by raw setsockopt → repaired ¹", b.Name, ours.rulesRaw.latency(), peer.rules.latency(),
			ratios(ours.rulesRaw, peer.rules), fmt.Sprintf("p99 ≤ the safety-net poll (%s)", r.o.pollIval),
			yesNo(len(ours.rulesRaw) > 0 && ours.rulesRaw.pct(99) <= r.o.pollIval+legacyToolsP99))
	}
	for i, b := range backends {
		ours, peer := r.ours[i], r.peer[i]
		row("ecs.config drift (in-place write) → repaired ¹", b.Name, ours.files.latency(), peer.files.latency(),
			ratios(ours.files, peer.files), "p50 ≤ 5 ms, p99 ≤ 15 ms", yesNo(eventMet(ours.files)))
		row("ecs.config drift (rename-over) → repaired ¹", b.Name, ours.filesRename.latency(), peer.files.latency(),
			ratios(ours.filesRename, peer.files), "p50 ≤ 5 ms, p99 ≤ 15 ms", yesNo(eventMet(ours.filesRename)))
	}
	for _, c := range r.cost {
		b := r.backendOfCost(c)
		lim := reconcileTarget(b)
		target, met := fmt.Sprintf("≤ %s at 50 000", ms(lim)), "—"
		if c.size == reconcileAtSize {
			met = yesNo(c.passSteady.pct(50) <= lim && c.passRepair.pct(50) <= lim)
		} else {
			target = "(info)"
		}
		row(fmt.Sprintf("reconcile, %s foreign rules ²", thousands(c.size)), b,
			fmt.Sprintf("daemon pass: steady %s%s, repair %s%s · `apply` process: steady %s, repair %s",
				c.passSteady.median(), inexact(c.inexactSteady), c.passRepair.median(), inexact(c.inexactRep),
				c.applySteady.median(), c.applyRepair.median()),
			"—", "—", target, met)
	}
	for i, b := range backends {
		id := r.idle[i]
		own := time.Duration(id.s1.cpuTicks-id.s0.cpuTicks) * time.Second / clkTck
		kids := time.Duration(id.s1.childTicks-id.s0.childTicks) * time.Second / clkTck
		row(fmt.Sprintf("idle CPU (%s) ³", r.o.idle), b.Name,
			fmt.Sprintf("%.3f %% of a core (own %s + its iptables children %s; %.0f reconcile passes)", id.cpuPercent, ms(own), ms(kids), id.passes),
			"—", "—", fmt.Sprintf("≤ %g %% of a core", idleCPUTarget(b.Name)), yesNo(id.cpuPercent <= idleCPUTarget(b.Name)))
		row("idle RSS ³", b.Name, fmt.Sprintf("VmRSS %.1f MiB (peak VmHWM %.1f MiB)", float64(id.s1.rssKiB)/1024, float64(id.s1.hwmKiB)/1024),
			"—", "—", "≤ 20 MiB", yesNo(float64(id.s1.rssKiB)/1024 <= idleRSSTargetMiB))
		row("idle wake-ups ³", b.Name, fmt.Sprintf("%.2f /s (context switches of all %d threads)",
			float64(id.s1.ctxSwitches-id.s0.ctxSwitches)/id.dur.Seconds(), id.s1.threads), "—", "—", "(info)", "—")
	}
	for i, b := range backends {
		br := r.bursts[i]
		row(fmt.Sprintf("burst: %s writes in 1 s → agent restarts ⁴", thousands(br.writes)), b.Name,
			fmt.Sprintf("%d within %s (log: %s); %d by +%s", br.restarts, roundS(br.window), actionList(br.actions), br.restartsLater, roundS(br.laterAfter)),
			"—", "—", "1 agent restart", yesNo(br.restarts == 1))
		row("burst: daemon CPU ⁴", b.Name,
			fmt.Sprintf("%s over %s (%.1f %% of a core; %.0f reconcile passes; %s)",
				ms(br.cpu), roundS(br.window), float64(br.cpu)/float64(br.window)*100, br.passes, repairedAfter(br.repairedAfter)),
			"—", "—", "bounded: ≤ 1 CPU-second", yesNo(br.cpu <= burstCPUBound))
	}
	for i, b := range backends {
		if i >= len(r.fights) {
			break
		}
		f, ours := r.fights[i], r.ours[i]
		fl := ""
		if f.failed > 0 {
			fl = fmt.Sprintf("; %d not repaired within the timeout", f.failed)
		}
		row("credential rule drift → repaired while ecs.config is in a fight ⁵", b.Name,
			f.rules.latency()+fl, "without a fight (row 1): "+ours.rules.latency(), ratios(f.rules, ours.rules),
			"≤ 1 s, as without a fight", yesNo(f.failed == 0 && len(f.rules) > 0 && f.rules.pct(99) <= time.Second))
		pct := 0.0
		if f.window > 0 {
			pct = float64(f.cpu) / float64(f.window) * 100
		}
		row("daemon CPU during a fight ⁵", b.Name,
			fmt.Sprintf("%.1f %% of a core (%s over %s; %d of %d daemons logged the fight; the fighter wrote %d times)", pct, ms(f.cpu), roundS(f.window), f.fights, f.daemons, f.writes),
			"—", "—", "(info)", "—")
	}

	fmt.Fprintln(w)
	fmt.Fprintf(w, "Machine: %s. Whole run: %s.\n\n", machine(), roundS(r.took))
	var probes []string
	for _, oc := range r.observer {
		probes = append(probes, fmt.Sprintf("%s: one kernel read %s (p99 %s), one `%s -C` %s, one read of ecs.config %s",
			oc.b.Name, us(oc.probe.pct(50)), us(oc.probe.pct(99)), oc.b.Iptables, ms(oc.checkC.pct(50)), us(oc.file.pct(50))))
	}
	var obsCPU []string
	for i, b := range backends {
		o := r.ours[i]
		obsCPU = append(obsCPU, fmt.Sprintf("%s %.1f %%", b.Name, float64(o.selfCPU)/float64(o.wall)*100))
	}
	fmt.Fprintf(w, "¹ Latency from the moment the drift is seen to the moment the repaired state is seen, by one observer polling every %s: "+
		"rules are read straight from the kernel (nft: a netlink NFT_MSG_GETRULE dump of ip nat OUTPUT; legacy: getsockopt IPT_SO_GET_ENTRIES of nat, as iptables-legacy-save does) "+
		"and our REDIRECT rule is counted; every repaired trial is then confirmed with `iptables -C` (not timed). Resolution ≈ %s + one read (%s). "+
		"The drift is `iptables -t nat -D %s` (legacy raw setsockopt: the same command with another $XTABLES_LOCKFILE than the host's, so the daemon sees no lock event, as for a program that calls setsockopt itself); for ecs.config ECS_ENABLE_TASK_IAM_ROLE=false written in place, or into a temp file renamed over it, timed from the end of the write. "+
		"The observer's own CPU during our trials: %s of a core. "+
		"The daemon treats a 5th repair of one item within a minute as a fight with another tool and backs off on purpose, so each daemon process gets %d rule and %d ecs.config drifts (%d and %d processes), "+
		"trials 50–300 ms apart at random (raw setsockopt trials instead at a random 0–1 poll interval, so a drift falls at a random point of the poll period). Default policy timings: debounce 20ms (writes in progress only), poll_interval %s (legacy safety net), resync 30s. Every simulated host has its own xtables lock ($XTABLES_LOCKFILE). "+
		"The peer is flannel's approach as a shell loop (`iptables -C || iptables -A`, `grep || sed`, `sleep %s`), each trial dropping the rule and breaking the file at once at a random phase; "+
		"%d loops run side by side per backend, both backends at once, to fit the time.\n\n",
		probeEvery, probeEvery, strings.Join(probes, "; "), redirectRule, strings.Join(obsCPU, ", "),
		fightFree, fightFree, r.ours[0].daemons, r.ours[len(r.ours)-1].daemons, r.o.pollIval, r.o.peerPeriod, min(r.o.peerWorkers, r.o.trials))
	var loads []string
	for _, c := range r.cost {
		if c.size > 0 {
			loads = append(loads, fmt.Sprintf("%s %s: %s", r.backendOfCost(c), thousands(c.size), ms(c.load)))
		}
	}
	fmt.Fprintf(w, "² Medians (min–max, n). Foreign rules in pkg/netfilter/bench_test.go's \"mixed\" distribution (¼ nat PREROUTING DNAT, ½ filter INPUT, ¼ a user chain), loaded with iptables-restore (%s). "+
		"\"daemon pass\" is the daemon's own reconcile duration, from the deltas of ecs_remediator_reconcile_duration_seconds_sum/_count scraped from its /metrics every %s: "+
		"steady = the pass after an unchanged rewrite of ecs.config, repair = the pass that counted the repair after the REDIRECT rule was deleted "+
		"(\"≈\": some passes ended within one scrape and the figure is their mean). `apply` is the wall time of one `ecs-remediator apply` process (start, policy, reconcile). "+
		"The 50 000 target is judged on the daemon pass medians.\n\n",
		strings.Join(loads, ", "), probeEvery)
	fmt.Fprintf(w, "³ A compliant daemon left alone for %s (after %s to settle), both backends side by side. CPU from /proc/<pid>/stat: utime+stime of the daemon plus cutime+cstime "+
		"(the iptables processes it ran and reaped), 10 ms ticks, over the window; RSS from /proc/<pid>/status at its end; "+
		"wake-ups = voluntary+nonvoluntary context switches summed over /proc/<pid>/task/*/status, per second.\n\n", r.o.idle, settle)
	fmt.Fprintf(w, "⁴ %s in-place writes to ecs.config paced over 1 s, each with a new ECS_CLUSTER and ECS_ENABLE_TASK_IAM_ROLE=false, against a daemon with the default policy "+
		"(agent.restart on-change, min_restart_interval 60s). There is no systemd in the namespace: a private dbus-daemon carries a fake systemd manager that reports the agent unit "+
		"(%s) active and counts TryRestartUnit calls; that count is the figure. The window runs from the first write until the file reads right again plus 3 s; "+
		"\"by +N s\" counts again at the end of the whole bench (a restart deferred by min_restart_interval shows there). CPU = daemon plus its iptables children, from /proc/<pid>/stat. "+
		"\"Bounded\" is set at 1 CPU-second, a small fraction of a reconcile per write.\n",
		thousands(r.o.burstWrites), agentUnit)
	if len(r.fights) > 0 {
		fmt.Fprintf(w, "\n⁵ Issue 16's fight: another writer puts ECS_ENABLE_TASK_IAM_ROLE=false into ecs.config every %s, so that item is in a fight and backs off; meanwhile our REDIRECT rule "+
			"(network.credentials_redirect, a credential item) is deleted as in row 1, %d times per daemon process, timed the same way. The credential item must not wait for ecs.config's back-off. "+
			"CPU = daemon plus its iptables children over the drift trials, while the fighter runs.\n", fightEvery, fightFree)
	}
}

func (r *report) backendOfCost(c *costResult) string {
	for i, x := range r.cost {
		if x == c {
			return backends[i/len(r.o.sizes)].Name
		}
	}
	return "?"
}

func failures(r *driftResult) string {
	var s []string
	if r.failed > 0 {
		s = append(s, fmt.Sprintf("%d not repaired within the timeout", r.failed))
	}
	if r.unverified > 0 {
		s = append(s, fmt.Sprintf("%d not confirmed by iptables -C", r.unverified))
	}
	if len(s) == 0 {
		return ""
	}
	return "; " + strings.Join(s, ", ")
}

func inexact(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(" (≈ %d)", n)
}

func actionList(m map[string]int) string {
	if len(m) == 0 {
		return "no actions"
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var s []string
	for _, k := range keys {
		s = append(s, fmt.Sprintf("%d× %s", m[k], k))
	}
	return strings.Join(s, ", ")
}

func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + " " + s[i:]
	}
	return s
}

func us(d time.Duration) string { return fmt.Sprintf("%.0f µs", float64(d)/1e3) }

func roundS(d time.Duration) string { return d.Round(100 * time.Millisecond).String() }

func repairedAfter(d time.Duration) string {
	if d < 0 {
		return fmt.Sprintf("file still wrong %s after the last write: the item was held by its fight back-off", burstRepairWait)
	}
	return "file right " + ms(d) + " after the last write"
}
