package kernel

import (
	"golang.org/x/sys/unix"

	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter/rule"
	"github.com/ecs-remediator/ecs-remediator/pkg/nfnetlink"
)

// ourExprs remembers the expressions of the rules of ours in chain ch,
// read over netlink (nrs, index for index). A copy with a comment
// (userdata) is not taken: the repair must not add someone's comment.
func (n *NFT) ourExprs(ch *rule.Chain, nrs []rawRule, in rule.Interest) {
	if len(nrs) != len(ch.Rules) {
		return
	}
	keys := in.OursIn(ch.Table, ch.Name)
	for j, r := range ch.Rules {
		if r.Opaque || !keys[r.Key] || len(nrs[j].udata) != 0 || len(nrs[j].exprs) == 0 {
			continue
		}
		n.mu.Lock()
		if n.exprs == nil {
			n.exprs = map[exprKey][]byte{}
		}
		k := exprKey{ch.Table, ch.Name, r.Key}
		if _, ok := n.exprs[k]; !ok {
			n.exprs[k] = append([]byte(nil), nrs[j].exprs...)
		}
		n.mu.Unlock()
	}
}

// exprKey names one of our rules in one chain (the NFT is of one family).
type exprKey struct{ table, chain, key string }

// Delete is one rule to delete by its nf_tables handle.
type Delete struct {
	Table, Chain string
	Handle       uint64
}

// Add is one of our rules to insert over netlink. Key names it: its
// expressions must have been dumped by an earlier Read. Pos is its 1-based
// position in the chain as the batch goes (ecs-init's -I), 0 appends it
// (-A).
type Add struct {
	Table, Chain, Key string
	Pos               int
}

// Apply deletes dels by handle and, when every add's expressions are
// known and its place can be named by handle, inserts adds, in one
// transaction that the kernel refuses (ERESTART) when the ruleset changed
// since generation rs.Gen was read, or (ENOENT) when a rule is gone: a
// stale plan never applies. added reports whether adds went with it (if
// not, they are the caller's to add otherwise, after the deletions).
// Nothing is sent when there is nothing to send.
//
// This is how the enforcer's repairs avoid iptables-nft-restore, which
// costs a process and, at 50 000 foreign rules, a fetch of the whole table
// (docs/performance.md): a rule found twice is deleted by its handle, and
// a rule of ours that the kernel dumped once is given back to it as it
// was: its NFTA_RULE_EXPRESSIONS are what iptables-nft made of our
// spelling, and the kernel accepts them in an NFT_MSG_NEWRULE (a dump's
// attributes are the same as a request's). Read keeps the expressions of
// every rule of ours it dumps, per key. The transaction is bound to the
// generation with NFNL_BATCH_GENID, which google/nftables cannot send.
// Anything else (a rule never seen, a new chain, a position next to a rule
// just inserted) is the enforcer's to do with iptables-nft-restore. The
// writes live with the reader because they need what only it has seen:
// the handles and the expressions.
func (n *NFT) Apply(rs *rule.Ruleset, dels []Delete, adds []Add) (added bool, err error) {
	reqs, ok := n.inserts(adds, rs, dels)
	if !ok {
		reqs = nil
	}
	if len(dels) == 0 && len(reqs) == 0 {
		return false, nil
	}
	c, err := nlDial()
	if err != nil {
		return false, err
	}
	defer c.close()
	if err := c.batch(family(n.V6), rs.Gen, dels, reqs); err != nil {
		return false, err
	}
	return len(reqs) > 0, nil
}

// KnowsAll reports whether the expressions of every rule of adds are
// known (it could be given back over netlink).
func (n *NFT) KnowsAll(adds []Add) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, a := range adds {
		if n.exprs[exprKey{a.Table, a.Chain, a.Key}] == nil {
			return false
		}
	}
	return true
}

// Generation is the nf_tables generation now.
func (n *NFT) Generation() (uint32, error) {
	c, err := nlDial()
	if err != nil {
		return 0, err
	}
	defer c.close()
	return c.genID()
}

// inserts turns adds into NFT_MSG_NEWRULE requests placed by handle,
// against rs after dels. ok is false when any add needs
// iptables-nft-restore.
func (n *NFT) inserts(adds []Add, rs *rule.Ruleset, dels []Delete) ([]nfnetlink.Request, bool) {
	if len(adds) == 0 {
		return nil, true
	}
	gone := map[Delete]bool{}
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
			if !gone[Delete{Table: table, Chain: name, Handle: r.Handle}] {
				l = append(l, r.Handle)
			}
		}
		lists[k] = l
		return l
	}
	var reqs []nfnetlink.Request
	for _, o := range adds {
		if !rs.Chain(o.Table, o.Chain).Exists {
			return nil, false
		}
		n.mu.Lock()
		ex := n.exprs[exprKey{o.Table, o.Chain, o.Key}]
		n.mu.Unlock()
		if ex == nil {
			return nil, false
		}
		l := list(o.Table, o.Chain)
		if l == nil && len(rs.Chain(o.Table, o.Chain).Rules) > 0 {
			return nil, false
		}
		attrs := []nfnetlink.Attr{nfnetlink.String(unix.NFTA_RULE_TABLE, o.Table), nfnetlink.String(unix.NFTA_RULE_CHAIN, o.Chain),
			{Type: unix.NFTA_RULE_EXPRESSIONS | unix.NLA_F_NESTED, Data: ex}}
		flags := uint16(unix.NLM_F_CREATE)
		at := len(l)
		if o.Pos > 0 {
			at = o.Pos - 1
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
		lists[[2]string{o.Table, o.Chain}] = l
		reqs = append(reqs, nfnetlink.Request{Subsys: unix.NFNL_SUBSYS_NFTABLES, Type: unix.NFT_MSG_NEWRULE,
			Flags: flags, Family: family(n.V6), Attrs: attrs})
	}
	return reqs, true
}
