package kernel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// fingerprintMaxHash bounds the table size whose entries Fingerprint
// hashes: above it (tens of thousands of rules) only the table's shape is
// compared, so that a poll stays cheap; the daemon's periodic resync
// catches what the shape misses (a rule swapped for one of the same size).
const fingerprintMaxHash = 256 << 10

// LegacyFingerprint summarises the legacy tables of this network namespace, so
// that the daemon's poller can tell cheaply whether anything changed and
// reconcile only then (the legacy backend sends no change events). The
// shape is each table's hooks, number of entries and size (getsockopt
// IPT_SO_GET_INFO) for IPv4 and IPv6: a deleted, added or flushed rule
// changes it. With deep, content is also a hash of the entries of every
// table up to fingerprintMaxHash, with their packet counters zeroed, which
// sees a rule replaced in place by one of the same size; it costs more
// (the kernel allocates and maps a copy of the table's counters for every
// IPT_SO_GET_ENTRIES), so the poller asks for it every few polls.
func LegacyFingerprint(deep bool) (shape, content string, err error) {
	sh, ch := fnv.New64a(), fnv.New64a()
	var entries io.Writer
	if deep {
		entries = ch
	}
	for _, v6 := range []bool{false, true} {
		if _, err := legacyFamilyHash(v6, sh, entries); err != nil {
			return "", "", err
		}
	}
	if deep {
		content = fmt.Sprintf("%016x", ch.Sum64())
	}
	return fmt.Sprintf("%016x", sh.Sum64()), content, nil
}

// entryLayout is where struct ipt_entry / ip6t_entry keep next_offset and
// the fields that change with traffic (comefrom, then the counters up to
// the end of the fixed part).
type entryLayout struct{ entryLen, nextOff, volatile int }

var (
	ipv4Entry = entryLayout{entryLen: iptEntryLen, nextOff: 90, volatile: 92}
	ipv6Entry = entryLayout{entryLen: 168, nextOff: 142, volatile: 144} // struct ip6t_ip6 is 136 bytes
)

// legacyFamilyHash writes the shape of the legacy tables of one family
// (IPv4 or IPv6) into shape and, when entries is not nil, their rules into
// entries. complete is false when some table's rules were not hashed (too
// big, or changing while read), so equal hashes do not prove equal rules.
func legacyFamilyHash(v6 bool, shape, entries io.Writer) (complete bool, err error) {
	domain, level, names, layout := unix.AF_INET, unix.IPPROTO_IP, ThreadSelf+"/net/ip_tables_names", ipv4Entry
	if v6 {
		domain, level, names, layout = unix.AF_INET6, unix.IPPROTO_IPV6, ThreadSelf+"/net/ip6_tables_names", ipv6Entry
	}
	list, err := os.ReadFile(names)
	if errors.Is(err, os.ErrNotExist) {
		return true, nil // no ip(6)_tables module: no legacy tables of this family
	}
	if err != nil {
		return false, err
	}
	tables := strings.Fields(string(list))
	if len(tables) == 0 {
		return true, nil
	}
	fd, err := unix.Socket(domain, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
	if err != nil {
		return false, fmt.Errorf("raw socket: %w", err)
	}
	defer unix.Close(fd)
	complete = true
	for _, t := range tables {
		shape.Write([]byte(t))
		full, err := tableFingerprint(fd, level, t, layout, shape, entries)
		if err != nil {
			return false, err
		}
		complete = complete && full
	}
	return complete, nil
}

// tableFingerprint writes one table's IPT_SO_GET_INFO into shape and, when
// entries is not nil and the table is small enough, its entries without
// their counters into entries.
func tableFingerprint(fd, level int, table string, layout entryLayout, shape, entries io.Writer) (bool, error) {
	info := make([]byte, iptInfoLen)
	copy(info, table)
	if _, err := getsockoptLevel(fd, level, iptSoGetInfo, info); err != nil {
		return false, fmt.Errorf("get info of legacy table %s: %w", table, err)
	}
	shape.Write(info)
	if entries == nil {
		return false, nil
	}
	size := binary.NativeEndian.Uint32(info[80:])
	if size > fingerprintMaxHash {
		return false, nil
	}
	buf := make([]byte, iptEntriesHdr+int(size))
	copy(buf, table)
	binary.NativeEndian.PutUint32(buf[32:], size)
	if _, err := getsockoptLevel(fd, level, iptSoGetEntries, buf); err != nil {
		if errors.Is(err, unix.EAGAIN) {
			entries.Write([]byte("changing")) // changed between the two calls: different anyway
			return false, nil
		}
		return false, fmt.Errorf("get entries of legacy table %s: %w", table, err)
	}
	blob := buf[iptEntriesHdr:]
	for off := 0; off+layout.entryLen <= len(blob); {
		next := int(binary.NativeEndian.Uint16(blob[off+layout.nextOff:]))
		if next < layout.entryLen || off+next > len(blob) {
			return false, fmt.Errorf("legacy table %s: bad entry at %d", table, off)
		}
		clear(blob[off+layout.volatile : off+layout.entryLen]) // comefrom and the packet/byte counters change with traffic
		off += next
	}
	entries.Write(blob)
	return true, nil
}

func getsockoptLevel(fd, level, opt int, b []byte) (int, error) {
	l := uint32(len(b))
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt),
		uintptr(unsafe.Pointer(&b[0])), uintptr(unsafe.Pointer(&l)), 0)
	if e != 0 {
		return 0, e
	}
	return int(l), nil
}

// LegacyTablesHash is a hash of one family's legacy tables (their entries
// with the traffic counters zeroed, as LegacyFingerprint hashes them); ""
// when it cannot stand for their content (tables too big to hash, or
// changing while hashed). It keys a cache of their -save (RunCached).
func LegacyTablesHash(v6 bool) string {
	h := fnv.New128a()
	complete, err := legacyFamilyHash(v6, h, h)
	if err != nil || !complete {
		return ""
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// NFTGeneration is the nf_tables generation, bumped by the kernel on every
// committed change; "" when netlink cannot tell. It keys a cache of a text
// printed from nf_tables (RunCached).
func NFTGeneration() string {
	c, err := nlDial()
	if err != nil {
		return ""
	}
	defer c.close()
	gen, err := c.genID()
	if err != nil {
		return ""
	}
	return fmt.Sprintf("gen %d", gen)
}
