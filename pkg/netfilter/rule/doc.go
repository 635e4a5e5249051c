// Package rule is the iptables rule language and the model of what was
// read, shared by the enforcer (pkg/netfilter), its kernel readers and
// the saved-ruleset document.
//
// It owns:
//   - tokenising and parsing a rule as typed or as printed (Parse), and its
//     canonical key (Key): two spellings of the same rule (token order,
//     implicit -m tcp, /32, option aliases, state lists) have one key;
//   - quoting tokens for a command line or a restore file (Quote);
//   - the model of one family's rules as read (Ruleset, Chain, Rule) and
//     the reader of iptables-save and `iptables -S` text (ParseText);
//   - the shape of a rule we own (Want, Placement) and what a reader must
//     read for a set of them (Interest: chains, needles, new chains);
//   - small facts of the language the matchers need (IsBuiltin,
//     IsProtoModule, IsPassive, PortRange, ParseCIDR, TargetOf).
//
// It must not touch anything: no syscalls, no files, no processes, no
// network, no clock, and it imports nothing of this module. Which rules
// the configuration wants, planning, the shadow check and every read or
// write of the kernel or a file live in the packages that import it.
package rule
