package netfilter

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
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

// Fingerprint summarises the legacy tables of this network namespace, so
// that the daemon's poller can tell cheaply whether anything changed and
// reconcile only then (the legacy backend sends no change events). It
// reads each table's shape (getsockopt IPT_SO_GET_INFO: hooks, number of
// entries, size) for IPv4 and IPv6, and for IPv4 tables up to
// fingerprintMaxHash also the entries themselves with their packet
// counters zeroed. On nf_tables (HasEvents) it returns an error: there,
// events say what changed.
func (e *Enforcer) Fingerprint() (string, error) {
	if e.HasEvents() {
		return "", errors.New("nf_tables sends change events: nothing to poll")
	}
	h := fnv.New64a()
	for _, fam := range []struct {
		domain, level int
		names         string
		entries       bool
	}{
		{unix.AF_INET, unix.IPPROTO_IP, "/proc/thread-self/net/ip_tables_names", true},
		{unix.AF_INET6, unix.IPPROTO_IPV6, "/proc/thread-self/net/ip6_tables_names", false},
	} {
		names, err := os.ReadFile(fam.names)
		if errors.Is(err, os.ErrNotExist) {
			continue // no ip(6)_tables module: no legacy tables of this family
		}
		if err != nil {
			return "", err
		}
		tables := strings.Fields(string(names))
		if len(tables) == 0 {
			continue
		}
		fd, err := unix.Socket(fam.domain, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
		if err != nil {
			return "", fmt.Errorf("raw socket: %w", err)
		}
		for _, t := range tables {
			if err := tableFingerprint(fd, fam.level, t, fam.entries, h); err != nil {
				unix.Close(fd)
				return "", err
			}
		}
		unix.Close(fd)
	}
	return fmt.Sprintf("%016x", h.Sum64()), nil
}

func tableFingerprint(fd, level int, table string, entries bool, h interface{ Write([]byte) (int, error) }) error {
	info := make([]byte, iptInfoLen)
	copy(info, table)
	if _, err := getsockoptLevel(fd, level, iptSoGetInfo, info); err != nil {
		return fmt.Errorf("get info of legacy table %s: %w", table, err)
	}
	h.Write(info)
	size := binary.NativeEndian.Uint32(info[80:])
	if !entries || size > fingerprintMaxHash {
		return nil
	}
	buf := make([]byte, iptEntriesHdr+int(size))
	copy(buf, table)
	binary.NativeEndian.PutUint32(buf[32:], size)
	if _, err := getsockoptLevel(fd, level, iptSoGetEntries, buf); err != nil {
		if errors.Is(err, unix.EAGAIN) {
			h.Write([]byte("changing")) // changed between the two calls: different anyway
			return nil
		}
		return fmt.Errorf("get entries of legacy table %s: %w", table, err)
	}
	blob := buf[iptEntriesHdr:]
	for off := 0; off+iptEntryLen <= len(blob); {
		next := int(binary.NativeEndian.Uint16(blob[off+90:]))
		if next < iptEntryLen || off+next > len(blob) {
			return fmt.Errorf("legacy table %s: bad entry at %d", table, off)
		}
		clear(blob[off+92 : off+iptEntryLen]) // comefrom and the packet/byte counters change with traffic
		off += next
	}
	h.Write(blob)
	return nil
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
