package netfilter

import (
	"golang.org/x/sys/unix"

	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter/rule"
	"github.com/ecs-remediator/ecs-remediator/pkg/nfnetlink"
)

// Re-adding our own rules over netlink. iptables-nft-restore costs a
// process and, at 50 000 foreign rules, a fetch of the whole table (see
// docs/performance.md); but a rule of ours that the kernel dumped once
// can be given back to it as it was: its NFTA_RULE_EXPRESSIONS are what
// iptables-nft made of our spelling, and the kernel accepts them in an
// NFT_MSG_NEWRULE (a dump's attributes are the same as a request's). So
// the expressions of every rule of ours read over netlink are kept, per
// family and key, and a repair that only inserts and appends rules whose
// expressions are known sends them in the same generation-checked batch as
// its deletions: one transaction, no process, no table fetch. Anything
// else (a rule never seen, a new chain, a position next to a rule just
// inserted) goes through iptables-nft-restore as before.

// ourExprs remembers the expressions of the rules of ours in chain ch,
// read over netlink (nrs, index for index). A copy with a comment
// (userdata) is not taken: the repair must not add someone's comment.
func (e *Enforcer) ourExprs(v6 bool, ch *rule.Chain, nrs []nlRule, in rule.Interest) {
	if len(nrs) != len(ch.Rules) {
		return
	}
	keys := in.OursIn(ch.Table, ch.Name)
	for j, r := range ch.Rules {
		if r.Opaque || !keys[r.Key] || len(nrs[j].udata) != 0 || len(nrs[j].exprs) == 0 {
			continue
		}
		e.exprMu.Lock()
		if e.exprs == nil {
			e.exprs = map[exprKey][]byte{}
		}
		k := exprKey{v6, ch.Table, ch.Name, r.Key}
		if _, ok := e.exprs[k]; !ok {
			e.exprs[k] = append([]byte(nil), nrs[j].exprs...)
		}
		e.exprMu.Unlock()
	}
}

type exprKey struct {
	v6                bool
	table, chain, key string
}

// insertsByNetlink turns the plan's inserts and appends into
// NFT_MSG_NEWRULE requests placed by handle, against rs after dels. ok is
// false when any op needs iptables-nft-restore.
func (e *Enforcer) insertsByNetlink(ops []op, rs *rule.Ruleset, dels []nlDelete, v6 bool) ([]nfnetlink.Request, bool) {
	if len(ops) == 0 {
		return nil, true
	}
	gone := map[nlDelete]bool{}
	for _, d := range dels {
		gone[d] = true
	}
	// handles per chain as the batch goes: 0 for a rule it inserted.
	lists := map[[2]string][]uint64{}
	list := func(table, name string) []uint64 {
		k := [2]string{table, name}
		if l, ok := lists[k]; ok {
			return l
		}
		var l []uint64
		for _, r := range rs.Chain(table, name).Rules {
			if r.Handle == 0 {
				return nil // not read over netlink
			}
			if !gone[nlDelete{table: table, chain: name, handle: r.Handle}] {
				l = append(l, r.Handle)
			}
		}
		lists[k] = l
		return l
	}
	var reqs []nfnetlink.Request
	for _, o := range ops {
		if (o.verb != "-I" && o.verb != "-A") || o.st == nil || !rs.Chain(o.table, o.chain).Exists {
			return nil, false
		}
		e.exprMu.Lock()
		ex := e.exprs[exprKey{v6, o.table, o.chain, o.st.w.Key}]
		e.exprMu.Unlock()
		if ex == nil {
			return nil, false
		}
		l := list(o.table, o.chain)
		if l == nil && len(rs.Chain(o.table, o.chain).Rules) > 0 {
			return nil, false
		}
		attrs := []nfnetlink.Attr{nfnetlink.String(unix.NFTA_RULE_TABLE, o.table), nfnetlink.String(unix.NFTA_RULE_CHAIN, o.chain),
			{Type: unix.NFTA_RULE_EXPRESSIONS | unix.NLA_F_NESTED, Data: ex}}
		flags := uint16(unix.NLM_F_CREATE)
		at := len(l)
		if o.verb == "-I" {
			at = o.pos - 1
		}
		switch {
		case at < 0 || at > len(l):
			return nil, false
		case at == len(l):
			flags |= unix.NLM_F_APPEND // at the end
		case at == 0:
			// no position, no append: at the head
		case l[at] == 0:
			return nil, false // before a rule this batch inserts: no handle yet
		default:
			attrs = append(attrs, nfnetlink.U64(unix.NFTA_RULE_POSITION, l[at])) // before that rule
		}
		l = append(l, 0)
		copy(l[at+1:], l[at:])
		l[at] = 0
		lists[[2]string{o.table, o.chain}] = l
		reqs = append(reqs, nfnetlink.Request{Subsys: unix.NFNL_SUBSYS_NFTABLES, Type: unix.NFT_MSG_NEWRULE,
			Flags: flags, Family: family(v6), Attrs: attrs})
	}
	return reqs, true
}

// knowExprs reports whether the expressions of every rule ops insert are
// known (true on the legacy backend, which has none to know).
func (e *Enforcer) knowExprs(ops []op, v6 bool) bool {
	if e.v4.backend != backendNFT {
		return true
	}
	e.exprMu.Lock()
	defer e.exprMu.Unlock()
	for _, o := range ops {
		if (o.verb == "-I" || o.verb == "-A") && o.st != nil && e.exprs[exprKey{v6, o.table, o.chain, o.st.w.Key}] == nil {
			return false
		}
	}
	return true
}
