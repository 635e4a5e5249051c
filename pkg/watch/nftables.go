package watch

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Nftables sends an Event (SourceNftables, Name = the message types, such
// as "delrule,newgen") whenever the kernel reports a change of the
// nf_tables ruleset: the NFNLGRP_NFTABLES multicast group of
// NETLINK_NETFILTER, which announces every committed table, chain, rule,
// set and element change, whatever tool made it (iptables-nft, nft,
// firewalld, docker). Reading the ruleset sends nothing, so the daemon's own
// checks cause no events; its own repairs cause one, and the re-check that
// follows finds nothing to do.
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

func readNftables(ctx context.Context, f *os.File, out chan<- Event) {
	buf := make([]byte, 64<<10)
	for {
		n, err := f.Read(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, os.ErrClosed) {
				return
			}
			if errors.Is(err, syscall.ENOBUFS) {
				send(out, Event{Source: SourceResync, Name: "nf_tables notifications were dropped (socket buffer full)"})
				continue
			}
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			send(out, Event{Source: SourceResync, Name: "nf_tables watcher stopped: " + err.Error()})
			return
		}
		if names := nftMessageNames(buf[:n]); names != "" {
			send(out, Event{Source: SourceNftables, Name: names})
		}
	}
}

// nftMessageNames lists the distinct nf_tables message types in one netlink
// datagram, in order ("delrule,newgen"); "" when there is none.
func nftMessageNames(b []byte) string {
	var names []string
	seen := map[string]bool{}
	for len(b) >= unix.NLMSG_HDRLEN {
		l := int(binary.NativeEndian.Uint32(b[0:4]))
		typ := binary.NativeEndian.Uint16(b[4:6])
		if l < unix.NLMSG_HDRLEN || l > len(b) {
			break
		}
		if typ>>8 == unix.NFNL_SUBSYS_NFTABLES {
			n := nftMsgName(typ & 0xff)
			if !seen[n] {
				seen[n] = true
				names = append(names, n)
			}
		}
		l = (l + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1)
		if l > len(b) {
			break
		}
		b = b[l:]
	}
	return strings.Join(names, ",")
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
