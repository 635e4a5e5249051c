package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ecs-remediator/ecs-remediator/pkg/policy"
	"github.com/ecs-remediator/ecs-remediator/test/nstest"
)

// Contract (issue 15): ip6tables runs the backend it runs. On a Debian
// host where update-alternatives switched only one of iptables and
// ip6tables, the IPv6 rules are read and written with ip6tables' own
// backend: repeated applies keep exactly one copy there and put nothing
// in the other backend (before, reads went through the IPv4 backend and
// every pass added another copy).
func TestMixedAlternativesIPv6Backend(t *testing.T) {
	for _, tc := range []struct{ v4, v6 string }{{"legacy", "nft"}, {"nft", "legacy"}} {
		t.Run("iptables-"+tc.v4+"+ip6tables-"+tc.v6, func(t *testing.T) {
			links := map[string]string{}
			for _, fam := range []string{"iptables", "ip6tables"} {
				be := tc.v4
				if fam == "ip6tables" {
					be = tc.v6
				}
				for _, suf := range []string{"", "-save", "-restore"} {
					links[fam+suf] = fam + "-" + be + suf
				}
			}
			var bins []string
			for _, target := range links {
				bins = append(bins, target)
			}
			nstest.Require(t, append(bins, "ip")...)
			path := alternativesDir(t, links)
			h := newHost(t, good)
			p := h.netPolicy(filepath.Join(path, "iptables"))
			p.ECSConfigBase = policy.Off
			p.Persist.Iptables, p.Persist.Sysctl = policy.Off, policy.Off
			h.writePolicy(t, p)
			nstest.Run(t, func() {
				for i := 0; i < 3; i++ {
					if r := run(t, "apply", "--config", h.policy); r.code != 0 {
						t.Fatalf("apply %d: exit %d\n%s%s", i+1, r.code, r.stdout, r.stderr)
					}
				}
				if r := run(t, "check", "--config", h.policy); r.code != 0 {
					t.Errorf("check after apply: exit %d\n%s", r.code, r.stdout)
				}
				drop := "--dport 51678"
				mine := nstest.Sh(t, "ip6tables-"+tc.v6+"-save -t filter")
				if n := strings.Count(mine, drop); n != 1 {
					t.Errorf("ip6tables-%s holds %d IPv6 introspection rules, want 1:\n%s", tc.v6, n, mine)
				}
				other := nstest.Sh(t, "ip6tables-"+tc.v4+"-save -t filter")
				if n := strings.Count(other, drop); n != 0 {
					t.Errorf("ip6tables-%s (the IPv4 backend) holds %d IPv6 rules, want 0:\n%s", tc.v4, n, other)
				}
				v4 := nstest.Sh(t, "iptables-"+tc.v4+"-save -t filter")
				if n := strings.Count(v4, drop); n != 1 {
					t.Errorf("iptables-%s holds %d introspection rules, want 1:\n%s", tc.v4, n, v4)
				}
			})
		})
	}
}

// Contract (issue 15): IPv6 rules exactly when ecs-init makes them:
// <network.proc_sys>/net/ipv6 exists (and ip6tables is found), whether or
// not the host has IPv6 addresses.
func TestIPv6RulesFollowProcSysIPv6(t *testing.T) {
	b := nstest.Backends[0]
	nstest.Require(t, b.Iptables, b.Save, b.Restore, "ip6tables-nft", "ip6tables-nft-save", "ip")
	for _, withV6 := range []bool{false, true} {
		t.Run(fmt.Sprintf("net/ipv6=%v", withV6), func(t *testing.T) {
			h := newHost(t, good)
			procSys := filepath.Join(h.dir, "proc-sys")
			os.MkdirAll(filepath.Join(procSys, "net/ipv4/conf/all"), 0o755)
			if withV6 {
				os.MkdirAll(filepath.Join(procSys, "net/ipv6"), 0o755)
			}
			p := h.netPolicy(b.Iptables)
			p.ECSConfigBase = policy.Off
			p.Network.RouteLocalnet, p.Network.ProcSys = policy.Ignore, procSys
			p.Persist.Iptables, p.Persist.Sysctl = policy.Off, policy.Off
			h.writePolicy(t, p)
			nstest.Run(t, func() {
				// Loopback is up: the namespace has an IPv6 address (::1)
				// either way.
				if r := run(t, "apply", "--config", h.policy); r.code != 0 {
					t.Fatalf("apply: exit %d\n%s%s", r.code, r.stdout, r.stderr)
				}
				want := 0
				if withV6 {
					want = 1
				}
				if n := strings.Count(nstest.Sh(t, "ip6tables-nft-save -t filter"), "--dport 51678"); n != want {
					t.Errorf("%d IPv6 introspection rules, want %d", n, want)
				}
			})
		})
	}
}
