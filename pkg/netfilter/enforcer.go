package netfilter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter/kernel"
	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter/rule"
)

// Check observes the rules and the saved ruleset without changing
// anything.
func (e *Enforcer) Check(ctx context.Context) []finding.Finding {
	fs, _ := e.pass(ctx, modeCheck, nil, nil)
	return fs
}

// Apply repairs the live rules (per family: on nf_tables extra copies
// are deleted by handle in one generation-checked transaction; inserts
// and, on legacy, everything go in one restore batch), then the saved
// ruleset. With dryRun it changes nothing and writes the iptables
// commands and the diff of the saved file it would apply to plan.
func (e *Enforcer) Apply(ctx context.Context, dryRun bool, plan io.Writer) ([]finding.Finding, []finding.Change) {
	m := modeRepair
	if dryRun {
		m = modeDryRun
	}
	return e.pass(ctx, m, plan, nil)
}

// ApplyHolding repairs like Apply, except the rules of the items hold
// names: those are observed and reported, never changed (the daemon holds
// an item that another tool keeps undoing). It implements
// reconcile.Holder.
func (e *Enforcer) ApplyHolding(ctx context.Context, hold func(item string) bool) ([]finding.Finding, []finding.Change) {
	return e.pass(ctx, modeRepair, nil, hold)
}

// mode is what one pass may do.
type mode int

const (
	// modeCheck observes and reports; it changes nothing.
	modeCheck mode = iota
	// modeDryRun observes and writes to the plan writer what modeRepair
	// would run and write; it changes nothing.
	modeDryRun
	// modeRepair changes the live rules and the saved ruleset.
	modeRepair
)

// holding is m for an item the daemon holds: observed only, never
// changed.
func (m mode) holding(held bool) mode {
	if held && m == modeRepair {
		return modeCheck
	}
	return m
}

// pass reads, plans and, as m allows, repairs every item; w receives the
// plan of a dry run; hold names the items to observe only.
func (e *Enforcer) pass(ctx context.Context, m mode, w io.Writer, hold func(string) bool) ([]finding.Finding, []finding.Change) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if w == nil {
		w = io.Discard
	}
	e.c.resolvePass()
	all := e.c.withOlder(e.c.wants(e.c.bridgeNeeded, e.v6 != nil && e.c.ipv6()))
	var v4, v6 []rule.Want
	for _, x := range all {
		if x.V6 {
			v6 = append(v6, x)
		} else {
			v4 = append(v4, x)
		}
	}
	fams := []familyResult{}
	run := func(t tools, ws []rule.Want, isV6 bool) {
		if len(ws) == 0 {
			return
		}
		var fr familyResult
		if m == modeRepair {
			rws := unheld(ws, hold)
			if len(rws) == len(ws) {
				fr = e.repair(ctx, t, ws, isV6)
			} else {
				// Repair the others as if the held rules were not ours
				// (they are neither added, deleted nor moved), then
				// observe everything for the findings.
				var done familyResult
				if len(rws) > 0 {
					done = e.repair(ctx, t, rws, isV6)
				}
				fr = e.observe(ctx, t, ws, isV6)
				fr.applied = done.applied
				if fr.err == nil {
					fr.err = done.err
				}
			}
		} else {
			fr = e.observe(ctx, t, ws, isV6)
			if m == modeDryRun && fr.after != nil && len(fr.after.ops) > 0 {
				fr.applied = fr.after
				fmt.Fprintf(w, "# %s (%s): one `%s --noflush` batch, equivalent to:\n", t.cmd, t.backend, t.restore)
				for _, o := range fr.after.ops {
					fmt.Fprintln(w, o.command(t.cmd))
				}
			}
		}
		fams = append(fams, fr)
	}
	run(e.v4, v4, false)
	if e.v6 != nil {
		run(*e.v6, v6, true)
	}

	var fs []finding.Finding
	var cs []finding.Change
	for _, item := range []string{ItemCredentialsDNAT, ItemCredentialsRedirect, ItemLocalhostGuard, ItemIntrospectionBlock, ItemIMDSBlock} {
		if f, ok := e.itemFinding(item, fams); ok {
			fs = append(fs, f)
		}
	}
	for _, fr := range fams {
		if fr.applied == nil {
			continue
		}
		dup := map[string]bool{} // keys of rules found with extra copies
		for _, st := range fr.applied.states {
			if st.copies > 1 {
				dup[st.w.Key] = true
			}
		}
		for _, st := range fr.applied.states {
			if st.action != "" {
				c := change(st, fr.t)
				// ecs-init's -I of the introspection DROP lands its copy
				// above our ACCEPT: the move that follows is part of
				// removing that duplicate, not an undo of ours.
				if st.misordered && dup[st.w.Before] {
					c.Duplicate = true
				}
				cs = append(cs, c)
			}
		}
	}
	e.guard, e.guardPass = guardOf(fams, m), true
	held := hold != nil && hold(ItemCredentialsInput) // another tool keeps undoing our accept: observe only
	if f, c, present, ok := e.credentialsInput(ctx, m.holding(held), w); ok {
		fs = append(fs, f)
		cs = append(cs, c...)
		v4 = persistedInputs(v4, present)
	}
	if f, ok := e.otherFinding(ctx, v4); ok {
		fs = append(fs, f)
	}
	persistHeld := hold != nil && (hold(ItemPersistIptables) || hold(ItemPersistService))
	pf, pc := e.persist(v4, m.holding(persistHeld), w)
	fs = append(fs, pf...)
	cs = append(cs, pc...)
	return fs, cs
}

// unheld is ws without the rules of held items.
func unheld(ws []rule.Want, hold func(string) bool) []rule.Want {
	if hold == nil {
		return ws
	}
	var out []rule.Want
	for _, w := range ws {
		if !hold(w.Item) {
			out = append(out, w)
		}
	}
	return out
}

// itemFinding aggregates the states of one item's rules over the families.
func (e *Enforcer) itemFinding(item string, fams []familyResult) (finding.Finding, bool) {
	f, ok := e.itemFindingOf(item, fams)
	if ok && item == ItemLocalhostGuard && e.c.LocalhostGuard && e.c.sw.SkipLocalhostFilter && f.Status != finding.Error {
		f.Detail += "; ECS_SKIP_LOCALHOST_TRAFFIC_FILTER=true (" + e.c.sw.SkipWhere + ") tells ecs-init not to add this rule: " +
			"ecs-remediator keeps it, because with route_localnet=1 every service bound to 127.0.0.1 is reachable from the network without it " +
			"(network.localhost_guard: false drops it, with a warning)"
	}
	return f, ok
}

func (e *Enforcer) itemFindingOf(item string, fams []familyResult) (finding.Finding, bool) {
	f := finding.Finding{Item: item, Status: finding.OK}
	switch {
	case item == ItemLocalhostGuard && !e.c.LocalhostGuard:
		f.Warn()
		f.Detail = "localhost guard not enforced by policy: while net.ipv4.conf.all.route_localnet=1, every service bound to 127.0.0.1 is reachable from the network"
		f.Fix = "enable network.localhost_guard in the policy (ecs-init adds the same rule unless ECS_SKIP_LOCALHOST_TRAFFIC_FILTER=true)"
		return f, true
	case item == ItemIntrospectionBlock && !e.c.introspectionEnforced():
		f.Detail = "not enforced by policy (network.block_introspection is false)"
		if e.c.BlockIntrospection {
			f.Detail = "not enforced: ecs-init adds no introspection rules on this host (ECS_ALLOW_OFFHOST_INTROSPECTION_ACCESS=true in " +
				e.c.sw.AllowWhere + ") and network.block_introspection is auto, which follows it; set it to true to close port " +
				strconv.Itoa(e.c.IntrospectionPort) + " to the network anyway"
		}
		return f, true
	}
	var details, fixes, warns, notNeeded []string
	seen := false
	for _, fr := range fams {
		has := false
		for _, w := range fr.ws {
			has = has || w.Item == item
		}
		if !has {
			continue
		}
		seen = true
		if fr.err != nil {
			f.Status = finding.Error
			details = append(details, fr.t.cmd+": "+fr.err.Error())
			fixes = append(fixes, "check that "+fr.t.save+" and "+fr.t.restore+" run as root (network.iptables selects the binary)")
			continue
		}
		for _, st := range fr.after.states {
			if st.w.Item != item {
				continue
			}
			if !st.w.Required && st.copies == 0 {
				// Said only on an ok row: on a drift row it is noise
				// between the reader and what is wrong.
				if len(st.w.Satisfies) == 0 { // ecs-init's older rule: say nothing while absent
					notNeeded = append(notNeeded, "not needed: "+fr.t.cmd+" -t filter "+st.w.Chain+" "+st.w.Spell()+" ("+e.c.bridgeWhy+")")
				}
				continue
			}
			details = append(details, st.describe())
			if st.drift() && f.Status == finding.OK {
				f.Status = finding.Drift
			}
			if st.shadowedBy != "" && item != ItemLocalhostGuard { // judged by guardFinding
				warns = append(warns, fmt.Sprintf("%s comes before %s -t %s -A %s %s and may decide first (not moved: ecs-remediator never reorders other tools' rules)",
					st.shadowedBy, fr.t.cmd, st.w.Table, st.w.Chain, st.w.Spell()))
			}
		}
		for _, o := range fr.after.ops {
			if opItem(o, fr.after) == item {
				fixes = append(fixes, o.command(fr.t.cmd))
			}
		}
		if item == ItemIMDSBlock {
			if jumps, read := forwardJumps(fr.rs, "DOCKER-USER"); read && !jumps {
				warns = append(warns, "FORWARD does not jump to DOCKER-USER (Docker not started?): the rule takes effect once Docker adds its jump")
			}
		}
	}
	if !seen {
		return f, false
	}
	if item == ItemLocalhostGuard {
		d, w, drift := guardOf(fams, modeCheck).judge()
		details = append(details, d...)
		warns = append(warns, w...)
		if drift {
			f.Status = finding.Drift
		}
	}
	if f.Status == finding.OK {
		details = append(details, notNeeded...)
	}
	f.Detail = strings.Join(details, "; ")
	if len(warns) > 0 {
		f.Warn()
		f.Detail += "; warning: " + strings.Join(warns, "; ")
	}
	switch {
	case f.Status == finding.Drift:
		f.Fix = "ecs-remediator apply (runs: " + strings.Join(fixes, "; ") + ")"
	case f.Status == finding.Error:
		f.Fix = strings.Join(fixes, "; ")
	case len(warns) > 0:
		f.Fix = "review the rule(s) named above; to put ours first again, delete our rules of that chain (iptables -D ...) and run ecs-remediator apply, which inserts them at the top"
	}
	return f, true
}

// opItem finds the item an op belongs to (by its rule text or chain).
func opItem(o op, p *plan) string {
	for _, st := range p.states {
		if st.w.Table != o.table || st.w.Chain != o.chain {
			continue
		}
		if o.verb == "-N" || o.text == st.w.Spell() {
			return st.w.Item
		}
		if o.verb == "-D" {
			if k, _, err := rule.Key(o.text, st.w.V6); err == nil && k == st.w.Key {
				return st.w.Item
			}
		}
	}
	return ""
}

func change(st *ruleState, t tools) finding.Change {
	w := st.w
	c := finding.Change{
		Item:   w.Item,
		Action: st.action,
		Target: w.Family() + " " + w.Table + " " + w.Chain,
	}
	cmd := "-A " + w.Chain + " " + w.Spell()
	if w.Place == rule.Top {
		cmd = "-I " + w.Chain + " " + strconv.Itoa(st.pos) + " " + w.Spell()
	}
	switch {
	case st.copies > 1:
		c.Old = fmt.Sprintf("%d copies of %s", st.copies, w.Spell())
		c.New = "1 copy at position " + strconv.Itoa(st.pos)
		c.Reason = "duplicate copies (ecs-init adds its rules without checking for existing ones)"
		c.Duplicate = true
	case st.misordered:
		c.Old = "position " + strconv.Itoa(st.firstPos) + ", below " + st.mustPrecede
		c.New = cmd
		c.Reason = "the rule was below " + st.mustPrecede + ", so it never matched: " + w.What + " only when it comes first"
	default:
		c.Old = "absent"
		c.New = cmd
		c.Reason = "rule missing: it makes sure " + w.What
		if st.chainGone {
			c.Reason += " (chain " + w.Chain + " created)"
		}
	}
	return c
}

// Fingerprint summarises the legacy tables of this network namespace for
// the daemon's poller (kernel.LegacyFingerprint): the legacy backend sends
// no change events. On nf_tables (HasEvents) it returns an error: there,
// events say what changed.
func (e *Enforcer) Fingerprint(deep bool) (shape, content string, err error) {
	if e.HasEvents() {
		return "", "", errors.New("nf_tables sends change events: nothing to poll")
	}
	return kernel.LegacyFingerprint(deep)
}

// HasEvents reports whether every family's binary is the nf_tables
// backend, whose changes the kernel announces over netlink; the legacy
// backend sends no events and must be polled.
func (e *Enforcer) HasEvents() bool {
	return e.v4.backend == backendNFT && (e.v6 == nil || e.v6.backend == backendNFT)
}

// UsesNFT reports whether either family's binary is the nf_tables
// backend: its changes come as netlink events (IPv4 and IPv6 alternatives
// may point at different backends).
func (e *Enforcer) UsesNFT() bool {
	return e.v4.backend == backendNFT || (e.v6 != nil && e.v6.backend == backendNFT)
}

// Legacy reports whether either family's rules are on the legacy backend,
// whose tools take the xtables lock (see watch.XtablesLock).
func (e *Enforcer) Legacy() bool {
	return e.v4.backend == backendLegacy || (e.v6 != nil && e.v6.backend == backendLegacy)
}
