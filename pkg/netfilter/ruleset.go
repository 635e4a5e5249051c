package netfilter

import (
	"fmt"
	"strings"
)

// ruleset is what was read from the kernel (or a saved file) for one
// family: the chains we look at, in order, with their rules.
type ruleset struct {
	v6     bool
	tables map[string]map[string]*chain // table -> chain -> rules
	// gen is the nf_tables generation the rules were read at, when they
	// were read over netlink (then rule.handle is set).
	gen     uint32
	netlink bool
}

// chain is one chain as read. exists is false for a chain that was not
// found (a user chain such as DOCKER-USER that nobody created yet).
type chain struct {
	table, name string
	exists      bool
	rules       []rule
}

// rule is one rule of a chain. text is its specification as printed
// (without "-A CHAIN" and counters), usable in "-D CHAIN text". key is set
// only for rules that may be ours (see parseRules' needles); spec is
// parsed on demand.
type rule struct {
	text string
	key  string
	sp   *spec
	err  error
	// Read over netlink: handle is the rule's nf_tables handle. opaque
	// rules were not printed (an expression form nftText does not know)
	// and were proven irrelevant: no needle, no destination that could be
	// the credentials address, not above our rules in a filter chain.
	// notOurDst: a nat rule whose destination provably excludes
	// 169.254.170.2 (the shadow scan skips it unparsed).
	handle    uint64
	opaque    bool
	notOurDst bool
}

func newRuleset(v6 bool) *ruleset {
	return &ruleset{v6: v6, tables: map[string]map[string]*chain{}}
}

// chain returns the chain, creating an empty (not existing) entry.
func (rs *ruleset) chain(table, name string) *chain {
	t := rs.tables[table]
	if t == nil {
		t = map[string]*chain{}
		rs.tables[table] = t
	}
	c := t[name]
	if c == nil {
		c = &chain{table: table, name: name, exists: builtinChain(table, name)}
		t[name] = c
	}
	return c
}

// has reports whether the chain was read (exists or was looked at).
func (rs *ruleset) has(table, name string) bool {
	_, ok := rs.tables[table][name]
	return ok
}

var builtins = map[string][]string{
	"filter": {"INPUT", "FORWARD", "OUTPUT"},
	"nat":    {"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"},
	"mangle": {"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"},
	"raw":    {"PREROUTING", "OUTPUT"},
}

func builtinChain(table, name string) bool {
	for _, c := range builtins[table] {
		if c == name {
			return true
		}
	}
	return false
}

// parseRules reads iptables-save output (several tables) or `iptables -S`
// output (one table, given as table). Only chains for which want returns
// true are kept; rules whose text contains one of needles get a key (all
// others cannot be ours and are never tokenised here, so a big foreign
// ruleset costs one line scan).
func parseRules(rs *ruleset, out string, table string, want func(table, chain string) bool, needles []string) error {
	lineNo := 0
	for len(out) > 0 {
		var line string
		line, out, _ = strings.Cut(out, "\n")
		lineNo++
		line = strings.TrimRight(line, "\r ")
		if line == "" || line[0] == '#' {
			continue
		}
		switch {
		case line[0] == '*':
			table = line[1:]
			continue
		case line == "COMMIT":
			continue
		case line[0] == ':':
			name, _, _ := strings.Cut(line[1:], " ")
			if want(table, name) {
				rs.chain(table, name).exists = true
			}
			continue
		case strings.HasPrefix(line, "-P ") || strings.HasPrefix(line, "-N "):
			name, _, _ := strings.Cut(line[3:], " ")
			if want(table, name) {
				rs.chain(table, name).exists = true
			}
			continue
		}
		if line[0] == '[' { // counters: [pkts:bytes] -A ...
			if i := strings.IndexByte(line, ']'); i > 0 {
				line = strings.TrimLeft(line[i+1:], " ")
			}
		}
		if !strings.HasPrefix(line, "-A ") {
			return fmt.Errorf("line %d: unexpected %q", lineNo, line)
		}
		name, text, _ := strings.Cut(line[3:], " ")
		if !want(table, name) {
			continue
		}
		c := rs.chain(table, name)
		c.exists = true
		r := rule{text: text}
		if containsAny(text, needles) {
			r.key, r.sp, r.err = ruleKey(text, rs.v6)
		}
		c.rules = append(c.rules, r)
	}
	return nil
}

func containsAny(s string, needles []string) bool {
	for _, n := range needles {
		if strings.Contains(s, n) {
			return true
		}
	}
	return false
}

// parsed returns the rule's spec, parsing it on first use; nil when the
// text cannot be parsed (it is then treated as foreign and unknown).
func (r *rule) parsed(v6 bool) *spec {
	if r.sp == nil && r.err == nil {
		_, r.sp, r.err = ruleKey(r.text, v6)
	}
	return r.sp
}
