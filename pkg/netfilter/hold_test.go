package netfilter

import (
	"strings"
	"testing"

	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
	"github.com/ecs-remediator/ecs-remediator/test/nstest"
)

// ApplyHolding (the daemon's back-off, per item) repairs every item but
// the held ones, which it observes and reports: with the introspection
// block held, a deleted guard and a deleted introspection DROP give the
// guard back and leave the DROP missing (drift), on both backends.
func TestApplyHoldingSkipsOnlyHeldItems(t *testing.T) {
	forBackends(t, func(t *testing.T, b nstest.Backend) {
		c := nsConfig(t, b, false)
		c.ProcSys = t.TempDir() // IPv4 only
		nstest.Run(t, func() {
			e := newNS(t, c)
			if _, cs := e.Apply(ctx(t), false, nil); len(cs) == 0 {
				t.Fatal("first apply changed nothing")
			}
			nstest.Sh(t, b.Iptables+" -D INPUT --dst 127.0.0.0/8 ! --src 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP")
			nstest.Sh(t, b.Iptables+" -D INPUT -p tcp --dport 51678 ! -i lo -j DROP")
			hold := func(item string) bool { return item == ItemIntrospectionBlock }
			fs, cs := e.ApplyHolding(ctx(t), hold)
			for _, c := range cs {
				if c.Item == ItemIntrospectionBlock {
					t.Errorf("held item repaired: %+v", c)
				}
			}
			if f := findingOf(fs, ItemLocalhostGuard); f.Status != finding.OK {
				t.Errorf("guard after ApplyHolding: %+v", f)
			}
			if f := findingOf(fs, ItemIntrospectionBlock); f.Status != finding.Drift {
				t.Errorf("held introspection block: %+v, want drift (observed, not repaired)", f)
			}
			live := nstest.Sh(t, b.Save+" -t filter")
			if !strings.Contains(live, "RELATED,ESTABLISHED,DNAT") || strings.Contains(live, "--dport 51678 -j DROP") && strings.Contains(live, "! -i lo") {
				t.Errorf("after ApplyHolding:\n%s", live)
			}
			// Released: the next pass repairs it.
			if _, cs := e.ApplyHolding(ctx(t), func(string) bool { return false }); len(cs) != 1 || cs[0].Item != ItemIntrospectionBlock {
				t.Errorf("after the hold: changes %+v", cs)
			}
		})
	})
}
