package netfilter

import (
	"net/netip"
	"sort"
	"strconv"
	"strings"
)

// Shadowing: our rules are inserted at the top of INPUT (ecs-init's
// order) but are never moved afterwards, so a foreign rule inserted above
// them later stays there. shadows reports whether such a foreign rule can
// decide, before ours, the fate of packets ours is meant for. It is a
// conservative overlap test on the fields that matter (protocol,
// addresses, interface, destination port, conntrack state): it answers
// "no" only when the rules provably cannot match the same packet.

// passive targets never end a packet's walk with a verdict.
var passive = map[string]bool{
	"": true, "LOG": true, "NFLOG": true, "ULOG": true, "MARK": true, "CONNMARK": true,
	"CT": true, "TRACE": true, "AUDIT": true, "TCPMSS": true, "DSCP": true, "TOS": true,
	"CLASSIFY": true, "SET": true, "CHECKSUM": true, "NOTRACK": true, "TEE": true,
	"SECMARK": true, "CONNSECMARK": true, "IDLETIMER": true, "LED": true, "RATEEST": true,
	"HMARK": true,
}

// blocking targets end the walk without letting the packet through.
var blocking = map[string]bool{"DROP": true, "REJECT": true}

// shadows reports whether foreign rule f, placed before our rule w, may
// take packets w is meant for.
func shadows(f *spec, w *want, wsp *spec) bool {
	if f == nil {
		return false
	}
	if passive[f.target] {
		return false
	}
	if w.table == "nat" {
		// Only a rule that names our address explicitly: generic jumps
		// (Docker's `-m addrtype --dst-type LOCAL -j DOCKER`) are normal.
		d, ok := f.get("-d")
		if !ok || d.neg {
			return false
		}
		fp, err := parseCIDR(d.vals[0], w.v6)
		if err != nil || fp.Bits() == 0 || !fp.Contains(netip.MustParseAddr(credentialsAddr)) {
			return false
		}
		if f.target == wsp.target && targetKey(f) == targetKey(wsp) {
			return false // sends the packets where ours would
		}
	} else if blocking[f.target] {
		return false // dropping more than we do is no hole
	}
	return mayOverlap(f, wsp, w)
}

// mayOverlap reports whether a packet can exist that matches both f and w.
func mayOverlap(f, w *spec, ww *want) bool {
	// protocol
	fp, fok := f.get("-p")
	wp, wok := w.get("-p")
	if fok && wok && !wp.neg {
		a, b := normProto(fp.vals[0]), normProto(wp.vals[0])
		if !fp.neg && a != b && a != "all" {
			return false
		}
		if fp.neg && a == b {
			return false
		}
	}
	// addresses
	for _, n := range []string{"-s", "-d"} {
		fo, fok := f.get(n)
		wo, wok := w.get(n)
		if fok && wok && cidrDisjoint(fo, wo, ww.v6) {
			return false
		}
	}
	// input interface; our filter DROPs are about traffic from the network,
	// so they implicitly mean "! -i lo"
	fi, fok := f.get("-i")
	wi, wok := w.get("-i")
	if !wok && ww.table == "filter" && w.target == "DROP" {
		wi, wok = opt{name: "-i", neg: true, vals: []string{"lo"}}, true
	}
	if fok && wok && !fi.neg {
		if !wi.neg && !ifaceOverlap(fi.vals[0], wi.vals[0]) {
			return false
		}
		if wi.neg && fi.vals[0] == wi.vals[0] {
			return false
		}
	}
	// destination port
	if port, ok := w.dport(); ok && !f.portMay(port) {
		return false
	}
	// conntrack state: ESTABLISHED/RELATED only exist after a first packet
	// that our DROP rules already judged; states w excludes are not w's.
	benign := map[string]bool{"ESTABLISHED": true, "RELATED": true}
	if ww.table == "filter" {
		for _, m := range w.matches {
			for _, o := range m.opts {
				if (o.name == "--ctstate" || o.name == "--state") && o.neg {
					for _, s := range strings.Split(normStates(strings.Join(o.vals, ",")), ",") {
						benign[s] = true
					}
				}
			}
		}
		for _, m := range f.matches {
			for _, o := range m.opts {
				if (o.name == "--ctstate" || o.name == "--state") && !o.neg {
					all := true
					for _, s := range strings.Split(normStates(strings.Join(o.vals, ",")), ",") {
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
func cidrDisjoint(f, w opt, v6 bool) bool {
	fp, err1 := parseCIDR(f.vals[0], v6)
	wp, err2 := parseCIDR(w.vals[0], v6)
	if err1 != nil || err2 != nil {
		return false
	}
	switch {
	case !f.neg && !w.neg:
		return !fp.Overlaps(wp)
	case !f.neg && w.neg: // f inside what w excludes
		return wp.Bits() <= fp.Bits() && wp.Contains(fp.Addr())
	case f.neg && !w.neg: // w inside what f excludes
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
func (sp *spec) dport() (int, bool) {
	for _, m := range sp.matches {
		if !protoModules[m.name] {
			continue
		}
		for _, o := range m.opts {
			if o.name == "--dport" && !o.neg && len(o.vals) == 1 {
				if p, err := strconv.Atoi(o.vals[0]); err == nil {
					return p, true
				}
			}
		}
	}
	return 0, false
}

// portMay reports whether the rule may match destination port p.
func (sp *spec) portMay(p int) bool {
	for _, m := range sp.matches {
		for _, o := range m.opts {
			var lists []string
			switch {
			case protoModules[m.name] && o.name == "--dport" && len(o.vals) == 1:
				lists = []string{o.vals[0]}
			case m.name == "multiport" && (o.name == "--dports" || o.name == "--ports") && len(o.vals) == 1:
				lists = strings.Split(o.vals[0], ",")
			default:
				continue
			}
			in, known := false, true
			for _, l := range lists {
				lo, hi, ok := portRange(l)
				if !ok {
					known = false
					break
				}
				in = in || (p >= lo && p <= hi)
			}
			if known && in == o.neg {
				return false
			}
		}
	}
	return true
}

func portRange(s string) (int, int, bool) {
	a, b, isRange := strings.Cut(s, ":")
	lo, err := strconv.Atoi(a)
	if a == "" {
		lo, err = 0, nil
	}
	if err != nil {
		return 0, 0, false
	}
	if !isRange {
		return lo, lo, true
	}
	hi, err := strconv.Atoi(b)
	if b == "" {
		hi, err = 65535, nil
	}
	if err != nil {
		return 0, 0, false
	}
	return lo, hi, true
}

func targetKey(sp *spec) string {
	var os []string
	for _, o := range sp.topts {
		os = append(os, optString(o))
	}
	sort.Strings(os)
	return strings.Join(os, " ")
}
