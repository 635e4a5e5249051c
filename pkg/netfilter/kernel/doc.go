// Package kernel reads the live netfilter rules of one family for the
// enforcer (pkg/netfilter), writes its repairs over netlink, and runs the
// iptables binaries for it.
//
// It owns the readers behind one interface, Reader (the chains of a
// rule.Interest in, a rule.Ruleset out), each with its own cache, and New,
// which picks one for a family's binaries:
//   - NFT: nf_tables over netlink (pkg/nfnetlink), cached by generation;
//     it also writes the repairs (Apply: deletions by handle and our rules
//     given back as the kernel dumped them, in one generation-checked
//     transaction), since only it has seen the handles and expressions;
//   - Legacy: the legacy IPv4 tables copied with getsockopt;
//   - Text: the iptables binaries (`-S` per chain, or one `-save`), the
//     reader of last resort, which understands every rule iptables prints.
//     NFT and Legacy fall back to it, counted (FallbackFunc), when they
//     fail or meet a rule they cannot print.
//
// The xt decoders both direct readers need live once (xt.go). Other
// kernel reads for the enforcer are here too: LegacyFingerprint for the
// legacy poller, the cache keys LegacyTablesHash and NFTGeneration,
// NativeTables and HostRoute for the credential-path evaluation; and
// Runner, the seam to the binaries, with RunCached.
//
// It must not decide anything: which rules are wanted, whether a rule is
// ours, planning and repairs are the enforcer's. It imports only
// pkg/netfilter/rule and pkg/nfnetlink of this module, and it reads the
// calling thread's network namespace (ThreadSelf), never the host's
// files.
package kernel
