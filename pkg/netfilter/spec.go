package netfilter

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"unicode"
)

// A rule is compared by meaning, not text: ecs-init types
// `-p tcp -d 169.254.170.2 --dport 80`, iptables-save prints
// `-d 169.254.170.2/32 -p tcp -m tcp --dport 80`, and the nft and legacy
// backends differ in small ways. parseSpec reads either spelling and key
// prints one canonical form, so two rules with the same key do the same
// thing. The normalisation is conservative: when in doubt two rules are
// different, which at worst leaves a foreign rule alone and adds ours.

// opt is one option with its values: "--dport 80", "! --ctstate NEW".
type opt struct {
	name string
	neg  bool
	vals []string
}

// match is one `-m name` module (or the protocol's implicit one).
type match struct {
	name string
	opts []opt
}

// spec is a parsed rule specification (everything after "-A CHAIN").
type spec struct {
	generic []opt // -p -s -d -i -o -f, canonical names
	matches []match
	target  string
	isGoto  bool
	topts   []opt
}

// tokenize splits a rule the way iptables-restore does: on blanks, with a
// quoted string ("..." or '...', backslash escapes inside) as one token.
func tokenize(s string) ([]string, error) {
	var toks []string
	var cur strings.Builder
	in := false
	var quote byte
	inQuote := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inQuote && c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
		case inQuote && c == quote:
			inQuote = false
		case inQuote:
			cur.WriteByte(c)
		case c == '"' || c == '\'':
			inQuote, quote, in = true, c, true
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			if in {
				toks = append(toks, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteByte(c)
			in = true
		}
	}
	if inQuote {
		return nil, fmt.Errorf("unterminated quote in %q", s)
	}
	if in {
		toks = append(toks, cur.String())
	}
	return toks, nil
}

// quoteArgs joins tokens for a command line or a restore file, quoting
// those that need it.
func quoteArgs(toks []string) string {
	var b strings.Builder
	for i, t := range toks {
		if i > 0 {
			b.WriteByte(' ')
		}
		if t == "" || strings.IndexFunc(t, needsQuote) >= 0 {
			b.WriteByte('"')
			b.WriteString(strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(t))
			b.WriteByte('"')
		} else {
			b.WriteString(t)
		}
	}
	return b.String()
}

func needsQuote(r rune) bool {
	return r == '"' || r == '\'' || r == '\\' || unicode.IsSpace(r) || unicode.IsControl(r)
}

var genericNames = map[string]string{
	"-p": "-p", "--protocol": "-p",
	"-s": "-s", "--source": "-s", "--src": "-s",
	"-d": "-d", "--destination": "-d", "--dst": "-d",
	"-i": "-i", "--in-interface": "-i",
	"-o": "-o", "--out-interface": "-o",
}

// portOpts are the options of the protocol matches (tcp, udp, ...) that
// iptables accepts after `-p tcp` without `-m tcp`.
var portOpts = map[string]string{
	"--dport": "--dport", "--destination-port": "--dport",
	"--sport": "--sport", "--source-port": "--sport",
	"--tcp-flags": "--tcp-flags", "--syn": "--syn", "--tcp-option": "--tcp-option",
	"--icmp-type": "--icmp-type", "--icmpv6-type": "--icmpv6-type",
}

var protoModules = map[string]bool{"tcp": true, "udp": true, "udplite": true, "sctp": true, "dccp": true, "icmp": true, "icmp6": true, "ipv6-icmp": true}

var protoNumbers = map[string]string{"6": "tcp", "17": "udp", "1": "icmp", "58": "ipv6-icmp", "132": "sctp", "33": "dccp", "136": "udplite"}

// moduleAliases map long spellings to the one iptables-save prints.
var moduleAliases = map[string]map[string]string{
	"multiport": {"--destination-ports": "--dports", "--source-ports": "--sports"},
}

// parseSpec parses the tokens of a rule. v6 selects the default prefix
// length of an address without one.
func parseSpec(toks []string, v6 bool) (*spec, error) {
	sp := &spec{}
	cur := -1 // index of the open match
	afterTarget := false
	neg := false
	addTo := func(o opt) {
		switch {
		case afterTarget:
			sp.topts = append(sp.topts, o)
		default:
			canon, isPort := portOpts[o.name]
			if isPort && (cur < 0 || !protoModules[sp.matches[cur].name]) {
				// implicit protocol match: -p tcp --dport 80
				o.name = canon
				sp.addImplicit(o)
				return
			}
			if cur < 0 {
				sp.matches = append(sp.matches, match{name: "?"})
				cur = len(sp.matches) - 1
			}
			m := &sp.matches[cur]
			if protoModules[m.name] && isPort {
				o.name = canon
			} else if a := moduleAliases[m.name][o.name]; a != "" {
				o.name = a
			}
			m.opts = append(m.opts, o)
		}
	}
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		if t == "!" {
			neg = true
			continue
		}
		need := func(n int) ([]string, error) {
			if i+n >= len(toks) {
				return nil, fmt.Errorf("option %s needs a value", t)
			}
			v := toks[i+1 : i+1+n]
			i += n
			return v, nil
		}
		if g, ok := genericNames[t]; ok {
			v, err := need(1)
			if err != nil {
				return nil, err
			}
			// old syntax: -s ! 1.2.3.4
			if v[0] == "!" {
				neg = true
				if v, err = need(1); err != nil {
					return nil, err
				}
			}
			if v[0] == "!" {
				return nil, fmt.Errorf("option %s: \"!\" is not a value", t)
			}
			sp.generic = append(sp.generic, opt{name: g, neg: neg, vals: []string{v[0]}})
			neg = false
			continue
		}
		switch t {
		case "-f", "--fragment":
			sp.generic = append(sp.generic, opt{name: "-f", neg: neg})
			neg = false
			continue
		case "-m", "--match":
			v, err := need(1)
			if err != nil {
				return nil, err
			}
			sp.matches = append(sp.matches, match{name: v[0]})
			cur = len(sp.matches) - 1
			afterTarget = false
			continue
		case "-j", "--jump", "-g", "--goto":
			v, err := need(1)
			if err != nil {
				return nil, err
			}
			sp.target = v[0]
			sp.isGoto = t == "-g" || t == "--goto"
			afterTarget = true
			continue
		case "-c", "--set-counters":
			if _, err := need(2); err != nil {
				return nil, err
			}
			continue
		}
		if !strings.HasPrefix(t, "--") {
			return nil, fmt.Errorf("unexpected %q", t)
		}
		o := opt{name: t, neg: neg}
		neg = false
		for i+1 < len(toks) {
			n := toks[i+1]
			if n == "!" {
				// old syntax `--ctstate ! NEW`, or `! --next-option`
				if i+2 < len(toks) && !strings.HasPrefix(toks[i+2], "-") {
					o.neg = true
					i++
					continue
				}
				break
			}
			if strings.HasPrefix(n, "-") && !isNumber(n) {
				break
			}
			o.vals = append(o.vals, n)
			i++
		}
		addTo(o)
	}
	if neg {
		return nil, fmt.Errorf("dangling \"!\"")
	}
	return sp, nil
}

func isNumber(s string) bool {
	_, err := strconv.Atoi(s)
	return err == nil
}

// addImplicit adds a protocol option to the match named after the protocol.
func (sp *spec) addImplicit(o opt) {
	name := sp.proto()
	if !protoModules[name] {
		name = "?"
	}
	for i := range sp.matches {
		if sp.matches[i].name == name {
			sp.matches[i].opts = append(sp.matches[i].opts, o)
			return
		}
	}
	sp.matches = append(sp.matches, match{name: name, opts: []opt{o}})
}

// get returns the generic option name ("-p", "-d", ...).
func (sp *spec) get(name string) (opt, bool) {
	for _, o := range sp.generic {
		if o.name == name {
			return o, true
		}
	}
	return opt{}, false
}

// proto is the canonical protocol, "" for any.
func (sp *spec) proto() string {
	o, ok := sp.get("-p")
	if !ok || o.neg {
		return ""
	}
	return normProto(o.vals[0])
}

func normProto(p string) string {
	p = strings.ToLower(p)
	if n, ok := protoNumbers[p]; ok {
		return n
	}
	if p == "icmpv6" || p == "icmp6" {
		return "ipv6-icmp"
	}
	return p
}

// normAddr prints an address or network the way iptables-save does:
// network address and prefix length, /32 (/128) for a host.
func normAddr(s string, v6 bool) string {
	if strings.Contains(s, ",") {
		return s
	}
	if p, err := parseCIDR(s, v6); err == nil {
		return p.String()
	}
	return s
}

// parseCIDR accepts "a.b.c.d", "a.b.c.d/n" and "a.b.c.d/255.255.0.0".
func parseCIDR(s string, v6 bool) (netip.Prefix, error) {
	addr, mask, hasMask := strings.Cut(s, "/")
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return netip.Prefix{}, err
	}
	bits := a.BitLen()
	if hasMask {
		if n, err := strconv.Atoi(mask); err == nil {
			bits = n
		} else if m, err := netip.ParseAddr(mask); err == nil && m.BitLen() == a.BitLen() {
			bits = maskBits(m)
			if bits < 0 {
				return netip.Prefix{}, fmt.Errorf("non-contiguous mask %s", mask)
			}
		} else {
			return netip.Prefix{}, fmt.Errorf("bad mask %q", mask)
		}
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return netip.Prefix{}, err
	}
	return p, nil
}

func maskBits(m netip.Addr) int {
	b := m.AsSlice()
	n := 0
	seenZero := false
	for _, x := range b {
		for i := 7; i >= 0; i-- {
			if x&(1<<i) != 0 {
				if seenZero {
					return -1
				}
				n++
			} else {
				seenZero = true
			}
		}
	}
	return n
}

// key is the canonical text of the rule: generic options in a fixed order,
// matches sorted, options sorted within each match, values normalised.
func (sp *spec) key(v6 bool) string {
	var parts []string
	add := func(o opt, vals ...string) {
		s := ""
		if o.neg {
			s = "! "
		}
		s += o.name
		if len(vals) > 0 {
			s += " " + quoteArgs(vals)
		}
		parts = append(parts, s)
	}
	for _, name := range []string{"-p", "-s", "-d", "-i", "-o", "-f"} {
		o, ok := sp.get(name)
		if !ok {
			continue
		}
		switch name {
		case "-p":
			p := normProto(o.vals[0])
			if !o.neg && (p == "all" || p == "0") {
				continue
			}
			add(o, p)
		case "-s", "-d":
			a := normAddr(o.vals[0], v6)
			if !o.neg && (a == "0.0.0.0/0" || a == "::/0") {
				continue
			}
			add(o, a)
		case "-i", "-o":
			if !o.neg && o.vals[0] == "+" {
				continue
			}
			add(o, o.vals[0])
		default:
			add(o)
		}
	}
	var ms []string
	for _, m := range sp.mergedMatches() {
		if len(m.opts) == 0 && protoModules[m.name] {
			continue // `-p tcp -m tcp` is `-p tcp`
		}
		var os []string
		for _, o := range m.opts {
			os = append(os, optString(o))
		}
		sort.Strings(os)
		ms = append(ms, strings.Join(append([]string{"-m " + quoteArgs([]string{m.name})}, os...), " "))
	}
	sort.Strings(ms)
	parts = append(parts, ms...)
	if sp.target != "" {
		j := "-j "
		if sp.isGoto {
			j = "-g "
		}
		var os []string
		for _, o := range sp.topts {
			os = append(os, optString(o))
		}
		sort.Strings(os)
		parts = append(parts, strings.Join(append([]string{j + quoteArgs([]string{sp.target})}, os...), " "))
	}
	return strings.Join(parts, " ")
}

// mergedMatches joins matches of the same protocol module (`-m tcp` given
// and implied) so that both spellings print alike.
func (sp *spec) mergedMatches() []match {
	var out []match
	idx := map[string]int{}
	for _, m := range sp.matches {
		if protoModules[m.name] || m.name == "?" {
			if i, ok := idx[m.name]; ok {
				out[i].opts = append(append([]opt(nil), out[i].opts...), m.opts...)
				continue
			}
			idx[m.name] = len(out)
		}
		out = append(out, m)
	}
	return out
}

func optString(o opt) string {
	vals := o.vals
	switch o.name {
	case "--ctstate", "--state":
		if len(vals) == 1 {
			vals = []string{normStates(vals[0])}
		}
	}
	s := quoteArgs([]string{o.name})
	if o.neg {
		s = "! " + s
	}
	if len(vals) > 0 {
		s += " " + quoteArgs(vals)
	}
	return s
}

// normStates sorts a conntrack state list: "RELATED,ESTABLISHED" and
// "ESTABLISHED,RELATED" mean the same.
func normStates(v string) string {
	for _, r := range v {
		if r != ',' && (r < 'A' || r > 'Z') && (r < 'a' || r > 'z') {
			return v // not a state list: leave it alone
		}
	}
	ss := strings.Split(strings.ToUpper(v), ",")
	sort.Strings(ss)
	return strings.Join(ss, ",")
}

// ruleKey parses a rule text (as typed or as printed) and returns its key.
func ruleKey(text string, v6 bool) (string, *spec, error) {
	toks, err := tokenize(text)
	if err != nil {
		return "", nil, err
	}
	sp, err := parseSpec(toks, v6)
	if err != nil {
		return "", nil, fmt.Errorf("rule %q: %w", text, err)
	}
	return sp.key(v6), sp, nil
}
