package netfilter

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter/kernel"
	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter/rule"
)

// Reading the nf_tables backend over netlink. iptables-nft, asked for one
// chain, still fetches every rule of the table and checks it, so every
// command (-S CHAIN, -S CHAIN 1, -C, a restore with -D) costs time in
// proportion to the whole table, whichever chain they are in (figures in
// docs/performance.md). The kernel filters a rule dump by
// chain itself: we dump only the chains we need, print each rule with
// nftText in iptables-save syntax and hand that text to the same parser
// as before (rule.Key), so our rules are still recognised by meaning.
//
// A rule nftText cannot print is left opaque when it provably does not
// matter: its bytes hold none of our constants, in nat it cannot name
// 169.254.170.2 as destination, in a filter chain it is below our rules
// (only rules above ours are checked for shadowing). Otherwise the chain
// is read with `iptables -t T -S CHAIN` as before, so an expression we do
// not know costs time, never correctness.

func family(v6 bool) uint8 {
	if v6 {
		return unix.NFPROTO_IPV6
	}
	return unix.NFPROTO_IPV4
}

// needleBytes are the binary forms of the needles in an nf_tables rule:
// addresses in network order, ports in both byte orders (cmp data is
// network order, xt blobs often host order); "127." is its first byte.
func needleBytes(needles []string) [][]byte {
	var out [][]byte
	for _, n := range needles {
		if a, err := netip.ParseAddr(n); err == nil {
			out = append(out, a.AsSlice())
			continue
		}
		if p, err := strconv.Atoi(n); err == nil && p > 0 && p < 65536 {
			out = append(out, binary.BigEndian.AppendUint16(nil, uint16(p)), binary.LittleEndian.AppendUint16(nil, uint16(p)))
			continue
		}
		if o, ok := strings.CutSuffix(n, "."); ok {
			if b, err := strconv.Atoi(o); err == nil && b >= 0 && b < 256 {
				out = append(out, []byte{byte(b)})
				continue
			}
		}
		out = append(out, []byte(n))
	}
	return out
}

func containsAnyBytes(b []byte, pats [][]byte) bool {
	for _, p := range pats {
		if bytes.Contains(b, p) {
			return true
		}
	}
	return false
}

var credentialsPrefix = netip.MustParseAddr(credentialsAddr)

// nlCache is the last ruleset read over netlink for one family. The
// kernel bumps the nf_tables generation on every committed change, so a
// read that finds the same generation (in the same network namespace,
// for the same chains) would read exactly the same rules.
type nlCache struct {
	netns  uint64
	chains string
	rs     *rule.Ruleset
}

// netnsID identifies the calling thread's network namespace (0: unknown,
// no caching).
func netnsID() uint64 {
	var st unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
		return 0
	}
	return st.Ino
}

// cached returns the cached ruleset when it is still the kernel's.
func (e *Enforcer) cached(v6 bool, gen uint32, netns uint64, key string) *rule.Ruleset {
	c := e.nlCache[v6]
	if c == nil || netns == 0 || c.netns != netns || c.chains != key || c.rs.Gen != gen {
		return nil
	}
	return c.rs.Clone()
}

func (e *Enforcer) remember(v6 bool, netns uint64, key string, rs *rule.Ruleset) {
	if e.nlCache == nil {
		e.nlCache = map[bool]*nlCache{}
	}
	if netns == 0 || !rs.Netlink {
		delete(e.nlCache, v6)
		return
	}
	e.nlCache[v6] = &nlCache{netns: netns, chains: key, rs: rs.Clone()}
}

// without is rs after the rules ds were deleted, at generation gen.
func without(rs *rule.Ruleset, ds []nlDelete, gen uint32) *rule.Ruleset {
	gone := map[nlDelete]bool{} // handles are per table
	for _, d := range ds {
		gone[d] = true
	}
	out := rs.Clone()
	out.Gen = gen
	for _, cs := range out.Tables {
		for _, c := range cs {
			kept := c.Rules[:0]
			for _, r := range c.Rules {
				if !gone[nlDelete{table: c.Table, chain: c.Name, handle: r.Handle}] {
					kept = append(kept, r)
				}
			}
			c.Rules = kept
		}
	}
	return out
}

// parallelDumpRules: from this many rules in the chains read last time
// (per family), the chains are dumped in parallel, each on its own socket:
// most of a long dump's time is the kernel walking the chain, on the
// receiving thread.
const parallelDumpRules = 2000

func (e *Enforcer) lastDumped(v6 bool) int {
	e.exprMu.Lock()
	defer e.exprMu.Unlock()
	if n, ok := e.dumped[v6]; ok {
		return n
	}
	return parallelDumpRules // not known yet: assume big
}

func (e *Enforcer) setDumped(v6 bool, n int) {
	e.exprMu.Lock()
	defer e.exprMu.Unlock()
	if e.dumped == nil {
		e.dumped = map[bool]int{}
	}
	e.dumped[v6] = n
}

// nftReader reads one family's chains over netlink (readNetlink); a
// chain holding a rule that matters and that nftText cannot print is read
// with text.
type nftReader struct {
	e    *Enforcer
	text *kernel.Text
	v6   bool
}

func (r *nftReader) Read(ctx context.Context, in rule.Interest) (*rule.Ruleset, error) {
	return r.e.readNetlink(ctx, r.text, in, r.v6)
}

// readNetlink reads the chains of in over netlink.
func (e *Enforcer) readNetlink(ctx context.Context, text *kernel.Text, in rule.Interest, v6 bool) (*rule.Ruleset, error) {
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
	netns, key := netnsID(), in.ChainsKey()
	if rs := e.cached(v6, gen, netns, key); rs != nil {
		return rs, nil
	}
	rs := rule.NewRuleset(v6)
	rs.Gen, rs.Netlink = gen, true
	// Big chains are dumped in parallel (parallelDumpRules). The sockets
	// are opened here, so they belong to this thread's network namespace.
	type chainRead struct {
		table, name string
		conn        *nlConn
		nrs         []nlRule
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
	parallel := e.lastDumped(v6) >= parallelDumpRules
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
				r.printed = printChain(r.ch, r.nrs, in, v6, pats, func(nr *nlRule, v6 bool) nftRule { return nftText(nr.exprs, v6) })
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
	e.setDumped(v6, total)
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
			e.ourExprs(v6, r.ch, r.nrs, in)
		}
		if !r.printed {
			e.fellBack("nft", FallbackUnprintable, nil)
			if err := readChainText(ctx, text, rs, r.table, r.name, in.Needles, r.nrs); err != nil {
				return nil, err
			}
		}
	}
	// The generation must not have moved while we dumped chain after
	// chain, or the chains could be from different moments.
	if g, err := c.genID(); err != nil || g != gen {
		rs.Netlink = false
	} else {
		e.remember(v6, netns, key, rs)
	}
	return rs, nil
}

// printChain fills ch from the dump. It prints the rules that may be ours
// (a needle in their bytes), in nat every rule (its destination decides
// whether it may shadow our DNAT), and in filter chains every rule above
// our last one (the shadow scan reads those); the others stay opaque. It
// returns false when a rule that matters cannot be printed.
func printChain(ch *rule.Chain, nrs []nlRule, in rule.Interest, v6 bool, pats [][]byte, xlate func(*nlRule, bool) nftRule) bool {
	needles := in.Needles
	nat := ch.Table == "nat"
	ch.Rules = make([]rule.Rule, len(nrs))
	print := func(j int) bool {
		nr := &nrs[j]
		r := &ch.Rules[j]
		r.Handle = nr.handle
		x := xlate(nr, v6)
		if nat && x.hasDst && !x.dstAny && (x.dstNeg || x.dst.Bits() == 0 || !x.dst.Contains(credentialsPrefix)) {
			r.NotOurDst = true
		}
		if x.ok && nr.udata == nil {
			r.Text, r.Opaque = x.text, false
			if rule.MentionsAny(r.Text, needles) {
				r.ParseKey(v6)
			}
			return true
		}
		r.Opaque = true
		return false
	}
	for j := range nrs {
		nr := &nrs[j]
		ch.Rules[j] = rule.Rule{Handle: nr.handle, Opaque: true}
		matters := containsAnyBytes(nr.exprs, pats) || rule.MentionsAny(string(nr.udata), needles) ||
			(ch.Name == "FORWARD" && (rule.MentionsAny(string(nr.exprs), in.NewChains) || rule.MentionsAny(nr.jump, in.NewChains)))
		if !matters && !nat {
			continue
		}
		if !print(j) {
			if x := xlate(nr, v6); matters || (nat && !ch.Rules[j].NotOurDst && (x.dstAny || x.hasDst)) {
				return false
			}
		}
	}
	if nat {
		return true
	}
	keys := in.OursIn(ch.Table, ch.Name)
	last := -1
	for j, r := range ch.Rules {
		if r.Key != "" && keys[r.Key] {
			delete(keys, r.Key)
			last = j
		}
	}
	for j := 0; j < last; j++ {
		if ch.Rules[j].Opaque && !print(j) {
			return false
		}
	}
	return true
}

// readChainText reads one chain with iptables-nft itself and keeps the
// handles of the dump when the two agree on the number of rules (else
// the repair falls back to a restore batch).
func readChainText(ctx context.Context, text *kernel.Text, rs *rule.Ruleset, table, name string, needles []string, nrs []nlRule) error {
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
