package kernel

import (
	"encoding/binary"
	"net"
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/ecs-remediator/ecs-remediator/pkg/nfnetlink"
)

// HostRoute asks the kernel (RTM_GETROUTE, in the calling thread's
// network namespace) how the host reaches dst: the output interface
// and preferred source the host path's SYN carries through the output hook
// (the REDIRECT reroutes it to lo afterwards, but the hook keeps the
// original output device). ok is false when the kernel does not answer.
func HostRoute(dst netip.Addr) (oif string, src netip.Addr, ok bool) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return "", netip.Addr{}, false
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return "", netip.Addr{}, false
	}
	a := dst.As4()
	rta := nfnetlink.AppendAttr(nil, unix.RTA_DST, a[:])
	const hdr = unix.SizeofNlMsghdr + unix.SizeofRtMsg
	msg := make([]byte, hdr, hdr+len(rta))
	msg = append(msg, rta...)
	binary.NativeEndian.PutUint32(msg[0:], uint32(len(msg)))
	binary.NativeEndian.PutUint16(msg[4:], unix.RTM_GETROUTE)
	binary.NativeEndian.PutUint16(msg[6:], unix.NLM_F_REQUEST)
	binary.NativeEndian.PutUint32(msg[8:], 1)
	msg[unix.SizeofNlMsghdr] = unix.AF_INET // rtm_family
	msg[unix.SizeofNlMsghdr+1] = 32         // rtm_dst_len
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return "", netip.Addr{}, false
	}
	buf := make([]byte, 1<<14)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil || n < hdr {
		return "", netip.Addr{}, false
	}
	if binary.NativeEndian.Uint16(buf[4:]) != unix.RTM_NEWROUTE {
		return "", netip.Addr{}, false
	}
	l := int(binary.NativeEndian.Uint32(buf[0:]))
	if l > n || l < hdr {
		return "", netip.Addr{}, false
	}
	var index int
	attrs(buf[hdr:l], func(t uint16, d []byte) {
		switch {
		case t == unix.RTA_OIF && len(d) == 4:
			index = int(binary.NativeEndian.Uint32(d))
		case t == unix.RTA_PREFSRC && len(d) == 4:
			src = netip.AddrFrom4([4]byte(d))
		}
	})
	if index == 0 {
		return "", netip.Addr{}, false
	}
	ifc, err := net.InterfaceByIndex(index)
	if err != nil {
		return "", netip.Addr{}, false
	}
	return ifc.Name, src, true
}
