package watch

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
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
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_NETFILTER)
	if err != nil {
		return fmt.Errorf("open netlink socket (NETLINK_NETFILTER): %w", err)
	}
	sa := &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1 << (unix.NFNLGRP_NFTABLES - 1)}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return fmt.Errorf("subscribe to nf_tables events (netlink group NFNLGRP_NFTABLES): %w (needs CAP_NET_ADMIN and the nf_tables kernel module)", err)
	}
	// A large buffer rides out bursts (docker creating many rules); a
	// smaller one only costs a resync event.
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 1<<20); err != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<20)
	}
	// The fd is non-blocking, so os.File reads through Go's poller and
	// Close wakes a pending Read.
	f := os.NewFile(uintptr(fd), "netlink:nftables")
	go func() {
		<-ctx.Done()
		f.Close()
	}()
	go readNftables(ctx, f, out)
	return nil
}

// txnWait is how long messages of a transaction wait for its
// NFT_MSG_NEWGEN before they are sent without it (not Settled). The
// kernel sends NEWGEN at the end of every commit, right after the
// transaction's own messages, so this is only a safety net.
const txnWait = 100 * time.Millisecond

func readNftables(ctx context.Context, f *os.File, out chan<- Event) {
	buf := make([]byte, 64<<10)
	var txn nftTxn
	for {
		if txn.pending() {
			_ = f.SetReadDeadline(time.Now().Add(txnWait))
		} else {
			_ = f.SetReadDeadline(time.Time{})
		}
		n, err := f.Read(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, os.ErrClosed) {
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
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			send(out, Event{Source: SourceResync, Name: "nf_tables watcher stopped: " + err.Error()})
			return
		}
		for _, ev := range txn.feed(buf[:n]) {
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

// feed takes one datagram and returns an event for every transaction it
// completes.
func (x *nftTxn) feed(b []byte) []Event {
	var evs []Event
	nftMessages(b, func(typ uint16, payload []byte) {
		x.add(nftMsgName(typ))
		if typ != unix.NFT_MSG_NEWGEN {
			return
		}
		ev := x.flush()
		ev.Settled = true
		pid, comm := genProc(payload)
		ev.PID, ev.Culprit = pid, culprit(pid, comm)
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
	})
	return evs
}

// flush returns the gathered messages as one event and starts over.
func (x *nftTxn) flush() Event {
	ev := Event{Source: SourceNftables, Name: strings.Join(x.names, ",")}
	x.names = nil
	return ev
}

// genProc reads NFTA_GEN_PROC_PID and NFTA_GEN_PROC_NAME from a
// NFT_MSG_NEWGEN payload (after struct nfgenmsg). Kernels before 4.19
// send neither: (0, "").
func genProc(payload []byte) (int, string) {
	if len(payload) < 4 {
		return 0, ""
	}
	var pid int
	var name string
	b := payload[4:]
	for len(b) >= 4 {
		l := int(binary.NativeEndian.Uint16(b))
		typ := binary.NativeEndian.Uint16(b[2:]) &^ unix.NLA_F_NESTED
		if l < 4 || l > len(b) {
			break
		}
		d := b[4:l]
		switch typ {
		case unix.NFTA_GEN_PROC_PID:
			if len(d) == 4 {
				pid = int(binary.BigEndian.Uint32(d))
			}
		case unix.NFTA_GEN_PROC_NAME:
			if i := bytes.IndexByte(d, 0); i >= 0 {
				d = d[:i]
			}
			name = string(d)
		}
		l = (l + 3) &^ 3
		if l >= len(b) {
			break
		}
		b = b[l:]
	}
	return pid, name
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

// nftMessageNames lists the distinct nf_tables message types in one netlink
// datagram, in order ("delrule,newgen"); "" when there is none.
func nftMessageNames(b []byte) string {
	var x nftTxn
	nftMessages(b, func(typ uint16, _ []byte) { x.add(nftMsgName(typ)) })
	return strings.Join(x.names, ",")
}

// nftMessages calls fn with the type and payload of every nf_tables
// message in one netlink datagram.
func nftMessages(b []byte, fn func(typ uint16, payload []byte)) {
	for len(b) >= unix.NLMSG_HDRLEN {
		l := int(binary.NativeEndian.Uint32(b[0:4]))
		typ := binary.NativeEndian.Uint16(b[4:6])
		if l < unix.NLMSG_HDRLEN || l > len(b) {
			break
		}
		if typ>>8 == unix.NFNL_SUBSYS_NFTABLES {
			fn(typ&0xff, b[unix.NLMSG_HDRLEN:l])
		}
		l = (l + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1)
		if l > len(b) {
			break
		}
		b = b[l:]
	}
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
