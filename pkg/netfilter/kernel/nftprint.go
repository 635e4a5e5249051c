package kernel

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// nftText prints a rule dumped over netlink the way iptables-nft-save
// prints it, for the expressions iptables-nft generates for the options
// this package reasons about: addresses (-s/-d), protocol, interfaces,
// ports, conntrack state, verdicts and jumps, DNAT and REDIRECT. Anything
// else (other matches and targets, sets, comments) makes ok false: the
// caller then asks iptables-nft itself, so an expression we do not know
// is never guessed at. The text is fed to rule.Key like any iptables -S
// line, so rules are still compared by meaning, with one parser.
//
// When ok is false, text holds the parts that were understood (for the
// caller's needle test), never to be used as the rule.
//
// dst describes the rule's destination match even when ok is false, for
// the nat shadow test: dstAny is set when a destination is matched in a
// way not understood.
type printedRule struct {
	text   string
	ok     bool
	dst    netip.Prefix // -d, valid when hasDst
	hasDst bool
	dstNeg bool
	dstAny bool
}

func nftText(exprs []byte, v6 bool) printedRule {
	var out printedRule
	ok := true
	regs := map[uint32]nlReg{}
	var gen [5]string // -s -d -i -o -p
	var proto string
	var ports, matches []string
	target := ""
	alen := uint32(4)
	srcOff, dstOff := uint32(12), uint32(16)
	if v6 {
		alen, srcOff, dstOff = 16, 8, 24
	}
	setGen := func(i int, s string) {
		if gen[i] != "" {
			ok = false
		}
		gen[i] = s
	}
	attrs(exprs, func(t uint16, elem []byte) {
		if t != unix.NFTA_LIST_ELEM {
			return
		}
		var name string
		var data []byte
		attrs(elem, func(t uint16, d []byte) {
			switch t {
			case unix.NFTA_EXPR_NAME:
				name = cstr(d)
			case unix.NFTA_EXPR_DATA:
				data = d
			}
		})
		u32 := func(want uint16) (uint32, bool) {
			var v uint32
			found := false
			attrs(data, func(t uint16, d []byte) {
				if t == want && len(d) == 4 {
					v, found = binary.BigEndian.Uint32(d), true
				}
			})
			return v, found
		}
		nested := func(want, inner uint16) []byte {
			var v []byte
			attrs(data, func(t uint16, d []byte) {
				if t == want {
					attrs(d, func(t uint16, d []byte) {
						if t == inner {
							v = d
						}
					})
				}
			})
			return v
		}
		switch name {
		case "counter":
		case "payload":
			dreg, okd := u32(unix.NFTA_PAYLOAD_DREG)
			base, _ := u32(unix.NFTA_PAYLOAD_BASE)
			off, _ := u32(unix.NFTA_PAYLOAD_OFFSET)
			ln, _ := u32(unix.NFTA_PAYLOAD_LEN)
			if !okd {
				ok = false // a payload write (mangling)
				return
			}
			regs[dreg] = nlReg{kind: 'p', base: base, off: off, ln: ln}
			if base == unix.NFT_PAYLOAD_NETWORK_HEADER && off < dstOff+alen && off+ln > dstOff {
				out.dstAny = true // until a cmp proves what it is
			}
		case "meta":
			dreg, okd := u32(unix.NFTA_META_DREG)
			key, _ := u32(unix.NFTA_META_KEY)
			if !okd {
				ok = false
				return
			}
			regs[dreg] = nlReg{kind: 'm', key: key}
		case "bitwise":
			sreg, _ := u32(unix.NFTA_BITWISE_SREG)
			dreg, _ := u32(unix.NFTA_BITWISE_DREG)
			if bop, has := u32(6); has && bop != 0 { // NFTA_BITWISE_OP: only the mask/xor form
				ok = false
				return
			}
			r, found := regs[sreg]
			xor := nested(unix.NFTA_BITWISE_XOR, unix.NFTA_DATA_VALUE)
			if !found || r.kind != 'p' || r.mask != nil || len(bytes.Trim(xor, "\x00")) != 0 {
				ok = false
				delete(regs, dreg)
				return
			}
			r.mask = nested(unix.NFTA_BITWISE_MASK, unix.NFTA_DATA_VALUE)
			regs[dreg] = r
		case "cmp":
			sreg, _ := u32(unix.NFTA_CMP_SREG)
			op, _ := u32(unix.NFTA_CMP_OP)
			val := nested(unix.NFTA_CMP_DATA, unix.NFTA_DATA_VALUE)
			r, found := regs[sreg]
			if !found || (op != unix.NFT_CMP_EQ && op != unix.NFT_CMP_NEQ) {
				ok = false
				return
			}
			neg := ""
			if op == unix.NFT_CMP_NEQ {
				neg = "! "
			}
			switch {
			case r.kind == 'm' && r.key == unix.NFT_META_L4PROTO && len(val) == 1,
				r.kind == 'p' && !v6 && r.base == unix.NFT_PAYLOAD_NETWORK_HEADER && r.off == 9 && r.ln == 1 && r.mask == nil && len(val) == 1:
				p := protoNames[val[0]]
				if p == "" {
					p = strconv.Itoa(int(val[0]))
				}
				setGen(4, neg+"-p "+p)
				if neg == "" {
					proto = p
				}
			case r.kind == 'm' && (r.key == unix.NFT_META_IIFNAME || r.key == unix.NFT_META_OIFNAME):
				s := string(val)
				if i := bytes.IndexByte(val, 0); i >= 0 {
					s = string(val[:i])
				} else {
					s += "+"
				}
				if r.key == unix.NFT_META_IIFNAME {
					setGen(2, neg+"-i "+s)
				} else {
					setGen(3, neg+"-o "+s)
				}
			case r.kind == 'p' && r.base == unix.NFT_PAYLOAD_NETWORK_HEADER && (r.off == srcOff || r.off == dstOff) && r.ln >= 1 && r.ln <= alen && int(r.ln) == len(val):
				p, good := prefixOf(val, r.mask, alen)
				if !good {
					ok = false
					return
				}
				if r.off == srcOff {
					setGen(0, neg+"-s "+p.String())
				} else {
					setGen(1, neg+"-d "+p.String())
					out.dst, out.hasDst, out.dstNeg, out.dstAny = p, true, neg != "", false
				}
			case r.kind == 'p' && r.base == unix.NFT_PAYLOAD_TRANSPORT_HEADER && (r.off == 0 || r.off == 2) && r.ln == 2 && r.mask == nil && len(val) == 2 && proto != "":
				if proto != "tcp" && proto != "udp" && proto != "sctp" && proto != "dccp" && proto != "udplite" {
					ok = false
					return
				}
				n := "--sport "
				if r.off == 2 {
					n = "--dport "
				}
				ports = append(ports, neg+n+strconv.Itoa(int(binary.BigEndian.Uint16(val))))
			default:
				ok = false
			}
		case "immediate":
			dreg, _ := u32(unix.NFTA_IMMEDIATE_DREG)
			if dreg != unix.NFT_REG_VERDICT {
				ok = false
				return
			}
			var code int32
			var chain string
			attrs(data, func(t uint16, d []byte) {
				if t != unix.NFTA_IMMEDIATE_DATA {
					return
				}
				attrs(d, func(t uint16, d []byte) {
					if t != unix.NFTA_DATA_VERDICT {
						return
					}
					attrs(d, func(t uint16, d []byte) {
						switch t {
						case unix.NFTA_VERDICT_CODE:
							code = int32(be32(d))
						case unix.NFTA_VERDICT_CHAIN:
							chain = cstr(d)
						}
					})
				})
			})
			switch code {
			case nfAccept:
				target = "-j ACCEPT"
			case nfDrop:
				target = "-j DROP"
			case unix.NFT_RETURN:
				target = "-j RETURN"
			case unix.NFT_JUMP:
				target = "-j " + chain
			case unix.NFT_GOTO:
				target = "-g " + chain
			default:
				ok = false
			}
		case "match", "target":
			var xname string
			var rev uint32
			var info []byte
			attrs(data, func(t uint16, d []byte) {
				switch t {
				case unix.NFTA_MATCH_NAME: // == NFTA_TARGET_NAME
					xname = cstr(d)
				case unix.NFTA_MATCH_REV:
					rev = be32(d)
				case unix.NFTA_MATCH_INFO:
					info = d
				}
			})
			var s string
			good := false
			switch {
			case name == "match" && xname == "conntrack" && rev == 3:
				s, good = conntrackText(info)
				if good {
					matches = append(matches, s)
				}
			case name == "target" && xname == "DNAT" && (rev == 1 || rev == 2) && !v6:
				s, good = dnatText(info)
				target = s
			case name == "target" && xname == "REDIRECT" && rev == 0 && !v6:
				s, good = redirectText(info)
				target = s
			}
			ok = ok && good
		default:
			ok = false
		}
	})
	var parts []string
	for _, g := range gen {
		if g != "" {
			parts = append(parts, g)
		}
	}
	if len(ports) > 0 {
		parts = append(parts, "-m "+proto)
		parts = append(parts, ports...)
	}
	parts = append(parts, matches...)
	if target != "" {
		parts = append(parts, target)
	}
	out.text, out.ok = strings.Join(parts, " "), ok
	return out
}
