// Package saved is the saved ruleset (/etc/sysconfig/iptables,
// /etc/iptables/rules.v4) as the operator's document, and which unit
// restores it at boot.
//
// It owns:
//   - reading the file (Read: a regular file only, at most MaxSize bytes)
//     and parsing it into lines (Parse) that give back every byte
//     (Bytes: line endings and a missing final newline included);
//   - making each of our IPv4 rules present exactly once, in its table and
//     chain and in ecs-init's order (Ensure): extra copies of our rules
//     are removed, a missing rule is added with its section and, for a
//     new chain such as DOCKER-USER, its declaration; every line that is
//     not one of our rules is kept, in order. Docker-managed chains and
//     rules are reported (Result.Docker), never added or removed;
//   - the content of a missing file (New);
//   - which file to keep and which unit restores it (Target, Resolve),
//     and whether that unit is enabled (EnabledLink).
//
// The live ruleset is never snapshotted into the file: that would freeze
// Docker's per-container rules of the moment and overwrite the operator's
// own rules.
//
// It must not touch the live kernel (no netlink, no iptables binaries),
// the other backend's file, or any file other than reading the saved
// ruleset and looking up units. It does not write: the Enforcer
// (pkg/netfilter, persist.go) replaces the file atomically with
// pkg/atomicfile, only when its content changes; backups and the dry-run
// diff are atomicfile's. Which rules are ours is decided by the Enforcer;
// this package gets them as rule.Want. Of this module it imports package
// rule and pkg/safefile (to read) only.
package saved
