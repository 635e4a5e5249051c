package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The observer must be much faster than what it measures: one `iptables -C`
// costs 15-25 ms here (a process start plus a full ruleset fetch). So the
// rules are read straight from the kernel, the way iptables itself does,
// and only counted: how many nat rules send 169.254.170.2 to REDIRECT.
// After a trial the result is confirmed once with `iptables -C`.

// ruleProbe counts our REDIRECT rule in nat OUTPUT.
type ruleProbe interface {
	Count() (int, error)
	Close()
}

// Our rule's destination, 169.254.170.2, as the kernel stores it.
var credentialsIP = []byte{169, 254, 170, 2}

// newRuleProbe opens a probe for the backend; call it from inside the
// namespace (the socket belongs to the namespace of the calling thread).
func newRuleProbe(backend string) (ruleProbe, error) {
	if backend == "legacy" {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
		if err != nil {
			return nil, fmt.Errorf("raw socket for iptables getsockopt: %w", err)
		}
		return &legacyProbe{fd: fd}, nil
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	if err != nil {
		return nil, fmt.Errorf("netlink socket (NETLINK_NETFILTER): %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind netlink socket: %w", err)
	}
	return &nftProbe{fd: fd, buf: make([]byte, 1<<20)}, nil
}

// nftProbe dumps the rules of table ip nat, chain OUTPUT over netlink
// (NFT_MSG_GETRULE with NLM_F_DUMP, filtered by table and chain in the
// kernel) and counts those naming 169.254.170.2 and REDIRECT.
type nftProbe struct {
	fd  int
	seq uint32
	buf []byte
}

const (
	nfnlSubsysNftables = 10
	nftMsgNewRule      = 6
	nftMsgGetRule      = 7
	nftaRuleTable      = 1
	nftaRuleChain      = 2
)

func nlattr(typ uint16, s string) []byte {
	v := append([]byte(s), 0)
	l := 4 + len(v)
	b := make([]byte, (l+3)&^3)
	binary.LittleEndian.PutUint16(b[0:], uint16(l))
	binary.LittleEndian.PutUint16(b[2:], typ)
	copy(b[4:], v)
	return b
}

func (p *nftProbe) Count() (int, error) {
	p.seq++
	body := []byte{unix.AF_INET, 0, 0, 0} // nfgenmsg: family, version, res_id
	body = append(body, nlattr(nftaRuleTable, "nat")...)
	body = append(body, nlattr(nftaRuleChain, "OUTPUT")...)
	msg := make([]byte, unix.NLMSG_HDRLEN+len(body))
	binary.LittleEndian.PutUint32(msg[0:], uint32(len(msg)))
	binary.LittleEndian.PutUint16(msg[4:], nfnlSubsysNftables<<8|nftMsgGetRule)
	binary.LittleEndian.PutUint16(msg[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	binary.LittleEndian.PutUint32(msg[8:], p.seq)
	copy(msg[unix.NLMSG_HDRLEN:], body)
	if err := unix.Sendto(p.fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0, fmt.Errorf("netlink send: %w", err)
	}
	count := 0
	for {
		n, _, err := unix.Recvfrom(p.fd, p.buf, 0)
		if err != nil {
			return 0, fmt.Errorf("netlink receive: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(p.buf[:n])
		if err != nil {
			return 0, fmt.Errorf("netlink parse: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Seq != p.seq {
				continue
			}
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return count, nil
			case unix.NLMSG_ERROR:
				if len(m.Data) >= 4 {
					if e := int32(binary.LittleEndian.Uint32(m.Data)); e != 0 {
						if -e == int32(unix.ENOENT) { // no table nat yet
							return 0, nil
						}
						return 0, fmt.Errorf("netlink dump: %w", unix.Errno(-e))
					}
				}
				return count, nil
			case nfnlSubsysNftables<<8 | nftMsgNewRule:
				// iptables-nft stores REDIRECT as an xtables target named
				// "REDIRECT"; nft itself would use the "redir" expression.
				if bytes.Contains(m.Data, credentialsIP) &&
					(bytes.Contains(m.Data, []byte("REDIRECT\x00")) || bytes.Contains(m.Data, []byte("redir\x00"))) {
					count++
				}
			}
		}
	}
}

func (p *nftProbe) Close() { unix.Close(p.fd) }

// legacyProbe reads the legacy nat table with the getsockopt calls
// iptables-legacy-save uses (IPT_SO_GET_INFO, IPT_SO_GET_ENTRIES) and
// counts entries with destination 169.254.170.2 and target REDIRECT.
type legacyProbe struct {
	fd  int
	buf []byte
}

const (
	iptSoGetInfo    = 64
	iptSoGetEntries = 65
	iptEntrySize    = 112 // sizeof(struct ipt_entry) on 64-bit Linux
)

func getsockopt(fd, opt int, buf []byte) error {
	l := uint32(len(buf))
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.IPPROTO_IP, uintptr(opt),
		uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&l)), 0)
	if e != 0 {
		return e
	}
	return nil
}

func (p *legacyProbe) Count() (int, error) {
	info := make([]byte, 84) // struct ipt_getinfo
	copy(info, "nat")
	if err := getsockopt(p.fd, iptSoGetInfo, info); err != nil {
		if err == unix.ENOENT {
			return 0, nil
		}
		return 0, fmt.Errorf("getsockopt IPT_SO_GET_INFO nat: %w", err)
	}
	size := int(binary.LittleEndian.Uint32(info[80:]))
	// struct ipt_get_entries: name[32], size, then the entries, 8-byte
	// aligned (struct ipt_entry holds u64 counters).
	need := 40 + size
	if cap(p.buf) < need {
		p.buf = make([]byte, need)
	}
	b := p.buf[:need]
	clear(b[:40])
	copy(b, "nat")
	binary.LittleEndian.PutUint32(b[32:], uint32(size))
	if err := getsockopt(p.fd, iptSoGetEntries, b); err != nil {
		if err == unix.EAGAIN { // the table changed between the two calls
			return p.Count()
		}
		return 0, fmt.Errorf("getsockopt IPT_SO_GET_ENTRIES nat: %w", err)
	}
	ents := b[40:]
	count := 0
	for off := 0; off+iptEntrySize <= len(ents); {
		e := ents[off:]
		targetOff := int(binary.LittleEndian.Uint16(e[88:]))
		next := int(binary.LittleEndian.Uint16(e[90:]))
		if next <= 0 {
			break
		}
		if bytes.Equal(e[4:8], credentialsIP) && targetOff+2+9 <= len(e) &&
			bytes.HasPrefix(e[targetOff+2:], []byte("REDIRECT\x00")) {
			count++
		}
		off += next
	}
	return count, nil
}

func (p *legacyProbe) Close() { unix.Close(p.fd) }

// fileRight is the ecs.config observer: the file says
// ECS_ENABLE_TASK_IAM_ROLE=true and no =false.
func fileRight(path string) bool {
	b, err := os.ReadFile(path)
	return err == nil && bytes.Contains(b, []byte("ECS_ENABLE_TASK_IAM_ROLE=true\n")) &&
		!bytes.Contains(b, []byte("ECS_ENABLE_TASK_IAM_ROLE=false"))
}
