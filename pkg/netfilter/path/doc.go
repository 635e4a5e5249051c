// Package path says what a packet meets: where a credential packet stops
// in netfilter tables read as text, for the enforcer's
// network.credentials_input item (pkg/netfilter, credpath.go).
//
// It owns the model of a hook (Base chains of Tables of Chains of Rules,
// each rule a list of conditions and a verdict), the walker that follows
// one Packet through every base chain of a hook in priority order
// (EvalHook, eval.go) with three-valued matching (Tri: a condition on a
// field not fully known, or one the model does not know, matches
// Maybe and forks the walk), and the parsers of what was read into that
// model: iptables-save text (ParseSave, ipt.go) and nft -j JSON with the
// nft list ruleset text beside it (ParseNft, ParseNftText, nft.go).
// docs/credential-path.md says what is modelled and what is reported as
// undecidable.
//
// It is pure: texts in, verdicts out. It must not touch the machine: no
// syscalls, no exec, no files, no netlink. The reads live in
// pkg/netfilter (credpath_read.go) and pkg/netfilter/kernel; which flows
// to follow, the repairs and the finding live in pkg/netfilter
// (credpath.go). It imports only pkg/netfilter/rule of this module.
package path
