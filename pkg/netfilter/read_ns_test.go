package netfilter

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter/kernel"
	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter/rule"
	"github.com/ecs-remediator/ecs-remediator/test/nstest"
)

// ruleShapes are rules of many shapes, ours and foreign, in the chains we
// read (kernel/testdata/shapes.txt, one iptables command line a line; the
// kernel package's decoder tests load the same). Each is added with
// iptables, so the kernel holds exactly what iptables makes of it.
func ruleShapes(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("kernel/testdata/shapes.txt")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// TestNetlinkReadMatchesIptables: the enforcer's read over netlink means
// what iptables-nft prints (same keys; opaque rules are only those that
// cannot matter), and ecs-init's own rules are printed (the fast path is
// really taken). kernel.TestNftTextMatchesIptables compares rule by rule.
func TestNetlinkReadMatchesIptables(t *testing.T) {
	b := nstest.Backends[0]
	nstest.Require(t, b.Iptables, b.Restore)
	nstest.Run(t, func() {
		var script strings.Builder
		script.WriteString(b.Iptables + " -N FOO; " + b.Iptables + " -N DOCKER-USER; " + b.Iptables + " -t nat -N DOCKER\n")
		for _, r := range ruleShapes(t) {
			script.WriteString(b.Iptables + " " + r + "\n")
		}
		nstest.Sh(t, script.String())
		c := Config{Iptables: b.Iptables, AgentPort: 51679, IntrospectionPort: 51678, Credentials: true,
			LocalhostGuard: true, BlockIntrospection: true, BlockIMDS: true, ProcRoot: t.TempDir(), ProcSys: t.TempDir()}
		e := newNS(t, c)
		ws := c.wants(true, false)
		// The full read agrees with reading every chain as text.
		fast := readersAgree(t, e, ws)
		if !fast.Netlink {
			t.Fatal("the nf_tables enforcer does not read over netlink")
		}
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

// readersAgree reads ws's chains with e's IPv4 reader (cached when it
// can be) and with `iptables -S` per chain, checks they agree (sameKeys)
// and returns the first read.
func readersAgree(t *testing.T, e *Enforcer, ws []rule.Want) *rule.Ruleset {
	t.Helper()
	fast, err := e.read4.Read(ctx(t), rule.InterestOf(ws))
	if err != nil {
		t.Fatal(err)
	}
	slow, err := readerFor(e, "chains").Read(ctx(t), rule.InterestOf(ws))
	if err != nil {
		t.Fatal(err)
	}
	sameKeys(t, fast, slow)
	return fast
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
		readersAgree(t, e, ws)
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
		if _, err := e.nft4.Apply(rs, dels, nil); err == nil {
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
			readersAgree(t, e, ws)
		}
		requireOnce(t, e, ws)
	})
}

// TestLegacyReadMatchesIptables is the same check for the legacy
// backend's tables read with getsockopt (kernel.TestIptTextMatchesIptables
// compares rule by rule).
func TestLegacyReadMatchesIptables(t *testing.T) {
	b := nstest.Backends[1]
	nstest.Require(t, b.Iptables, b.Restore)
	nstest.Run(t, func() {
		var script strings.Builder
		script.WriteString(b.Iptables + " -N FOO; " + b.Iptables + " -N DOCKER-USER; " + b.Iptables + " -t nat -N DOCKER; " + b.Iptables + " -N EMPTY\n")
		for _, r := range ruleShapes(t) {
			script.WriteString(b.Iptables + " " + r + "\n")
		}
		nstest.Sh(t, script.String())
		c := Config{Iptables: b.Iptables, AgentPort: 51679, IntrospectionPort: 51678, Credentials: true,
			LocalhostGuard: true, BlockIntrospection: true, BlockIMDS: true, ProcRoot: t.TempDir(), ProcSys: t.TempDir()}
		e := newNS(t, c)
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
