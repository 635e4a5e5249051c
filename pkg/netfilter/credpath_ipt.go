package netfilter

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Turning iptables rules (as iptables-save prints them) into the
// evaluator's model. Every option this file does not know becomes an
// "unknown" condition: the rule then at best maybe matches, and if it
// could decide the packet the verdict is undecidable, naming it.

// parseSaveTable reads one table of iptables-save output into the model:
// every chain with its policy and rules in order.
func parseSaveTable(out, table, where string) (*mtable, error) {
	t := &mtable{where: where, chains: map[string]*mchain{}}
	in := false
	get := func(name string) *mchain {
		c := t.chains[name]
		if c == nil {
			c = &mchain{name: name, ref: ruleRef{where: where + " " + name, chain: name}}
			t.chains[name] = c
		}
		return c
	}
	lineNo := 0
	for len(out) > 0 {
		var line string
		line, out, _ = strings.Cut(out, "\n")
		lineNo++
		line = strings.TrimRight(line, "\r ")
		switch {
		case line == "" || line[0] == '#':
			continue
		case line[0] == '*':
			in = line[1:] == table
			continue
		case !in || line == "COMMIT":
			continue
		case line[0] == ':':
			f := strings.Fields(line[1:])
			c := get(f[0])
			if len(f) > 1 && f[1] != "-" {
				c.policy = f[1]
			}
			continue
		}
		if line[0] == '[' {
			if i := strings.IndexByte(line, ']'); i > 0 {
				line = strings.TrimLeft(line[i+1:], " ")
			}
		}
		if !strings.HasPrefix(line, "-A ") {
			return nil, fmt.Errorf("line %d: unexpected %q", lineNo, line)
		}
		name, text, _ := strings.Cut(line[3:], " ")
		c := get(name)
		ref := ruleRef{where: where + " " + name, chain: name, pos: len(c.rules) + 1, text: "-A " + name + " " + text}
		c.rules = append(c.rules, iptRule(text, ref))
	}
	return t, nil
}

// iptRule models one rule text.
func iptRule(text string, ref ruleRef) mrule {
	r := mrule{ref: ref}
	toks, err := tokenize(text)
	var sp *spec
	if err == nil {
		sp, err = parseSpec(toks, false) // no canonical key: only the options are needed
	}
	if err != nil {
		r.unknown = append(r.unknown, "rule text ("+err.Error()+")")
		r.kind = vUnknown
		r.what = "?"
		return r
	}
	for _, o := range sp.generic {
		switch o.name {
		case "-p":
			r.conds = append(r.conds, condProto{neg: o.neg, proto: o.vals[0]})
		case "-s", "-d":
			pf, err := parseCIDR(o.vals[0], false)
			if err != nil {
				r.unknown = append(r.unknown, o.name+" "+o.vals[0])
				continue
			}
			r.conds = append(r.conds, condAddr{src: o.name == "-s", neg: o.neg, pfxs: []netip.Prefix{pf}})
		case "-i", "-o":
			r.conds = append(r.conds, condIface{out: o.name == "-o", neg: o.neg, name: o.vals[0]})
		case "-f":
			r.conds = append(r.conds, condFrag{neg: o.neg})
		}
	}
	for _, m := range sp.mergedMatches() {
		for _, o := range m.opts {
			c, ok := iptCond(m.name, o)
			if !ok {
				r.unknown = append(r.unknown, "-m "+m.name+" "+optString(o))
				continue
			}
			if c != nil {
				r.conds = append(r.conds, c)
			}
		}
		if len(m.opts) == 0 && !protoModules[m.name] && m.name != "comment" && m.name != "?" {
			r.unknown = append(r.unknown, "-m "+m.name)
		}
	}
	switch sp.target {
	case "":
		r.kind = vContinue
	case "ACCEPT":
		r.kind = vAccept
	case "DROP", "REJECT":
		r.kind = vDrop
	case "RETURN":
		r.kind = vReturn
	default:
		switch {
		case passive[sp.target]:
			r.kind = vContinue
		case isChainName(sp.target):
			r.kind, r.target = vJump, sp.target
			if sp.isGoto {
				r.kind = vGoto
			}
		default:
			r.kind, r.what = vUnknown, sp.target
		}
	}
	return r
}

// isChainName: targets are upper case (NFQUEUE, TPROXY) while a user
// chain can be anything; a name iptables knows as a target is not a chain.
func isChainName(s string) bool {
	switch s {
	case "QUEUE", "NFQUEUE", "TPROXY", "DNAT", "SNAT", "MASQUERADE", "REDIRECT", "NETMAP", "SYNPROXY", "CLUSTERIP":
		return false
	}
	return true
}

// iptCond models one option of a match; ok false when not modelled. A nil
// cond with ok is an option that never changes the outcome (a comment).
func iptCond(module string, o opt) (cond, bool) {
	val := func() string {
		if len(o.vals) == 0 {
			return ""
		}
		return o.vals[0]
	}
	switch {
	case module == "comment":
		return nil, true
	case protoModules[module] || module == "?":
		switch o.name {
		case "--dport", "--sport":
			rs, ok := portList(val())
			if !ok {
				return nil, false
			}
			return condPort{src: o.name == "--sport", neg: o.neg, ranges: rs}, true
		case "--syn":
			return condSyn{neg: o.neg, mask: []string{"SYN", "RST", "ACK", "FIN"}, comp: []string{"SYN"}}, true
		case "--tcp-flags":
			if len(o.vals) != 2 {
				return nil, false
			}
			return condSyn{neg: o.neg, mask: strings.Split(o.vals[0], ","), comp: strings.Split(o.vals[1], ",")}, true
		}
	case module == "multiport":
		rs, ok := portList(val())
		if !ok {
			return nil, false
		}
		switch o.name {
		case "--dports":
			return condPort{neg: o.neg, ranges: rs}, true
		case "--sports":
			return condPort{src: true, neg: o.neg, ranges: rs}, true
		case "--ports":
			return condPort{either: true, neg: o.neg, ranges: rs}, true
		}
	case module == "conntrack" || module == "state":
		switch o.name {
		case "--ctstate", "--state":
			return condCt{neg: o.neg, states: strings.Split(strings.ToUpper(val()), ",")}, true
		case "--ctstatus":
			return condCtStatus{neg: o.neg, vals: strings.Split(strings.ToUpper(val()), ",")}, true
		case "--ctproto":
			return condProto{neg: o.neg, proto: val()}, true
		case "--ctdir":
			return condCtDir{dir: val()}, true
		case "--ctorigdst":
			pf, err := parseCIDR(val(), false)
			if err != nil {
				return nil, false
			}
			return condOrigDst{neg: o.neg, pfxs: []netip.Prefix{pf}}, true
		}
	case module == "addrtype":
		switch o.name {
		case "--dst-type", "--src-type":
			return condAddrType{src: o.name == "--src-type", neg: o.neg, types: strings.Split(val(), ",")}, true
		}
	}
	return nil, false
}

// portList reads "80", "1:1024", "22,80,443:445".
func portList(s string) ([]portRangeT, bool) {
	var out []portRangeT
	for _, p := range strings.Split(s, ",") {
		lo, hi, ok := portRange(p)
		if !ok {
			if n, err := strconv.Atoi(p); err == nil {
				lo, hi, ok = n, n, true
			}
		}
		if !ok {
			return nil, false
		}
		out = append(out, portRangeT{lo, hi})
	}
	return out, len(out) > 0
}
