package path

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter/rule"
)

// Tri is a condition's answer for a packet: yes, no or maybe (the
// packet's field is not fully known, such as the source port, or the
// condition is one the model does not know, such as an ipset).
type Tri int8

const (
	No Tri = iota
	Maybe
	Yes
)

func and3(a, b Tri) Tri {
	if a < b {
		return a
	}
	return b
}

func not3(a Tri) Tri { return Yes - a }

func bool3(b bool) Tri {
	if b {
		return Yes
	}
	return No
}

// Iface is what is known of a packet's interface: a name, a name prefix
// (wild, as iptables' "docker+"), or nothing (any; notLo: any but lo).
type Iface struct {
	Name  string
	Wild  bool
	Any   bool
	NotLo bool
}

// Addr is what is known of an address: within in, outside every notIn;
// local says whether it is one of the host's own (addrtype LOCAL).
type Addr struct {
	In    netip.Prefix
	NotIn []netip.Prefix
	Local Tri
}

// Packet is the packet followed through one hook.
type Packet struct {
	Hook         string // "input" or "output"
	Iif, Oif     Iface
	Src, Dst     Addr
	Proto        string // tcp
	Sport, Dport int    // 0: unknown
	Syn          bool   // a SYN (first packet of a connection)
	CtState      []string
	CtStatus     []string // conntrack status bits set (EXPECTED, SEEN_REPLY, ASSURED, CONFIRMED)
	CtDir        string   // ORIGINAL or REPLY
	OrigDst      netip.Addr
	OrigDport    int
}

// cond is one condition of a rule.
type cond interface {
	eval(p *Packet) Tri
}

// verdict kinds of a rule's target.
type Verdict int8

const (
	vContinue Verdict = iota // LOG, counter, MARK: the walk goes on
	Accept
	Drop // DROP, REJECT
	vReturn
	vJump
	vGoto
	Unknown // a target that decides in a way not modelled (NFQUEUE)
	vMap    // an nft verdict map, expanded into one rule per element (nft.go)
)

// RuleRef names a rule (pos >= 1) or a chain's policy (pos 0).
type RuleRef struct {
	where  string // "iptables-nft filter INPUT", "nft inet filter input"
	chain  string
	Pos    int
	Text   string
	Handle uint64 // nft: the rule's handle
}

func (r RuleRef) String() string {
	if r.where == "" {
		return ""
	}
	if r.Pos == 0 {
		return r.where + " policy " + r.Text
	}
	return fmt.Sprintf("%s rule %d (%s)", r.where, r.Pos, r.Text)
}

// Rule is one rule of the model.
type Rule struct {
	conds   []cond
	unknown []string // conditions not modelled (each makes the match at best maybe)
	kind    Verdict
	target  string // jump or goto target chain
	what    string // the target as written, for vUnknown
	Ref     RuleRef
	vmap    []vmapEntry
}

func (r *Rule) match(p *Packet) Tri {
	m := Yes
	if len(r.unknown) > 0 {
		m = Maybe
	}
	for _, c := range r.conds {
		m = and3(m, c.eval(p))
		if m == No {
			return No
		}
	}
	return m
}

// Chain is a chain: its rules and, for a base chain, its policy
// ("ACCEPT" or "DROP"; "" for a user chain, which returns).
type Chain struct {
	Name   string
	Policy string
	Rules  []Rule
	ref    RuleRef // where, for the policy
}

// RulesOrNil is c's rules, none for a chain that is not there.
func (c *Chain) RulesOrNil() []Rule {
	if c == nil {
		return nil
	}
	return c.Rules
}

// Table is the chains of one table, for jumps.
type Table struct {
	Where  string
	Chains map[string]*Chain
}

// Base is one Base chain on a hook.
type Base struct {
	Model *Table
	Chain string
	Prio  int
	// Owner says who may repair it: "iptables" for the backend in use,
	// "" for a table we do not own.
	Owner  string
	Family string // "nf_tables", "legacy", "ip", "inet"
	Table  string
}

// Outcome is the verdict of a walk through one base chain.
type Outcome struct {
	Verdict Verdict // vAccept, vDrop or vUnknown
	By      RuleRef
	// Top is the position (1-based) in the base chain of the rule that
	// decided or led (by a jump) to the decision; len(rules)+1 for the policy.
	Top int
	// Undecided names the rule that made the verdict undecidable.
	Undecided RuleRef
	Reason    string
}

// maxSteps bounds a walk (forks on undecidable rules, loops through
// jumps): past it the packet is undecidable.
const maxSteps = 20000

type walker struct {
	t     *Table
	p     *Packet
	base  *Chain
	steps int
}

// frame is where a jump returns to.
type frame struct {
	c   *Chain
	i   int
	top int
}

// evalBase follows p through base chain b.
func evalBase(b Base, p *Packet) Outcome {
	c := b.Model.Chains[b.Chain]
	if c == nil {
		return Outcome{Verdict: Accept, By: RuleRef{where: b.Model.Where, chain: b.Chain, Text: "ACCEPT (no such chain)"}}
	}
	w := &walker{t: b.Model, p: p, base: c}
	return w.walk(c, 0, -1, nil)
}

func (w *walker) policy() Outcome {
	c := w.base
	v := Accept
	if c.Policy == "DROP" {
		v = Drop
	}
	return Outcome{Verdict: v, By: RuleRef{where: c.ref.where, chain: c.Name, Text: c.Policy}, Top: len(c.Rules) + 1}
}

// walk follows the packet from rule i of c; top is the position in the
// base chain of the jump that led here (-1: c is the base chain), stack
// where RETURN and the end of a user chain go back to. The end of the
// base chain is its policy.
func (w *walker) walk(c *Chain, i, top int, stack []frame) Outcome {
	for ; i < len(c.Rules); i++ {
		w.steps++
		if w.steps > maxSteps || len(stack) > 64 {
			return Outcome{Verdict: Unknown, Reason: "too many undecidable rules or jumps to follow", Undecided: c.Rules[i].Ref}
		}
		r := &c.Rules[i]
		pos := top
		if pos < 0 {
			pos = i + 1
		}
		if r.kind == vContinue {
			continue
		}
		m := r.match(w.p)
		if m == No {
			continue
		}
		matched := w.take(c, i, r, pos, top, stack)
		if m == Yes {
			return matched
		}
		// maybe: follow both
		return merge(matched, w.walk(c, i+1, top, stack), r)
	}
	return w.ret(stack)
}

// ret leaves a chain (RETURN or its end).
func (w *walker) ret(stack []frame) Outcome {
	if len(stack) == 0 {
		return w.policy()
	}
	f := stack[len(stack)-1]
	return w.walk(f.c, f.i, f.top, stack[:len(stack)-1])
}

// take is the walk when rule r (rule i of c) matched.
func (w *walker) take(c *Chain, i int, r *Rule, pos, top int, stack []frame) Outcome {
	switch r.kind {
	case Accept, Drop:
		return Outcome{Verdict: r.kind, By: r.Ref, Top: pos}
	case vReturn:
		if len(stack) == 0 && c == w.base {
			return w.policy()
		}
		return w.ret(stack)
	case vJump, vGoto:
		sub := w.t.Chains[r.target]
		if sub == nil {
			return Outcome{Verdict: Unknown, Undecided: r.Ref, Top: pos, Reason: "chain " + r.target + " was not read"}
		}
		if r.kind == vJump {
			stack = append(append([]frame(nil), stack...), frame{c: c, i: i + 1, top: top})
		}
		return w.walk(sub, 0, pos, stack)
	}
	return Outcome{Verdict: Unknown, Undecided: r.Ref, Top: pos, Reason: "its target " + r.what + " is not modelled"}
}

// merge joins the two branches of a fork on rule r.
func merge(a, b Outcome, r *Rule) Outcome {
	if a.Verdict == b.Verdict && a.Verdict != Unknown {
		if a.Verdict == Drop {
			return a // the earlier blocker
		}
		return b
	}
	u := Outcome{Verdict: Unknown, Undecided: r.Ref, Top: a.Top, Reason: why(r)}
	if a.Verdict == Unknown && a.Undecided.where != "" {
		u.Undecided, u.Reason = a.Undecided, a.Reason
	}
	return u
}

func why(r *Rule) string {
	if len(r.unknown) > 0 {
		return "its " + strings.Join(r.unknown, ", ") + " not modelled"
	}
	return "it may or may not match this packet"
}

// HookVerdict is the verdict over every base chain of a hook.
type HookVerdict struct {
	Verdict Verdict
	Results []BaseResult
}

type BaseResult struct {
	Base    Base
	Outcome Outcome
}

// EvalHook is the credential-path evaluator, pure: the model of the
// rules every packet meets on one netfilter hook (base chains, each a
// list of rules and a policy) and one packet in; a verdict and what
// decided it out. It knows nothing of iptables, nft or the kernel:
// ipt.go and nft.go turn what was read into the model,
// pkg/netfilter reads, repairs and reports. docs/credential-path.md says
// what is modelled and what is reported as undecidable.
//
// p is followed through every base chain in priority order: a drop in
// any blocks; an undecidable one with no drop elsewhere leaves the packet
// undecidable. A rule that maybe matches and could decide forks the walk
// (see walker): the packet is followed both as matched and as not
// matched; when both end with the same verdict, that is the verdict, else
// the packet is undecidable and the first such rule is named.
func EvalHook(bases []Base, p *Packet) HookVerdict {
	sort.SliceStable(bases, func(i, j int) bool { return bases[i].Prio < bases[j].Prio })
	hv := HookVerdict{Verdict: Accept}
	for _, b := range bases {
		o := evalBase(b, p)
		hv.Results = append(hv.Results, BaseResult{Base: b, Outcome: o})
		switch {
		case o.Verdict == Drop:
			hv.Verdict = Drop
		case o.Verdict == Unknown && hv.Verdict != Drop:
			hv.Verdict = Unknown
		}
	}
	return hv
}

// --- conditions ---

type condIface struct {
	out  bool
	neg  bool
	name string // "+" suffix: prefix
}

func (c condIface) eval(p *Packet) Tri {
	i := p.Iif
	if c.out {
		i = p.Oif
	}
	return xorNeg(ifaceMatch(c.name, i), c.neg)
}

func xorNeg(t Tri, neg bool) Tri {
	if neg {
		return not3(t)
	}
	return t
}

func ifaceMatch(rule string, i Iface) Tri {
	if rule == "+" || rule == "" {
		return Yes
	}
	rp, rw := strings.CutSuffix(rule, "+")
	switch {
	case i.Any:
		if rule == "lo" && i.NotLo {
			return No
		}
		return Maybe
	case i.Wild:
		if rw && strings.HasPrefix(i.Name, rp) {
			return Yes
		}
		if strings.HasPrefix(rp, i.Name) {
			return Maybe
		}
		return No
	case rw:
		return bool3(strings.HasPrefix(i.Name, rp))
	}
	return bool3(i.Name == rule)
}

type condAddr struct {
	src  bool
	neg  bool
	pfxs []netip.Prefix // any of
}

func (c condAddr) eval(p *Packet) Tri {
	a := p.Dst
	if c.src {
		a = p.Src
	}
	t := No
	for _, q := range c.pfxs {
		if m := addrMatch(q, a); m > t {
			t = m
		}
	}
	return xorNeg(t, c.neg)
}

func addrMatch(q netip.Prefix, a Addr) Tri {
	if q.Addr().Is6() != a.In.Addr().Is6() {
		return No
	}
	if q.Bits() == 0 {
		return Yes
	}
	if q.Bits() <= a.In.Bits() && q.Contains(a.In.Addr()) {
		return Yes
	}
	if !q.Overlaps(a.In) {
		return No
	}
	for _, n := range a.NotIn {
		if n.Bits() <= q.Bits() && n.Contains(q.Addr()) {
			return No
		}
	}
	return Maybe
}

type condProto struct {
	neg   bool
	proto string
}

func (c condProto) eval(p *Packet) Tri {
	pr := rule.NormProto(c.proto)
	if pr == "all" || pr == "0" {
		return xorNeg(Yes, c.neg)
	}
	return xorNeg(bool3(pr == p.Proto), c.neg)
}

type portRangeT struct{ lo, hi int }

type condPort struct {
	src, either bool // either: --ports (source or destination)
	neg         bool
	ranges      []portRangeT
}

func (c condPort) eval(p *Packet) Tri {
	in := func(port int) Tri {
		if port == 0 {
			for _, r := range c.ranges {
				if r.lo <= 0 && r.hi >= 65535 {
					return Yes
				}
			}
			return Maybe
		}
		for _, r := range c.ranges {
			if port >= r.lo && port <= r.hi {
				return Yes
			}
		}
		return No
	}
	var t Tri
	switch {
	case c.either:
		t = in(p.Dport)
		if s := in(p.Sport); s > t {
			t = s
		}
	case c.src:
		t = in(p.Sport)
	default:
		t = in(p.Dport)
	}
	return xorNeg(t, c.neg)
}

// condProtoOf: a port or flags match implies the protocol.
type condCt struct {
	neg    bool
	states []string // INVALID NEW ESTABLISHED RELATED UNTRACKED SNAT DNAT
}

func (c condCt) eval(p *Packet) Tri {
	for _, s := range c.states {
		for _, have := range p.CtState {
			if strings.EqualFold(s, have) {
				return xorNeg(Yes, c.neg)
			}
		}
	}
	return xorNeg(No, c.neg)
}

type condCtStatus struct {
	neg  bool
	vals []string // NONE EXPECTED SEEN_REPLY ASSURED CONFIRMED DNAT SNAT
}

func (c condCtStatus) eval(p *Packet) Tri {
	for _, s := range c.vals {
		s = strings.ToUpper(s)
		if s == "NONE" {
			if len(p.CtStatus) == 0 {
				return xorNeg(Yes, c.neg)
			}
			continue
		}
		for _, have := range append(append([]string(nil), p.CtStatus...), p.CtState...) {
			if strings.EqualFold(s, have) && (s != "NEW" && s != "ESTABLISHED") {
				return xorNeg(Yes, c.neg)
			}
		}
	}
	return xorNeg(No, c.neg)
}

type condCtDir struct{ dir string }

func (c condCtDir) eval(p *Packet) Tri { return bool3(strings.EqualFold(c.dir, p.CtDir)) }

type condFrag struct{ neg bool }

func (c condFrag) eval(*Packet) Tri { return xorNeg(No, c.neg) } // a SYN is never a fragment

// condSyn is --syn or --tcp-flags MASK COMP.
type condSyn struct {
	neg        bool
	mask, comp []string
}

func (c condSyn) eval(p *Packet) Tri {
	if p.Proto != "tcp" {
		return No
	}
	set := map[string]bool{}
	if p.Syn {
		set["SYN"] = true
	} else {
		return Maybe // not modelled: flags of later packets
	}
	ok := true
	for _, f := range c.mask {
		f = strings.ToUpper(f)
		if f == "ALL" {
			for _, g := range []string{"FIN", "SYN", "RST", "PSH", "ACK", "URG"} {
				if set[g] != contains(c.comp, g) {
					ok = false
				}
			}
			continue
		}
		if set[f] != contains(c.comp, f) {
			ok = false
		}
	}
	return xorNeg(bool3(ok), c.neg)
}

func contains(l []string, s string) bool {
	for _, x := range l {
		x = strings.ToUpper(x)
		if x == s || x == "ALL" {
			return true
		}
	}
	return false
}

type condAddrType struct {
	src   bool
	neg   bool
	types []string
}

func (c condAddrType) eval(p *Packet) Tri {
	a := p.Dst
	if c.src {
		a = p.Src
	}
	t := No
	for _, ty := range c.types {
		var m Tri
		switch strings.ToUpper(ty) {
		case "LOCAL":
			m = a.Local
		case "UNICAST":
			m = not3(a.Local)
			if a.In.Addr().IsLoopback() && a.In.Bits() >= 8 {
				m = No
			}
		case "BROADCAST", "MULTICAST", "ANYCAST", "BLACKHOLE", "UNREACHABLE", "PROHIBIT", "NAT", "XRESOLVE", "THROW":
			m = No
			if a.Local != Yes && !a.In.Addr().IsLoopback() {
				m = Maybe
			}
		default:
			m = Maybe
		}
		if m > t {
			t = m
		}
	}
	return xorNeg(t, c.neg)
}

// condOrigDst is conntrack --ctorigdst / ct original daddr.
type condOrigDst struct {
	neg  bool
	pfxs []netip.Prefix
}

func (c condOrigDst) eval(p *Packet) Tri {
	if !p.OrigDst.IsValid() {
		return Maybe
	}
	t := No
	for _, q := range c.pfxs {
		if q.Contains(p.OrigDst) {
			t = Yes
		}
	}
	return xorNeg(t, c.neg)
}
