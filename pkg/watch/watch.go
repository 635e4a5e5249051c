// Package watch turns the world into one channel of "look again" events for
// the daemon: file changes (fsnotify on the directories of ecs.config, the
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
}

// Event sources.
const (
	SourceFile     = "file"
	SourceNftables = "nftables"
	SourcePoll     = "poll"
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
