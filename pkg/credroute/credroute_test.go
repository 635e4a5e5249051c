package credroute

import (
	"context"
	"strings"
	"testing"

	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
	"github.com/ecs-remediator/ecs-remediator/test/nstest"
)

// Contract (issue 15): on a host without an IPv4 default route the route
// 169.254.170.2/32 dev lo scope link is checked and repaired; on a host
// with one it is left alone. Real rtnetlink, in a private namespace.
func TestCredentialsRoute(t *testing.T) {
	nstest.Require(t, "ip")
	ctx := context.Background()
	t.Run("IPv6-only host", func(t *testing.T) {
		nstest.Run(t, func() {
			e := New()
			if f := e.Check(ctx)[0]; f.Status != finding.Drift || !strings.Contains(f.Detail, "missing") {
				t.Fatalf("check without the route: %+v", f)
			}
			if out := nstest.Sh(t, "ip -4 route show table main"); strings.Contains(out, "169.254.170.2") {
				t.Fatalf("check changed the routes: %s", out)
			}
			fs, cs := e.Apply(ctx, false, nil)
			if fs[0].Status != finding.OK || len(cs) != 1 || cs[0].Item != Item {
				t.Fatalf("apply: %+v %+v", fs, cs)
			}
			if out := nstest.Sh(t, "ip -4 route show 169.254.170.2/32"); !strings.Contains(out, "169.254.170.2 dev lo") || !strings.Contains(out, "scope link") {
				t.Fatalf("route after apply: %q", out)
			}
			if _, cs := e.Apply(ctx, false, nil); len(cs) != 0 {
				t.Errorf("second apply changed %+v", cs)
			}
			// ecs-init's post-stop deletes it: drift again.
			nstest.Sh(t, "ip route del 169.254.170.2/32 dev lo scope link")
			if f := e.Check(ctx)[0]; f.Status != finding.Drift {
				t.Errorf("after the deletion: %+v", f)
			}
			// ecs-init's pre-start adds it while we did too: EEXIST is fine.
			if fs, _ := e.Apply(ctx, false, nil); fs[0].Status != finding.OK {
				t.Errorf("re-add: %+v", fs)
			}
		})
	})
	t.Run("host with an IPv4 default route", func(t *testing.T) {
		nstest.Run(t, func() {
			nstest.Sh(t, "ip link add eth0 type veth peer name eth0p && ip addr add 10.0.0.2/24 dev eth0 && ip link set eth0p up && ip link set eth0 up && ip route add default via 10.0.0.1")
			e := New()
			fs, cs := e.Apply(ctx, false, nil)
			if fs[0].Status != finding.OK || !strings.Contains(fs[0].Detail, "not needed") || len(cs) != 0 {
				t.Fatalf("apply: %+v %+v", fs, cs)
			}
			if out := nstest.Sh(t, "ip -4 route show table main"); strings.Contains(out, "169.254.170.2") {
				t.Fatalf("route added on a host with a default route: %s", out)
			}
		})
	})
	t.Run("foreign route is left alone", func(t *testing.T) {
		nstest.Run(t, func() {
			nstest.Sh(t, "ip link add eth0 type veth peer name eth0p && ip link set eth0p up && ip link set eth0 up && ip route add 169.254.170.2/32 dev eth0")
			fs, cs := New().Apply(ctx, false, nil)
			if fs[0].Status != finding.Warn || len(cs) != 0 {
				t.Fatalf("apply: %+v %+v", fs, cs)
			}
		})
	})
}
