package rule

import (
	"fmt"
	"strings"
)

// Ruleset is what was read from the kernel (or a saved file) for one
// family: the chains we look at, in order, with their rules.
type Ruleset struct {
	V6     bool
	Tables map[string]map[string]*Chain // table -> chain -> rules
	// Netlink: the rules were read over nf_tables netlink at generation
	// Gen, and each Rule.Handle is set.
	Gen     uint32
	Netlink bool
}

// Chain is one chain as read. Exists is false for a chain that was not
// found (a user chain such as DOCKER-USER that nobody created yet).
type Chain struct {
	Table, Name string
	Exists      bool
	Rules       []Rule
}

// Rule is one rule of a chain. Text is its specification as printed
// (without "-A CHAIN" and counters), usable in "-D CHAIN text". Key is set
// only for rules that may be ours (see ParseText's needles); the Spec is
// parsed on demand.
type Rule struct {
	Text string
	Key  string
	sp   *Spec
	err  error
	// Read from the kernel directly: Handle is the rule's nf_tables
	// handle. Opaque rules were not printed (an expression form the
	// reader does not know) and were proven irrelevant: no needle, no
	// destination that could be the credentials address, not above our
	// rules in a filter chain. NotOurDst: a nat rule whose destination
	// provably excludes 169.254.170.2 (the shadow scan skips it unparsed).
	Handle    uint64
	Opaque    bool
	NotOurDst bool
}

// NewRuleset is an empty ruleset of one family (v6: IPv6).
func NewRuleset(v6 bool) *Ruleset {
	return &Ruleset{V6: v6, Tables: map[string]map[string]*Chain{}}
}

// Chain returns the chain, creating an empty (not existing) entry.
func (rs *Ruleset) Chain(table, name string) *Chain {
	t := rs.Tables[table]
	if t == nil {
		t = map[string]*Chain{}
		rs.Tables[table] = t
	}
	c := t[name]
	if c == nil {
		c = &Chain{Table: table, Name: name, Exists: IsBuiltin(table, name)}
		t[name] = c
	}
	return c
}

// Has reports whether the chain was read (exists or was looked at).
func (rs *Ruleset) Has(table, name string) bool {
	_, ok := rs.Tables[table][name]
	return ok
}

var builtins = map[string][]string{
	"filter": {"INPUT", "FORWARD", "OUTPUT"},
	"nat":    {"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"},
	"mangle": {"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"},
	"raw":    {"PREROUTING", "OUTPUT"},
}

// BuiltinChains lists the chains the kernel creates with table.
func BuiltinChains(table string) []string { return append([]string(nil), builtins[table]...) }

// IsBuiltin reports whether name is a chain the kernel creates with table.
func IsBuiltin(table, name string) bool {
	for _, c := range builtins[table] {
		if c == name {
			return true
		}
	}
	return false
}

// ParseText reads iptables-save output (several tables) or `iptables -S`
// output (one table, given as table). Only chains for which want returns
// true are kept; rules whose text contains one of needles get a key (all
// others cannot be ours and are never tokenised here, so a big foreign
// ruleset costs one line scan).
func ParseText(rs *Ruleset, out string, table string, want func(table, chain string) bool, needles []string) error {
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
				rs.Chain(table, name).Exists = true
			}
			continue
		case strings.HasPrefix(line, "-P ") || strings.HasPrefix(line, "-N "):
			name, _, _ := strings.Cut(line[3:], " ")
			if want(table, name) {
				rs.Chain(table, name).Exists = true
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
		c := rs.Chain(table, name)
		c.Exists = true
		r := Rule{Text: text}
		if MentionsAny(text, needles) {
			r.ParseKey(rs.V6)
		}
		c.Rules = append(c.Rules, r)
	}
	return nil
}

// MentionsAny reports whether s contains one of needles: the cheap test
// that a rule may be ours, before it is tokenised.
func MentionsAny(s string, needles []string) bool {
	for _, n := range needles {
		if strings.Contains(s, n) {
			return true
		}
	}
	return false
}

// Spec returns the rule's parse, parsing it on first use; nil when the
// text cannot be parsed (it is then treated as foreign and unknown).
func (r *Rule) Spec(v6 bool) *Spec {
	if r.sp == nil && r.err == nil {
		_, r.sp, r.err = Key(r.Text, v6)
	}
	return r.sp
}

// TargetOf finds the -j/-g target in a printed rule without parsing it.
func TargetOf(text string) string {
	for _, sep := range []string{" -j ", " -g "} {
		if i := strings.LastIndex(" "+text, sep); i >= 0 {
			t, _, _ := strings.Cut(text[i-1+len(sep):], " ")
			return t
		}
	}
	return ""
}

// Clone copies the maps and chains (not the rules' parsed specs, which
// are only ever filled in, never changed).
func (rs *Ruleset) Clone() *Ruleset {
	out := NewRuleset(rs.V6)
	out.Gen, out.Netlink = rs.Gen, rs.Netlink
	for t, cs := range rs.Tables {
		for n, c := range cs {
			cc := *c
			cc.Rules = append([]Rule(nil), c.Rules...)
			out.Chain(t, n)
			out.Tables[t][n] = &cc
		}
	}
	return out
}

// ParseKey parses the rule's text and sets its key (and its spec, or the
// parse error).
func (r *Rule) ParseKey(v6 bool) { r.Key, r.sp, r.err = Key(r.Text, v6) }
