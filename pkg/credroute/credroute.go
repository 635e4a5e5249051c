// Package credroute owns one route: 169.254.170.2/32 dev lo scope link in
// the main table, on hosts without an IPv4 default route (IPv6-only
// subnets). There ecs-init adds it at pre-start and deletes it at
// post-stop (ecs-init/routes/routes.go, since 1.94), because without it
// the credentials endpoint has no IPv4 path at all; on a host with an IPv4
// default route ecs-init neither adds nor deletes it, and neither does
// this package (docs/ecs-init.md, "IPv6-only hosts").
//
// It talks rtnetlink directly (RTM_GETROUTE dumps, one RTM_NEWROUTE), in
// the network namespace of the calling thread. It must not touch any other
// route, and never deletes one: a foreign route for 169.254.170.2/32 is
// reported, not replaced.
package credroute

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
)

// Item is the finding id.
const Item = "network.credentials_route"

const addr = "169.254.170.2"

// route is one IPv4 route of the main table, as the dump gives it.
type route struct {
	dst   netip.Prefix
	oif   int
	scope uint8
	rtype uint8
}

// Enforcer implements reconcile.Enforcer.
type Enforcer struct{}

// New returns the enforcer.
func New() *Enforcer { return &Enforcer{} }

// Check observes the routes.
func (e *Enforcer) Check(ctx context.Context) []finding.Finding {
	f, _ := e.pass(false)
	return []finding.Finding{f}
}

// Apply adds the route when the host needs it and it is missing; with
// dryRun it writes the ip command it would run to plan.
func (e *Enforcer) Apply(ctx context.Context, dryRun bool, plan io.Writer) ([]finding.Finding, []finding.Change) {
	f, cs := e.pass(!dryRun)
	if dryRun && f.Status == finding.Drift && plan != nil {
		fmt.Fprintf(plan, "# %s\nip route add %s/32 dev lo scope link\n", Item, addr)
	}
	return []finding.Finding{f}, cs
}

const wanted = addr + "/32 dev lo scope link"

func (e *Enforcer) pass(repair bool) (finding.Finding, []finding.Change) {
	f := finding.Finding{Item: Item, Status: finding.OK}
	lo, err := loopback()
	if err == nil {
		var rs []route
		rs, err = dumpRoutes()
		if err == nil {
			return e.judge(rs, lo, repair)
		}
	}
	f.Status = finding.Error
	f.Detail = "read the IPv4 routes over rtnetlink: " + err.Error()
	f.Fix = "ip -4 route show; ecs-remediator needs CAP_NET_ADMIN"
	return f, nil
}

func (e *Enforcer) judge(rs []route, lo int, repair bool) (finding.Finding, []finding.Change) {
	f := finding.Finding{Item: Item, Status: finding.OK}
	want := netip.MustParsePrefix(addr + "/32")
	var ours, foreign *route
	defaultRoute := false
	for i := range rs {
		r := &rs[i]
		if r.dst.Bits() == 0 && r.rtype == unix.RTN_UNICAST {
			defaultRoute = true
		}
		if r.dst == want {
			if r.oif == lo {
				ours = r
			} else if foreign == nil {
				foreign = r
			}
		}
	}
	switch {
	case defaultRoute:
		f.Detail = "not needed: the host has an IPv4 default route (ecs-init adds " + wanted + " only on IPv6-only hosts)"
		return f, nil
	case ours != nil:
		f.Detail = "present: " + wanted + " (no IPv4 default route: an IPv6-only host, where ecs-init adds it)"
		return f, nil
	case foreign != nil:
		f.Warn()
		f.Detail = fmt.Sprintf("no IPv4 default route (IPv6-only host) and a route for %s/32 exists through interface %d, not lo: left alone, but tasks reach the credentials endpoint only through lo", addr, foreign.oif)
		f.Fix = "ip route show " + addr + "; delete that route if nothing needs it (ip route del " + addr + "/32 ...), then ecs-remediator apply"
		return f, nil
	}
	f.Status = finding.Drift
	f.Detail = "missing: " + wanted + " on a host without an IPv4 default route (IPv6-only): tasks have no path to the credentials endpoint"
	f.Fix = "ecs-remediator apply, which adds it as ecs-init does: ip route add " + wanted
	if !repair {
		return f, nil
	}
	if err := addRoute(lo); err != nil && !errors.Is(err, unix.EEXIST) {
		f.Status = finding.Error
		f.Detail = "add " + wanted + ": " + err.Error()
		f.Fix = "ip route add " + wanted + " (ecs-remediator needs CAP_NET_ADMIN)"
		return f, nil
	}
	f.Status = finding.OK
	f.Detail = "present: " + wanted + " (added: no IPv4 default route)"
	f.Fix = ""
	return f, []finding.Change{{
		Item:   Item,
		Action: "added route",
		Target: "ip route main",
		Old:    "absent",
		New:    wanted,
		Reason: "the host has no IPv4 default route (IPv6-only): tasks reach " + addr + " only through this route, which ecs-init adds at pre-start and deletes at post-stop",
	}}
}

// loopback is the index of the loopback interface (ecs-init's
// GetLoopbackInterface: the first with the loopback flag).
func loopback() (int, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return 0, err
	}
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback != 0 {
			return i.Index, nil
		}
	}
	return 0, errors.New("no loopback interface")
}

// rtmsg is struct rtmsg (linux/rtnetlink.h).
type rtmsg struct {
	family, dstLen, srcLen, tos, table, protocol, scope, rtype uint8
	flags                                                      uint32
}

func (m rtmsg) bytes() []byte {
	b := []byte{m.family, m.dstLen, m.srcLen, m.tos, m.table, m.protocol, m.scope, m.rtype, 0, 0, 0, 0}
	binary.NativeEndian.PutUint32(b[8:], m.flags)
	return b
}

const rtmsgLen = 12

func dial() (*netlink.Conn, error) { return netlink.Dial(unix.NETLINK_ROUTE, nil) }

// dumpRoutes lists the IPv4 routes of the main table.
func dumpRoutes() ([]route, error) {
	c, err := dial()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	msgs, err := c.Execute(netlink.Message{
		Header: netlink.Header{Type: unix.RTM_GETROUTE, Flags: netlink.Request | netlink.Dump},
		Data:   rtmsg{family: unix.AF_INET}.bytes(),
	})
	if err != nil {
		return nil, err
	}
	var rs []route
	for _, m := range msgs {
		if r, ok := parseRoute(m.Data); ok {
			rs = append(rs, r)
		}
	}
	return rs, nil
}

// parseRoute reads one RTM_NEWROUTE of the main table.
func parseRoute(b []byte) (route, bool) {
	if len(b) < rtmsgLen || b[0] != unix.AF_INET {
		return route{}, false
	}
	table := uint32(b[4])
	r := route{scope: b[6], rtype: b[7]}
	dstLen := int(b[1])
	dst := netip.IPv4Unspecified()
	ad, err := netlink.NewAttributeDecoder(b[rtmsgLen:])
	if err != nil {
		return route{}, false
	}
	ad.ByteOrder = binary.NativeEndian
	for ad.Next() {
		switch ad.Type() {
		case unix.RTA_DST:
			if a, ok := netip.AddrFromSlice(ad.Bytes()); ok {
				dst = a.Unmap()
			}
		case unix.RTA_OIF:
			r.oif = int(ad.Uint32())
		case unix.RTA_TABLE:
			table = ad.Uint32()
		}
	}
	if ad.Err() != nil || table != unix.RT_TABLE_MAIN {
		return route{}, false
	}
	p, err := dst.Prefix(dstLen)
	if err != nil {
		return route{}, false
	}
	r.dst = p
	return r, true
}

// addRoute is `ip route add 169.254.170.2/32 dev lo scope link`, as
// ecs-init's netlink RouteAdd makes it (protocol boot, table main).
func addRoute(lo int) error {
	c, err := dial()
	if err != nil {
		return err
	}
	defer c.Close()
	ae := netlink.NewAttributeEncoder()
	ae.ByteOrder = binary.NativeEndian
	ae.Bytes(unix.RTA_DST, netip.MustParseAddr(addr).AsSlice())
	ae.Uint32(unix.RTA_OIF, uint32(lo))
	attrs, err := ae.Encode()
	if err != nil {
		return err
	}
	data := append(rtmsg{family: unix.AF_INET, dstLen: 32, table: unix.RT_TABLE_MAIN,
		protocol: unix.RTPROT_BOOT, scope: unix.RT_SCOPE_LINK, rtype: unix.RTN_UNICAST}.bytes(), attrs...)
	_, err = c.Execute(netlink.Message{
		Header: netlink.Header{Type: unix.RTM_NEWROUTE, Flags: netlink.Request | netlink.Acknowledge | netlink.Create | netlink.Excl},
		Data:   data,
	})
	return err
}
