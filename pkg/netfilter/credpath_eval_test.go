package netfilter

import (
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter/path"
)

// The evaluator is pure: rule texts in, verdicts out. The namespace
// tests (credpath_ns_test.go) prove the same verdicts on the kernel.

func credConfig() Config {
	return Config{AgentPort: 51679, Credentials: true, CredentialsInput: "enforce"}
}

// evalSave evaluates the flows through an iptables filter table given as
// iptables-save text (the backend in use), plus native nft bases.
func evalSave(t *testing.T, c Config, save string, subnet string, natives []path.NftBase) []flowResult {
	t.Helper()
	tb, err := path.ParseSave("*filter\n"+save+"\nCOMMIT\n", "filter", "iptables (nf_tables) filter")
	if err != nil {
		t.Fatal(err)
	}
	pr := &pathRead{inUse: tb,
		input:  []path.Base{{Model: tb, Chain: "INPUT", Owner: "iptables", Family: backendNFT, Table: "filter"}},
		output: []path.Base{{Model: tb, Chain: "OUTPUT", Owner: "iptables", Family: backendNFT, Table: "filter"}}}
	for _, nb := range natives {
		b := path.Base{Model: nb.Model, Chain: nb.Chain, Prio: nb.Prio, Family: nb.Family, Table: nb.Table}
		if nb.Hook == "input" {
			pr.input = append(pr.input, b)
		} else {
			pr.output = append(pr.output, b)
		}
	}
	var sub func(string) (netip.Prefix, bool)
	if subnet != "" {
		sub = func(string) (netip.Prefix, bool) { return netip.MustParsePrefix(subnet), true }
	}
	return evaluate(pr, c.flows(sub, nil))
}

func verdictName(v path.Verdict) string {
	switch v {
	case path.Accept:
		return "accept"
	case path.Drop:
		return "drop"
	}
	return "undecidable"
}

func TestEvaluateIptables(t *testing.T) {
	const cis = ":INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n" +
		"-A INPUT -i lo -j ACCEPT\n-A INPUT -s 127.0.0.0/8 -j DROP\n" +
		"-A INPUT -p tcp -m state --state ESTABLISHED -j ACCEPT\n-A INPUT -p tcp -m tcp --dport 22 -m state --state NEW -j ACCEPT"
	for _, tc := range []struct {
		name    string
		save    string
		subnet  string
		bridges []string
		// verdicts of the bridge path, host path (output), host path (lo)
		want []string
		// what decides the bridge path (a substring), and where the
		// repair goes (0: none)
		by  string
		pos int
	}{
		{name: "empty", save: ":INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]", want: []string{"accept", "accept", "accept"}, by: "policy ACCEPT"},
		{name: "no filter table", save: "", want: []string{"accept", "accept", "accept"}, by: "no such chain"},
		{name: "CIS AL2: INPUT policy DROP", save: cis, want: []string{"drop", "accept", "accept"}, by: "filter INPUT policy DROP", pos: 5},
		{name: "explicit docker0 DROP", save: ":INPUT ACCEPT [0:0]\n-A INPUT -i docker0 -j DROP", want: []string{"drop", "accept", "accept"}, by: "rule 1 (-A INPUT -i docker0 -j DROP)", pos: 1},
		{name: "REJECT of the agent port", save: ":INPUT ACCEPT [0:0]\n-A INPUT -p tcp -m tcp --dport 51679 -j REJECT --reject-with tcp-reset",
			want: []string{"drop", "accept", "drop"}, by: "rule 1", pos: 1},
		{name: "operator's own accept", save: ":INPUT DROP [0:0]\n-A INPUT -i lo -j ACCEPT\n-A INPUT -i docker0 -d 127.0.0.1/32 -p tcp -m tcp --dport 51679 -j ACCEPT",
			want: []string{"accept", "accept", "accept"}, by: "rule 2"},
		{name: "operator's wide accept from the bridge", save: ":INPUT DROP [0:0]\n-A INPUT -i docker+ -j ACCEPT\n-A INPUT -i lo -j ACCEPT",
			want: []string{"accept", "accept", "accept"}, by: "rule 1"},
		{name: "OUTPUT policy DROP", save: ":INPUT ACCEPT [0:0]\n:OUTPUT DROP [0:0]\n-A OUTPUT -p tcp -m state --state ESTABLISHED -j ACCEPT",
			want: []string{"accept", "drop", "accept"}, by: "policy ACCEPT"},
		{name: "OUTPUT -o lo accept is undecidable (the output interface of 169.254.170.2 is not known)", save: ":OUTPUT DROP [0:0]\n-A OUTPUT -o lo -j ACCEPT",
			want: []string{"accept", "undecidable", "accept"}},
		{name: "CIS OUTPUT: new and established accepted", save: ":OUTPUT DROP [0:0]\n-A OUTPUT -o lo -j ACCEPT\n-A OUTPUT -p tcp -m state --state NEW,ESTABLISHED -j ACCEPT",
			want: []string{"accept", "accept", "accept"}},
		{name: "unmodelled match that could accept", save: ":INPUT DROP [0:0]\n-A INPUT -i lo -j ACCEPT\n-A INPUT -m set --match-set trusted src -j ACCEPT",
			want: []string{"undecidable", "accept", "accept"}, by: "-m set"},
		{name: "unmodelled match that cannot change the outcome", save: ":INPUT ACCEPT [0:0]\n-A INPUT -m set --match-set trusted src -j ACCEPT",
			want: []string{"accept", "accept", "accept"}},
		{name: "unmodelled match that could drop", save: ":INPUT ACCEPT [0:0]\n-A INPUT -m recent --rcheck --name bad -j DROP",
			want: []string{"undecidable", "accept", "undecidable"}, by: "-m recent"},
		{name: "NFQUEUE decides", save: ":INPUT ACCEPT [0:0]\n-A INPUT -i docker0 -j NFQUEUE --queue-num 1",
			want: []string{"undecidable", "accept", "accept"}, by: "NFQUEUE"},
		{name: "LOG and MARK do not decide", save: ":INPUT DROP [0:0]\n-A INPUT -j LOG\n-A INPUT -j MARK --set-mark 1\n-A INPUT -i docker0 -j ACCEPT\n-A INPUT -i lo -j ACCEPT",
			want: []string{"accept", "accept", "accept"}, by: "rule 3"},
		{name: "jump to a user chain that drops", save: ":INPUT ACCEPT [0:0]\n:CIS - [0:0]\n-A INPUT -i lo -j ACCEPT\n-A INPUT -j CIS\n-A CIS -s 10.0.0.0/8 -j RETURN\n-A CIS -j DROP",
			subnet: "172.17.0.0/16", want: []string{"drop", "accept", "accept"}, by: "CIS rule 2 (-A CIS -j DROP)", pos: 2},
		{name: "jump: RETURN for the bridge's subnet", save: ":INPUT ACCEPT [0:0]\n:CIS - [0:0]\n-A INPUT -j CIS\n-A CIS -s 172.16.0.0/12 -j RETURN\n-A CIS -i lo -j RETURN\n-A CIS -j DROP",
			subnet: "172.17.0.0/16", want: []string{"accept", "accept", "accept"}, by: "policy ACCEPT"},
		{name: "jump: source unknown is undecidable", save: ":INPUT ACCEPT [0:0]\n:CIS - [0:0]\n-A INPUT -j CIS\n-A CIS -s 172.16.0.0/12 -j RETURN\n-A CIS -j DROP",
			want: []string{"undecidable", "accept", "undecidable"}, by: "-s 172.16.0.0/12"},
		{name: "goto returns to the caller's caller", save: ":INPUT DROP [0:0]\n:A - [0:0]\n-A INPUT -g A\n-A INPUT -j ACCEPT\n-A A -p udp -j ACCEPT",
			want: []string{"drop", "accept", "drop"}, by: "policy DROP", pos: 3},
		{name: "multiport", save: ":INPUT DROP [0:0]\n-A INPUT -p tcp -m multiport --dports 22,51670:51690 -j ACCEPT",
			want: []string{"accept", "accept", "accept"}},
		{name: "a conntrack NEW drop", save: ":INPUT ACCEPT [0:0]\n-A INPUT -m conntrack --ctstate NEW -m addrtype --dst-type LOCAL -j DROP",
			want: []string{"drop", "accept", "drop"}, pos: 1},
		{name: "a SYN drop from the bridge", save: ":INPUT ACCEPT [0:0]\n-A INPUT -i docker0 -p tcp -m tcp --tcp-flags SYN,RST,ACK SYN -j DROP",
			want: []string{"drop", "accept", "accept"}, pos: 1},
		{name: "ecs-init's guard lets the DNAT through", save: ":INPUT ACCEPT [0:0]\n-A INPUT ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP",
			want: []string{"accept", "accept", "accept"}},
		{name: "a wildcard bridge vs one named bridge", save: ":INPUT ACCEPT [0:0]\n-A INPUT -i docker0 -j DROP", bridges: []string{"docker+"},
			want: []string{"undecidable", "accept", "accept"}},
		{name: "a wildcard bridge vs a wider wildcard", save: ":INPUT ACCEPT [0:0]\n-A INPUT -i dock+ -j DROP", bridges: []string{"docker+"},
			want: []string{"drop", "accept", "accept"}, pos: 1},
		{name: "our own accept", save: ":INPUT DROP [0:0]\n-A INPUT -i lo -j ACCEPT\n-A INPUT -i docker0 -d 127.0.0.1/32 -p tcp -m tcp --dport 51679 -m conntrack --ctstate DNAT -j ACCEPT",
			want: []string{"accept", "accept", "accept"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := credConfig()
			c.TaskBridges = tc.bridges
			rs := evalSave(t, c, tc.save, tc.subnet, nil)
			var got []string
			for _, r := range rs {
				got = append(got, verdictName(r.hv.Verdict))
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				for _, r := range rs {
					for _, br := range r.hv.Results {
						t.Logf("%s: %s by %s undecided %s (%s)", r.f.name, verdictName(br.Outcome.Verdict), br.Outcome.By, br.Outcome.Undecided, br.Outcome.Reason)
					}
				}
				t.Fatalf("verdicts %v, want %v", got, tc.want)
			}
			o := rs[0].hv.Results[0].Outcome
			if tc.by != "" && !strings.Contains(o.By.String()+" "+o.Undecided.String()+" "+o.Reason, tc.by) {
				t.Errorf("bridge path decided by %q / undecided %q (%s), want %q", o.By, o.Undecided, o.Reason, tc.by)
			}
			if tc.pos != 0 && o.Top != tc.pos {
				t.Errorf("bridge path: blocked at base position %d, want %d", o.Top, tc.pos)
			}
		})
	}
}

func loadAL2023(t *testing.T) []path.NftBase {
	t.Helper()
	js, err := os.ReadFile("testdata/credpath/al2023.json")
	if err != nil {
		t.Fatal(err)
	}
	txt, err := os.ReadFile("testdata/credpath/al2023.txt")
	if err != nil {
		t.Fatal(err)
	}
	bs, err := path.ParseNft(js, path.ParseNftText(string(txt)))
	if err != nil {
		t.Fatal(err)
	}
	return bs
}

func TestEvaluateNativeNft(t *testing.T) {
	bs := loadAL2023(t)
	if len(bs) != 2 || bs[0].Chain != "input" && bs[1].Chain != "input" {
		t.Fatalf("base chains %+v", bs)
	}
	rs := evalSave(t, credConfig(), "", "172.17.0.0/16", bs)
	got := []string{verdictName(rs[0].hv.Verdict), verdictName(rs[1].hv.Verdict), verdictName(rs[2].hv.Verdict)}
	// The bridge path falls to `policy drop` (after the jump to extra,
	// which returns for 192.168/16 and accepts only icmp); the host path
	// is accepted by iif "lo".
	if strings.Join(got, " ") != "drop accept accept" {
		t.Fatalf("verdicts %v", got)
	}
	var nb path.BaseResult
	for _, br := range rs[0].hv.Results {
		if br.Base.Family == "inet" {
			nb = br
		}
	}
	if nb.Outcome.By.String() != "nft inet filter input policy DROP" {
		t.Errorf("bridge path blocked by %q at %d", nb.Outcome.By, nb.Outcome.Top)
	}
	e := &Enforcer{c: credConfig()}
	fix := e.manualFix(nb, rs[0].f)
	if !strings.Contains(fix, "`nft add rule inet filter input iifname \"docker0\" ip daddr 127.0.0.1 tcp dport 51679 ct status dnat accept`") {
		t.Errorf("fix %s", fix)
	}
	for _, br := range rs[2].hv.Results {
		if br.Base.Family == "inet" && br.Outcome.By.String() != `nft inet filter input rule 1 (iif "lo" accept)` {
			t.Errorf("host path accepted by %q", br.Outcome.By)
		}
	}
}

func TestEvaluateNativeRules(t *testing.T) {
	// rules as nft -j prints them (nft 1.0.6), one chain each
	const head = `{"nftables":[{"table":{"family":"inet","name":"filter","handle":1}},{"chain":{"family":"inet","table":"filter","name":"input","handle":1,"type":"filter","hook":"input","prio":0,"policy":"accept"}}`
	rule := func(h int, expr string) string {
		return `,{"rule":{"family":"inet","table":"filter","chain":"input","handle":` + itoa(h) + `,"expr":` + expr + `}}`
	}
	for _, tc := range []struct {
		name  string
		rules string
		want  string // bridge path
	}{
		{"tcp dport 51679 reject", rule(2, `[{"match":{"op":"==","left":{"payload":{"protocol":"tcp","field":"dport"}},"right":51679}},{"reject":{"type":"icmpx","expr":"port-unreachable"}}]`), "drop"},
		{"udp dport 51679 drop", rule(2, `[{"match":{"op":"==","left":{"payload":{"protocol":"udp","field":"dport"}},"right":51679}},{"drop":null}]`), "accept"},
		{"ip6 saddr drop", rule(2, `[{"match":{"op":"!=","left":{"payload":{"protocol":"ip6","field":"saddr"}},"right":"::1"}},{"drop":null}]`), "accept"},
		{"iifname docker* drop", rule(2, `[{"match":{"op":"==","left":{"meta":{"key":"iifname"}},"right":"docker*"}},{"drop":null}]`), "drop"},
		{"ct status dnat accept, then drop", rule(2, `[{"match":{"op":"in","left":{"ct":{"key":"status"}},"right":"dnat"}},{"accept":null}]`) + rule(3, `[{"drop":null}]`), "accept"},
		{"ct state new drop", rule(2, `[{"match":{"op":"in","left":{"ct":{"key":"state"}},"right":"new"}},{"drop":null}]`), "drop"},
		{"ct state established,related drop", rule(2, `[{"match":{"op":"in","left":{"ct":{"key":"state"}},"right":["established","related"]}},{"drop":null}]`), "accept"},
		{"tcp flags syn drop", rule(2, `[{"match":{"op":"==","left":{"&":[{"payload":{"protocol":"tcp","field":"flags"}},["fin","syn","rst","ack"]]},"right":"syn"}},{"drop":null}]`), "drop"},
		{"dport vmap", rule(2, `[{"vmap":{"key":{"payload":{"protocol":"tcp","field":"dport"}},"data":{"set":[[53,{"accept":null}],[51679,{"drop":null}]]}}}]`), "drop"},
		{"daddr outside 127/8 drop", rule(2, `[{"match":{"op":"!=","left":{"payload":{"protocol":"ip","field":"daddr"}},"right":{"prefix":{"addr":"127.0.0.0","len":8}}}},{"drop":null}]`), "accept"},
		{"limit: undecidable", rule(2, `[{"limit":{"rate":5,"burst":5,"per":"second"}},{"drop":null}]`), "undecidable"},
		{"fib daddr type local drop", rule(2, `[{"match":{"op":"==","left":{"fib":{"result":"type","flags":["daddr"]}},"right":"local"}},{"drop":null}]`), "drop"},
		{"xt compat: undecidable", rule(2, `[{"xt":{"type":"match","name":"recent"}},{"drop":null}]`), "undecidable"},
		{"queue: undecidable", rule(2, `[{"queue":{"num":1}}]`), "undecidable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bs, err := path.ParseNft([]byte(head+tc.rules+"]}"), nil)
			if err != nil {
				t.Fatal(err)
			}
			rs := evalSave(t, credConfig(), "", "172.17.0.0/16", bs)
			if got := verdictName(rs[0].hv.Verdict); got != tc.want {
				for _, br := range rs[0].hv.Results {
					t.Logf("%s by %s undecided %s (%s)", verdictName(br.Outcome.Verdict), br.Outcome.By, br.Outcome.Undecided, br.Outcome.Reason)
				}
				t.Errorf("bridge path %s, want %s", got, tc.want)
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestRepairPositions(t *testing.T) {
	rs := evalSave(t, credConfig(), ":INPUT DROP [0:0]\n:OUTPUT DROP [0:0]\n-A INPUT -m state --state ESTABLISHED -j ACCEPT\n-A INPUT -p tcp -m tcp --dport 51679 -j DROP\n-A OUTPUT -m state --state ESTABLISHED -j ACCEPT", "", nil)
	tb, _ := path.ParseSave("*filter\n:INPUT DROP [0:0]\n:OUTPUT DROP [0:0]\n-A INPUT -m state --state ESTABLISHED -j ACCEPT\n-A INPUT -p tcp -m tcp --dport 51679 -j DROP\n-A OUTPUT -m state --state ESTABLISHED -j ACCEPT\nCOMMIT\n", "filter", "x")
	ins, foreign := repairs(&pathRead{inUse: tb}, rs)
	if len(foreign) != 0 || len(ins) != 3 {
		t.Fatalf("insertions %+v foreign %+v", ins, foreign)
	}
	batch, _ := inputBatch(ins)
	want := "*filter\n" +
		"-I INPUT 2 -i docker0 -d 127.0.0.1/32 -p tcp --dport 51679 -m conntrack --ctstate DNAT -j ACCEPT\n" +
		"-I OUTPUT 2 -d 127.0.0.1/32 -p tcp --dport 51679 -m conntrack --ctstate DNAT -j ACCEPT\n" +
		"-I INPUT 2 -i lo -d 127.0.0.1/32 -p tcp --dport 51679 -m conntrack --ctstate DNAT -j ACCEPT\nCOMMIT\n"
	if string(batch) != want {
		t.Errorf("batch:\n%s\nwant:\n%s", batch, want)
	}
}

// TestHostRouteDecides: with the route of 169.254.170.2 known (hostRoute),
// an output-interface match is decided instead of undecidable.
func TestHostRouteDecides(t *testing.T) {
	tb, err := path.ParseSave("*filter\n:OUTPUT DROP [0:0]\n-A OUTPUT -o lo -j ACCEPT\nCOMMIT\n", "filter", "iptables (nf_tables) filter")
	if err != nil {
		t.Fatal(err)
	}
	pr := &pathRead{inUse: tb, output: []path.Base{{Model: tb, Chain: "OUTPUT", Owner: "iptables"}}}
	for oif, want := range map[string]path.Verdict{"lo": path.Accept, "eth0": path.Drop} {
		route := func(netip.Addr) (string, netip.Addr, bool) { return oif, netip.MustParseAddr("10.0.0.5"), true }
		c := credConfig()
		rs := evaluate(pr, c.flows(nil, route))
		if rs[1].hv.Verdict != want || !strings.Contains(rs[1].f.name, "output via "+oif) {
			t.Errorf("route via %s: %s %s, want %s", oif, rs[1].f.name, verdictName(rs[1].hv.Verdict), verdictName(want))
		}
	}
}

// TestManualFix: the command a block in a table we do not own gets.
func TestManualFix(t *testing.T) {
	e := &Enforcer{c: credConfig(), oth: "iptables-legacy", v4: tools{cmd: "iptables-nft", backend: backendNFT}}
	cc := credConfig()
	fl := cc.flows(nil, nil)[0]
	tb := &path.Table{Where: "nft inet filter", Chains: map[string]*path.Chain{"input": {Name: "input", Policy: "DROP",
		Rules: []path.Rule{{Ref: path.RuleRef{Pos: 1, Handle: 4}}, {Ref: path.RuleRef{Pos: 2, Handle: 9}}}}}}
	for _, tc := range []struct {
		name string
		br   path.BaseResult
		want string
	}{
		{"a rule of a native table", path.BaseResult{Base: path.Base{Model: tb, Chain: "input", Family: "inet", Table: "filter"}, Outcome: path.Outcome{Verdict: path.Drop, Top: 2}},
			"`nft insert rule inet filter input position 9 iifname \"docker0\" ip daddr 127.0.0.1 tcp dport 51679 ct status dnat accept`"},
		{"the policy of a native table", path.BaseResult{Base: path.Base{Model: tb, Chain: "input", Family: "inet", Table: "filter"}, Outcome: path.Outcome{Verdict: path.Drop, Top: 3}},
			"`nft add rule inet filter input iifname \"docker0\" ip daddr 127.0.0.1 tcp dport 51679 ct status dnat accept`"},
		{"firewalld", path.BaseResult{Base: path.Base{Model: tb, Chain: "filter_INPUT", Family: "inet", Table: "firewalld"}, Outcome: path.Outcome{Verdict: path.Drop, Top: 1}},
			"--get-zone-of-interface=docker0)\" --add-rich-rule='rule family=\"ipv4\" destination address=\"127.0.0.1\" port port=\"51679\" protocol=\"tcp\" accept'"},
		{"the other backend", path.BaseResult{Base: path.Base{Model: &path.Table{Chains: map[string]*path.Chain{"INPUT": {Rules: make([]path.Rule, 3)}}}, Chain: "INPUT", Family: backendLegacy, Table: "filter"}, Outcome: path.Outcome{Verdict: path.Drop, Top: 2}},
			"`iptables-legacy -t filter -I INPUT 2 -i docker0 -d 127.0.0.1/32 -p tcp --dport 51679 -m conntrack --ctstate DNAT -j ACCEPT`"},
	} {
		if got := e.manualFix(tc.br, fl); !strings.Contains(got, tc.want) {
			t.Errorf("%s: %s\nwant it to hold %s", tc.name, got, tc.want)
		}
	}
}

// BenchmarkEvaluate: the three flows through a filter table of n foreign
// INPUT rules (ssh-style accepts on other ports, source-restricted
// accepts that fork, a user chain) ending in policy DROP.
func BenchmarkEvaluate(b *testing.B) {
	for _, n := range []int{100, 10000} {
		var sb strings.Builder
		sb.WriteString("*filter\n:INPUT DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n:CIS - [0:0]\n-A INPUT -i lo -j ACCEPT\n-A INPUT -j CIS\n")
		for i := 0; i < n; i++ {
			switch i % 3 {
			case 0:
				sb.WriteString("-A INPUT -p tcp -m tcp --dport " + strconv.Itoa(1000+i%50000) + " -j ACCEPT\n")
			case 1:
				sb.WriteString("-A INPUT -s 10." + strconv.Itoa(i%250) + ".0.0/16 -p udp -j ACCEPT\n")
			default:
				sb.WriteString("-A CIS -m set --match-set s" + strconv.Itoa(i) + " src -j LOG\n")
			}
		}
		sb.WriteString("COMMIT\n")
		tb, err := path.ParseSave(sb.String(), "filter", "x")
		if err != nil {
			b.Fatal(err)
		}
		pr := &pathRead{inUse: tb, input: []path.Base{{Model: tb, Chain: "INPUT", Owner: "iptables"}}, output: []path.Base{{Model: tb, Chain: "OUTPUT", Owner: "iptables"}}}
		c := credConfig()
		fs := c.flows(func(string) (netip.Prefix, bool) { return netip.MustParsePrefix("172.17.0.0/16"), true }, nil)
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				evaluate(pr, fs)
			}
		})
		b.Run("parse-"+strconv.Itoa(n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := path.ParseSave(sb.String(), "filter", "x"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
