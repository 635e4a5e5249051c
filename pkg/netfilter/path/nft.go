package path

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter/rule"
)

// nftDoc is `nft -j list ruleset` (the JSON schema of nft 1.0).
type nftDoc struct {
	Nftables []map[string]json.RawMessage `json:"nftables"`
}

type nftChainJ struct {
	Family, Table, Name, Type, Hook, Policy string
	Prio                                    json.RawMessage
}

type nftRuleJ struct {
	Family, Table, Chain string
	Handle               uint64
	Expr                 []map[string]json.RawMessage
}

type nftSetJ struct {
	Family, Table, Name string
	Elem                []json.RawMessage
}

// NftBase is a native base chain found in the ruleset.
type NftBase struct {
	Family, Table, Chain, Hook string
	Prio                       int
	Model                      *Table
}

// iptablesOwned reports whether a base chain belongs to iptables-nft:
// iptables-nft creates, in family ip, tables named filter, nat, mangle,
// raw and security whose base chains carry the upper-case built-in names
// (INPUT, OUTPUT, ...); a base chain of such a table is iptables-nft's
// (read by the enforcer as iptables rules), any other base chain is native.
func iptablesOwned(family, table, chain string) bool {
	return family == "ip" && rule.IsBuiltin(table, chain) && (table == "filter" || table == "nat" || table == "mangle" || table == "raw" || table == "security")
}

// ParseNft reads `nft -j list ruleset` (and the texts of
// `nft -a list ruleset`, keyed by handle) into the base chains on the
// input and output hooks of families ip and inet that iptables-nft does
// not own.
//
// Native rulesets (nftables.service, firewalld) are read as nft's JSON,
// not over netlink: the netlink reader (kernel.NFT) decodes only the
// expressions iptables-nft generates, while a hand-written ruleset uses
// sets, verdict maps, fib and ct expressions in forms that nft's JSON
// already names. Rule texts for findings come from `nft -a list ruleset`
// by handle.
func ParseNft(js []byte, texts map[string]string) ([]NftBase, error) {
	var doc nftDoc
	if err := json.Unmarshal(js, &doc); err != nil {
		return nil, fmt.Errorf("parse nft -j list ruleset: %w", err)
	}
	tables := map[string]*Table{}
	sets := map[string][]json.RawMessage{}
	var bases []NftBase
	tkey := func(f, t string) string { return f + " " + t }
	table := func(f, t string) *Table {
		k := tkey(f, t)
		if tables[k] == nil {
			tables[k] = &Table{Where: "nft " + f + " " + t, Chains: map[string]*Chain{}}
		}
		return tables[k]
	}
	native := map[string]bool{} // tables with a native base chain
	var rules []nftRuleJ
	for _, o := range doc.Nftables {
		switch {
		case o["chain"] != nil:
			var c nftChainJ
			if err := json.Unmarshal(o["chain"], &c); err != nil {
				return nil, err
			}
			if c.Family != "ip" && c.Family != "inet" {
				continue
			}
			t := table(c.Family, c.Table)
			mc := &Chain{Name: c.Name, ref: RuleRef{where: t.Where + " " + c.Name, chain: c.Name}}
			t.Chains[c.Name] = mc
			if c.Hook == "" {
				continue
			}
			mc.Policy = strings.ToUpper(c.Policy)
			if mc.Policy == "" {
				mc.Policy = "ACCEPT"
			}
			if (c.Hook != "input" && c.Hook != "output") || iptablesOwned(c.Family, c.Table, c.Name) {
				continue
			}
			prio, _ := strconv.Atoi(strings.Trim(string(c.Prio), `"`))
			native[tkey(c.Family, c.Table)] = true
			bases = append(bases, NftBase{Family: c.Family, Table: c.Table, Chain: c.Name, Hook: c.Hook, Prio: prio, Model: t})
		case o["rule"] != nil:
			var r nftRuleJ
			if err := json.Unmarshal(o["rule"], &r); err != nil {
				return nil, err
			}
			if r.Family == "ip" || r.Family == "inet" {
				rules = append(rules, r)
			}
		case o["set"] != nil || o["map"] != nil:
			raw := o["set"]
			if raw == nil {
				raw = o["map"]
			}
			var s nftSetJ
			if err := json.Unmarshal(raw, &s); err == nil {
				sets[s.Family+" "+s.Table+" "+s.Name] = s.Elem
			}
		}
	}
	for _, r := range rules {
		if !native[tkey(r.Family, r.Table)] {
			continue
		}
		t := table(r.Family, r.Table)
		c := t.Chains[r.Chain]
		if c == nil {
			continue
		}
		text := texts[fmt.Sprintf("%s %s %d", r.Family, r.Table, r.Handle)]
		if text == "" {
			text = fmt.Sprintf("handle %d", r.Handle)
		}
		ref := RuleRef{where: t.Where + " " + r.Chain, chain: r.Chain, Pos: len(c.Rules) + 1, Text: text, Handle: r.Handle}
		lookup := func(name string) ([]json.RawMessage, bool) {
			e, ok := sets[r.Family+" "+r.Table+" "+name]
			return e, ok
		}
		mr := nativeRule(r.Expr, ref, lookup)
		if mr.kind != vMap {
			c.Rules = append(c.Rules, mr)
			continue
		}
		for _, e := range mr.vmap { // the values are distinct: one rule each
			x := mr
			x.vmap = nil
			x.conds = append(append([]cond(nil), mr.conds...), e.c)
			x.kind, x.target = e.kind, e.target
			c.Rules = append(c.Rules, x)
		}
	}
	sort.SliceStable(bases, func(i, j int) bool { return bases[i].Prio < bases[j].Prio })
	return bases, nil
}

// ParseNftText maps "family table handle" to the rule's text in
// `nft -a list ruleset` output.
func ParseNftText(out string) map[string]string {
	m := map[string]string{}
	var fam, tbl string
	for _, line := range strings.Split(out, "\n") {
		s := strings.TrimSpace(line)
		if strings.HasPrefix(s, "table ") {
			f := strings.Fields(s)
			if len(f) >= 3 {
				fam, tbl = f[1], f[2]
			}
			continue
		}
		i := strings.LastIndex(s, " # handle ")
		if i < 0 || strings.HasPrefix(s, "chain ") || strings.HasPrefix(s, "set ") || strings.HasPrefix(s, "map ") {
			continue
		}
		h := strings.TrimSpace(s[i+len(" # handle "):])
		m[fam+" "+tbl+" "+h] = s[:i]
	}
	return m
}

// nativeRule models one rule's statements.
func nativeRule(exprs []map[string]json.RawMessage, ref RuleRef, sets func(string) ([]json.RawMessage, bool)) Rule {
	r := Rule{Ref: ref, kind: vContinue}
	for _, e := range exprs {
		for k, v := range e {
			if r.kind != vContinue {
				break // statements after a verdict are never reached
			}
			if kind, target, ok := nftVerdict(k, v); ok {
				r.kind, r.target = kind, target
				continue
			}
			switch k {
			case "match":
				c, what := nftMatch(v, sets)
				if c == nil {
					r.unknown = append(r.unknown, what)
				} else {
					r.conds = append(r.conds, c)
				}
			case "dnat", "snat", "redirect", "masquerade":
				r.kind = Accept
			case "counter", "log", "meta", "mangle", "ct", "notrack", "set", "nflog", "quota_stmt", "comment", "flow", "secmark", "tproxy":
				// no verdict (a "meta"/"ct" statement sets a mark)
			case "vmap":
				r.kind, r.what = Unknown, "vmap"
				if c := nftVmap(v, sets); c != nil {
					r.kind, r.vmap = vMap, c
				}
			case "limit", "quota":
				r.unknown = append(r.unknown, k)
			case "xt":
				r.unknown = append(r.unknown, "xt compat expression")
			default:
				r.kind, r.what = Unknown, k
			}
		}
	}
	return r
}

// nftVal is the left side of a match, evaluated for a packet: the value
// as a set of candidates, or unknown.
type nftKey struct {
	kind  string // iifname oifname l4proto nfproto saddr daddr sport dport ctstate ctstatus ctdir tcpflags fibdaddr fibsaddr
	mask  []string
	never bool // the expression's implicit dependency rules the packet out (ip6 payload, udp ports)
}

func nftLeft(raw json.RawMessage) (nftKey, bool) {
	var l map[string]json.RawMessage
	if json.Unmarshal(raw, &l) != nil {
		return nftKey{}, false
	}
	if m, ok := l["meta"]; ok {
		var x struct{ Key string }
		_ = json.Unmarshal(m, &x)
		switch x.Key {
		case "iifname", "iif":
			return nftKey{kind: "iifname"}, true
		case "oifname", "oif":
			return nftKey{kind: "oifname"}, true
		case "l4proto":
			return nftKey{kind: "l4proto"}, true
		case "nfproto", "protocol":
			return nftKey{kind: "nfproto"}, true
		}
		return nftKey{}, false
	}
	if m, ok := l["payload"]; ok {
		var x struct{ Protocol, Field string }
		_ = json.Unmarshal(m, &x)
		switch x.Protocol {
		case "ip":
			switch x.Field {
			case "saddr", "daddr":
				return nftKey{kind: x.Field}, true
			case "protocol":
				return nftKey{kind: "l4proto"}, true
			}
		case "ip6", "arp", "udp", "udplite", "icmp", "icmpv6", "sctp", "dccp":
			return nftKey{never: true}, true
		case "tcp", "th":
			switch x.Field {
			case "sport", "dport":
				return nftKey{kind: x.Field}, true
			case "flags":
				return nftKey{kind: "tcpflags"}, true
			}
		}
		return nftKey{}, false
	}
	if m, ok := l["ct"]; ok {
		var x struct {
			Key string
			Dir string
		}
		_ = json.Unmarshal(m, &x)
		switch x.Key {
		case "state":
			return nftKey{kind: "ctstate"}, true
		case "status":
			return nftKey{kind: "ctstatus"}, true
		case "direction":
			return nftKey{kind: "ctdir"}, true
		}
		return nftKey{}, false
	}
	if m, ok := l["fib"]; ok {
		var x struct {
			Result string
			Flags  []string
		}
		_ = json.Unmarshal(m, &x)
		if x.Result == "type" && len(x.Flags) == 1 && (x.Flags[0] == "daddr" || x.Flags[0] == "saddr") {
			return nftKey{kind: "fib" + x.Flags[0]}, true
		}
		return nftKey{}, false
	}
	if m, ok := l["&"]; ok {
		var parts []json.RawMessage
		if json.Unmarshal(m, &parts) == nil && len(parts) == 2 {
			k, ok := nftLeft(parts[0])
			if ok && k.kind == "tcpflags" {
				k.mask = flagList(parts[1])
				return k, true
			}
		}
	}
	return nftKey{}, false
}

func flagList(raw json.RawMessage) []string {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}
	}
	var many []string
	_ = json.Unmarshal(raw, &many)
	return many
}

// condNft is one nft match.
type condNft struct {
	k   nftKey
	neg bool
	// values (any of): strings (names, states), prefixes, port ranges
	strs   []string
	pfxs   []netip.Prefix
	ranges []portRangeT
}

func (c condNft) eval(p *Packet) Tri {
	if c.k.never {
		return No // the implicit dependency does not hold, whatever the op
	}
	var t Tri
	switch c.k.kind {
	case "iifname", "oifname":
		i := p.Iif
		if c.k.kind == "oifname" {
			i = p.Oif
		}
		for _, s := range c.strs {
			name := s
			if strings.HasSuffix(s, "*") {
				name = strings.TrimSuffix(s, "*") + "+"
			}
			if m := ifaceMatch(name, i); m > t {
				t = m
			}
		}
	case "l4proto":
		t = bool3(containsFold(c.strs, p.Proto) || (p.Proto == "tcp" && contains(c.strs, "6")))
	case "nfproto":
		t = bool3(containsFold(c.strs, "ipv4") || containsFold(c.strs, "ip"))
	case "saddr", "daddr":
		a := p.Dst
		if c.k.kind == "saddr" {
			a = p.Src
		}
		for _, q := range c.pfxs {
			if m := addrMatch(q, a); m > t {
				t = m
			}
		}
	case "sport", "dport":
		return condPort{src: c.k.kind == "sport", neg: c.neg, ranges: c.ranges}.eval(p)
	case "ctstate":
		t = condCt{states: c.strs}.eval(p)
	case "ctstatus":
		t = condCtStatus{vals: c.strs}.eval(p)
	case "ctdir":
		t = bool3(containsFold(c.strs, p.CtDir))
	case "fibdaddr", "fibsaddr":
		return condAddrType{src: c.k.kind == "fibsaddr", neg: c.neg, types: c.strs}.eval(p)
	case "tcpflags":
		if !p.Syn {
			return Maybe
		}
		have := map[string]bool{"syn": true}
		if c.k.mask == nil { // tcp flags syn: any listed flag set ("in" semantics)
			for _, s := range c.strs {
				if have[strings.ToLower(s)] {
					t = Yes
				}
			}
			break
		}
		// (flags & mask) == value
		var got []string
		for _, m := range c.k.mask {
			if have[strings.ToLower(m)] {
				got = append(got, strings.ToLower(m))
			}
		}
		want := map[string]bool{}
		for _, s := range c.strs {
			want[strings.ToLower(s)] = true
		}
		t = bool3(len(got) == len(want) && (len(got) == 0 || want[got[0]]))
	default:
		return Maybe
	}
	return xorNeg(t, c.neg)
}

func containsFold(l []string, s string) bool {
	for _, x := range l {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// nftMatch models a match; nil and a description when it is not modelled.
func nftMatch(raw json.RawMessage, sets func(string) ([]json.RawMessage, bool)) (cond, string) {
	var m struct {
		Op    string
		Left  json.RawMessage
		Right json.RawMessage
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, "match"
	}
	k, ok := nftLeft(m.Left)
	if !ok {
		return nil, "match on " + compact(m.Left)
	}
	if k.never {
		return condNft{k: k}, ""
	}
	c := condNft{k: k}
	switch m.Op {
	case "==", "in":
	case "!=":
		c.neg = true
	case "<", ">", "<=", ">=":
		if k.kind != "sport" && k.kind != "dport" {
			return nil, "comparison " + m.Op + " on " + k.kind
		}
		var n int
		if json.Unmarshal(m.Right, &n) != nil {
			return nil, "comparison on a named value"
		}
		r := map[string]portRangeT{"<": {0, n - 1}, ">": {n + 1, 65535}, "<=": {0, n}, ">=": {n, 65535}}[m.Op]
		c.ranges = []portRangeT{r}
		return c, ""
	default:
		return nil, "operator " + m.Op
	}
	if !c.values(m.Right, sets) {
		return nil, "match on " + k.kind + " " + compact(m.Right)
	}
	return c, ""
}

// values reads the right side of a match.
func (c *condNft) values(raw json.RawMessage, sets func(string) ([]json.RawMessage, bool)) bool {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if strings.HasPrefix(s, "@") {
			elems, ok := sets(s[1:])
			if !ok {
				return false
			}
			for _, e := range elems {
				if !c.value(e) {
					return false
				}
			}
			return true
		}
		return c.value(raw)
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) == nil {
		if set, ok := obj["set"]; ok {
			var elems []json.RawMessage
			if json.Unmarshal(set, &elems) != nil {
				return false
			}
			for _, e := range elems {
				if !c.value(e) {
					return false
				}
			}
			return true
		}
		return c.value(raw)
	}
	var list []json.RawMessage // ct state { established, related } as a flag list
	if json.Unmarshal(raw, &list) == nil {
		for _, e := range list {
			if !c.value(e) {
				return false
			}
		}
		return true
	}
	return c.value(raw)
}

func (c *condNft) value(raw json.RawMessage) bool {
	switch c.k.kind {
	case "saddr", "daddr":
		var s string
		if json.Unmarshal(raw, &s) == nil {
			p, err := rule.ParseCIDR(s, false)
			if err != nil {
				return false
			}
			c.pfxs = append(c.pfxs, p)
			return true
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) != nil {
			return false
		}
		if pj, ok := obj["prefix"]; ok {
			var x struct {
				Addr string
				Len  int
			}
			if json.Unmarshal(pj, &x) != nil {
				return false
			}
			p, err := rule.ParseCIDR(x.Addr+"/"+strconv.Itoa(x.Len), false)
			if err != nil {
				return false
			}
			c.pfxs = append(c.pfxs, p)
			return true
		}
		if rj, ok := obj["range"]; ok {
			var x []string
			if json.Unmarshal(rj, &x) != nil || len(x) != 2 {
				return false
			}
			a, err1 := netip.ParseAddr(x[0])
			b, err2 := netip.ParseAddr(x[1])
			if err1 != nil || err2 != nil {
				return false
			}
			c.pfxs = append(c.pfxs, rangePrefixes(a, b)...)
			return true
		}
		return false
	case "sport", "dport":
		var n int
		if json.Unmarshal(raw, &n) == nil {
			c.ranges = append(c.ranges, portRangeT{n, n})
			return true
		}
		var obj map[string][]int
		if json.Unmarshal(raw, &obj) == nil {
			if r, ok := obj["range"]; ok && len(r) == 2 {
				c.ranges = append(c.ranges, portRangeT{r[0], r[1]})
				return true
			}
		}
		return false
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		c.strs = append(c.strs, s)
		return true
	}
	var n int
	if json.Unmarshal(raw, &n) == nil {
		c.strs = append(c.strs, strconv.Itoa(n))
		return true
	}
	return false
}

// rangePrefixes covers [a, b] with prefixes (IPv4).
func rangePrefixes(a, b netip.Addr) []netip.Prefix {
	var out []netip.Prefix
	for a.Compare(b) <= 0 && len(out) < 64 {
		bits := 32
		for bits > 0 {
			p, _ := a.Prefix(bits - 1)
			last := lastAddr(p)
			if p.Addr() != a || last.Compare(b) > 0 {
				break
			}
			bits--
		}
		p, _ := a.Prefix(bits)
		out = append(out, p)
		last := lastAddr(p)
		if !last.Next().IsValid() || last == b {
			break
		}
		a = last.Next()
	}
	return out
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= (1<<(32-p.Bits()) - 1)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// nftVmap models `key vmap { value : verdict, ... }`.
func nftVmap(raw json.RawMessage, sets func(string) ([]json.RawMessage, bool)) []vmapEntry {
	var v struct {
		Key  json.RawMessage
		Data json.RawMessage
	}
	if json.Unmarshal(raw, &v) != nil {
		return nil
	}
	k, ok := nftLeft(v.Key)
	if !ok || k.never {
		return nil
	}
	var data struct {
		Set [][2]json.RawMessage `json:"set"`
	}
	if json.Unmarshal(v.Data, &data) != nil || data.Set == nil {
		return nil
	}
	var out []vmapEntry
	for _, kv := range data.Set {
		c := condNft{k: k}
		if !c.value(kv[0]) {
			return nil
		}
		var verdict map[string]json.RawMessage
		if json.Unmarshal(kv[1], &verdict) != nil {
			return nil
		}
		e := vmapEntry{c: c}
		for vk, vv := range verdict {
			kind, target, ok := nftVerdict(vk, vv)
			if !ok {
				return nil
			}
			e.kind, e.target = kind, target
		}
		out = append(out, e)
	}
	return out
}

// nftVerdict decodes a verdict, as a rule's statement or a verdict map's
// value: accept, drop, reject, return, jump, goto or continue. ok is
// false for anything else.
func nftVerdict(k string, v json.RawMessage) (kind Verdict, target string, ok bool) {
	switch k {
	case "accept":
		return Accept, "", true
	case "drop", "reject":
		return Drop, "", true
	case "return":
		return vReturn, "", true
	case "jump", "goto":
		var t struct{ Target string }
		_ = json.Unmarshal(v, &t)
		if k == "goto" {
			return vGoto, t.Target, true
		}
		return vJump, t.Target, true
	case "continue":
		return vContinue, "", true
	}
	return 0, "", false
}

// vmapEntry is one element of a verdict map.
type vmapEntry struct {
	c      cond
	kind   Verdict
	target string
}

func compact(raw json.RawMessage) string {
	s := string(raw)
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}
