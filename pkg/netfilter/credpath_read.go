package netfilter

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter/kernel"
	"github.com/ecs-remediator/ecs-remediator/pkg/nfnetlink"
)

// Reading what the credential packets meet on the input and output hooks
// (see credpath.go): the filter table of the iptables backend in use and
// of the other backend (when it holds one), as iptables-save prints them,
// and the native nf_tables base chains, as nft prints them. The texts are
// kept while the kernel shows they cannot have changed (the nf_tables
// generation; for legacy, the hash of the IPv4 tables the poller uses),
// so a steady reconcile starts no process.

// pathRead is the model of both hooks.
type pathRead struct {
	input, output []base
	inUse         *mtable
	notes         []string // what could not be read: the verdict may be undecidable
	err           error    // the backend in use could not be read
	natives       []nftBase
}

// v4LegacyKey is the hash of the IPv4 legacy tables ("" when it cannot
// stand for their content).
func v4LegacyKey() string {
	h := fnv.New128a()
	complete, err := legacyFamilyHash(false, h, h)
	if err != nil || !complete {
		return ""
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// credCache holds the texts read for the evaluator and the models parsed
// from them (reused while the text is the cached one: parsing 10 000
// rules costs ~40 ms, see BenchmarkEvaluate).
type credCache struct {
	inUse, other, nftJSON, nftText *kernel.Output
	models                         map[*kernel.Output]*mtable
	natives                        *kernel.Output
	nativeBases                    []nftBase
}

// model parses a save text once per cached text.
func (c *credCache) model(slot *kernel.Output, out []byte, where string) (*mtable, error) {
	if m, ok := c.models[slot]; ok && slot != nil {
		return m, nil
	}
	m, err := parseSaveTable(string(out), "filter", where)
	if err != nil {
		return nil, err
	}
	if slot != nil {
		if c.models == nil || len(c.models) > 4 {
			c.models = map[*kernel.Output]*mtable{}
		}
		c.models[slot] = m
	}
	return m, nil
}

func (e *Enforcer) keyFor(backend string) func() string {
	if backend == backendNFT {
		return nftGenKey
	}
	return v4LegacyKey
}

// readPath reads the model of both hooks.
func (e *Enforcer) readPath(ctx context.Context) *pathRead {
	pr := &pathRead{}
	if e.cred == nil {
		e.cred = &credCache{}
	}
	label := func(cmd, backend string) string {
		return fmt.Sprintf("%s (%s) filter", filepath.Base(cmd), backend)
	}
	out, err := kernel.RunCached(ctx, e.run, &e.cred.inUse, e.keyFor(e.v4.backend), e.v4.save, "-t", "filter")
	if err != nil {
		pr.err = fmt.Errorf("read the filter table: %w", err)
		return pr
	}
	t, err := e.cred.model(e.cred.inUse, out, label(e.v4.cmd, e.v4.backend))
	if err != nil {
		pr.err = fmt.Errorf("parse %s -t filter output: %w", e.v4.save, err)
		return pr
	}
	pr.inUse = t
	pr.input = append(pr.input, base{t: t, chain: "INPUT", owner: "iptables", family: e.v4.backend, table: "filter"})
	pr.output = append(pr.output, base{t: t, chain: "OUTPUT", owner: "iptables", family: e.v4.backend, table: "filter"})

	if e.oth != "" {
		other := backendLegacy
		if e.v4.backend == backendLegacy {
			other = backendNFT
		}
		if other == backendNFT || e.c.legacyTable("filter") {
			save := deriveTool(e.oth, "iptables", "-save")
			args := []string{"-t", "filter"}
			if other == backendNFT {
				args = nil // with -t, iptables-nft-save prints a filter table that does not exist
			}
			out, err := kernel.RunCached(ctx, e.run, &e.cred.other, e.keyFor(other), save, args...)
			if err != nil {
				pr.notes = append(pr.notes, fmt.Sprintf("the %s backend's filter table could not be read (%v)", other, err))
			} else if ot, err := e.cred.model(e.cred.other, out, label(e.oth, other)); err != nil {
				pr.notes = append(pr.notes, fmt.Sprintf("parse %s output: %v", save, err))
			} else if len(ot.chains) > 0 {
				pr.input = append(pr.input, base{t: ot, chain: "INPUT", family: other, table: "filter"})
				pr.output = append(pr.output, base{t: ot, chain: "OUTPUT", family: other, table: "filter"})
			}
		}
	}

	nft := e.c.nft()
	if !lookPath(nft) {
		if names := nativeTables(); len(names) > 0 {
			pr.notes = append(pr.notes, "native nf_tables tables exist ("+strings.Join(names, ", ")+") but "+nft+" is not installed, so their chains were not evaluated (install nftables)")
		}
		return pr
	}
	js, err := kernel.RunCached(ctx, e.run, &e.cred.nftJSON, nftGenKey, nft, "-j", "list", "ruleset")
	if err == nil {
		var txt []byte
		txt, err = kernel.RunCached(ctx, e.run, &e.cred.nftText, nftGenKey, nft, "-a", "list", "ruleset")
		switch {
		case err == nil && e.cred.natives != nil && e.cred.natives == e.cred.nftJSON && e.cred.nftText != nil:
			pr.natives = e.cred.nativeBases // the same generation: the same model
		case err == nil:
			pr.natives, err = parseNftRuleset(js, parseNftText(string(txt)))
			e.cred.natives, e.cred.nativeBases = e.cred.nftJSON, pr.natives
		}
	}
	if err != nil {
		pr.notes = append(pr.notes, "the native nf_tables ruleset could not be read: "+err.Error())
		return pr
	}
	for _, nb := range pr.natives {
		b := base{t: nb.t, chain: nb.chain, prio: nb.prio, family: nb.family, table: nb.table}
		if nb.hook == "input" {
			pr.input = append(pr.input, b)
		} else {
			pr.output = append(pr.output, b)
		}
	}
	return pr
}

func (c *Config) nft() string {
	if c.Nft == "" {
		return "nft"
	}
	return c.Nft
}

// legacyTable reports whether the legacy backend holds table (reading it
// otherwise would create it).
func (c *Config) legacyTable(table string) bool {
	b, err := os.ReadFile(filepath.Join(c.ProcRoot, "net", "ip_tables_names"))
	if err != nil {
		return false
	}
	for _, n := range strings.Fields(string(b)) {
		if n == table {
			return true
		}
	}
	return false
}

// nativeTables lists, over netlink, the nf_tables tables of families ip
// and inet that iptables-nft does not own ("family name"); nil when
// netlink cannot tell.
func nativeTables() []string {
	c, err := nlDial()
	if err != nil {
		return nil
	}
	defer c.close()
	var out []string
	for _, fam := range []struct {
		n    uint8
		name string
	}{{unix.NFPROTO_IPV4, "ip"}, {unix.NFPROTO_INET, "inet"}} {
		msgs, err := c.c.Query(nfnetlink.Request{Subsys: unix.NFNL_SUBSYS_NFTABLES, Type: unix.NFT_MSG_GETTABLE,
			Flags: unix.NLM_F_DUMP, Family: fam.n})
		if err != nil {
			continue
		}
		for _, m := range msgs {
			if m.Type != unix.NFT_MSG_NEWTABLE {
				continue
			}
			attrs(m.Payload, func(t uint16, d []byte) {
				if t != unix.NFTA_TABLE_NAME {
					return
				}
				name := cstr(d)
				switch {
				case fam.name == "ip" && (name == "filter" || name == "nat" || name == "mangle" || name == "raw" || name == "security"):
				default:
					out = append(out, fam.name+" "+name)
				}
			})
		}
	}
	return out
}

// bridgeSubnet is the IPv4 network of a bridge (its containers' source
// addresses); false when it has none or the name is a wildcard.
func bridgeSubnet(name string) (netip.Prefix, bool) {
	if strings.HasSuffix(name, "+") {
		return netip.Prefix{}, false
	}
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		return netip.Prefix{}, false
	}
	addrs, err := ifc.Addrs()
	if err != nil {
		return netip.Prefix{}, false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
			ones, _ := n.Mask.Size()
			ip, _ := netip.AddrFromSlice(n.IP.To4())
			p, err := ip.Prefix(ones)
			if err == nil {
				return p, true
			}
		}
	}
	return netip.Prefix{}, false
}

// hostRoute asks the kernel (RTM_GETROUTE, in the calling thread's
// network namespace) how the host reaches dst: the output interface
// and preferred source the host path's SYN carries through the output hook
// (the REDIRECT reroutes it to lo afterwards, but the hook keeps the
// original output device). ok is false when the kernel does not answer.
func hostRoute(dst netip.Addr) (oif string, src netip.Addr, ok bool) {
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
