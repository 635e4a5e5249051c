package kernel

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"strconv"
	"strings"

	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter/rule"
)

// needleBytes are the binary forms of the needles in an nf_tables rule:
// addresses in network order, ports in both byte orders (cmp data is
// network order, xt blobs often host order); "127." is its first byte.
func needleBytes(needles []string) [][]byte {
	var out [][]byte
	for _, n := range needles {
		if a, err := netip.ParseAddr(n); err == nil {
			out = append(out, a.AsSlice())
			continue
		}
		if p, err := strconv.Atoi(n); err == nil && p > 0 && p < 65536 {
			out = append(out, binary.BigEndian.AppendUint16(nil, uint16(p)), binary.LittleEndian.AppendUint16(nil, uint16(p)))
			continue
		}
		if o, ok := strings.CutSuffix(n, "."); ok {
			if b, err := strconv.Atoi(o); err == nil && b >= 0 && b < 256 {
				out = append(out, []byte{byte(b)})
				continue
			}
		}
		out = append(out, []byte(n))
	}
	return out
}

func containsAnyBytes(b []byte, pats [][]byte) bool {
	for _, p := range pats {
		if bytes.Contains(b, p) {
			return true
		}
	}
	return false
}

// printChain fills ch from the dump. It prints the rules that may be ours
// (a needle in their bytes), in nat every rule (its destination decides
// whether it may shadow our DNAT), and in filter chains every rule above
// our last one (the shadow scan reads those); the others stay opaque. It
// returns false when a rule that matters cannot be printed.
func printChain(ch *rule.Chain, nrs []rawRule, in rule.Interest, v6 bool, pats [][]byte, xlate func(*rawRule, bool) printedRule) bool {
	needles := in.Needles
	nat := ch.Table == "nat"
	ch.Rules = make([]rule.Rule, len(nrs))
	print := func(j int) bool {
		nr := &nrs[j]
		r := &ch.Rules[j]
		r.Handle = nr.handle
		x := xlate(nr, v6)
		if nat && x.hasDst && !x.dstAny && (x.dstNeg || x.dst.Bits() == 0 || !x.dst.Contains(credentialsPrefix)) {
			r.NotOurDst = true
		}
		if x.ok && nr.udata == nil {
			r.Text, r.Opaque = x.text, false
			if rule.MentionsAny(r.Text, needles) {
				r.ParseKey(v6)
			}
			return true
		}
		r.Opaque = true
		return false
	}
	for j := range nrs {
		nr := &nrs[j]
		ch.Rules[j] = rule.Rule{Handle: nr.handle, Opaque: true}
		matters := containsAnyBytes(nr.exprs, pats) || rule.MentionsAny(string(nr.udata), needles) ||
			(ch.Name == "FORWARD" && (rule.MentionsAny(string(nr.exprs), in.NewChains) || rule.MentionsAny(nr.jump, in.NewChains)))
		if !matters && !nat {
			continue
		}
		if !print(j) {
			if x := xlate(nr, v6); matters || (nat && !ch.Rules[j].NotOurDst && (x.dstAny || x.hasDst)) {
				return false
			}
		}
	}
	if nat {
		return true
	}
	keys := in.OursIn(ch.Table, ch.Name)
	last := -1
	for j, r := range ch.Rules {
		if r.Key != "" && keys[r.Key] {
			delete(keys, r.Key)
			last = j
		}
	}
	for j := 0; j < last; j++ {
		if ch.Rules[j].Opaque && !print(j) {
			return false
		}
	}
	return true
}
