package netfilter

import (
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter/rule"
)

// blocking targets end the walk without letting the packet through.
var blocking = map[string]bool{"DROP": true, "REJECT": true}

// shadows reports whether foreign rule f, placed before our rule w, may
// take packets w is meant for. Our rules are inserted at the top of INPUT
// (ecs-init's order) but are never moved afterwards, so a foreign rule
// inserted above them later stays there. It is a conservative overlap
// test on the fields that matter (protocol, addresses, interface,
// destination port, conntrack state): it answers "no" only when the rules
// provably cannot match the same packet.
func shadows(f *rule.Spec, w *rule.Want, wsp *rule.Spec) bool {
	if f == nil {
		return false
	}
	if rule.IsPassive(f.Target) {
		return false
	}
	if w.Table == "nat" {
		// Only a rule that names our address explicitly: generic jumps
		// (Docker's `-m addrtype --dst-type LOCAL -j DOCKER`) are normal.
		d, ok := f.Get("-d")
		if !ok || d.Neg {
			return false
		}
		fp, err := rule.ParseCIDR(d.Vals[0], w.V6)
		if err != nil || fp.Bits() == 0 || !fp.Contains(netip.MustParseAddr(credentialsAddr)) {
			return false
		}
		if f.Target == wsp.Target && targetKey(f) == targetKey(wsp) {
			return false // sends the packets where ours would
		}
	} else if blocking[f.Target] {
		return false // dropping more than we do is no hole
	}
	return mayOverlap(f, wsp, w)
}

// mayOverlap reports whether a packet can exist that matches both f and w.
func mayOverlap(f, w *rule.Spec, ww *rule.Want) bool {
	// protocol
	fp, fok := f.Get("-p")
	wp, wok := w.Get("-p")
	if fok && wok && !wp.Neg {
		a, b := rule.NormProto(fp.Vals[0]), rule.NormProto(wp.Vals[0])
		if !fp.Neg && a != b && a != "all" {
			return false
		}
		if fp.Neg && a == b {
			return false
		}
	}
	// addresses
	for _, n := range []string{"-s", "-d"} {
		fo, fok := f.Get(n)
		wo, wok := w.Get(n)
		if fok && wok && cidrDisjoint(fo, wo, ww.V6) {
			return false
		}
	}
	// input interface; our filter DROPs are about traffic from the network,
	// so they implicitly mean "! -i lo"
	fi, fok := f.Get("-i")
	wi, wok := w.Get("-i")
	if !wok && ww.Table == "filter" && w.Target == "DROP" {
		wi, wok = rule.Opt{Name: "-i", Neg: true, Vals: []string{"lo"}}, true
	}
	if fok && wok && !fi.Neg {
		if !wi.Neg && !ifaceOverlap(fi.Vals[0], wi.Vals[0]) {
			return false
		}
		if wi.Neg && fi.Vals[0] == wi.Vals[0] {
			return false
		}
	}
	// destination port
	if port, ok := dport(w); ok && !portMay(f, port) {
		return false
	}
	// conntrack state: ESTABLISHED/RELATED only exist after a first packet
	// that our DROP rules already judged; states w excludes are not w's.
	benign := map[string]bool{"ESTABLISHED": true, "RELATED": true}
	if ww.Table == "filter" {
		for _, m := range w.Matches {
			for _, o := range m.Opts {
				if (o.Name == "--ctstate" || o.Name == "--state") && o.Neg {
					for _, s := range strings.Split(rule.NormStates(strings.Join(o.Vals, ",")), ",") {
						benign[s] = true
					}
				}
			}
		}
		for _, m := range f.Matches {
			for _, o := range m.Opts {
				if (o.Name == "--ctstate" || o.Name == "--state") && !o.Neg {
					all := true
					for _, s := range strings.Split(rule.NormStates(strings.Join(o.Vals, ",")), ",") {
						all = all && benign[s]
					}
					if all {
						return false
					}
				}
			}
		}
	}
	return true
}

// cidrDisjoint reports whether no address satisfies both constraints.
func cidrDisjoint(f, w rule.Opt, v6 bool) bool {
	fp, err1 := rule.ParseCIDR(f.Vals[0], v6)
	wp, err2 := rule.ParseCIDR(w.Vals[0], v6)
	if err1 != nil || err2 != nil {
		return false
	}
	switch {
	case !f.Neg && !w.Neg:
		return !fp.Overlaps(wp)
	case !f.Neg && w.Neg: // f inside what w excludes
		return wp.Bits() <= fp.Bits() && wp.Contains(fp.Addr())
	case f.Neg && !w.Neg: // w inside what f excludes
		return fp.Bits() <= wp.Bits() && fp.Contains(wp.Addr())
	}
	return false
}

// ifaceOverlap: "docker+" matches every name starting with "docker".
func ifaceOverlap(a, b string) bool {
	pa, wa := strings.CutSuffix(a, "+")
	pb, wb := strings.CutSuffix(b, "+")
	switch {
	case wa && wb:
		return strings.HasPrefix(pa, pb) || strings.HasPrefix(pb, pa)
	case wa:
		return strings.HasPrefix(b, pa)
	case wb:
		return strings.HasPrefix(a, pb)
	}
	return a == b
}

// dport is the single destination port of a rule, if it has one.
func dport(sp *rule.Spec) (int, bool) {
	for _, m := range sp.Matches {
		if !rule.IsProtoModule(m.Name) {
			continue
		}
		for _, o := range m.Opts {
			if o.Name == "--dport" && !o.Neg && len(o.Vals) == 1 {
				if p, err := strconv.Atoi(o.Vals[0]); err == nil {
					return p, true
				}
			}
		}
	}
	return 0, false
}

// portMay reports whether the rule may match destination port p.
func portMay(sp *rule.Spec, p int) bool {
	for _, m := range sp.Matches {
		for _, o := range m.Opts {
			var lists []string
			switch {
			case rule.IsProtoModule(m.Name) && o.Name == "--dport" && len(o.Vals) == 1:
				lists = []string{o.Vals[0]}
			case m.Name == "multiport" && (o.Name == "--dports" || o.Name == "--ports") && len(o.Vals) == 1:
				lists = strings.Split(o.Vals[0], ",")
			default:
				continue
			}
			in, known := false, true
			for _, l := range lists {
				lo, hi, ok := rule.PortRange(l)
				if !ok {
					known = false
					break
				}
				in = in || (p >= lo && p <= hi)
			}
			if known && in == o.Neg {
				return false
			}
		}
	}
	return true
}

func targetKey(sp *rule.Spec) string {
	var os []string
	for _, o := range sp.TargetOpts {
		os = append(os, o.String())
	}
	sort.Strings(os)
	return strings.Join(os, " ")
}
