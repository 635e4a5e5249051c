package netfilter

import (
	"fmt"
	"hash/fnv"
)

// v6LegacyKey is the hash of the IPv6 legacy tables (getsockopt entries
// with the traffic counters zeroed, as the poller's Fingerprint); "" when
// it cannot stand for their content (tables too big to hash, or changing
// while hashed). It keys the cache of ip6tables-legacy-save's output: only
// IPv4 is read with getsockopt, and a process per reconcile for a few
// kilobytes that rarely change was most of the daemon's idle CPU on
// legacy (docs/performance.md).
func v6LegacyKey() string {
	h := fnv.New128a()
	complete, err := legacyFamilyHash(true, h, h)
	if err != nil || !complete {
		return ""
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// nftGenKey is the nf_tables generation, bumped by the kernel on every
// committed change; "" when netlink cannot tell. It keys the cache of the
// other backend's -save on a legacy host and the evaluator's nft texts.
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
