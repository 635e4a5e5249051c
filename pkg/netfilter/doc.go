// Package netfilter owns the kernel rules ECS tasks need for their IAM
// task-role credentials, and their saved copy:
//
//   - nat PREROUTING  -p tcp -d 169.254.170.2 --dport 80 -j DNAT --to-destination 127.0.0.1:<agent>
//   - nat OUTPUT      -p tcp -d 169.254.170.2 --dport 80 -j REDIRECT --to-ports <agent>
//   - filter INPUT    the localhost guard (--dst 127.0.0.0/8 ! --src 127.0.0.0/8 ... -j DROP)
//   - filter INPUT    the introspection-port DROP and its ACCEPT for Docker's default
//     bridge (IPv4, and IPv6 with ip6tables when <proc_sys>/net/ipv6 exists, as
//     ecs-init does; none when ecs-init adds none and the policy says auto; ecs-init's
//     pre-1.97 single DROP counts as the pair)
//   - filter DOCKER-USER  the optional DROP of bridge containers' IMDS traffic
//   - the saved ruleset file (/etc/sysconfig/iptables, /etc/iptables/rules.v4)
//
// It must not touch any other rule: it never modifies, reorders or
// deletes a rule that is not one of the above, never flushes or declares
// an existing chain, never touches the other backend (iptables-legacy when
// the configured iptables is nf_tables, and the reverse), and in the saved
// file it edits only the lines of our rules. It does not set
// route_localnet (pkg/sysctl) nor touch ecs.config.
//
// # Ours, by meaning
//
// A rule ecs-init added is ours: rules are compared by a canonical key
// (token order, implicit -m tcp, /32, option aliases, state lists), not by
// text. There is exactly one copy of each: extra copies (ecs-init adds
// with -A/-I without checking) are deleted by their printed text; the
// first copy's position is kept. The cycle "ecs-init adds a copy, we
// dedupe, ecs-init's stop deletes one copy, we re-add" converges.
//
// # What "top of INPUT" means
//
// A missing INPUT rule is inserted where ecs-init puts it: at the top of
// INPUT, in ecs-init's order (docker0 ACCEPT, introspection DROP, guard),
// next to our rules that are already there. A rule that is present is
// never moved, even when other tools inserted rules above it later. Tools
// such as Calico, kube-proxy or fail2ban also insert at position 1 and
// some re-check that position: "must be first" would make two daemons
// fight forever, and moving our rule above theirs reorders their ruleset.
// Instead, when a foreign rule above one of our DROP rules may let the
// same packets through (ACCEPT, RETURN, a jump, on overlapping protocol,
// addresses, interface, port and conntrack state), the item is reported
// with status warn naming that rule. The one order we do repair is
// between our own rules: the docker0 ACCEPT must precede the introspection
// DROP or it never matches.
//
// # Cost
//
// One reconcile reads each family once and repairs it with at most one
// transaction per kind of change. On nf_tables the chains involved are
// dumped over netlink (iptables-nft would fetch whole tables), the read is
// skipped while the ruleset generation is unchanged, and duplicates are
// deleted by handle in a generation-checked transaction; inserts go
// through one `<backend>-restore --noflush` batch. On legacy the IPv4
// tables are copied with getsockopt (no libiptc) and all repairs are one
// restore batch. Rules that may matter are printed in iptables syntax
// and compared by meaning as before; anything the readers cannot print
// falls back to iptables' own output.
// Only rules that may be ours are tokenised; nothing grows with
// foreign x ours. The measured costs are in docs/performance.md ("Where a
// reconcile's time goes").
//
// # Persistence
//
// The saved ruleset is treated as a document that belongs to the
// operator, not as a snapshot (package saved says how it is edited). This
// package reads it, has saved make each of our IPv4 rules present once,
// and replaces the file atomically with pkg/atomicfile, only when its
// content changes; it reports Docker-managed content (warn) and whether
// the unit that restores the file at boot is enabled.
//
// # Layers
//
// The iptables rule language (parse, canonical key, quoting) and the
// model of what was read (Ruleset, Chain, Rule; Want, Interest) are in
// package rule, which touches nothing. The readers of the live rules (one
// per backend, each with its cache), the writes over netlink and the
// runner of the binaries are in package kernel. The saved ruleset as a
// document (parse, ensure ours, which unit restores it) is package saved.
// This package builds the wants from the configuration, plans, checks
// shadowing, decides the repairs and the findings. Imports go one way:
// netfilter -> {kernel, saved} -> rule.
package netfilter
