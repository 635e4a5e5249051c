package kernel

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/ecs-remediator/ecs-remediator/pkg/nfnetlink"
)

// nlConn makes the nf_tables requests of NFT on pkg/nfnetlink: the
// generation id, a rule dump filtered by the kernel to one chain, and a
// generation-checked batch. It is what iptables-nft does underneath,
// without iptables-nft's habit of fetching (and translating) every rule
// of the table for any command (see docs/performance.md). The socket
// belongs to the network namespace of the thread that opens it.
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

// rawRule is one rule as the kernel gave it, before it is printed: an
// nf_tables rule from a dump, or a legacy ipt_entry from a getsockopt
// copy of its table. printChain prints either.
type rawRule struct {
	handle uint64 // nf_tables: the rule's handle; legacy: the entry's offset in the table
	exprs  []byte // nf_tables: the NFTA_RULE_EXPRESSIONS payload; legacy: the whole ipt_entry
	udata  []byte // nf_tables: NFTA_RULE_USERDATA (a comment), if any
	jump   string // legacy: the chain a jump names (its bytes hold an offset)
}

// dumpAttempts bounds the re-reads of a dump the kernel marks
// inconsistent (a change while it was being dumped).
const dumpAttempts = 3

// dumpRules lists one chain's rules in order; errNoChain when the table
// or chain does not exist.
func (c *nlConn) dumpRules(family uint8, table, chain string) ([]rawRule, error) {
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
func decodeRules(msgs []nfnetlink.Message, table, chain string) []rawRule {
	rules := make([]rawRule, 0, len(msgs))
	for _, m := range msgs {
		if m.Type != unix.NFT_MSG_NEWRULE {
			continue
		}
		var r rawRule
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

// batch deletes ds by handle, then sends more (new rules), in one
// transaction bound to generation gen.
func (c *nlConn) batch(family uint8, gen uint32, ds []Delete, more []nfnetlink.Request) error {
	msgs := make([]nfnetlink.Request, 0, len(ds)+len(more))
	for _, d := range ds {
		msgs = append(msgs, nfnetlink.Request{Subsys: unix.NFNL_SUBSYS_NFTABLES, Type: unix.NFT_MSG_DELRULE, Family: family,
			Attrs: []nfnetlink.Attr{nfnetlink.String(unix.NFTA_RULE_TABLE, d.Table), nfnetlink.String(unix.NFTA_RULE_CHAIN, d.Chain),
				nfnetlink.U64(unix.NFTA_RULE_HANDLE, d.Handle)}})
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

// NativeTables lists, over netlink, the nf_tables tables of families ip
// and inet that iptables-nft does not own ("family name"); nil when
// netlink cannot tell.
func NativeTables() []string {
	c, err := nlDial()
	if err != nil {
		return nil
	}
	defer c.close()
	var out []string
	for _, fam := range []struct {
		n    uint8
		name string
	}{{unix.NFPROTO_IPV4, "ip"}, {unix.NFPROTO_INET, "inet"}} {
		msgs, err := c.c.Query(nfnetlink.Request{Subsys: unix.NFNL_SUBSYS_NFTABLES, Type: unix.NFT_MSG_GETTABLE,
			Flags: unix.NLM_F_DUMP, Family: fam.n})
		if err != nil {
			continue
		}
		for _, m := range msgs {
			if m.Type != unix.NFT_MSG_NEWTABLE {
				continue
			}
			attrs(m.Payload, func(t uint16, d []byte) {
				if t != unix.NFTA_TABLE_NAME {
					return
				}
				name := cstr(d)
				switch {
				case fam.name == "ip" && (name == "filter" || name == "nat" || name == "mangle" || name == "raw" || name == "security"):
				default:
					out = append(out, fam.name+" "+name)
				}
			})
		}
	}
	return out
}
