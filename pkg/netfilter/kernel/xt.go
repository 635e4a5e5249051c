package kernel

import (
	"encoding/binary"
	"net/netip"
	"strconv"
	"strings"
)

// Flags of the xt match and target blobs that both direct readers meet
// and decode alike (conntrackText, dnatText, redirectText): nf_tables
// carries iptables' xt extensions as they are (the "match" and "target"
// expressions of iptables-nft), and the legacy tables are nothing else.
const (
	ctFlagState     = 1 << 0
	natMapIPs       = 1 << 0
	natProtoSpecify = 1 << 1
)

// Verdict codes (include/uapi/linux/netfilter.h).
const (
	nfDrop   = 0
	nfAccept = 1
)

// prefixOf turns a compared (and maybe masked) address into a prefix.
func prefixOf(val, mask []byte, alen uint32) (netip.Prefix, bool) {
	full := make([]byte, alen)
	copy(full, val)
	bits := len(val) * 8
	if mask != nil {
		if len(mask) != len(val) {
			return netip.Prefix{}, false
		}
		bits = 0
		zero := false
		for _, m := range mask {
			for i := 7; i >= 0; i-- {
				if m&(1<<i) != 0 {
					if zero {
						return netip.Prefix{}, false
					}
					bits++
				} else {
					zero = true
				}
			}
		}
	}
	a, _ := netip.AddrFromSlice(full)
	p, err := a.Prefix(bits)
	if err != nil || p.Addr() != a {
		return netip.Prefix{}, false // bits set outside the mask: not what iptables writes
	}
	return p, true
}

// conntrackText decodes struct xt_conntrack_mtinfo3 for a state-only
// match (what ecs-init's guard uses); any other conntrack option is
// left to iptables-nft.
func conntrackText(b []byte) (string, bool) {
	if len(b) < 160 {
		return "", false
	}
	flags := binary.NativeEndian.Uint16(b[146:])
	inv := binary.NativeEndian.Uint16(b[148:])
	state := binary.NativeEndian.Uint16(b[150:])
	if flags != ctFlagState || inv&^ctFlagState != 0 {
		return "", false
	}
	var names []string
	for _, s := range ctStateBits {
		if state&s.bit != 0 {
			names = append(names, s.name)
			state &^= s.bit
		}
	}
	if state != 0 || len(names) == 0 {
		return "", false
	}
	neg := ""
	if inv&ctFlagState != 0 {
		neg = "! "
	}
	return "-m conntrack " + neg + "--ctstate " + strings.Join(names, ","), true
}

func portRangeText(lo, hi uint16) string {
	if lo == hi {
		return strconv.Itoa(int(lo))
	}
	return strconv.Itoa(int(lo)) + "-" + strconv.Itoa(int(hi))
}

// dnatText decodes struct nf_nat_range(2) of an IPv4 DNAT.
func dnatText(b []byte) (string, bool) {
	if len(b) < 40 {
		return "", false
	}
	flags := binary.NativeEndian.Uint32(b)
	if flags&^(natMapIPs|natProtoSpecify) != 0 || flags == 0 {
		return "", false
	}
	s := ""
	if flags&natMapIPs != 0 {
		lo, _ := netip.AddrFromSlice(b[4:8])
		hi, _ := netip.AddrFromSlice(b[20:24])
		s = lo.String()
		if hi != lo {
			s += "-" + hi.String()
		}
	}
	if flags&natProtoSpecify != 0 {
		s += ":" + portRangeText(binary.BigEndian.Uint16(b[36:]), binary.BigEndian.Uint16(b[38:]))
	}
	return "-j DNAT --to-destination " + s, true
}

// redirectText decodes struct nf_nat_ipv4_multi_range_compat of an IPv4
// REDIRECT.
func redirectText(b []byte) (string, bool) {
	if len(b) < 20 || binary.NativeEndian.Uint32(b) != 1 {
		return "", false
	}
	flags := binary.NativeEndian.Uint32(b[4:])
	switch flags {
	case 0:
		return "-j REDIRECT", true
	case natProtoSpecify:
		return "-j REDIRECT --to-ports " + portRangeText(binary.BigEndian.Uint16(b[16:]), binary.BigEndian.Uint16(b[18:])), true
	}
	return "", false
}

var protoNames = map[byte]string{1: "icmp", 6: "tcp", 17: "udp", 33: "dccp", 58: "ipv6-icmp", 132: "sctp", 136: "udplite"}

var ctStateBits = []struct {
	bit  uint16
	name string
}{{1 << 0, "INVALID"}, {1 << 3, "NEW"}, {1 << 2, "RELATED"}, {1 << 1, "ESTABLISHED"}, {1 << 8, "UNTRACKED"}, {1 << 6, "SNAT"}, {1 << 7, "DNAT"}}

type nlReg struct {
	kind    byte // 'p' payload, 'm' meta
	base    uint32
	off, ln uint32
	key     uint32
	mask    []byte
}
