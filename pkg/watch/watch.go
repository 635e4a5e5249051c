// Package watch turns the world into one channel of "look again" events for
// the daemon: file changes (inotify on the directories of ecs.config, the
// ecs unit's drop-ins, the saved ruleset), nf_tables ruleset changes from
// the kernel (netlink), and a ticker for what sends no events (the legacy
// iptables backend).
//
// An event carries no state and no fix: it only says that something may
// have changed. Watchers never block: they send without waiting, and drop
// an event when the channel is full, because a pending event already means
// "look again". Debouncing, and everything that owns state, is the
// daemon's single loop. This package reads nothing but directory
// listings and kernel notifications, and writes nothing.
package watch

// Event says "look again".
type Event struct {
	// Source is SourceFile, SourceNftables, SourcePoll or SourceResync.
	Source string
	// Name is what changed: the file's path, the nf_tables message types
	// ("delrule,newgen"), or why a resync is asked for.
	Name string
	// Settled: the change is complete, so there is nothing to wait for
	// and the daemon acts at once: a file closed after writing
	// (IN_CLOSE_WRITE) or renamed into place (IN_MOVED_TO), an nf_tables
	// transaction committed (NFT_MSG_NEWGEN). Otherwise (a write still in
	// progress, a deletion, a directory appearing) the daemon debounces.
	Settled bool
	// Culprit is the process that made the change, as the kernel names it
	// ("firewalld (pid 812)", "iptables (pid 4711) run by dockerd (pid
	// 873)"): only nf_tables says (NFTA_GEN_PROC_NAME and
	// NFTA_GEN_PROC_PID of NFT_MSG_NEWGEN; the parent is read from /proc
	// as the event arrives). "" when the source does not name one (files,
	// the legacy backend, a poll): never a guess.
	Culprit string
	// PID is the culprit's process id, PPID its parent's (0: not known).
	// The daemon ignores its own transactions by them.
	PID, PPID int
}

// Event sources.
const (
	SourceFile     = "file"
	SourceNftables = "nftables"
	SourcePoll     = "poll"
	// SourceXtablesLock: an iptables-legacy tool opened or closed the
	// xtables lock (LockWatch).
	SourceXtablesLock = "xtables-lock"
	// SourceResync: a watcher may have missed changes (kernel queue
	// overflow, a directory re-armed, a watcher stopped on an error); the
	// whole host should be looked at again.
	SourceResync = "resync"
)

// send delivers ev without blocking; when out is full an event is already
// pending, which means the same.
func send(out chan<- Event, ev Event) {
	select {
	case out <- ev:
	default:
	}
}
