package netfilter

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter/kernel"
	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter/rule"
	"github.com/ecs-remediator/ecs-remediator/test/nstest"
)

// nftShapes are rules of many shapes, ours and foreign, in the chains we
// read. Each is added with iptables-nft, so the kernel holds exactly the
// expressions iptables-nft generates.
var nftShapes = []string{
	"-t nat -A PREROUTING -p tcp -d 169.254.170.2 --dport 80 -j DNAT --to-destination 127.0.0.1:51679",
	"-t nat -A PREROUTING -d 169.254.170.2/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 127.0.0.1:51679",
	"-t nat -A PREROUTING -d 169.254.0.0/16 -p tcp -j DNAT --to-destination 10.0.0.1-10.0.0.9:80-90",
	"-t nat -A PREROUTING ! -d 169.254.170.2 -p udp --dport 53 -j REDIRECT",
	"-t nat -A PREROUTING -d 10.1.2.0/255.255.255.0 -j RETURN",
	"-t nat -A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER",
	"-t nat -A PREROUTING -d 169.254.170.2 -m comment --comment 'not ours' -p tcp --dport 80 -j DNAT --to-destination 127.0.0.1:51679",
	"-t nat -A PREROUTING -p tcp -m multiport --dports 80,443 -d 169.254.170.2 -j DNAT --to-destination 127.0.0.1:51679",
	"-t nat -A PREROUTING -d 169.254.170.2 -p tcp --dport 80 -j DNAT --to-destination 127.0.0.1:51679 --random",
	"-t nat -A PREROUTING -d 169.254.170.2 -p tcp --dport 80 -j DNAT --to-destination :51679",
	"-t nat -A OUTPUT -p tcp -d 169.254.170.2 --dport 80 -j REDIRECT --to-ports 51679",
	"-t nat -A OUTPUT -p tcp -d 169.254.170.2 ! --dport 80 -j REDIRECT --to-ports 51679-51680",
	"-t nat -A OUTPUT -o lo -p tcp -j RETURN",
	"-t nat -A OUTPUT -j LOG --log-prefix x",
	"-t filter -A INPUT --dst 127.0.0.0/8 ! --src 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP",
	"-t raw -A PREROUTING ! -i lo -d 127.0.0.0/8 -j DROP",
	"-t raw -A PREROUTING -i lo -d 127.0.0.0/8 -j DROP",
	"-t filter -A INPUT -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate ESTABLISHED,RELATED,DNAT -j DROP",
	"-t filter -A INPUT -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m state ! --state ESTABLISHED,RELATED -j DROP",
	"-t filter -A INPUT -d 127.0.0.0/8 -m conntrack --ctstate NEW,INVALID,UNTRACKED,SNAT -j REJECT",
	"-t filter -A INPUT -d 127.0.0.0/8 -m conntrack --ctstate NEW --ctproto tcp -j DROP",
	"-t filter -A INPUT -p tcp --dport 51678 ! -i lo -j DROP",
	"-t filter -A INPUT -p tcp --dport 51678 -i docker0 -j ACCEPT",
	"-t filter -A INPUT -p tcp --dport 51678 -i docker+ -j ACCEPT",
	"-t filter -A INPUT -p udp --sport 51678 -j ACCEPT",
	"-t filter -A INPUT -p 6 --dport 51678:51680 -j ACCEPT",
	"-t filter -A INPUT -p tcp --tcp-flags SYN,ACK SYN --dport 51678 -j DROP",
	"-t filter -A INPUT ! -p tcp -s 10.0.0.0/8 -j ACCEPT",
	"-t filter -A INPUT -s 127.0.0.1 -o eth0 -j FOO",
	"-t filter -A INPUT -s 127.0.0.1 -g FOO",
	"-t filter -A INPUT -i eth51678 -j RETURN",
	"-t filter -A INPUT -p icmp -j ACCEPT",
	"-t filter -A INPUT -m mark --mark 0x7f -j ACCEPT",
	"-t filter -A INPUT -f -d 127.0.0.1 -j DROP",
	"-t filter -A FORWARD -j DOCKER-USER",
	"-t filter -A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
	"-t filter -A DOCKER-USER -i docker+ -d 169.254.169.254/32 -j DROP",
	"-t filter -A DOCKER-USER -j RETURN",
}

// TestNetlinkReadMatchesIptables: every rule read over netlink and
// printed by nftText means what iptables-nft prints for it (same key),
// opaque rules are only those that cannot matter, and ecs-init's own
// rules are printed (the fast path is really taken).
func TestNetlinkReadMatchesIptables(t *testing.T) {
	b := nstest.Backends[0]
	nstest.Require(t, b.Iptables, b.Restore)
	nstest.Run(t, func() {
		var script strings.Builder
		script.WriteString(b.Iptables + " -N FOO; " + b.Iptables + " -N DOCKER-USER; " + b.Iptables + " -t nat -N DOCKER\n")
		for _, r := range nftShapes {
			script.WriteString(b.Iptables + " " + r + "\n")
		}
		nstest.Sh(t, script.String())
		c := Config{Iptables: b.Iptables, AgentPort: 51679, IntrospectionPort: 51678, Credentials: true,
			LocalhostGuard: true, BlockIntrospection: true, BlockIMDS: true, ProcRoot: t.TempDir(), ProcSys: t.TempDir()}
		e := newNS(t, c)
		ws := c.wants(true, false)
		printed := 0
		for _, ch := range []string{"raw PREROUTING", "nat PREROUTING", "nat OUTPUT", "filter INPUT", "filter FORWARD", "filter DOCKER-USER"} {
			table, name, _ := strings.Cut(ch, " ")
			out := nstest.Sh(t, b.Iptables+" -t "+table+" -S "+name)
			var want []string
			for _, l := range strings.Split(out, "\n") {
				if s, ok := strings.CutPrefix(l, "-A "+name+" "); ok {
					want = append(want, s)
				}
			}
			nrs := dumpChain(t, table, name)
			if len(nrs) != len(want) {
				t.Fatalf("%s: %d rules over netlink, %d printed by iptables", ch, len(nrs), len(want))
			}
			for j, nr := range nrs {
				x := nftText(nr.exprs, false)
				if !x.ok || nr.udata != nil {
					t.Logf("%s rule %d left to iptables-nft: %s", ch, j+1, want[j])
					continue
				}
				printed++
				k1, _, err1 := rule.Key(x.text, false)
				k2, _, err2 := rule.Key(want[j], false)
				if err1 != nil || err2 != nil || k1 != k2 {
					t.Errorf("%s rule %d: printed %q (key %q, %v), iptables says %q (key %q, %v)", ch, j+1, x.text, k1, err1, want[j], k2, err2)
				}
			}
		}
		if printed < len(nftShapes)/2 {
			t.Errorf("only %d of %d rules printed", printed, len(nftShapes))
		}
		// The full read agrees with reading every chain as text.
		fast, err := e.read4.Read(ctx(t), rule.InterestOf(ws))
		if err != nil {
			t.Fatal(err)
		}
		if !fast.Netlink {
			t.Fatal("the nf_tables enforcer does not read over netlink")
		}
		slow, err := readerFor(e, "chains").Read(ctx(t), rule.InterestOf(ws))
		if err != nil {
			t.Fatal(err)
		}
		sameKeys(t, fast, slow)
		for _, w := range ws {
			n := 0
			for _, r := range fast.Chain(w.Table, w.Chain).Rules {
				if r.Key == w.Key && !r.Opaque {
					n++
				}
			}
			if n == 0 {
				t.Errorf("%s %s: ours not found over netlink", w.Chain, w.Spell())
			}
		}
	})
}

func dumpChain(t *testing.T, table, name string) []nlRule {
	t.Helper()
	c, err := nlDial()
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	nrs, err := c.dumpRules(family(false), table, name)
	if err != nil {
		t.Fatal(err)
	}
	return nrs
}

// sameKeys compares two reads chain by chain: same number of rules, and
// the same key wherever the netlink read printed the rule.
func sameKeys(t *testing.T, fast, slow *rule.Ruleset) {
	t.Helper()
	for table, cs := range slow.Tables {
		for name, sc := range cs {
			fc := fast.Chain(table, name)
			if fc.Exists != sc.Exists || len(fc.Rules) != len(sc.Rules) {
				t.Errorf("%s %s: netlink read exists=%v %d rules, text read exists=%v %d rules", table, name, fc.Exists, len(fc.Rules), sc.Exists, len(sc.Rules))
				continue
			}
			for j := range sc.Rules {
				f, s := fc.Rules[j], sc.Rules[j]
				if f.Opaque {
					continue
				}
				kf, _, _ := rule.Key(f.Text, false)
				ks, _, _ := rule.Key(s.Text, false)
				if kf != ks || f.Key != s.Key {
					t.Errorf("%s %s rule %d: netlink %q (key %q), text %q (key %q)", table, name, j+1, f.Text, f.Key, s.Text, s.Key)
				}
			}
		}
	}
}

// TestNetlinkRepairState: a dedupe by handle, the state derived from it
// (no second read) and a fresh read by text all agree, and a plan read
// before another writer changed the ruleset is refused by the kernel.
func TestNetlinkRepairState(t *testing.T) {
	b := nstest.Backends[0]
	nstest.Require(t, b.Iptables, b.Restore)
	nstest.Run(t, func() {
		c := nsConfig(t, b, true)
		c.ProcRoot = t.TempDir()
		c.ProcSys = c.ProcRoot // no net/ipv6 there: IPv4 only
		e := newNS(t, c)
		ws := c.wants(true, false)
		nstest.Sh(t, b.Iptables+" -A INPUT -p tcp --dport 22 -j ACCEPT; "+b.Iptables+" -t nat -A PREROUTING -d 10.0.0.1 -j RETURN")
		nstest.Sh(t, ecsInitStart(b)+ecsInitStart(b))
		fs, cs := e.Apply(ctx(t), false, nil)
		requireCompliant(t, fs)
		if len(cs) != 6 { // 5 dedupes, the raw guard added
			t.Errorf("changes %+v", cs)
		}
		cached, err := e.read4.Read(ctx(t), rule.InterestOf(ws))
		if err != nil {
			t.Fatal(err)
		}
		slow, err := readerFor(e, "chains").Read(ctx(t), rule.InterestOf(ws))
		if err != nil {
			t.Fatal(err)
		}
		sameKeys(t, cached, slow)
		requireOnce(t, e, ws)
		if got := nstest.Sh(t, b.Iptables+" -S INPUT"); !strings.HasSuffix(got, "-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\n") {
			t.Errorf("foreign rule moved or lost:\n%s", got)
		}

		// A stale plan: the generation moved after the read.
		nstest.Sh(t, ecsInitStart(b))
		rs, err := e.read4.Read(ctx(t), rule.InterestOf(ws))
		if err != nil {
			t.Fatal(err)
		}
		dels, _, ok := byHandle(makePlan(ws, rs), rs)
		if !ok || len(dels) != 5 {
			t.Fatalf("deletes %+v ok=%v", dels, ok)
		}
		nstest.Sh(t, b.Iptables+" -A INPUT -p tcp --dport 23 -j ACCEPT")
		nc, err := nlDial()
		if err != nil {
			t.Fatal(err)
		}
		defer nc.close()
		if err := nc.deleteRules(family(false), rs.Gen, dels); err == nil {
			t.Errorf("a delete planned at generation %d applied after the ruleset changed", rs.Gen)
		}
		fs, _ = e.Apply(ctx(t), false, nil)
		requireCompliant(t, fs)
		requireOnce(t, e, ws)

		// Re-adds after ecs-init's stop (a restore batch), and dedupes
		// plus an append together: the derived state is the kernel's.
		for _, before := range []string{
			ecsInitStop(b),
			ecsInitStart(b) + "\n" + strings.Repeat(b.Iptables+" -t nat -D OUTPUT -p tcp -d 169.254.170.2 --dport 80 -j REDIRECT --to-ports 51679\n", 2),
		} {
			nstest.Sh(t, before)
			fs, cs := e.Apply(ctx(t), false, nil)
			requireCompliant(t, fs)
			if len(cs) != 5 {
				t.Errorf("changes %+v", cs)
			}
			cached, err := e.read4.Read(ctx(t), rule.InterestOf(ws))
			if err != nil {
				t.Fatal(err)
			}
			slow, err := readerFor(e, "chains").Read(ctx(t), rule.InterestOf(ws))
			if err != nil {
				t.Fatal(err)
			}
			sameKeys(t, cached, slow)
		}
		requireOnce(t, e, ws)
	})
}

// TestLegacyReadMatchesIptables is the same check for the legacy
// backend's tables read with getsockopt and printed by iptText.
func TestLegacyReadMatchesIptables(t *testing.T) {
	b := nstest.Backends[1]
	nstest.Require(t, b.Iptables, b.Restore)
	nstest.Run(t, func() {
		var script strings.Builder
		script.WriteString(b.Iptables + " -N FOO; " + b.Iptables + " -N DOCKER-USER; " + b.Iptables + " -t nat -N DOCKER; " + b.Iptables + " -N EMPTY\n")
		for _, r := range nftShapes {
			script.WriteString(b.Iptables + " " + r + "\n")
		}
		nstest.Sh(t, script.String())
		c := Config{Iptables: b.Iptables, AgentPort: 51679, IntrospectionPort: 51678, Credentials: true,
			LocalhostGuard: true, BlockIntrospection: true, BlockIMDS: true, ProcRoot: t.TempDir(), ProcSys: t.TempDir()}
		e := newNS(t, c)
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fd)
		printed := 0
		for _, table := range []string{"nat", "filter"} {
			tc, err := legacyChains(fd, table)
			if err != nil {
				t.Fatal(err)
			}
			for name, nrs := range tc {
				out := nstest.Sh(t, b.Iptables+" -t "+table+" -S "+name)
				var want []string
				for _, l := range strings.Split(out, "\n") {
					if s, ok := strings.CutPrefix(l, "-A "+name+" "); ok {
						want = append(want, s)
					}
				}
				if len(nrs) != len(want) {
					t.Fatalf("%s %s: %d entries, %d printed by iptables", table, name, len(nrs), len(want))
				}
				for j := range nrs {
					x := iptText(&nrs[j])
					if !x.ok {
						t.Logf("%s %s rule %d left to iptables-legacy-save: %s", table, name, j+1, want[j])
						continue
					}
					printed++
					k1, _, err1 := rule.Key(x.text, false)
					k2, _, err2 := rule.Key(want[j], false)
					if err1 != nil || err2 != nil || k1 != k2 {
						t.Errorf("%s %s rule %d: printed %q (key %q, %v), iptables says %q (key %q, %v)", table, name, j+1, x.text, k1, err1, want[j], k2, err2)
					}
				}
			}
		}
		if printed < len(nftShapes)/2 {
			t.Errorf("only %d of %d rules printed", printed, len(nftShapes))
		}
		ws := c.wants(c.docker0(), false)
		// Apply (from the text fallback: the chains hold rules iptText
		// leaves alone), then remove those and read directly.
		fs, _ := e.Apply(ctx(t), false, nil)
		_ = fs
		slow, err := readerFor(e, "save").Read(ctx(t), rule.InterestOf(ws))
		if err != nil {
			t.Fatal(err)
		}
		fast, err := readerFor(e, "sockopt").Read(ctx(t), rule.InterestOf(ws))
		if errors.Is(err, kernel.ErrUnprintable) {
			t.Logf("direct read refused as expected: %v", err)
			nstest.Sh(t, b.Iptables+" -t nat -F PREROUTING; "+b.Iptables+" -t nat -F OUTPUT; "+b.Iptables+" -F INPUT")
			e.Apply(ctx(t), false, nil)
			slow, err = readerFor(e, "save").Read(ctx(t), rule.InterestOf(ws))
			if err != nil {
				t.Fatal(err)
			}
			fast, err = readerFor(e, "sockopt").Read(ctx(t), rule.InterestOf(ws))
		}
		if err != nil {
			t.Fatal(err)
		}
		sameKeys(t, fast, slow)
		requireOnce(t, e, ws)
	})
}
