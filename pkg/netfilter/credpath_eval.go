package netfilter

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter/rule"
)

// tri is a condition's answer for a packet: yes, no or maybe (the
// packet's field is not fully known, such as the source port, or the
// condition is one the model does not know, such as an ipset).
type tri int8

const (
	no tri = iota
	maybe
	yes
)

func and3(a, b tri) tri {
	if a < b {
		return a
	}
	return b
}

func not3(a tri) tri { return yes - a }

func bool3(b bool) tri {
	if b {
		return yes
	}
	return no
}

// iface is what is known of a packet's interface: a name, a name prefix
// (wild, as iptables' "docker+"), or nothing (any; notLo: any but lo).
type iface struct {
	name  string
	wild  bool
	any   bool
	notLo bool
}

// addr is what is known of an address: within in, outside every notIn;
// local says whether it is one of the host's own (addrtype LOCAL).
type addr struct {
	in    netip.Prefix
	notIn []netip.Prefix
	local tri
}

// pkt is the packet followed through one hook.
type pkt struct {
	hook         string // "input" or "output"
	iif, oif     iface
	src, dst     addr
	proto        string // tcp
	sport, dport int    // 0: unknown
	syn          bool   // a SYN (first packet of a connection)
	ctstate      []string
	ctstatus     []string // conntrack status bits set (EXPECTED, SEEN_REPLY, ASSURED, CONFIRMED)
	ctdir        string   // ORIGINAL or REPLY
	origDst      netip.Addr
	origDport    int
}

// cond is one condition of a rule.
type cond interface {
	eval(p *pkt) tri
}

// verdict kinds of a rule's target.
type vkind int8

const (
	vContinue vkind = iota // LOG, counter, MARK: the walk goes on
	vAccept
	vDrop // DROP, REJECT
	vReturn
	vJump
	vGoto
	vUnknown // a target that decides in a way not modelled (NFQUEUE)
	vMap     // an nft verdict map, expanded into one rule per element (credpath_nft.go)
)

// ruleRef names a rule (pos >= 1) or a chain's policy (pos 0).
type ruleRef struct {
	where  string // "iptables-nft filter INPUT", "nft inet filter input"
	chain  string
	pos    int
	text   string
	handle uint64 // nft: the rule's handle
}

func (r ruleRef) String() string {
	if r.where == "" {
		return ""
	}
	if r.pos == 0 {
		return r.where + " policy " + r.text
	}
	return fmt.Sprintf("%s rule %d (%s)", r.where, r.pos, r.text)
}

// mrule is one rule of the model.
type mrule struct {
	conds   []cond
	unknown []string // conditions not modelled (each makes the match at best maybe)
	kind    vkind
	target  string // jump or goto target chain
	what    string // the target as written, for vUnknown
	ref     ruleRef
	vmap    []vmapEntry
}

func (r *mrule) match(p *pkt) tri {
	m := yes
	if len(r.unknown) > 0 {
		m = maybe
	}
	for _, c := range r.conds {
		m = and3(m, c.eval(p))
		if m == no {
			return no
		}
	}
	return m
}

// mchain is a chain: its rules and, for a base chain, its policy
// ("ACCEPT" or "DROP"; "" for a user chain, which returns).
type mchain struct {
	name   string
	policy string
	rules  []mrule
	ref    ruleRef // where, for the policy
}

// mtable is the chains of one table, for jumps.
type mtable struct {
	where  string
	chains map[string]*mchain
}

// base is one base chain on a hook.
type base struct {
	t     *mtable
	chain string
	prio  int
	// owner says who may repair it: "iptables" for the backend in use,
	// "" for a table we do not own.
	owner  string
	family string // "nf_tables", "legacy", "ip", "inet"
	table  string
}

// outcome is the verdict of a walk through one base chain.
type outcome struct {
	v  vkind // vAccept, vDrop or vUnknown
	by ruleRef
	// top is the position (1-based) in the base chain of the rule that
	// decided or led (by a jump) to the decision; len(rules)+1 for the policy.
	top int
	// undecided names the rule that made the verdict undecidable.
	undecided ruleRef
	reason    string
}

// maxSteps bounds a walk (forks on undecidable rules, loops through
// jumps): past it the packet is undecidable.
const maxSteps = 20000

type walker struct {
	t     *mtable
	p     *pkt
	base  *mchain
	steps int
}

// frame is where a jump returns to.
type frame struct {
	c   *mchain
	i   int
	top int
}

// evalBase follows p through base chain b.
func evalBase(b base, p *pkt) outcome {
	c := b.t.chains[b.chain]
	if c == nil {
		return outcome{v: vAccept, by: ruleRef{where: b.t.where, chain: b.chain, text: "ACCEPT (no such chain)"}}
	}
	w := &walker{t: b.t, p: p, base: c}
	return w.walk(c, 0, -1, nil)
}

func (w *walker) policy() outcome {
	c := w.base
	v := vAccept
	if c.policy == "DROP" {
		v = vDrop
	}
	return outcome{v: v, by: ruleRef{where: c.ref.where, chain: c.name, text: c.policy}, top: len(c.rules) + 1}
}

// walk follows the packet from rule i of c; top is the position in the
// base chain of the jump that led here (-1: c is the base chain), stack
// where RETURN and the end of a user chain go back to. The end of the
// base chain is its policy.
func (w *walker) walk(c *mchain, i, top int, stack []frame) outcome {
	for ; i < len(c.rules); i++ {
		w.steps++
		if w.steps > maxSteps || len(stack) > 64 {
			return outcome{v: vUnknown, reason: "too many undecidable rules or jumps to follow", undecided: c.rules[i].ref}
		}
		r := &c.rules[i]
		pos := top
		if pos < 0 {
			pos = i + 1
		}
		if r.kind == vContinue {
			continue
		}
		m := r.match(w.p)
		if m == no {
			continue
		}
		matched := w.take(c, i, r, pos, top, stack)
		if m == yes {
			return matched
		}
		// maybe: follow both
		return merge(matched, w.walk(c, i+1, top, stack), r)
	}
	return w.ret(stack)
}

// ret leaves a chain (RETURN or its end).
func (w *walker) ret(stack []frame) outcome {
	if len(stack) == 0 {
		return w.policy()
	}
	f := stack[len(stack)-1]
	return w.walk(f.c, f.i, f.top, stack[:len(stack)-1])
}

// take is the walk when rule r (rule i of c) matched.
func (w *walker) take(c *mchain, i int, r *mrule, pos, top int, stack []frame) outcome {
	switch r.kind {
	case vAccept, vDrop:
		return outcome{v: r.kind, by: r.ref, top: pos}
	case vReturn:
		if len(stack) == 0 && c == w.base {
			return w.policy()
		}
		return w.ret(stack)
	case vJump, vGoto:
		sub := w.t.chains[r.target]
		if sub == nil {
			return outcome{v: vUnknown, undecided: r.ref, top: pos, reason: "chain " + r.target + " was not read"}
		}
		if r.kind == vJump {
			stack = append(append([]frame(nil), stack...), frame{c: c, i: i + 1, top: top})
		}
		return w.walk(sub, 0, pos, stack)
	}
	return outcome{v: vUnknown, undecided: r.ref, top: pos, reason: "its target " + r.what + " is not modelled"}
}

// merge joins the two branches of a fork on rule r.
func merge(a, b outcome, r *mrule) outcome {
	if a.v == b.v && a.v != vUnknown {
		if a.v == vDrop {
			return a // the earlier blocker
		}
		return b
	}
	u := outcome{v: vUnknown, undecided: r.ref, top: a.top, reason: why(r)}
	if a.v == vUnknown && a.undecided.where != "" {
		u.undecided, u.reason = a.undecided, a.reason
	}
	return u
}

func why(r *mrule) string {
	if len(r.unknown) > 0 {
		return "its " + strings.Join(r.unknown, ", ") + " not modelled"
	}
	return "it may or may not match this packet"
}

// hookVerdict is the verdict over every base chain of a hook.
type hookVerdict struct {
	v       vkind
	results []baseResult
}

type baseResult struct {
	b base
	o outcome
}

// evalHook is the credential-path evaluator, pure: the model of the
// rules every packet meets on one netfilter hook (base chains, each a
// list of rules and a policy) and one packet in; a verdict and what
// decided it out. It knows nothing of iptables, nft or the kernel:
// credpath_ipt.go and credpath_nft.go turn what was read into the model,
// credpath.go reads, repairs and reports. docs/credential-path.md says
// what is modelled and what is reported as undecidable.
//
// p is followed through every base chain in priority order: a drop in
// any blocks; an undecidable one with no drop elsewhere leaves the packet
// undecidable. A rule that maybe matches and could decide forks the walk
// (see walker): the packet is followed both as matched and as not
// matched; when both end with the same verdict, that is the verdict, else
// the packet is undecidable and the first such rule is named.
func evalHook(bases []base, p *pkt) hookVerdict {
	sort.SliceStable(bases, func(i, j int) bool { return bases[i].prio < bases[j].prio })
	hv := hookVerdict{v: vAccept}
	for _, b := range bases {
		o := evalBase(b, p)
		hv.results = append(hv.results, baseResult{b: b, o: o})
		switch {
		case o.v == vDrop:
			hv.v = vDrop
		case o.v == vUnknown && hv.v != vDrop:
			hv.v = vUnknown
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

func (c condIface) eval(p *pkt) tri {
	i := p.iif
	if c.out {
		i = p.oif
	}
	return xorNeg(ifaceMatch(c.name, i), c.neg)
}

func xorNeg(t tri, neg bool) tri {
	if neg {
		return not3(t)
	}
	return t
}

func ifaceMatch(rule string, i iface) tri {
	if rule == "+" || rule == "" {
		return yes
	}
	rp, rw := strings.CutSuffix(rule, "+")
	switch {
	case i.any:
		if rule == "lo" && i.notLo {
			return no
		}
		return maybe
	case i.wild:
		if rw && strings.HasPrefix(i.name, rp) {
			return yes
		}
		if strings.HasPrefix(rp, i.name) {
			return maybe
		}
		return no
	case rw:
		return bool3(strings.HasPrefix(i.name, rp))
	}
	return bool3(i.name == rule)
}

type condAddr struct {
	src  bool
	neg  bool
	pfxs []netip.Prefix // any of
}

func (c condAddr) eval(p *pkt) tri {
	a := p.dst
	if c.src {
		a = p.src
	}
	t := no
	for _, q := range c.pfxs {
		if m := addrMatch(q, a); m > t {
			t = m
		}
	}
	return xorNeg(t, c.neg)
}

func addrMatch(q netip.Prefix, a addr) tri {
	if q.Addr().Is6() != a.in.Addr().Is6() {
		return no
	}
	if q.Bits() == 0 {
		return yes
	}
	if q.Bits() <= a.in.Bits() && q.Contains(a.in.Addr()) {
		return yes
	}
	if !q.Overlaps(a.in) {
		return no
	}
	for _, n := range a.notIn {
		if n.Bits() <= q.Bits() && n.Contains(q.Addr()) {
			return no
		}
	}
	return maybe
}

type condProto struct {
	neg   bool
	proto string
}

func (c condProto) eval(p *pkt) tri {
	pr := rule.NormProto(c.proto)
	if pr == "all" || pr == "0" {
		return xorNeg(yes, c.neg)
	}
	return xorNeg(bool3(pr == p.proto), c.neg)
}

type portRangeT struct{ lo, hi int }

type condPort struct {
	src, either bool // either: --ports (source or destination)
	neg         bool
	ranges      []portRangeT
}

func (c condPort) eval(p *pkt) tri {
	in := func(port int) tri {
		if port == 0 {
			for _, r := range c.ranges {
				if r.lo <= 0 && r.hi >= 65535 {
					return yes
				}
			}
			return maybe
		}
		for _, r := range c.ranges {
			if port >= r.lo && port <= r.hi {
				return yes
			}
		}
		return no
	}
	var t tri
	switch {
	case c.either:
		t = in(p.dport)
		if s := in(p.sport); s > t {
			t = s
		}
	case c.src:
		t = in(p.sport)
	default:
		t = in(p.dport)
	}
	return xorNeg(t, c.neg)
}

// condProtoOf: a port or flags match implies the protocol.
type condCt struct {
	neg    bool
	states []string // INVALID NEW ESTABLISHED RELATED UNTRACKED SNAT DNAT
}

func (c condCt) eval(p *pkt) tri {
	for _, s := range c.states {
		for _, have := range p.ctstate {
			if strings.EqualFold(s, have) {
				return xorNeg(yes, c.neg)
			}
		}
	}
	return xorNeg(no, c.neg)
}

type condCtStatus struct {
	neg  bool
	vals []string // NONE EXPECTED SEEN_REPLY ASSURED CONFIRMED DNAT SNAT
}

func (c condCtStatus) eval(p *pkt) tri {
	for _, s := range c.vals {
		s = strings.ToUpper(s)
		if s == "NONE" {
			if len(p.ctstatus) == 0 {
				return xorNeg(yes, c.neg)
			}
			continue
		}
		for _, have := range append(append([]string(nil), p.ctstatus...), p.ctstate...) {
			if strings.EqualFold(s, have) && (s != "NEW" && s != "ESTABLISHED") {
				return xorNeg(yes, c.neg)
			}
		}
	}
	return xorNeg(no, c.neg)
}

type condCtDir struct{ dir string }

func (c condCtDir) eval(p *pkt) tri { return bool3(strings.EqualFold(c.dir, p.ctdir)) }

type condFrag struct{ neg bool }

func (c condFrag) eval(*pkt) tri { return xorNeg(no, c.neg) } // a SYN is never a fragment

// condSyn is --syn or --tcp-flags MASK COMP.
type condSyn struct {
	neg        bool
	mask, comp []string
}

func (c condSyn) eval(p *pkt) tri {
	if p.proto != "tcp" {
		return no
	}
	set := map[string]bool{}
	if p.syn {
		set["SYN"] = true
	} else {
		return maybe // not modelled: flags of later packets
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

func (c condAddrType) eval(p *pkt) tri {
	a := p.dst
	if c.src {
		a = p.src
	}
	t := no
	for _, ty := range c.types {
		var m tri
		switch strings.ToUpper(ty) {
		case "LOCAL":
			m = a.local
		case "UNICAST":
			m = not3(a.local)
			if a.in.Addr().IsLoopback() && a.in.Bits() >= 8 {
				m = no
			}
		case "BROADCAST", "MULTICAST", "ANYCAST", "BLACKHOLE", "UNREACHABLE", "PROHIBIT", "NAT", "XRESOLVE", "THROW":
			m = no
			if a.local != yes && !a.in.Addr().IsLoopback() {
				m = maybe
			}
		default:
			m = maybe
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

func (c condOrigDst) eval(p *pkt) tri {
	if !p.origDst.IsValid() {
		return maybe
	}
	t := no
	for _, q := range c.pfxs {
		if q.Contains(p.origDst) {
			t = yes
		}
	}
	return xorNeg(t, c.neg)
}
