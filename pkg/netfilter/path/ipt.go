package path

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter/rule"
)

// ParseSave reads one table of iptables-save output into the
// evaluator's model: every chain with its policy and rules in order.
// Every option the model does not know becomes an "unknown" condition
// (iptRule): the rule then at best maybe matches, and if it could decide
// the packet the verdict is undecidable, naming it.
func ParseSave(out, table, where string) (*Table, error) {
	t := &Table{Where: where, Chains: map[string]*Chain{}}
	in := false
	get := func(name string) *Chain {
		c := t.Chains[name]
		if c == nil {
			c = &Chain{Name: name, ref: RuleRef{where: where + " " + name, chain: name}}
			t.Chains[name] = c
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
				c.Policy = f[1]
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
		ref := RuleRef{where: where + " " + name, chain: name, Pos: len(c.Rules) + 1, Text: "-A " + name + " " + text}
		c.Rules = append(c.Rules, iptRule(text, ref))
	}
	return t, nil
}

// iptRule models one rule text.
func iptRule(text string, ref RuleRef) Rule {
	r := Rule{Ref: ref}
	sp, err := rule.Parse(text, false) // no canonical key: only the options are needed
	if err != nil {
		r.unknown = append(r.unknown, "rule text ("+err.Error()+")")
		r.kind = Unknown
		r.what = "?"
		return r
	}
	for _, o := range sp.Generic {
		switch o.Name {
		case "-p":
			r.conds = append(r.conds, condProto{neg: o.Neg, proto: o.Vals[0]})
		case "-s", "-d":
			pf, err := rule.ParseCIDR(o.Vals[0], false)
			if err != nil {
				r.unknown = append(r.unknown, o.Name+" "+o.Vals[0])
				continue
			}
			r.conds = append(r.conds, condAddr{src: o.Name == "-s", neg: o.Neg, pfxs: []netip.Prefix{pf}})
		case "-i", "-o":
			r.conds = append(r.conds, condIface{out: o.Name == "-o", neg: o.Neg, name: o.Vals[0]})
		case "-f":
			r.conds = append(r.conds, condFrag{neg: o.Neg})
		}
	}
	for _, m := range sp.MergedMatches() {
		for _, o := range m.Opts {
			c, ok := iptCond(m.Name, o)
			if !ok {
				r.unknown = append(r.unknown, "-m "+m.Name+" "+o.String())
				continue
			}
			if c != nil {
				r.conds = append(r.conds, c)
			}
		}
		if len(m.Opts) == 0 && !rule.IsProtoModule(m.Name) && m.Name != "comment" && m.Name != "?" {
			r.unknown = append(r.unknown, "-m "+m.Name)
		}
	}
	switch sp.Target {
	case "":
		r.kind = vContinue
	case "ACCEPT":
		r.kind = Accept
	case "DROP", "REJECT":
		r.kind = Drop
	case "RETURN":
		r.kind = vReturn
	default:
		switch {
		case rule.IsPassive(sp.Target):
			r.kind = vContinue
		case isChainName(sp.Target):
			r.kind, r.target = vJump, sp.Target
			if sp.Goto {
				r.kind = vGoto
			}
		default:
			r.kind, r.what = Unknown, sp.Target
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
func iptCond(module string, o rule.Opt) (cond, bool) {
	val := func() string {
		if len(o.Vals) == 0 {
			return ""
		}
		return o.Vals[0]
	}
	switch {
	case module == "comment":
		return nil, true
	case rule.IsProtoModule(module) || module == "?":
		switch o.Name {
		case "--dport", "--sport":
			rs, ok := portList(val())
			if !ok {
				return nil, false
			}
			return condPort{src: o.Name == "--sport", neg: o.Neg, ranges: rs}, true
		case "--syn":
			return condSyn{neg: o.Neg, mask: []string{"SYN", "RST", "ACK", "FIN"}, comp: []string{"SYN"}}, true
		case "--tcp-flags":
			if len(o.Vals) != 2 {
				return nil, false
			}
			return condSyn{neg: o.Neg, mask: strings.Split(o.Vals[0], ","), comp: strings.Split(o.Vals[1], ",")}, true
		}
	case module == "multiport":
		rs, ok := portList(val())
		if !ok {
			return nil, false
		}
		switch o.Name {
		case "--dports":
			return condPort{neg: o.Neg, ranges: rs}, true
		case "--sports":
			return condPort{src: true, neg: o.Neg, ranges: rs}, true
		case "--ports":
			return condPort{either: true, neg: o.Neg, ranges: rs}, true
		}
	case module == "conntrack" || module == "state":
		switch o.Name {
		case "--ctstate", "--state":
			return condCt{neg: o.Neg, states: strings.Split(strings.ToUpper(val()), ",")}, true
		case "--ctstatus":
			return condCtStatus{neg: o.Neg, vals: strings.Split(strings.ToUpper(val()), ",")}, true
		case "--ctproto":
			return condProto{neg: o.Neg, proto: val()}, true
		case "--ctdir":
			return condCtDir{dir: val()}, true
		case "--ctorigdst":
			pf, err := rule.ParseCIDR(val(), false)
			if err != nil {
				return nil, false
			}
			return condOrigDst{neg: o.Neg, pfxs: []netip.Prefix{pf}}, true
		}
	case module == "addrtype":
		switch o.Name {
		case "--dst-type", "--src-type":
			return condAddrType{src: o.Name == "--src-type", neg: o.Neg, types: strings.Split(val(), ",")}, true
		}
	}
	return nil, false
}

// portList reads "80", "1:1024", "22,80,443:445".
func portList(s string) ([]portRangeT, bool) {
	var out []portRangeT
	for _, p := range strings.Split(s, ",") {
		lo, hi, ok := rule.PortRange(p)
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
