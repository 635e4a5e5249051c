package netfilter

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/ecs-remediator/ecs-remediator/pkg/nfnetlink"
)

// The nf_tables requests the Enforcer makes, on pkg/nfnetlink: the
// generation id, a rule dump filtered by the kernel to one chain, and a
// batch that deletes rules by handle. It is what iptables-nft does
// underneath, without iptables-nft's habit of fetching (and translating)
// every rule of the table for any command (see docs/performance.md). The
// socket belongs to the network namespace of the thread that opens it.

type nlConn struct {
	c *nfnetlink.Conn
}

func nlDial() (*nlConn, error) {
	c, err := nfnetlink.Dial()
	if err != nil {
		return nil, err
	}
	return &nlConn{c: c}, nil
}

func (c *nlConn) close() { c.c.Close() }

// attrs calls fn for each attribute of b (the nested flag cleared).
func attrs(b []byte, fn func(typ uint16, data []byte)) { nfnetlink.Attrs(b, fn) }

func be32(b []byte) uint32 { return nfnetlink.BE32(b) }

func cstr(b []byte) string { return nfnetlink.Cstr(b) }

// errNoChain is a dump of a chain (or table) that does not exist.
var errNoChain = errors.New("no such chain")

// genID is the ruleset generation: every committed change increments it.
func (c *nlConn) genID() (uint32, error) { return c.c.GenID() }

// nlRule is one rule as dumped: its handle and raw expressions.
type nlRule struct {
	handle uint64
	exprs  []byte // NFTA_RULE_EXPRESSIONS payload
	udata  []byte // NFTA_RULE_USERDATA (a comment), if any
	jump   string // legacy: the chain a jump names (its bytes hold an offset)
}

// dumpAttempts bounds the re-reads of a dump the kernel marks
// inconsistent (a change while it was being dumped).
const dumpAttempts = 3

// dumpRules lists one chain's rules in order; errNoChain when the table
// or chain does not exist.
func (c *nlConn) dumpRules(family uint8, table, chain string) ([]nlRule, error) {
	var msgs []nfnetlink.Message
	var err error
	for a := 0; a < dumpAttempts; a++ {
		msgs, err = c.c.Query(nfnetlink.Request{Subsys: unix.NFNL_SUBSYS_NFTABLES, Type: unix.NFT_MSG_GETRULE,
			Flags: unix.NLM_F_DUMP, Family: family,
			Attrs: []nfnetlink.Attr{nfnetlink.String(unix.NFTA_RULE_TABLE, table), nfnetlink.String(unix.NFTA_RULE_CHAIN, chain)}})
		if !errors.Is(err, nfnetlink.ErrDumpInterrupted) {
			break
		}
	}
	if errors.Is(err, unix.ENOENT) {
		return nil, errNoChain
	}
	if err != nil {
		return nil, fmt.Errorf("dump %s %s: %w", table, chain, err)
	}
	return decodeRules(msgs, table, chain), nil
}

// decodeRules picks the rules of table/chain out of a rule dump (kernels
// without dump filters send every rule of the family).
func decodeRules(msgs []nfnetlink.Message, table, chain string) []nlRule {
	rules := make([]nlRule, 0, len(msgs))
	for _, m := range msgs {
		if m.Type != unix.NFT_MSG_NEWRULE {
			continue
		}
		var r nlRule
		var tb, ch string
		attrs(m.Payload, func(t uint16, d []byte) {
			switch t {
			case unix.NFTA_RULE_TABLE:
				tb = cstr(d)
			case unix.NFTA_RULE_CHAIN:
				ch = cstr(d)
			case unix.NFTA_RULE_HANDLE:
				r.handle = nfnetlink.BE64(d)
			case unix.NFTA_RULE_EXPRESSIONS:
				r.exprs = d
			case unix.NFTA_RULE_USERDATA:
				r.udata = d
			}
		})
		if tb == table && ch == chain {
			rules = append(rules, r)
		}
	}
	return rules
}

// chainExists asks for one chain (a rule dump of a missing chain is just
// empty).
func (c *nlConn) chainExists(family uint8, table, chain string) (bool, error) {
	msgs, err := c.c.Query(nfnetlink.Request{Subsys: unix.NFNL_SUBSYS_NFTABLES, Type: unix.NFT_MSG_GETCHAIN, Family: family,
		Attrs: []nfnetlink.Attr{nfnetlink.String(unix.NFTA_CHAIN_TABLE, table), nfnetlink.String(unix.NFTA_CHAIN_NAME, chain)}})
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("get chain %s %s: %w", table, chain, err)
	}
	for _, m := range msgs {
		if m.Type == unix.NFT_MSG_NEWCHAIN {
			return true, nil
		}
	}
	return false, nil
}

// nlDelete is one rule to delete by handle.
type nlDelete struct {
	table, chain string
	handle       uint64
}

// deleteRules deletes rules by handle in one transaction that the kernel
// refuses (ERESTART) when the ruleset changed since generation gen was
// read, or (ENOENT) when a rule is gone: a stale plan never applies.
func (c *nlConn) deleteRules(family uint8, gen uint32, ds []nlDelete) error {
	return c.batch(family, gen, ds, nil)
}

// batch deletes ds by handle, then sends more (new rules), in one
// transaction bound to generation gen.
func (c *nlConn) batch(family uint8, gen uint32, ds []nlDelete, more []nfnetlink.Request) error {
	msgs := make([]nfnetlink.Request, 0, len(ds)+len(more))
	for _, d := range ds {
		msgs = append(msgs, nfnetlink.Request{Subsys: unix.NFNL_SUBSYS_NFTABLES, Type: unix.NFT_MSG_DELRULE, Family: family,
			Attrs: []nfnetlink.Attr{nfnetlink.String(unix.NFTA_RULE_TABLE, d.table), nfnetlink.String(unix.NFTA_RULE_CHAIN, d.chain),
				nfnetlink.U64(unix.NFTA_RULE_HANDLE, d.handle)}})
	}
	msgs = append(msgs, more...)
	if err := c.c.Batch(gen, msgs); err != nil {
		if len(more) > 0 {
			return fmt.Errorf("delete rules by handle and add %d over netlink: %w", len(more), err)
		}
		return fmt.Errorf("delete rules by handle: %w", err)
	}
	return nil
}
