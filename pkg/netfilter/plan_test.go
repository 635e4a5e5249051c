package netfilter

import (
	"strings"
	"testing"

	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter/rule"
)

func testConfig() Config {
	return Config{AgentPort: 51679, IntrospectionPort: 51678, Credentials: true,
		LocalhostGuard: true, BlockIntrospection: true}
}

// planFor parses an iptables-save text and plans the IPv4 wants.
func planFor(t *testing.T, c Config, docker0 bool, save string) *plan {
	t.Helper()
	ws := c.wants(docker0, false)
	rs := rule.NewRuleset(false)
	in := rule.InterestOf(ws)
	if err := rule.ParseText(rs, save, "", in.Reads, in.Needles); err != nil {
		t.Fatal(err)
	}
	return makePlan(ws, rs)
}

func batchOf(p *plan) string { return strings.TrimSpace(string(restoreBatch(p.ops, p.tables))) }

func TestPlan(t *testing.T) {
	const (
		dnat   = "-d 169.254.170.2/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 127.0.0.1:51679"
		redir  = "-d 169.254.170.2/32 -p tcp -m tcp --dport 80 -j REDIRECT --to-ports 51679"
		guard  = "! -s 127.0.0.0/8 -d 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP"
		idrop  = "! -i lo -p tcp -m tcp --dport 51678 -j DROP"
		iacc   = "-i docker0 -p tcp -m tcp --dport 51678 -j ACCEPT"
		ssh    = "-p tcp -m tcp --dport 22 -j ACCEPT"
		wDNAT  = "-p tcp -d 169.254.170.2 --dport 80 -j DNAT --to-destination 127.0.0.1:51679"
		wRedir = "-p tcp -d 169.254.170.2 --dport 80 -j REDIRECT --to-ports 51679"
		wGuard = "--dst 127.0.0.0/8 ! --src 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP"
		wDrop  = "-p tcp --dport 51678 ! -i lo -j DROP"
		wAcc   = "-p tcp --dport 51678 -i docker0 -j ACCEPT"
		rawSec = "*raw\n-A PREROUTING ! -i lo -d 127.0.0.0/8 -j DROP\nCOMMIT\n"
		wRaw   = "\n*raw\n-I PREROUTING 1 ! -i lo -d 127.0.0.0/8 -j DROP\nCOMMIT"
	)
	all := "*nat\n-A PREROUTING " + dnat + "\n-A OUTPUT " + redir + "\nCOMMIT\n*filter\n-A INPUT " + iacc + "\n-A INPUT " + idrop + "\n-A INPUT " + guard + "\nCOMMIT\n"
	for _, tc := range []struct {
		name    string
		docker0 bool
		save    string
		batch   string
		actions []string
		noRaw   bool // the save has no raw guard
	}{
		{name: "empty host", docker0: true, save: "",
			batch:   "*nat\n-A PREROUTING " + wDNAT + "\n-A OUTPUT " + wRedir + "\nCOMMIT\n*filter\n-I INPUT 1 " + wAcc + "\n-I INPUT 2 " + wDrop + "\n-I INPUT 3 " + wGuard + "\nCOMMIT" + wRaw,
			actions: []string{"appended rule", "appended rule", "inserted rule", "inserted rule", "inserted rule", "inserted rule"}, noRaw: true},
		{name: "compliant", docker0: true, save: all, batch: "", actions: []string{"", "", "", "", ""}},
		{name: "no docker0: ACCEPT neither needed nor removed", save: all, batch: "", actions: []string{"", "", "", "", ""}},
		{name: "no docker0, empty", save: "*filter\n-A INPUT " + ssh + "\nCOMMIT\n",
			batch: "*nat\n-A PREROUTING " + wDNAT + "\n-A OUTPUT " + wRedir + "\nCOMMIT\n*filter\n-I INPUT 1 " + wDrop + "\n-I INPUT 2 " + wGuard + "\nCOMMIT"},
		{name: "duplicates keep the first copy's place", docker0: true,
			save: "*nat\n-A PREROUTING " + dnat + "\n-A PREROUTING -j FOO\n-A PREROUTING " + dnat + "\n-A OUTPUT " + redir + "\nCOMMIT\n" +
				"*filter\n-A INPUT " + guard + "\n-A INPUT " + iacc + "\n-A INPUT " + idrop + "\n-A INPUT " + ssh + "\n-A INPUT " + guard + "\nCOMMIT\n",
			batch: "*nat\n-D PREROUTING " + dnat + "\n-D PREROUTING " + dnat + "\n-I PREROUTING 1 " + wDNAT + "\nCOMMIT\n" +
				"*filter\n-D INPUT " + guard + "\n-D INPUT " + guard + "\n-I INPUT 1 " + wGuard + "\nCOMMIT",
			actions: []string{"deleted duplicate rule (2 copies -> 1)", "", "", "", "deleted duplicate rule (2 copies -> 1)"}},
		{name: "missing guard goes after our other INPUT rules", docker0: true,
			save:  "*nat\n-A PREROUTING " + dnat + "\n-A OUTPUT " + redir + "\nCOMMIT\n*filter\n-A INPUT " + ssh + "\n-A INPUT " + iacc + "\n-A INPUT " + idrop + "\n-A INPUT " + ssh + "\nCOMMIT\n",
			batch: "*filter\n-I INPUT 4 " + wGuard + "\nCOMMIT"},
		{name: "missing ACCEPT goes above the DROP", docker0: true,
			save:  "*nat\n-A PREROUTING " + dnat + "\n-A OUTPUT " + redir + "\nCOMMIT\n*filter\n-A INPUT " + ssh + "\n-A INPUT " + idrop + "\n-A INPUT " + guard + "\nCOMMIT\n",
			batch: "*filter\n-I INPUT 2 " + wAcc + "\nCOMMIT"},
		{name: "ACCEPT below the DROP is moved above it", docker0: false,
			save:    "*nat\n-A PREROUTING " + dnat + "\n-A OUTPUT " + redir + "\nCOMMIT\n*filter\n-A INPUT " + idrop + "\n-A INPUT " + ssh + "\n-A INPUT " + iacc + "\n-A INPUT " + guard + "\nCOMMIT\n",
			batch:   "*filter\n-D INPUT " + iacc + "\n-I INPUT 1 " + wAcc + "\nCOMMIT",
			actions: []string{"", "", "moved rule above " + wDrop, "", ""}},
		{name: "ecs-init spelling counts as ours", docker0: true,
			save:  "*nat\n-A PREROUTING " + wDNAT + "\n-A OUTPUT " + wRedir + "\nCOMMIT\n*filter\n-A INPUT " + wAcc + "\n-A INPUT " + wDrop + "\n-A INPUT " + wGuard + "\nCOMMIT\n",
			batch: ""},
		{name: "look-alikes are not ours", docker0: false,
			save: "*nat\n-A PREROUTING -d 169.254.170.2/32 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 127.0.0.1:51679\n-A PREROUTING " + dnat + "\n-A OUTPUT -d 169.254.170.3/32 -p tcp -m tcp --dport 80 -j REDIRECT --to-ports 51679\nCOMMIT\n" +
				"*filter\n-A INPUT ! -i lo -p tcp -m tcp --dport 51678 -j ACCEPT\n-A INPUT " + idrop + "\n-A INPUT " + guard + "\n-A INPUT -m comment --comment \"x y\" " + idrop + "\nCOMMIT\n",
			batch: "*nat\n-A OUTPUT " + wRedir + "\nCOMMIT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			save := tc.save
			if !tc.noRaw {
				save += rawSec
			}
			p := planFor(t, testConfig(), tc.docker0, save)
			if got := batchOf(p); got != tc.batch {
				t.Errorf("batch:\n%s\nwant:\n%s", got, tc.batch)
			}
			for i, a := range tc.actions {
				if got := p.states[i].action; got != a {
					t.Errorf("rule %d (%s): action %q, want %q", i, p.states[i].w.Spell(), got, a)
				}
			}
		})
	}
}

func TestPlanIMDSChain(t *testing.T) {
	c := Config{BlockIMDS: true}
	p := planFor(t, c, false, "*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n")
	want := "*filter\n-N DOCKER-USER\n-I DOCKER-USER 1 -i docker+ -d 169.254.169.254/32 -j DROP\nCOMMIT"
	if got := batchOf(p); got != want {
		t.Errorf("missing chain:\n%s\nwant:\n%s", got, want)
	}
	// existing chain: never declared again (that would flush it)
	p = planFor(t, c, false, "*filter\n:DOCKER-USER - [0:0]\n-A DOCKER-USER -j RETURN\nCOMMIT\n")
	want = "*filter\n-I DOCKER-USER 1 -i docker+ -d 169.254.169.254/32 -j DROP\nCOMMIT"
	if got := batchOf(p); got != want {
		t.Errorf("existing chain:\n%s\nwant:\n%s", got, want)
	}
}

func TestShadowWarning(t *testing.T) {
	guard := "! -s 127.0.0.0/8 -d 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP"
	idrop := "! -i lo -p tcp -m tcp --dport 51678 -j DROP"
	nat := "*nat\n-A PREROUTING -d 169.254.170.2/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 127.0.0.1:51679\n-A OUTPUT -d 169.254.170.2/32 -p tcp -m tcp --dport 80 -j REDIRECT --to-ports 51679\nCOMMIT\n"
	for _, tc := range []struct {
		name   string
		before string // foreign rule above our INPUT rules
		guard  bool   // guard shadowed
		intro  bool   // introspection DROP shadowed
	}{
		{"plain accept", "-j ACCEPT", true, true},
		{"jump to a user chain", "-j cali-INPUT", true, true},
		{"loopback accept", "-i lo -j ACCEPT", false, false},
		{"established accept", "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT", false, false},
		{"state module", "-m state --state ESTABLISHED -j ACCEPT", false, false},
		{"ssh accept", "-p tcp -m tcp --dport 22 -j ACCEPT", true, false},
		{"port range with ours", "-p tcp -m tcp --dport 50000:52000 -j ACCEPT", true, true},
		{"multiport without ours", "-p tcp -m multiport --dports 22,443 -j ACCEPT", true, false},
		{"udp accept", "-p udp -j ACCEPT", true, false},
		{"other destination", "-d 10.0.0.0/8 -j ACCEPT", false, true},
		{"from loopback sources", "-s 127.0.0.0/8 -j ACCEPT", false, true},
		{"drop is no hole", "-j DROP", false, false},
		{"log is passive", "-j LOG", false, false},
		{"other interface", "-i eth0 -p tcp -m tcp --dport 51678 -j ACCEPT", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := planFor(t, testConfig(), false, nat+"*filter\n-A INPUT "+tc.before+"\n-A INPUT "+idrop+"\n-A INPUT "+guard+"\nCOMMIT\n")
			got := map[string]bool{}
			for _, st := range p.states {
				got[st.w.Item] = got[st.w.Item] || st.shadowedBy != ""
			}
			if got[ItemLocalhostGuard] != tc.guard || got[ItemIntrospectionBlock] != tc.intro {
				t.Errorf("%q: guard shadowed %v (want %v), introspection %v (want %v)", tc.before, got[ItemLocalhostGuard], tc.guard, got[ItemIntrospectionBlock], tc.intro)
			}
		})
	}
	// nat: only a foreign rule naming our address warns; Docker's jump does not
	for _, tc := range []struct {
		rule string
		want bool
	}{
		{"-m addrtype --dst-type LOCAL -j DOCKER", false},
		{"-d 169.254.170.2/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 127.0.0.1:9999", true},
		{"-d 169.254.0.0/16 -j ACCEPT", true},
		{"-d 169.254.170.2/32 -p tcp -m tcp --dport 443 -j DNAT --to-destination 127.0.0.1:9999", false},
		{"-d 169.254.170.2/32 -p tcp -m comment --comment x -j DNAT --to-destination 127.0.0.1:51679", false},
	} {
		p := planFor(t, Config{AgentPort: 51679, Credentials: true}, false,
			"*nat\n-A PREROUTING "+tc.rule+"\n-A PREROUTING -d 169.254.170.2/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 127.0.0.1:51679\nCOMMIT\n")
		if got := p.states[0].shadowedBy != ""; got != tc.want {
			t.Errorf("nat %q: shadow %v, want %v", tc.rule, got, tc.want)
		}
	}
}
