package rule

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"unicode"
)

// Opt is one option with its values: "--dport 80", "! --ctstate NEW".
type Opt struct {
	Name string
	Neg  bool
	Vals []string
}

// Match is one `-m name` module (or the protocol's implicit one).
type Match struct {
	Name string
	Opts []Opt
}

// Spec is a parsed rule specification (everything after "-A CHAIN").
type Spec struct {
	Generic    []Opt // -p -s -d -i -o -f, canonical names
	Matches    []Match
	Target     string
	Goto       bool
	TargetOpts []Opt
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

// Quote joins tokens for a command line or a restore file, quoting
// those that need it.
func Quote(toks []string) string {
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
func parseSpec(toks []string, v6 bool) (*Spec, error) {
	sp := &Spec{}
	cur := -1 // index of the open match
	afterTarget := false
	neg := false
	addTo := func(o Opt) {
		switch {
		case afterTarget:
			sp.TargetOpts = append(sp.TargetOpts, o)
		default:
			canon, isPort := portOpts[o.Name]
			if isPort && (cur < 0 || !protoModules[sp.Matches[cur].Name]) {
				// implicit protocol match: -p tcp --dport 80
				o.Name = canon
				sp.addImplicit(o)
				return
			}
			if cur < 0 {
				sp.Matches = append(sp.Matches, Match{Name: "?"})
				cur = len(sp.Matches) - 1
			}
			m := &sp.Matches[cur]
			if protoModules[m.Name] && isPort {
				o.Name = canon
			} else if a := moduleAliases[m.Name][o.Name]; a != "" {
				o.Name = a
			}
			m.Opts = append(m.Opts, o)
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
			sp.Generic = append(sp.Generic, Opt{Name: g, Neg: neg, Vals: []string{v[0]}})
			neg = false
			continue
		}
		switch t {
		case "-f", "--fragment":
			sp.Generic = append(sp.Generic, Opt{Name: "-f", Neg: neg})
			neg = false
			continue
		case "-m", "--match":
			v, err := need(1)
			if err != nil {
				return nil, err
			}
			sp.Matches = append(sp.Matches, Match{Name: v[0]})
			cur = len(sp.Matches) - 1
			afterTarget = false
			continue
		case "-j", "--jump", "-g", "--goto":
			v, err := need(1)
			if err != nil {
				return nil, err
			}
			sp.Target = v[0]
			sp.Goto = t == "-g" || t == "--goto"
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
		o := Opt{Name: t, Neg: neg}
		neg = false
		for i+1 < len(toks) {
			n := toks[i+1]
			if n == "!" {
				// old syntax `--ctstate ! NEW`, or `! --next-option`
				if i+2 < len(toks) && !strings.HasPrefix(toks[i+2], "-") {
					o.Neg = true
					i++
					continue
				}
				break
			}
			if strings.HasPrefix(n, "-") && !isNumber(n) {
				break
			}
			o.Vals = append(o.Vals, n)
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
func (sp *Spec) addImplicit(o Opt) {
	name := sp.Proto()
	if !protoModules[name] {
		name = "?"
	}
	for i := range sp.Matches {
		if sp.Matches[i].Name == name {
			sp.Matches[i].Opts = append(sp.Matches[i].Opts, o)
			return
		}
	}
	sp.Matches = append(sp.Matches, Match{Name: name, Opts: []Opt{o}})
}

// Get returns the generic option name ("-p", "-d", ...).
func (sp *Spec) Get(name string) (Opt, bool) {
	for _, o := range sp.Generic {
		if o.Name == name {
			return o, true
		}
	}
	return Opt{}, false
}

// Proto is the canonical protocol, "" for any.
func (sp *Spec) Proto() string {
	o, ok := sp.Get("-p")
	if !ok || o.Neg {
		return ""
	}
	return NormProto(o.Vals[0])
}

// NormProto is the canonical name of a protocol given by name or number.
func NormProto(p string) string {
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
	if p, err := ParseCIDR(s, v6); err == nil {
		return p.String()
	}
	return s
}

// ParseCIDR accepts "a.b.c.d", "a.b.c.d/n" and "a.b.c.d/255.255.0.0".
func ParseCIDR(s string, v6 bool) (netip.Prefix, error) {
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

// Key is the canonical text of the rule: generic options in a fixed order,
// matches sorted, options sorted within each match, values normalised.
func (sp *Spec) Key(v6 bool) string {
	var parts []string
	add := func(o Opt, vals ...string) {
		s := ""
		if o.Neg {
			s = "! "
		}
		s += o.Name
		if len(vals) > 0 {
			s += " " + Quote(vals)
		}
		parts = append(parts, s)
	}
	for _, name := range []string{"-p", "-s", "-d", "-i", "-o", "-f"} {
		o, ok := sp.Get(name)
		if !ok {
			continue
		}
		switch name {
		case "-p":
			p := NormProto(o.Vals[0])
			if !o.Neg && (p == "all" || p == "0") {
				continue
			}
			add(o, p)
		case "-s", "-d":
			a := normAddr(o.Vals[0], v6)
			if !o.Neg && (a == "0.0.0.0/0" || a == "::/0") {
				continue
			}
			add(o, a)
		case "-i", "-o":
			if !o.Neg && o.Vals[0] == "+" {
				continue
			}
			add(o, o.Vals[0])
		default:
			add(o)
		}
	}
	var ms []string
	for _, m := range sp.MergedMatches() {
		if len(m.Opts) == 0 && protoModules[m.Name] {
			continue // `-p tcp -m tcp` is `-p tcp`
		}
		var os []string
		for _, o := range m.Opts {
			os = append(os, o.String())
		}
		sort.Strings(os)
		ms = append(ms, strings.Join(append([]string{"-m " + Quote([]string{m.Name})}, os...), " "))
	}
	sort.Strings(ms)
	parts = append(parts, ms...)
	if sp.Target != "" {
		j := "-j "
		if sp.Goto {
			j = "-g "
		}
		var os []string
		for _, o := range sp.TargetOpts {
			os = append(os, o.String())
		}
		sort.Strings(os)
		parts = append(parts, strings.Join(append([]string{j + Quote([]string{sp.Target})}, os...), " "))
	}
	return strings.Join(parts, " ")
}

// MergedMatches joins matches of the same protocol module (`-m tcp` given
// and implied) so that both spellings print alike.
func (sp *Spec) MergedMatches() []Match {
	var out []Match
	idx := map[string]int{}
	for _, m := range sp.Matches {
		if protoModules[m.Name] || m.Name == "?" {
			if i, ok := idx[m.Name]; ok {
				out[i].Opts = append(append([]Opt(nil), out[i].Opts...), m.Opts...)
				continue
			}
			idx[m.Name] = len(out)
		}
		out = append(out, m)
	}
	return out
}

// String prints the option as the canonical key spells it.
func (o Opt) String() string {
	vals := o.Vals
	switch o.Name {
	case "--ctstate", "--state":
		if len(vals) == 1 {
			vals = []string{NormStates(vals[0])}
		}
	}
	s := Quote([]string{o.Name})
	if o.Neg {
		s = "! " + s
	}
	if len(vals) > 0 {
		s += " " + Quote(vals)
	}
	return s
}

// NormStates sorts a conntrack state list: "RELATED,ESTABLISHED" and
// "ESTABLISHED,RELATED" mean the same.
func NormStates(v string) string {
	for _, r := range v {
		if r != ',' && (r < 'A' || r > 'Z') && (r < 'a' || r > 'z') {
			return v // not a state list: leave it alone
		}
	}
	ss := strings.Split(strings.ToUpper(v), ",")
	sort.Strings(ss)
	return strings.Join(ss, ",")
}

// IsProtoModule reports whether name is a protocol's match module (tcp,
// udp, ...), the one `-p name` implies.
func IsProtoModule(name string) bool { return protoModules[name] }

// IsPassive reports whether target never ends a packet's walk with a
// verdict (LOG, MARK, no target at all, ...).
func IsPassive(target string) bool { return passive[target] }

// Parse tokenises and parses a rule text (as typed or as printed); it
// does not compute the key.
func Parse(text string, v6 bool) (*Spec, error) {
	toks, err := tokenize(text)
	if err != nil {
		return nil, err
	}
	return parseSpec(toks, v6)
}

// Key parses a rule text (as typed or as printed) and returns its
// canonical key and its parse. A rule is compared by meaning, not text:
// ecs-init types `-p tcp -d 169.254.170.2 --dport 80`, iptables-save
// prints `-d 169.254.170.2/32 -p tcp -m tcp --dport 80`, and the nft and
// legacy backends differ in small ways. Parse reads either spelling and
// Spec.Key prints one canonical form, so two rules with the same key do
// the same thing. The normalisation is conservative: when in doubt two
// rules are different, which at worst leaves a foreign rule alone and
// adds ours.
func Key(text string, v6 bool) (string, *Spec, error) {
	toks, err := tokenize(text)
	if err != nil {
		return "", nil, err
	}
	sp, err := parseSpec(toks, v6)
	if err != nil {
		return "", nil, fmt.Errorf("rule %q: %w", text, err)
	}
	return sp.Key(v6), sp, nil
}

// passive: targets that never end a packet's walk with a verdict.
var passive = map[string]bool{
	"": true, "LOG": true, "NFLOG": true, "ULOG": true, "MARK": true, "CONNMARK": true,
	"CT": true, "TRACE": true, "AUDIT": true, "TCPMSS": true, "DSCP": true, "TOS": true,
	"CLASSIFY": true, "SET": true, "CHECKSUM": true, "NOTRACK": true, "TEE": true,
	"SECMARK": true, "CONNSECMARK": true, "IDLETIMER": true, "LED": true, "RATEEST": true,
	"HMARK": true,
}

// PortRange reads a port or a range as iptables prints them ("80",
// "1024:", ":1023", "1:1024").
func PortRange(s string) (int, int, bool) {
	a, b, isRange := strings.Cut(s, ":")
	lo, err := strconv.Atoi(a)
	if a == "" {
		lo, err = 0, nil
	}
	if err != nil {
		return 0, 0, false
	}
	if !isRange {
		return lo, lo, true
	}
	hi, err := strconv.Atoi(b)
	if b == "" {
		hi, err = 65535, nil
	}
	if err != nil {
		return 0, 0, false
	}
	return lo, hi, true
}
