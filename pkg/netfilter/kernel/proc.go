package kernel

import "golang.org/x/sys/unix"

// ThreadSelf is the calling thread's directory in proc. Below it the
// kernel shows the thread's own network namespace (ns/net) and the legacy
// tables that exist in it (net/ip_tables_names, net/ip6_tables_names):
// the namespace helpers of the tests and of the daemon run a locked
// thread in a private namespace, and every read must see that one, as the
// sockets opened on that thread do. /proc/self would show the process's.
const ThreadSelf = "/proc/thread-self"

// netNS identifies the calling thread's network namespace (0: unknown,
// then nothing is cached).
func netNS() uint64 {
	var st unix.Stat_t
	if err := unix.Stat(ThreadSelf+"/ns/net", &st); err != nil {
		return 0
	}
	return st.Ino
}
