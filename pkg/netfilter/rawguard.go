package netfilter

import (
	"strings"

	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter/rule"
)

// rawGuardArgs is the rule as we spell it.
var rawGuardArgs = strings.Fields("! -i lo -d 127.0.0.0/8 -j DROP")

// rawGuard is the raw-table localhost guard: `-t raw -I PREROUTING ! -i lo -d
// 127.0.0.0/8 -j DROP`. The conntrack guard in filter INPUT (ecs-init's)
// can be shadowed by any foreign ACCEPT above it (`-I INPUT 1 -i eth0 -j
// ACCEPT`), and it lets through packets with a spoofed 127.0.0.0/8
// source. The raw table runs before conntrack and nat, so this rule sees
// a packet before any filter rule can accept it; the credentials DNAT is
// untouched because, in raw PREROUTING, the credential packet is still
// addressed to 169.254.170.2. It is part of network.localhost_guard
// (same item, same policy key), placed at the top of raw PREROUTING and,
// like our other rules, never moved afterwards.
//
// How a shadowed conntrack guard is judged (docs/credential-path.md):
// with the raw guard present and nothing in raw PREROUTING above it that
// may accept such packets, the spoofed packets never reach filter INPUT,
// so a foreign rule above the conntrack guard opens nothing: the item is
// ok and the detail names that rule. Without the raw guard the item is
// drift (the repair adds it). When both guards are shadowed the item is
// drift if a rule above each certainly accepts some packets for
// 127.0.0.0/8 from the network (every match of it modelled), warn if it
// only may.
func rawGuard() rule.Want {
	return rule.Want{Item: ItemLocalhostGuard, Table: "raw", Chain: "PREROUTING", Place: rule.Top, Order: 0,
		Required: true, Needle: "127.", Args: rawGuardArgs,
		What: "packets for 127.0.0.0/8 that arrive on a network interface are dropped before any filter rule can accept them"}
}

// guardState summarises the two guards of one pass (IPv4).
type guardState struct {
	read                 bool // the family was read (no error)
	filter, raw          bool // present
	filterSure, rawSure  bool // shadowed by a rule that certainly accepts such packets
	filterShadow, rawShw string
	err                  string
}

// effective reports whether some guard keeps 127.0.0.0/8 closed.
func (g guardState) effective() bool {
	return g.read && ((g.raw && !g.rawSure) || (g.filter && !g.filterSure))
}

// guardOf summarises the guards of fams; in modeDryRun a guard the pass
// would insert counts as present.
func guardOf(fams []familyResult, m mode) guardState {
	var g guardState
	for _, fr := range fams {
		if fr.t.cmd == "" {
			continue
		}
		if fr.err != nil {
			has := false
			for _, w := range fr.ws {
				has = has || (w.Item == ItemLocalhostGuard && !w.V6)
			}
			if has {
				g.err = fr.err.Error()
			}
			continue
		}
		for _, st := range fr.after.states {
			if st.w.Item != ItemLocalhostGuard || st.w.V6 {
				continue
			}
			g.read = true
			present := st.copies > 0 || (m == modeDryRun && st.action != "")
			if st.w.Table == "raw" {
				g.raw, g.rawSure, g.rawShw = present, st.shadowSure, st.shadowedBy
			} else {
				g.filter, g.filterSure, g.filterShadow = present, st.shadowSure, st.shadowedBy
			}
		}
	}
	return g
}

// shadowSure reports whether foreign rule f certainly accepts some of the
// packets our DROP w is meant for: an ACCEPT whose every match is one the
// overlap test models, overlapping w.
func shadowSure(f *rule.Spec, w *rule.Want, wsp *rule.Spec) bool {
	if f == nil || f.Target != "ACCEPT" || !shadows(f, w, wsp) {
		return false
	}
	for _, m := range f.Matches {
		switch {
		case m.Name == "comment", m.Name == "?":
		case rule.IsProtoModule(m.Name) || m.Name == "multiport" || m.Name == "conntrack" || m.Name == "state":
			for _, o := range m.Opts {
				switch o.Name {
				case "--dport", "--sport", "--dports", "--sports", "--ports", "--ctstate", "--state":
				default:
					return false
				}
			}
		default:
			return false
		}
	}
	return true
}

// judge says what the shadowing of the guards means (see the package
// comment above): details to add, warnings, and whether it is drift.
func (g guardState) judge() (details, warns []string, drift bool) {
	const conntrack = "the conntrack guard (filter INPUT)"
	switch {
	case g.filterShadow == "" && g.rawShw == "":
	case g.filterShadow != "" && g.raw && g.rawShw == "":
		details = append(details, g.filterShadow+" comes before "+conntrack+", but the raw guard drops packets for 127.0.0.0/8 from the network before any filter rule: no hole")
	case g.filterShadow != "" && !g.raw:
		msg := g.filterShadow + " comes before " + conntrack + " and the raw guard is missing"
		if g.filterSure {
			details = append(details, msg+": it accepts packets for 127.0.0.0/8 from the network")
			drift = true
		} else {
			warns = append(warns, msg+": it may accept packets for 127.0.0.0/8 from the network")
		}
	case g.filterShadow != "" && g.rawShw != "":
		msg := g.filterShadow + " comes before " + conntrack + " and " + g.rawShw + " before the raw guard"
		if g.filterSure && g.rawSure {
			details = append(details, msg+": packets for 127.0.0.0/8 from the network are accepted (ecs-remediator never moves other tools' rules: delete or narrow them)")
			drift = true
		} else {
			warns = append(warns, msg+": they may accept packets for 127.0.0.0/8 from the network")
		}
	case g.rawShw != "":
		warns = append(warns, g.rawShw+" comes before the raw guard and may accept packets for 127.0.0.0/8 from the network; "+conntrack+" still drops them unless their source is spoofed as 127.0.0.0/8")
	}
	return details, warns, drift
}

// LocalhostGuardInPlace reports whether a localhost guard keeps
// 127.0.0.0/8 closed at the end of the last pass (Check or Apply; in a
// dry run: would be), for the route_localnet enforcer, which must not
// write 1 without it. why says what is missing and what to do.
func (e *Enforcer) LocalhostGuardInPlace() (bool, string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case !e.c.LocalhostGuard:
		return true, "" // turned off by policy (network.localhost_guard: false), warned about there
	case !e.guardPass:
		return false, "the network rules have not been checked in this pass"
	case e.guard.err != "":
		return false, "the localhost guard could not be installed: " + e.guard.err
	case !e.guard.effective():
		return false, "no localhost guard is in place (see network.localhost_guard)"
	}
	return true, ""
}
