package netfilter

import (
	"context"
	"fmt"
	"hash/fnv"
)

// A steady reconcile on a legacy host used to start two processes: the
// IPv6 rules are read with ip6tables-legacy-save (only IPv4 is read with
// getsockopt), and the other-backend check runs iptables-nft-save. Each
// costs a process (see docs/performance.md) for a few kilobytes that rarely change, and most of
// the daemon's idle CPU on legacy. Both outputs are now kept and reused
// while the kernel shows that what they printed cannot have changed:
//
//   - ip6tables-legacy-save: while a hash of the IPv6 legacy tables
//     (getsockopt entries with the traffic counters zeroed, as the
//     poller's Fingerprint) is the same. Tables too big to hash, or
//     changing while hashed, are read every time.
//   - iptables-nft-save: while the nf_tables generation (bumped by the
//     kernel on every committed change) is the same.
//
// Both are keyed by the network namespace, so a cached text never crosses
// into another namespace.

// textCache is one command's output and the state it was read at.
type textCache struct {
	name  string
	netns uint64
	key   string
	out   []byte
}

func (c *textCache) get(name string, netns uint64, key string) ([]byte, bool) {
	if c == nil || netns == 0 || key == "" || c.name != name || c.netns != netns || c.key != key {
		return nil, false
	}
	return c.out, true
}

// v6LegacyKey is the hash of the IPv6 legacy tables; "" when it cannot
// stand for their content.
func v6LegacyKey() string {
	h := fnv.New128a()
	complete, err := legacyFamilyHash(true, h, h)
	if err != nil || !complete {
		return ""
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// nftGenKey is the nf_tables generation; "" when netlink cannot tell.
func nftGenKey() string {
	c, err := nlDial()
	if err != nil {
		return ""
	}
	defer c.close()
	gen, err := c.genID()
	if err != nil {
		return ""
	}
	return fmt.Sprintf("gen %d", gen)
}

// cachedRun runs name (a -save command) unless *slot holds its output for
// the same namespace and the same key (computed before the command runs,
// so a change while it runs makes the next key differ).
func (e *Enforcer) cachedRun(ctx context.Context, slot **textCache, key func() string, name string) ([]byte, error) {
	if !e.netlink {
		return e.r.run(ctx, nil, name)
	}
	netns, k := netnsID(), key()
	if out, ok := (*slot).get(name, netns, k); ok {
		return out, nil
	}
	out, err := e.r.run(ctx, nil, name)
	if err != nil {
		*slot = nil
		return nil, err
	}
	*slot = &textCache{name: name, netns: netns, key: k, out: out}
	return out, nil
}
