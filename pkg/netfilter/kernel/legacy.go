package kernel

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter/rule"
)

const (
	iptSoGetInfo    = 64 // IPT_SO_GET_INFO
	iptSoGetEntries = 65 // IPT_SO_GET_ENTRIES
	iptInfoLen      = 84 // struct ipt_getinfo
	iptEntriesHdr   = 40 // struct ipt_get_entries up to entrytable
	iptEntryLen     = 112
	xtHeaderLen     = 32 // struct xt_entry_match / xt_entry_target header

	iptFFrag       = 0x01
	iptFGoto       = 0x02
	iptInvViaIn    = 0x01
	iptInvViaOut   = 0x02
	iptInvSrcIP    = 0x08
	iptInvDstIP    = 0x10
	iptInvProto    = 0x40
	xtReturnVerdct = -5 // XT_RETURN: -NF_REPEAT - 1
)

var hookChains = [5]string{"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"}

func getsockopt(fd, opt int, b []byte) (int, error) {
	return getsockoptLevel(fd, unix.IPPROTO_IP, opt, b)
}

// legacyChains copies table out of the kernel and returns its chains'
// rules (offset in handle, entry bytes in exprs, resolved jump in jump)
// and which user chains exist.
func legacyChains(fd int, table string) (map[string][]rawRule, error) {
	var blob []byte
	var info []byte
	for try := 0; ; try++ {
		info = make([]byte, iptInfoLen)
		copy(info, table)
		if _, err := getsockopt(fd, iptSoGetInfo, info); err != nil {
			return nil, fmt.Errorf("get info of legacy table %s: %w", table, err)
		}
		size := binary.NativeEndian.Uint32(info[80:])
		buf := make([]byte, iptEntriesHdr+int(size))
		copy(buf, table)
		binary.NativeEndian.PutUint32(buf[32:], size)
		_, err := getsockopt(fd, iptSoGetEntries, buf)
		if errors.Is(err, unix.EAGAIN) && try < 3 { // the table changed in between
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("get entries of legacy table %s: %w", table, err)
		}
		blob = buf[iptEntriesHdr:]
		break
	}
	return decodeLegacy(table, info, blob)
}

// decodeLegacy walks one table's IPT_SO_GET_INFO answer (info) and
// IPT_SO_GET_ENTRIES copy (blob) into chains. It is pure, so recorded
// tables test it without root (testdata/kernel).
func decodeLegacy(table string, info, blob []byte) (map[string][]rawRule, error) {
	if len(info) < iptInfoLen {
		return nil, fmt.Errorf("legacy table %s: short IPT_SO_GET_INFO answer (%d bytes)", table, len(info))
	}
	valid := binary.NativeEndian.Uint32(info[32:])
	hookAt := map[int]string{}
	underflow := map[int]bool{}
	for h := 0; h < 5; h++ {
		if valid&(1<<h) != 0 {
			hookAt[int(binary.NativeEndian.Uint32(info[36+4*h:]))] = hookChains[h]
			underflow[int(binary.NativeEndian.Uint32(info[56+4*h:]))] = true
		}
	}
	chains := map[string][]rawRule{}
	starts := map[int]string{} // first entry of a user chain -> its name
	cur, user := "", false
	for off := 0; off+iptEntryLen <= len(blob); {
		e := blob[off:]
		tOff := int(binary.NativeEndian.Uint16(e[88:]))
		next := int(binary.NativeEndian.Uint16(e[90:]))
		if next < iptEntryLen || off+next > len(blob) || tOff < iptEntryLen || tOff+xtHeaderLen > next {
			return nil, fmt.Errorf("legacy table %s: bad entry at %d", table, off)
		}
		if name, ok := hookAt[off]; ok {
			cur, user = name, false
			chains[cur] = chains[cur][:0:0]
		}
		tgt := e[tOff:next]
		if cstr(tgt[2:31]) == "ERROR" {
			if user && len(chains[cur]) > 0 { // the user chain's RETURN tail
				chains[cur] = chains[cur][:len(chains[cur])-1]
			}
			name := cstr(tgt[xtHeaderLen:])
			if name == "ERROR" {
				break
			}
			cur, user = name, true
			chains[cur] = []rawRule{}
			starts[off+next] = name
			off += next
			continue
		}
		switch {
		case underflow[off]:
			cur = "" // the builtin chain's policy
		case cur != "":
			chains[cur] = append(chains[cur], rawRule{handle: uint64(off), exprs: e[:next]})
		}
		off += next
	}
	for name, rs := range chains {
		for j := range rs {
			e := rs[j].exprs
			tgt := e[binary.NativeEndian.Uint16(e[88:]):]
			if cstr(tgt[2:31]) != "" || len(tgt) < xtHeaderLen+4 {
				continue
			}
			v := int32(binary.NativeEndian.Uint32(tgt[xtHeaderLen:]))
			if v >= 0 && int(v) != int(rs[j].handle)+len(e) {
				rs[j].jump = starts[int(v)]
			}
		}
		chains[name] = rs
	}
	return chains, nil
}

// iptText prints one ipt_entry as iptables-legacy-save does, for the
// same options as nftText.
func iptText(nr *rawRule) printedRule {
	var out printedRule
	e := nr.exprs
	var parts []string
	ok := true
	src, dst := netip.AddrFrom4([4]byte(e[0:4])), netip.AddrFrom4([4]byte(e[4:8]))
	smsk, dmsk := e[8:12], e[12:16]
	flags, inv := e[82], e[83]
	neg := func(bit byte) string {
		if inv&bit != 0 {
			return "! "
		}
		return ""
	}
	addr := func(opt string, a netip.Addr, m []byte, bit byte) (netip.Prefix, bool) {
		if binary.BigEndian.Uint32(m) == 0 && inv&bit == 0 {
			return netip.Prefix{}, false
		}
		p, good := prefixOf(a.AsSlice(), m, 4)
		if !good {
			ok = false
			return netip.Prefix{}, false
		}
		parts = append(parts, neg(bit)+opt+" "+p.String())
		return p, true
	}
	addr("-s", src, smsk, iptInvSrcIP)
	if p, has := addr("-d", dst, dmsk, iptInvDstIP); has {
		out.dst, out.hasDst, out.dstNeg = p, true, inv&iptInvDstIP != 0
	} else if !ok {
		out.dstAny = true
	}
	iface := func(opt string, name, mask []byte, bit byte) {
		n := cstr(name)
		if n == "" {
			return
		}
		// legacy keeps "docker+" as typed; a wildcard has the NUL unmasked
		if !strings.HasSuffix(n, "+") && len(n) < len(mask) && mask[len(n)] == 0 {
			n += "+"
		}
		parts = append(parts, neg(bit)+opt+" "+n)
	}
	iface("-i", e[16:32], e[48:64], iptInvViaIn)
	iface("-o", e[32:48], e[64:80], iptInvViaOut)
	proto := ""
	if p := binary.NativeEndian.Uint16(e[80:]); p != 0 {
		proto = protoNames[byte(p)]
		if proto == "" || p > 255 {
			proto = strconv.Itoa(int(p))
		}
		parts = append(parts, neg(iptInvProto)+"-p "+proto)
	}
	if flags&iptFFrag != 0 {
		ok = false
	}
	tOff := int(binary.NativeEndian.Uint16(e[88:]))
	for p := iptEntryLen; p+xtHeaderLen <= tOff; {
		m := e[p:]
		size := int(binary.NativeEndian.Uint16(m))
		if size < xtHeaderLen || p+size > tOff {
			ok = false
			break
		}
		name, rev, data := cstr(m[2:31]), m[31], m[xtHeaderLen:size]
		switch {
		case (name == "tcp" && len(data) >= 12) || (name == "udp" && len(data) >= 9):
			// struct xt_tcp: ports, option, flag mask and flags, then
			// invflags at 11; struct xt_udp: ports, then invflags at 8.
			invAt, extra := 8, byte(0)
			if name == "tcp" {
				invAt, extra = 11, data[8]|data[9]|data[10]
			}
			pinv := data[invAt]
			if extra != 0 || pinv&^3 != 0 {
				ok = false
				break
			}
			s := "-m " + name
			for i, opt := range []string{"--sport", "--dport"} {
				lo, hi := binary.NativeEndian.Uint16(data[4*i:]), binary.NativeEndian.Uint16(data[4*i+2:])
				n := ""
				if pinv&(1<<i) != 0 {
					n = "! "
				}
				switch {
				case lo == 0 && hi == 0xffff && n == "":
					continue
				case lo == hi:
					s += " " + n + opt + " " + strconv.Itoa(int(lo))
				default:
					s += " " + n + opt + " " + strconv.Itoa(int(lo)) + ":" + strconv.Itoa(int(hi))
				}
			}
			parts = append(parts, s)
		case name == "conntrack" && rev == 3:
			s, good := conntrackText(data)
			ok = ok && good
			parts = append(parts, s)
		default:
			ok = false
		}
		p += size
	}
	tgt := e[tOff:]
	tsize := int(binary.NativeEndian.Uint16(tgt))
	if tsize < xtHeaderLen || tsize > len(tgt) {
		ok = false
		tsize = xtHeaderLen
	}
	tname, trev, tdata := cstr(tgt[2:31]), tgt[31], tgt[xtHeaderLen:tsize]
	switch {
	case tname == "" && len(tdata) >= 4:
		v := int32(binary.NativeEndian.Uint32(tdata))
		j := "-j "
		if flags&iptFGoto != 0 {
			j = "-g "
		}
		switch {
		case v == -nfDrop-1:
			parts = append(parts, "-j DROP")
		case v == -nfAccept-1:
			parts = append(parts, "-j ACCEPT")
		case v == xtReturnVerdct:
			parts = append(parts, "-j RETURN")
		case v >= 0 && int(v) == int(nr.handle)+len(e):
			// no target: falls through
		case v >= 0 && nr.jump != "":
			parts = append(parts, j+nr.jump)
		default:
			ok = false
		}
	case tname == "DNAT" && (trev == 1 || trev == 2):
		s, good := dnatText(tdata)
		ok = ok && good
		parts = append(parts, s)
	case tname == "REDIRECT" && trev == 0:
		s, good := redirectText(tdata)
		ok = ok && good
		parts = append(parts, s)
	default:
		ok = false
	}
	out.text, out.ok = strings.Join(parts, " "), ok
	return out
}

// Legacy reads the legacy backend's IPv4 tables straight from the
// kernel: getsockopt(IPT_SO_GET_ENTRIES) copies a table out in one call,
// the same copy iptables-legacy-save starts with, without libiptc's parse
// of every entry and the printing of every rule. The entries are walked
// into chains, and only the rules that matter are printed (iptText, by the
// same rules as for nf_tables: printChain), then keyed by rule.Key. A rule
// that matters and that iptText cannot print makes Read return
// ErrUnprintable, and the read is done with iptables-legacy-save instead.
// There is no generation to cache by, so it keeps nothing between reads.
type Legacy struct{}

// Read reads the IPv4 chains of in from the legacy tables.
func (Legacy) Read(ctx context.Context, in rule.Interest) (*rule.Ruleset, error) {
	pats := needleBytes(in.Needles)
	for _, n := range in.Needles {
		pats = append(pats, []byte(n))
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
	if err != nil {
		return nil, fmt.Errorf("raw socket: %w", err)
	}
	defer unix.Close(fd)
	// Asking the kernel for a table creates it in the namespace: read only
	// the tables that exist (iptables-legacy-save does the same). This is
	// the calling thread's own view, like the socket's.
	names, err := os.ReadFile(ThreadSelf + "/net/ip_tables_names")
	if err != nil {
		return nil, fmt.Errorf("list legacy tables: %w", err)
	}
	loaded := map[string]bool{}
	for _, n := range strings.Fields(string(names)) {
		loaded[n] = true
	}
	rs := rule.NewRuleset(false)
	tables := map[string]map[string][]rawRule{}
	for _, c := range in.Chains {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		table, name := c.Table, c.Chain
		tc, done := tables[table]
		if !done && !loaded[table] {
			tc, done = map[string][]rawRule{}, true // no such table: builtin chains read as empty
			tables[table] = tc
		}
		if !done {
			if tc, err = legacyChains(fd, table); err != nil {
				return nil, err
			}
			tables[table] = tc
		}
		nrs, exists := tc[name]
		ch := rs.Chain(table, name)
		if !exists {
			continue // builtin: always exists; user chain: missing
		}
		ch.Exists = true
		if !printChain(ch, nrs, in, false, pats, func(nr *rawRule, _ bool) printedRule { return iptText(nr) }) {
			return nil, ErrUnprintable
		}
		for j := range ch.Rules {
			ch.Rules[j].Handle = 0 // offsets, not handles
		}
	}
	return rs, nil
}
