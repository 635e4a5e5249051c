package watch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ecs-remediator/ecs-remediator/pkg/nfnetlink"
)

// Nftables sends an Event (SourceNftables, Name = the message types, such
// as "delrule,newgen") for every committed transaction that changed the
// nf_tables ruleset, when its NFT_MSG_NEWGEN arrives: Settled, with the
// committing process as Culprit. It listens to the NFNLGRP_NFTABLES multicast group of
// NETLINK_NETFILTER, which announces every committed table, chain, rule,
// set and element change, whatever tool made it (iptables-nft, nft,
// firewalld, docker). Reading the ruleset sends nothing, so the daemon's own
// checks cause no events; nor do its own repairs (a transaction committed
// by this process or by a child it ran, such as iptables-nft-restore,
// while the child is still there to be asked).
//
// The socket belongs to the network namespace of the calling thread: call
// Nftables from the namespace to be watched (tests: from inside
// nstest.Run's fn). It needs CAP_NET_ADMIN. Nftables returns once
// subscribed; a goroutine then sends until ctx ends. When the kernel drops
// notifications (socket buffer full) it sends a SourceResync event; if the
// socket fails it sends one last SourceResync event naming the error and
// stops.
//
// The legacy iptables backend (iptables-legacy) does not use nf_tables and
// sends nothing here: Poll it.
func Nftables(ctx context.Context, out chan<- Event) error {
	m, err := nfnetlink.Subscribe(unix.NFNLGRP_NFTABLES)
	if err != nil {
		return fmt.Errorf("subscribe to nf_tables events (netlink group NFNLGRP_NFTABLES): %w (needs CAP_NET_ADMIN and the nf_tables kernel module)", err)
	}
	go func() {
		<-ctx.Done()
		m.Close()
	}()
	go readNftables(ctx, m, out)
	return nil
}

// txnWait is how long messages of a transaction wait for its
// NFT_MSG_NEWGEN before they are sent without it (not Settled). The
// kernel sends NEWGEN at the end of every commit, right after the
// transaction's own messages, so this is only a safety net.
const txnWait = 100 * time.Millisecond

func readNftables(ctx context.Context, m *nfnetlink.Monitor, out chan<- Event) {
	var txn nftTxn
	for {
		if txn.pending() {
			_ = m.SetReadDeadline(time.Now().Add(txnWait))
		} else {
			_ = m.SetReadDeadline(time.Time{})
		}
		msgs, err := m.Receive()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrClosed) {
				return
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				send(out, txn.flush())
				continue
			}
			if errors.Is(err, syscall.ENOBUFS) {
				txn = nftTxn{}
				send(out, Event{Source: SourceResync, Name: "nf_tables notifications were dropped (socket buffer full)"})
				continue
			}
			send(out, Event{Source: SourceResync, Name: "nf_tables watcher stopped: " + err.Error()})
			return
		}
		for _, ev := range txn.feed(msgs) {
			send(out, ev)
		}
	}
}

// nftTxn gathers the messages of one nf_tables transaction until its
// NFT_MSG_NEWGEN, which ends every commit and names the committing
// process.
type nftTxn struct {
	names []string
}

func (x *nftTxn) pending() bool { return len(x.names) > 0 }

func (x *nftTxn) add(name string) {
	for _, n := range x.names {
		if n == name {
			return
		}
	}
	x.names = append(x.names, name)
}

// feed takes the messages of one datagram and returns an event for every
// transaction they complete.
func (x *nftTxn) feed(msgs []nfnetlink.Message) []Event {
	var evs []Event
	for _, m := range msgs {
		if m.Subsys != unix.NFNL_SUBSYS_NFTABLES {
			continue
		}
		x.add(nftMsgName(uint16(m.Type)))
		if m.Type != unix.NFT_MSG_NEWGEN {
			continue
		}
		ev := x.flush()
		ev.Settled = true
		g := nfnetlink.ParseGen(m.Payload)
		// The kernel names the committing thread (task_pid_nr); a
		// multi-threaded committer (this daemon, firewalld) is its thread
		// group.
		pid := tgid(g.PID)
		ev.PID, ev.Culprit = pid, culprit(pid, g.Comm)
		if pid > 0 {
			// Read now: a short-lived iptables is still there (a zombie
			// at worst) while its commit is being announced.
			if ppid, pcomm, ok := parentOf(pid); ok {
				ev.PPID = ppid
				if ppid > 1 && ev.Culprit != "" {
					ev.Culprit += " run by " + culprit(ppid, pcomm)
				}
			}
		}
		evs = append(evs, ev)
	}
	return evs
}

// flush returns the gathered messages as one event and starts over.
func (x *nftTxn) flush() Event {
	ev := Event{Source: SourceNftables, Name: strings.Join(x.names, ",")}
	x.names = nil
	return ev
}

// culprit formats a process for a log line: "firewalld (pid 812)". The
// name is the kernel's comm (at most 15 bytes), quoted when it holds
// anything but printable ASCII.
func culprit(pid int, name string) string {
	switch {
	case pid == 0 && name == "":
		return ""
	case name == "":
		return fmt.Sprintf("pid %d", pid)
	}
	for _, r := range name {
		if r < 0x21 || r > 0x7e {
			name = strconv.Quote(name)
			break
		}
	}
	if pid == 0 {
		return name
	}
	return fmt.Sprintf("%s (pid %d)", name, pid)
}

// procRoot is where process information is read (a documented host
// path: the kernel's procfs, never written).
const procRoot = "/proc"

// tgid is the process (thread group) of thread id; id itself when /proc
// cannot say.
func tgid(id int) int {
	if id <= 0 {
		return id
	}
	b, err := os.ReadFile(procRoot + "/" + strconv.Itoa(id) + "/status")
	if err != nil {
		return id
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Tgid:"); ok {
			if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n > 0 {
				return n
			}
		}
	}
	return id
}

// parentOf reads process pid's parent id and the parent's comm; ok is
// false when pid is gone or unreadable.
func parentOf(pid int) (ppid int, comm string, ok bool) {
	b, err := os.ReadFile(procRoot + "/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, "", false
	}
	// pid (comm) state ppid ...; comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, "", false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0, "", false
	}
	ppid, err = strconv.Atoi(f[1])
	if err != nil {
		return 0, "", false
	}
	c, _ := os.ReadFile(procRoot + "/" + f[1] + "/comm")
	return ppid, strings.TrimSuffix(string(c), "\n"), true
}

var nftMsgNames = map[uint16]string{
	unix.NFT_MSG_NEWTABLE: "newtable", unix.NFT_MSG_DELTABLE: "deltable",
	unix.NFT_MSG_NEWCHAIN: "newchain", unix.NFT_MSG_DELCHAIN: "delchain",
	unix.NFT_MSG_NEWRULE: "newrule", unix.NFT_MSG_DELRULE: "delrule",
	unix.NFT_MSG_NEWSET: "newset", unix.NFT_MSG_DELSET: "delset",
	unix.NFT_MSG_NEWSETELEM: "newsetelem", unix.NFT_MSG_DELSETELEM: "delsetelem",
	unix.NFT_MSG_NEWGEN: "newgen",
	unix.NFT_MSG_NEWOBJ: "newobj", unix.NFT_MSG_DELOBJ: "delobj",
	unix.NFT_MSG_NEWFLOWTABLE: "newflowtable", unix.NFT_MSG_DELFLOWTABLE: "delflowtable",
}

func nftMsgName(t uint16) string {
	if n, ok := nftMsgNames[t]; ok {
		return n
	}
	return fmt.Sprintf("msg%d", t)
}
