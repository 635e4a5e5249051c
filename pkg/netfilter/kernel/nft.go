package kernel

import (
	"context"
	"errors"
	"net/netip"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter/rule"
)

// NFT reads one family's nf_tables chains over netlink, and writes the
// enforcer's repairs back (Apply). iptables-nft, asked for one chain,
// still fetches every rule of the table and checks it, so every command
// (-S CHAIN, -S CHAIN 1, -C, a restore with -D) costs time in proportion
// to the whole table, whichever chain they are in (figures in
// docs/performance.md). The kernel filters a rule dump by chain itself:
// NFT dumps only the chains of the Interest, prints each rule with
// nftText in iptables-save syntax and hands that text to the same parser
// as the binaries' output (rule.Key), so our rules are still recognised
// by meaning.
//
// A rule nftText cannot print is left opaque when it provably does not
// matter: its bytes hold none of the needles, in nat it cannot name
// 169.254.170.2 as destination, in a filter chain it is below our rules
// (only rules above ours are checked for shadowing). Otherwise the chain
// is read with Text (`iptables -t T -S CHAIN`), counted by FellBack as
// FallbackUnprintable, so an expression we do not know costs time, never
// correctness.
//
// NFT owns two caches: the last read, valid while the nf_tables generation
// (bumped by the kernel on every committed change) and the network
// namespace are the same (Cache); and the expressions of our rules as the
// kernel dumped them, so that a repair can give them back (Apply).
type NFT struct {
	V6       bool
	Text     *Text        // the chains holding a rule that matters and that nftText cannot print
	FellBack FallbackFunc // told of each such chain (nil: nobody)
	// Cache keeps the last read for the next one while the generation is
	// unchanged (New sets it; BenchmarkRead measures the dumps without).
	Cache bool

	last *nftRead
	mu   sync.Mutex // exprs and dumped, filled in by the dumps
	// exprs are the expressions of our rules as the kernel dumped them.
	exprs map[exprKey][]byte
	// dumped is the number of rules in the chains dumped last time, once
	// a dump was made (parallelDumpRules).
	dumped     int
	dumpedOnce bool
}

func family(v6 bool) uint8 {
	if v6 {
		return unix.NFPROTO_IPV6
	}
	return unix.NFPROTO_IPV4
}

var credentialsPrefix = netip.MustParseAddr(rule.CredentialsAddr)

// nftRead is a ruleset read over netlink, and where: the kernel bumps the
// nf_tables generation on every committed change, so a read that finds
// the same generation (in the same network namespace, for the same
// chains) would read exactly the same rules.
type nftRead struct {
	netns  uint64
	chains string
	rs     *rule.Ruleset
}

// cached returns the last read when it is still the kernel's.
func (n *NFT) cached(gen uint32, netns uint64, key string) *rule.Ruleset {
	c := n.last
	if !n.Cache || c == nil || netns == 0 || c.netns != netns || c.chains != key || c.rs.Gen != gen {
		return nil
	}
	return c.rs.Clone()
}

// Remember makes rs, the state of the chains of in, the last read: the
// enforcer derives the state after its own transactions (at the
// generation they moved to) rather than dumping the chains again.
func (n *NFT) Remember(rs *rule.Ruleset, in rule.Interest) {
	n.remember(netNS(), in.ChainsKey(), rs)
}

func (n *NFT) remember(netns uint64, key string, rs *rule.Ruleset) {
	if netns == 0 || !rs.Netlink {
		n.last = nil
		return
	}
	n.last = &nftRead{netns: netns, chains: key, rs: rs.Clone()}
}

// parallelDumpRules: from this many rules in the chains read last time
// (per family), the chains are dumped in parallel, each on its own socket:
// most of a long dump's time is the kernel walking the chain, on the
// receiving thread.
const parallelDumpRules = 2000

func (n *NFT) lastDumped() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.dumpedOnce {
		return parallelDumpRules // not known yet: assume big
	}
	return n.dumped
}

func (n *NFT) setDumped(total int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.dumped, n.dumpedOnce = total, true
}

// Read reads the chains of in over netlink.
func (n *NFT) Read(ctx context.Context, in rule.Interest) (*rule.Ruleset, error) {
	v6 := n.V6
	pats := needleBytes(in.Needles)
	for _, n := range in.Needles {
		pats = append(pats, []byte(n))
	}
	c, err := nlDial()
	if err != nil {
		return nil, err
	}
	defer c.close()
	gen, err := c.genID()
	if err != nil {
		return nil, err
	}
	netns, key := netNS(), in.ChainsKey()
	if rs := n.cached(gen, netns, key); rs != nil {
		return rs, nil
	}
	rs := rule.NewRuleset(v6)
	rs.Gen, rs.Netlink = gen, true
	// Big chains are dumped in parallel (parallelDumpRules). The sockets
	// are opened here, so they belong to this thread's network namespace.
	type chainRead struct {
		table, name string
		conn        *nlConn
		nrs         []rawRule
		ch          *rule.Chain
		printed     bool
		err         error
	}
	var reads []*chainRead
	defer func() {
		for _, r := range reads {
			if r.conn != nil {
				r.conn.close()
			}
		}
	}()
	// Small chains are dumped one after the other on the one socket: a
	// goroutine and a socket per chain cost more than they save when the
	// dumps take microseconds (and on a loaded machine every wake-up of
	// another thread waits for a CPU).
	parallel := n.lastDumped() >= parallelDumpRules
	for _, ch := range in.Chains {
		r := &chainRead{table: ch.Table, name: ch.Chain}
		if parallel {
			cc, err := nlDial()
			if err != nil {
				return nil, err
			}
			r.conn = cc
		}
		reads = append(reads, r)
	}
	var wg sync.WaitGroup
	for _, r := range reads {
		conn := r.conn
		if conn == nil {
			conn = c
		}
		wg.Add(1)
		dump := func() {
			defer wg.Done()
			r.nrs, r.err = conn.dumpRules(family(v6), r.table, r.name)
			if r.err == nil && len(r.nrs) == 0 && !rule.IsBuiltin(r.table, r.name) {
				if ok, err := conn.chainExists(family(v6), r.table, r.name); err != nil {
					r.err = err
				} else if !ok {
					r.err = errNoChain
				}
			}
			if r.err == nil {
				r.ch = &rule.Chain{Table: r.table, Name: r.name, Exists: true}
				r.printed = printChain(r.ch, r.nrs, in, v6, pats, func(nr *rawRule, v6 bool) printedRule { return nftText(nr.exprs, v6) })
			}
		}
		if parallel {
			go dump()
		} else {
			dump()
		}
	}
	wg.Wait()
	total := 0
	for _, r := range reads {
		total += len(r.nrs)
	}
	n.setDumped(total)
	for _, r := range reads {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if errors.Is(r.err, errNoChain) {
			// A builtin chain of a table nobody created yet reads as
			// empty (as iptables-nft prints it); a user chain is missing.
			rs.Chain(r.table, r.name)
			continue
		}
		if r.err != nil {
			return nil, r.err
		}
		rs.Chain(r.table, r.name)
		rs.Tables[r.table][r.name] = r.ch
		if r.printed {
			n.ourExprs(r.ch, r.nrs, in)
		}
		if !r.printed {
			if n.FellBack != nil {
				n.FellBack("nft", FallbackUnprintable, nil)
			}
			if err := readChainText(ctx, n.Text, rs, r.table, r.name, in.Needles, r.nrs); err != nil {
				return nil, err
			}
		}
	}
	// The generation must not have moved while we dumped chain after
	// chain, or the chains could be from different moments.
	if g, err := c.genID(); err != nil || g != gen {
		rs.Netlink = false
	} else {
		n.remember(netns, key, rs)
	}
	return rs, nil
}

// readChainText reads one chain with iptables-nft itself and keeps the
// handles of the dump when the two agree on the number of rules (else
// the repair falls back to a restore batch).
func readChainText(ctx context.Context, text *Text, rs *rule.Ruleset, table, name string, needles []string, nrs []rawRule) error {
	rules, err := text.ReadChain(ctx, table, name, needles)
	if err != nil {
		return err
	}
	ch := rs.Chain(table, name)
	ch.Rules = rules
	if len(ch.Rules) != len(nrs) {
		rs.Netlink = false
		return nil
	}
	for j := range ch.Rules {
		ch.Rules[j].Handle = nrs[j].handle
	}
	return nil
}
