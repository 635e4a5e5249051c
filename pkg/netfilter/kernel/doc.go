// Package kernel reads the live netfilter rules of one family for the
// enforcer (pkg/netfilter), and runs the iptables binaries for it.
//
// It owns the readers behind one interface, Reader (the chains of a
// rule.Interest in, a rule.Ruleset out), each with its own cache:
//   - Text: the iptables binaries (`-S` per chain, or one `-save`), the
//     reader of last resort, which understands every rule iptables prints;
//   - the direct readers of the kernel (netlink for nf_tables, getsockopt
//     for the legacy IPv4 tables), which fall back to Text, counted
//     (FallbackFunc), when they fail or meet a rule they cannot print;
//   - Runner, the seam to the binaries, and RunCached, a command's output
//     kept while the kernel shows it cannot have changed.
//
// It must not decide anything: which rules are wanted, whether a rule is
// ours, planning and repairs are the enforcer's. It imports only
// pkg/netfilter/rule and pkg/nfnetlink of this module, and it reads the
// calling thread's network namespace (ThreadSelf), never the host's
// files.
package kernel
