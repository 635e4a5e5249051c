package kernel

import (
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter/rule"
	"github.com/ecs-remediator/ecs-remediator/test/nstest"
)

// ruleShapes are rules of many shapes, ours and foreign, in the chains the
// enforcer reads (testdata/shapes.txt, one iptables command line a line).
// Each is added with iptables, so the kernel holds exactly what iptables
// makes of it.
func ruleShapes(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("testdata/shapes.txt")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// TestNftTextMatchesIptables: every rule dumped over netlink and printed
// by nftText means what iptables-nft prints for it (same key), and most
// shapes are printed.
func TestNftTextMatchesIptables(t *testing.T) {
	b := nstest.Backends[0]
	nstest.Require(t, b.Iptables, b.Restore)
	nstest.Run(t, func() {
		shapes := ruleShapes(t)
		var script strings.Builder
		script.WriteString(b.Iptables + " -N FOO; " + b.Iptables + " -N DOCKER-USER; " + b.Iptables + " -t nat -N DOCKER\n")
		for _, r := range shapes {
			script.WriteString(b.Iptables + " " + r + "\n")
		}
		nstest.Sh(t, script.String())
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
		if printed < len(shapes)/2 {
			t.Errorf("only %d of %d rules printed", printed, len(shapes))
		}
	})
}

// TestIptTextMatchesIptables is the same check for the legacy backend's
// tables copied with getsockopt and printed by iptText.
func TestIptTextMatchesIptables(t *testing.T) {
	b := nstest.Backends[1]
	nstest.Require(t, b.Iptables, b.Restore)
	nstest.Run(t, func() {
		shapes := ruleShapes(t)
		var script strings.Builder
		script.WriteString(b.Iptables + " -N FOO; " + b.Iptables + " -N DOCKER-USER; " + b.Iptables + " -t nat -N DOCKER; " + b.Iptables + " -N EMPTY\n")
		for _, r := range shapes {
			script.WriteString(b.Iptables + " " + r + "\n")
		}
		nstest.Sh(t, script.String())
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
		if printed < len(shapes)/2 {
			t.Errorf("only %d of %d rules printed", printed, len(shapes))
		}
	})
}

func dumpChain(t *testing.T, table, name string) []rawRule {
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
