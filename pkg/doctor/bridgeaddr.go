package doctor

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// What the bridge probe puts on the host is recognizable by name and MAC:
//
//   - the host end of its veth pair is "ecsrp<pid>" (pid of the doctor
//     process), a port of the task bridge while the probe runs;
//   - the probe end, inside the throw-away namespace, has MAC
//     fe:ec:52:<pid, 3 bytes>, so the neighbour entry it leaves in the
//     bridge's ARP table can be told from a container's;
//   - the host end has MAC fe:ec:53:<pid>. A Linux bridge whose own MAC
//     was not set explicitly takes the lowest MAC of its ports; fe:... is
//     higher than any MAC Docker (02:42:...) or a NIC vendor hands out, so
//     adding the probe's port never changes the bridge's MAC under the
//     containers' feet (Docker sets docker0's MAC explicitly anyway).
//
// A killed probe cannot leave its veth behind (the namespace holding the
// other end dies with the process, see nsWorker); the next run still
// removes any ecsrp<pid> link and fe:ec:52 neighbour entry whose process is
// gone.
const (
	probeLinkPrefix = "ecsrp"
	probeMACPrefix  = "fe:ec:52"
	hostMACPrefix   = "fe:ec:53"
)

func probeLinkName(pid int) string { return probeLinkPrefix + strconv.Itoa(pid) }

func pidMAC(prefix string, pid int) string {
	return fmt.Sprintf("%s:%02x:%02x:%02x", prefix, byte(pid>>16), byte(pid>>8), byte(pid))
}

// probeLinkPID returns the pid in a probe link's name, or false when name
// is not one.
func probeLinkPID(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, probeLinkPrefix)
	if !ok || rest == "" {
		return 0, false
	}
	pid, err := strconv.Atoi(rest)
	if err != nil || pid <= 0 || strconv.Itoa(pid) != rest {
		return 0, false
	}
	return pid, true
}

// probeMACPID returns the pid in a probe MAC, or false when mac is not one.
func probeMACPID(mac string) (int, bool) {
	mac = strings.ToLower(mac)
	rest, ok := strings.CutPrefix(mac, probeMACPrefix+":")
	if !ok {
		return 0, false
	}
	parts := strings.Split(rest, ":")
	if len(parts) != 3 {
		return 0, false
	}
	pid := 0
	for _, p := range parts {
		b, err := strconv.ParseUint(p, 16, 8)
		if err != nil {
			return 0, false
		}
		pid = pid<<8 | int(b)
	}
	return pid, true
}

// matchBridge returns the first of names (in the order of patterns, then
// of names) that a pattern matches. Patterns are iptables-style interface
// names: a trailing "+" matches any suffix ("docker+", "br-+").
func matchBridge(patterns, names []string) string {
	for _, p := range patterns {
		for _, n := range names {
			if prefix, wild := strings.CutSuffix(p, "+"); wild {
				if strings.HasPrefix(n, prefix) {
					return n
				}
			} else if n == p {
				return n
			}
		}
	}
	return ""
}

// maxAddressTries bounds the downward search for a free probe address.
const maxAddressTries = 64

// probeAddress picks the probe's address in the bridge's subnet: the last
// usable one (the broadcast address minus one), or the next lower one
// that is not taken (the bridge's own addresses, every neighbour the
// bridge knows). Docker's IPAM hands out container addresses from the
// bottom of the subnet upwards (172.17.0.2, .3, ...), so the top of the
// range is the last place a container lives, and a neighbour entry there
// means one does; a container gets the address only if its start races
// the probe's fraction of a second at the very top of a full subnet.
// An address inside the subnet makes the probe's packets look exactly
// like a container's to every rule (-s 172.17.0.0/16, rp_filter), and the
// host answers it on the bridge without any route of ours.
func probeAddress(bridge netip.Prefix, taken map[netip.Addr]bool) (netip.Addr, error) {
	if !bridge.Addr().Is4() {
		return netip.Addr{}, fmt.Errorf("%s is not IPv4", bridge)
	}
	if bridge.Bits() > 30 {
		return netip.Addr{}, fmt.Errorf("subnet %s is too small for a probe address", bridge.Masked())
	}
	network := bridge.Masked().Addr().As4()
	hostBits := 32 - bridge.Bits()
	n := uint32(network[0])<<24 | uint32(network[1])<<16 | uint32(network[2])<<8 | uint32(network[3])
	broadcast := n | (uint32(1)<<hostBits - 1)
	for i := uint32(1); i <= maxAddressTries && broadcast-i > n; i++ {
		v := broadcast - i
		a := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
		if a != bridge.Addr() && !taken[a] {
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("no free address among the top %d of %s (the bridge's neighbour table lists them all)", maxAddressTries, bridge.Masked())
}
