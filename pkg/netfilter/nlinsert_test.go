package netfilter

import (
	"strings"
	"testing"

	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
	"github.com/ecs-remediator/ecs-remediator/test/nstest"
)

// On nf_tables a rule of ours that the kernel dumped once is put back over
// netlink, where it was, without iptables-nft-restore: with the restore
// binary made unrunnable the repair still lands, in ecs-init's order, and
// the kernel prints the re-added rules as iptables-nft itself wrote them.
func TestRepairInsertsOverNetlink(t *testing.T) {
	b := nstest.Backends[0]
	if b.Name != "nft" {
		t.Fatalf("nstest.Backends[0] is %s, want nft", b.Name)
	}
	nstest.Require(t, b.Iptables, b.Save, b.Restore, "ip")
	nstest.Run(t, func() {
		e := newNS(t, nsConfig(t, b, true))
		// Foreign rules around ours, so positions matter.
		nstest.Sh(t, b.Iptables+" -A INPUT -p tcp --dport 22 -j ACCEPT && "+b.Iptables+" -t nat -A OUTPUT -d 192.0.2.1/32 -j RETURN")
		requireCompliant(t, firstApply(t, e))
		before := nstest.Sh(t, b.Save+" -t nat")
		beforeIn := nstest.Sh(t, b.Iptables+" -S INPUT")

		e.v4.restore = "/nonexistent/iptables-nft-restore" // only netlink can repair now
		nstest.Sh(t, b.Iptables+" -t nat -D OUTPUT -p tcp -d 169.254.170.2 --dport 80 -j REDIRECT --to-ports 51679")
		nstest.Sh(t, b.Iptables+" -D INPUT ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP")
		nstest.Sh(t, b.Iptables+" -D INPUT -i docker0 -p tcp -m tcp --dport 51678 -j ACCEPT")
		fs, cs := e.Apply(ctx(t), false, nil)
		requireCompliant(t, fs)
		if len(cs) != 3 {
			t.Errorf("%d changes, want the 3 re-added rules: %+v", len(cs), cs)
		}
		if got := nstest.Sh(t, b.Save+" -t nat"); stripCounters(got) != stripCounters(before) {
			t.Errorf("nat after the netlink repair:\n%s\nbefore the drift:\n%s", got, before)
		}
		if got := nstest.Sh(t, b.Iptables+" -S INPUT"); got != beforeIn {
			t.Errorf("INPUT after the netlink repair:\n%s\nbefore the drift:\n%s", got, beforeIn)
		}
		// A fresh enforcer (no remembered state) agrees.
		requireCompliant(t, newNS(t, nsConfig(t, b, true)).Check(ctx(t)))
	})
}

// firstApply installs our rules (through iptables-nft-restore: nothing
// has been dumped yet) and reads them back.
func firstApply(t *testing.T, e *Enforcer) []finding.Finding {
	t.Helper()
	e.Apply(ctx(t), false, nil)
	return e.Check(ctx(t))
}

func stripCounters(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "#") {
			continue
		}
		if strings.HasPrefix(l, ":") {
			if i := strings.LastIndex(l, " ["); i > 0 {
				l = l[:i]
			}
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}
