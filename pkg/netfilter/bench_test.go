package netfilter

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter/kernel"
	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter/rule"
	"github.com/ecs-remediator/ecs-remediator/test/nstest"
)

// foreignRules writes a restore file with n foreign rules. "mixed" is the
// worst case for us (nstest.MixedRules). "docker" is
// the usual ECS host: everything in Docker-like user chains (per-container
// DNAT and ACCEPT rules) that we never need to read.
func foreignRules(b testing.TB, n int, dist string) string {
	var s strings.Builder
	if dist == "docker" {
		s.WriteString("*nat\n:DOCKER - [0:0]\n-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER\n")
		for i := 0; i < n/2; i++ {
			fmt.Fprintf(&s, "-A DOCKER ! -i docker0 -p tcp -m tcp --dport %d -j DNAT --to-destination 172.17.%d.%d:80\n", i%60000+1, i/256%256, i%256)
		}
		s.WriteString("COMMIT\n*filter\n:DOCKER - [0:0]\n-A FORWARD -o docker0 -j DOCKER\n")
		for i := 0; i < n-n/2; i++ {
			fmt.Fprintf(&s, "-A DOCKER -d 172.17.%d.%d/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 80 -j ACCEPT\n", i/256%256, i%256)
		}
		s.WriteString("COMMIT\n")
	} else {
		s.WriteString(nstest.MixedRules(n))
	}
	p := filepath.Join(b.TempDir(), "foreign.rules")
	if err := os.WriteFile(p, []byte(s.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	return p
}

var benchSizes = []int{0, 1000, 20000, 50000}

// BenchmarkReconcile is one Apply on a host with n foreign rules (see
// foreignRules for "mixed" and "docker"): "steady"
// finds everything in place (the daemon's usual resync), "changed" finds
// everything in place after another tool changed the ruleset elsewhere
// (on nf_tables the generation moved, so the chains are read again: the
// cost of a reconcile after an event), "repair" first lets ecs-init add a
// duplicate DNAT (outside the timer) and Apply removes it, "readd" first
// lets ecs-init's stop delete the DNAT and Apply appends it again.
func BenchmarkReconcile(b *testing.B) {
	for _, be := range nstest.Backends {
		for _, n := range benchSizes {
			for _, dist := range []string{"mixed", "docker"} {
				for _, mode := range []string{"steady", "changed", "repair", "readd"} {
					b.Run(fmt.Sprintf("%s/foreign=%d/%s/%s", be.Name, n, dist, mode), func(b *testing.B) {
						nstest.Require(b, be.Iptables, be.Restore)
						file := foreignRules(b, n, dist)
						nstest.Run(b, func() {
							nstest.Sh(b, be.Restore+" < "+file)
							c := nsConfig(b, be, true)
							c.ProcRoot = b.TempDir()
							c.ProcSys = c.ProcRoot // no net/ipv6 there: IPv4 only
							e := newNS(b, c)
							if fs, _ := e.Apply(ctx(b), false, nil); !compliant(fs) {
								b.Fatalf("not compliant after the first apply: %+v", fs)
							}
							dup := be.Iptables + " -t nat -A PREROUTING -p tcp -d 169.254.170.2 --dport 80 -j DNAT --to-destination 127.0.0.1:51679"
							b.ResetTimer()
							for i := 0; i < b.N; i++ {
								switch mode {
								case "repair":
									b.StopTimer()
									nstest.Sh(b, dup)
									b.StartTimer()
								case "readd":
									b.StopTimer()
									nstest.Sh(b, strings.Replace(dup, " -A ", " -D ", 1))
									b.StartTimer()
								case "changed":
									b.StopTimer()
									nstest.Sh(b, be.Iptables+" -N ZZ-OTHER; "+be.Iptables+" -X ZZ-OTHER")
									b.StartTimer()
								}
								fs, cs := e.Apply(ctx(b), false, nil)
								if !compliant(fs) || (mode == "repair" || mode == "readd") != (len(cs) == 1) {
									b.Fatalf("apply: %+v %+v", fs, cs)
								}
							}
						})
					})
				}
			}
		}
	}
}

// BenchmarkRead compares the ways of reading the rules: one
// `<backend>-save` of everything, `-S CHAIN` per chain we need, or (nft)
// a netlink dump of those chains, or (legacy) a getsockopt copy of the
// tables. The netlink read is uncached here.
func BenchmarkRead(b *testing.B) {
	for _, be := range nstest.Backends {
		for _, n := range benchSizes {
			for _, dist := range []string{"mixed", "docker"} {
				for _, mode := range []string{"save", "chains", "netlink", "sockopt"} {
					if (mode == "netlink" && be.Name != "nft") || (mode == "sockopt" && be.Name != "legacy") {
						continue
					}
					b.Run(fmt.Sprintf("%s/foreign=%d/%s/%s", be.Name, n, dist, mode), func(b *testing.B) {
						nstest.Require(b, be.Iptables, be.Restore)
						file := foreignRules(b, n, dist)
						nstest.Run(b, func() {
							nstest.Sh(b, be.Restore+" < "+file)
							c := nsConfig(b, be, true)
							e := newNS(b, c)
							r := readerFor(e, mode)
							ws := c.wants(true, false)
							b.ResetTimer()
							for i := 0; i < b.N; i++ {
								if _, err := r.Read(ctx(b), rule.InterestOf(ws)); err != nil {
									b.Fatal(err)
								}
							}
						})
					})
				}
			}
		}
	}
}

// readerFor is BenchmarkRead's way of reading the IPv4 rules, without
// the fall-back: "save" and "chains" the text reader (one -save, -S per
// chain), "netlink" (uncached) and "sockopt" the direct readers.
func readerFor(e *Enforcer, mode string) kernel.Reader {
	text := e.textReader(e.v4, false)
	switch mode {
	case "netlink":
		return &kernel.NFT{Text: text}
	case "sockopt":
		return kernel.Legacy{}
	}
	text.Whole = mode == "save"
	return text
}

// BenchmarkPlan is the pure part: parse n rules and plan.
func BenchmarkPlan(b *testing.B) {
	c := testConfig()
	ws := c.wants(true, false)
	in := rule.InterestOf(ws)
	for _, n := range benchSizes {
		var s strings.Builder
		s.WriteString("*nat\n-A PREROUTING -d 169.254.170.2/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 127.0.0.1:51679\nCOMMIT\n*filter\n")
		for i := 0; i < n; i++ {
			fmt.Fprintf(&s, "-A INPUT -s 10.%d.%d.%d/32 -p tcp -m tcp --dport %d -j ACCEPT\n", i/65536%256, i/256%256, i%256, i%60000+1)
		}
		s.WriteString("COMMIT\n")
		text := s.String()
		b.Run(fmt.Sprintf("foreign=%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				rs := rule.NewRuleset(false)
				if err := rule.ParseText(rs, text, "", in.Reads, in.Needles); err != nil {
					b.Fatal(err)
				}
				makePlan(ws, rs)
			}
		})
	}
}

func compliant(fs []finding.Finding) bool { return finding.Compliant(fs) }
