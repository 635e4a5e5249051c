package netfilter

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter/kernel"
	"github.com/ecs-remediator/ecs-remediator/test/nstest"
)

// ecsInitStart and ecsInitStop are ecs-init's exact commands (docs/ecs-init.md),
// unchecked -A/-I on start, one -D each on stop.
func ecsInitStart(b nstest.Backend) string {
	i := b.Iptables
	return i + " -t nat -A PREROUTING -p tcp -d 169.254.170.2 --dport 80 -j DNAT --to-destination 127.0.0.1:51679\n" +
		i + " -t filter -I INPUT --dst 127.0.0.0/8 ! --src 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP\n" +
		i + " -t filter -I INPUT -p tcp --dport 51678 ! -i lo -j DROP\n" +
		i + " -t filter -I INPUT -p tcp --dport 51678 -i docker0 -j ACCEPT\n" +
		i + " -t nat -A OUTPUT -p tcp -d 169.254.170.2 --dport 80 -j REDIRECT --to-ports 51679\n"
}

func ecsInitStop(b nstest.Backend) string {
	i := b.Iptables
	return i + " -t nat -D PREROUTING -p tcp -d 169.254.170.2 --dport 80 -j DNAT --to-destination 127.0.0.1:51679 || true\n" +
		i + " -t filter -D INPUT --dst 127.0.0.0/8 ! --src 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP || true\n" +
		i + " -t filter -D INPUT -p tcp --dport 51678 ! -i lo -j DROP || true\n" +
		i + " -t filter -D INPUT -p tcp --dport 51678 -i docker0 -j ACCEPT || true\n" +
		i + " -t nat -D OUTPUT -p tcp -d 169.254.170.2 --dport 80 -j REDIRECT --to-ports 51679 || true\n"
}

func TestApplyFreshNamespace(t *testing.T) {
	forBackends(t, func(t *testing.T, b nstest.Backend) {
		nstest.Run(t, func() {
			c := nsConfig(t, b, true)
			e := newNS(t, c)
			ws := c.wants(true, e.v6 != nil && c.ipv6())
			if e.v6 == nil || !c.ipv6() {
				t.Fatalf("IPv6 not detected in the namespace (ip6tables %v, net/ipv6 %v)", e.v6, c.ipv6())
			}
			before := saveAll(t, b.Save, "iptables", false)
			fs := e.Check(ctx(t))
			for _, item := range []string{ItemCredentialsDNAT, ItemCredentialsRedirect, ItemLocalhostGuard, ItemIntrospectionBlock} {
				if f := findingOf(fs, item); f.Status != finding.Drift {
					t.Errorf("check on an empty namespace: %s is %s, want drift: %s", item, f.Status, f.Detail)
				}
			}
			var plan bytes.Buffer
			_, cs := e.Apply(ctx(t), true, &plan)
			if after := saveAll(t, b.Save, "iptables", false); after != before {
				t.Errorf("check or dry-run changed the ruleset:\n%s", after)
			}
			if !strings.Contains(plan.String(), b.Iptables+" -t nat -A PREROUTING -p tcp -d 169.254.170.2 --dport 80 -j DNAT --to-destination 127.0.0.1:51679") || len(cs) != 8 {
				t.Errorf("dry-run plan (%d changes):\n%s", len(cs), plan.String())
			}

			fs, cs = e.Apply(ctx(t), false, nil)
			requireCompliant(t, fs)
			if len(cs) != 8 { // 2 nat + 3 INPUT + raw guard + 2 ip6 INPUT
				t.Errorf("%d changes, want 8: %+v", len(cs), cs)
			}
			for _, ch := range cs {
				if ch.Action != "inserted rule" && ch.Action != "appended rule" || ch.Reason == "" || ch.New == "" || ch.AgentRestart {
					t.Errorf("change %+v", ch)
				}
			}
			requireOnce(t, e, ws)
			// ecs-init's order at the top of INPUT
			in := nstest.Sh(t, b.Iptables+" -S INPUT")
			want := "-P INPUT ACCEPT\n-A INPUT -i docker0 -p tcp -m tcp --dport 51678 -j ACCEPT\n-A INPUT ! -i lo -p tcp -m tcp --dport 51678 -j DROP\n-A INPUT ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP\n"
			if in != want {
				t.Errorf("INPUT:\n%s\nwant:\n%s", in, want)
			}
			in6 := nstest.Sh(t, strings.Replace(b.Iptables, "iptables", "ip6tables", 1)+" -S INPUT")
			if !strings.Contains(in6, "-A INPUT -i docker0 -p tcp -m tcp --dport 51678 -j ACCEPT\n-A INPUT ! -i lo -p tcp -m tcp --dport 51678 -j DROP") {
				t.Errorf("ip6tables INPUT:\n%s", in6)
			}
			// idempotent
			fs, cs = e.Apply(ctx(t), false, nil)
			requireCompliant(t, fs)
			if len(cs) != 0 {
				t.Errorf("second apply changed %+v", cs)
			}
		})
	})
}

// TestApplyKeepsForeignRules loads a messy foreign ruleset (user chains,
// comments, counters, look-alikes, duplicates of ours) and compares the
// whole iptables-save -c before and after, our rules excluded.
func TestApplyKeepsForeignRules(t *testing.T) {
	forBackends(t, func(t *testing.T, b nstest.Backend) {
		nstest.Run(t, func() {
			nstest.Sh(t, b.Restore+" -c < testdata/foreign.rules")
			c := nsConfig(t, b, true)
			c.BlockIMDS = true
			e := newNS(t, c)
			ws := c.wants(true, false)
			before := saveAll(t, b.Save, "iptables", true)
			fs, cs := e.Apply(ctx(t), false, nil)
			after := saveAll(t, b.Save, "iptables", true)
			if a, z := withoutOurs(before, ws), withoutEmptyTables(withoutOurs(after, ws)); a != z {
				t.Errorf("foreign rules changed.\nbefore:\n%s\nafter:\n%s", a, z)
			}
			if !strings.Contains(after, "[100:6000] -A INPUT -p tcp -m multiport --dports 22 -j f2b-sshd") {
				t.Errorf("counters of a foreign rule lost:\n%s", after)
			}
			requireOnce(t, e, ws)
			for _, f := range fs {
				if !finding.Compliant([]finding.Finding{f}) {
					t.Errorf("%s: %s %s", f.Item, f.Status, f.Detail)
				}
			}
			var dedup int
			for _, ch := range cs {
				if strings.HasPrefix(ch.Action, "deleted duplicate rule (2 copies -> 1)") {
					dedup++
				}
			}
			if dedup != 2 { // DNAT, guard
				t.Errorf("%d dedupes, want 2: %+v", dedup, cs)
			}
			// The look-alike ACCEPT for 51678 above our DROP is reported,
			// not moved.
			if f := findingOf(fs, ItemIntrospectionBlock); !f.Warned() || !strings.Contains(f.Detail, "--dport 51678 -j ACCEPT") {
				t.Errorf("introspection: want a warning naming the foreign ACCEPT: %+v", f)
			}
			if f := findingOf(fs, ItemIMDSBlock); f.Warned() {
				t.Errorf("imds: FORWARD jumps to DOCKER-USER and the rule is first: %+v", f)
			}
			if got := nstest.Sh(t, b.Iptables+" -S DOCKER-USER"); !strings.HasPrefix(got, "-N DOCKER-USER\n-A DOCKER-USER -d 169.254.169.254/32 -i docker+ -j DROP\n") {
				t.Errorf("DOCKER-USER:\n%s", got)
			}
		})
	})
}

// TestEcsInitCycle: ecs-init adds unchecked copies, we dedupe; ecs-init's
// stop deletes one copy each, we re-add. It converges, every round.
func TestEcsInitCycle(t *testing.T) {
	forBackends(t, func(t *testing.T, b nstest.Backend) {
		nstest.Run(t, func() {
			c := nsConfig(t, b, true)
			c.ProcRoot = t.TempDir() // no IPv6 here: ecs-init's v4 commands only
			c.ProcSys = c.ProcRoot   // no net/ipv6 there: IPv4 only
			e := newNS(t, c)
			ws := c.wants(true, false)
			nstest.Sh(t, "echo '*filter\n-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT' | "+b.Restore+" --noflush")
			e.Apply(ctx(t), false, nil)
			requireOnce(t, e, ws)
			for round := 0; round < 3; round++ {
				nstest.Sh(t, ecsInitStart(b))
				fs := e.Check(ctx(t))
				if f := findingOf(fs, ItemCredentialsDNAT); f.Status != finding.Drift || !strings.Contains(f.Detail, "2 copies") {
					t.Fatalf("round %d after ecs-init start: %+v", round, f)
				}
				fs, cs := e.Apply(ctx(t), false, nil)
				requireCompliant(t, fs)
				if len(cs) != 5 {
					t.Errorf("round %d: %d changes after start, want 5 dedupes: %+v", round, len(cs), cs)
				}
				requireOnce(t, e, ws)

				nstest.Sh(t, ecsInitStop(b))
				if n := countOurs(t, e, ecsInitsOnly(ws)); len(n) != 0 {
					t.Fatalf("round %d: ecs-init's stop left %v", round, n)
				}
				fs, cs = e.Apply(ctx(t), false, nil)
				requireCompliant(t, fs)
				if len(cs) != 5 {
					t.Errorf("round %d: %d changes after stop, want 5 re-adds", round, len(cs))
				}
				requireOnce(t, e, ws)
			}
			if got := nstest.Sh(t, b.Iptables+" -S INPUT"); strings.Count(got, "--dport 22 -j ACCEPT") != 1 {
				t.Errorf("foreign rule lost or copied:\n%s", got)
			}
		})
	})
}

// racingRunner runs a command (ecs-init's stop deleting one copy) just
// before the first restore: the batch names a rule that is gone, restore
// fails as a whole, Apply reads again and succeeds.
type racingRunner struct {
	kernel.Runner
	before string
	done   bool
	calls  int
}

func (r *racingRunner) Run(c context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
	if strings.HasSuffix(name, "-restore") {
		r.calls++
		if !r.done {
			r.done = true
			if out, err := r.Runner.Run(c, nil, "sh", "-c", r.before); err != nil {
				return out, err
			}
		}
	}
	return r.Runner.Run(c, stdin, name, args...)
}

func TestApplyRetriesAfterConcurrentChange(t *testing.T) {
	forBackends(t, func(t *testing.T, b nstest.Backend) {
		nstest.Run(t, func() {
			c := nsConfig(t, b, true)
			c.ProcRoot = t.TempDir()
			c.ProcSys = c.ProcRoot // no net/ipv6 there: IPv4 only
			rr := &racingRunner{Runner: kernel.Exec{}, before: ecsInitStop(b)}
			e, err := newEnforcer(c, rr, textReader)
			if err != nil {
				t.Fatal(err)
			}
			ws := c.wants(true, false)
			nstest.Sh(t, ecsInitStart(b)+ecsInitStart(b)+ecsInitStart(b)) // three copies each
			fs, cs := e.Apply(ctx(t), false, nil)
			requireCompliant(t, fs)
			requireOnce(t, e, ws)
			// the batch that ran is the second one: 2 copies -> 1
			if len(cs) != 6 || cs[0].Action != "deleted duplicate rule (2 copies -> 1)" { // 5 dedupes, the raw guard added
				t.Errorf("changes %+v", cs)
			}
			if rr.calls != 2 {
				t.Errorf("%d restore runs, want 2 (one failed on the stale batch)", rr.calls)
			}
		})
	})
}

func TestIMDSBlock(t *testing.T) {
	forBackends(t, func(t *testing.T, b nstest.Backend) {
		nstest.Run(t, func() {
			c := Config{Iptables: b.Iptables, BlockIMDS: true, ProcRoot: t.TempDir(), ProcSys: t.TempDir()}
			e := newNS(t, c)
			fs, cs := e.Apply(ctx(t), false, nil)
			f := findingOf(fs, ItemIMDSBlock)
			if f.Status != finding.Warn || !strings.Contains(f.Detail, "FORWARD does not jump to DOCKER-USER") {
				t.Errorf("no Docker: %+v", f)
			}
			if len(cs) != 1 || !strings.Contains(cs[0].Reason, "chain DOCKER-USER created") {
				t.Errorf("changes %+v", cs)
			}
			// Docker starts: its jump appears, our rule stays first
			nstest.Sh(t, b.Iptables+" -A DOCKER-USER -j RETURN; "+b.Iptables+" -I FORWARD -j DOCKER-USER")
			fs, cs = e.Apply(ctx(t), false, nil)
			if f := findingOf(fs, ItemIMDSBlock); f.Status != finding.OK || len(cs) != 0 {
				t.Errorf("with Docker: %+v %+v", f, cs)
			}
		})
	})
}

// TestOtherBackend puts our rule into the backend we do not manage.
func TestOtherBackend(t *testing.T) {
	for i, b := range nstest.Backends {
		other := nstest.Backends[1-i]
		t.Run(b.Name, func(t *testing.T) {
			nstest.Require(t, b.Iptables, other.Iptables, other.Save)
			nstest.Run(t, func() {
				c := nsConfig(t, b, false)
				e := newNS(t, c)
				f := findingOf(e.Check(ctx(t)), ItemOtherBackend)
				if f.Status != finding.OK {
					t.Errorf("clean other backend: %+v", f)
				}
				if b.Name == "nft" {
					if names, _ := os.ReadFile("/proc/thread-self/net/ip_tables_names"); len(names) != 0 {
						t.Errorf("the check loaded legacy tables: %q", names)
					}
				}
				nstest.Sh(t, other.Iptables+" -t nat -A PREROUTING -p tcp -d 169.254.170.2 --dport 80 -j DNAT --to-destination 127.0.0.1:51679")
				fs, _ := e.Apply(ctx(t), false, nil)
				f = findingOf(fs, ItemOtherBackend)
				wantFix := other.Iptables + " -t nat -D PREROUTING -d 169.254.170.2/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 127.0.0.1:51679"
				if f.Status != finding.Warn || f.Fix != wantFix {
					t.Errorf("rule in %s: %+v\nwant fix %q", other.Name, f, wantFix)
				}
				// apply left it alone; the fix removes it
				nstest.Sh(t, f.Fix)
				if f := findingOf(e.Check(ctx(t)), ItemOtherBackend); f.Warned() {
					t.Errorf("after the fix: %+v", f)
				}
			})
		})
	}
}

func TestPolicyOff(t *testing.T) {
	forBackends(t, func(t *testing.T, b nstest.Backend) {
		nstest.Run(t, func() {
			c := nsConfig(t, b, false)
			c.LocalhostGuard, c.BlockIntrospection = false, false
			e := newNS(t, c)
			fs, _ := e.Apply(ctx(t), false, nil)
			if f := findingOf(fs, ItemLocalhostGuard); f.Status != finding.Warn || !strings.Contains(f.Detail, "127.0.0.1 is reachable from the network") {
				t.Errorf("guard off: %+v", f)
			}
			if f := findingOf(fs, ItemIntrospectionBlock); f.Status != finding.OK || !strings.Contains(f.Detail, "not enforced") {
				t.Errorf("introspection off: %+v", f)
			}
			if in := nstest.Sh(t, b.Iptables+" -S INPUT"); in != "-P INPUT ACCEPT\n" {
				t.Errorf("rules added although off:\n%s", in)
			}
		})
	})
}

// A rule that is not needed (the docker0 ACCEPT without docker0) is not
// mentioned on a drift row, where it would hide what is wrong; an ok row
// says it.
func TestNotNeededOnlyOnOKRows(t *testing.T) {
	forBackends(t, func(t *testing.T, b nstest.Backend) {
		nstest.Run(t, func() {
			e := newNS(t, nsConfig(t, b, false))
			f := findingOf(e.Check(ctx(t)), ItemIntrospectionBlock)
			if f.Status != finding.Drift || strings.Contains(f.Detail, "not needed") || !strings.Contains(f.Detail, "missing:") {
				t.Fatalf("drift row: %s %q", f.Status, f.Detail)
			}
			fs, _ := e.Apply(ctx(t), false, nil)
			requireCompliant(t, fs)
			if f := findingOf(e.Check(ctx(t)), ItemIntrospectionBlock); f.Status != finding.OK || !strings.Contains(f.Detail, "not needed") {
				t.Fatalf("ok row: %s %q", f.Status, f.Detail)
			}
		})
	})
}
