package netfilter

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ecs-remediator/ecs-remediator/test/nstest"
)

// The legacy poller's fingerprint stays put while only traffic counters
// move, and changes when a rule is deleted or swapped for another of the
// same size.
func TestFingerprint(t *testing.T) {
	forBackends(t, func(t *testing.T, b nstest.Backend) {
		nstest.Run(t, func() {
			e := newNS(t, nsConfig(t, b, false))
			if b.Name == "nft" {
				if _, _, err := e.Fingerprint(true); err == nil {
					t.Fatal("Fingerprint on nf_tables: no error; nft has events and must not be polled")
				}
				return
			}
			e.Apply(ctx(t), false, nil)
			nstest.Sh(t, "ip link set lo up; "+b.Iptables+" -A OUTPUT -d 127.0.0.1 -p tcp -j ACCEPT; "+b.Iptables+" -A OUTPUT -d 10.0.0.1 -j ACCEPT")
			// fp is the deep fingerprint; shape the shallow one, which
			// must see every change of size and never a change of content
			// alone.
			fp := func() string {
				t.Helper()
				s, c, err := e.Fingerprint(true)
				if err != nil {
					t.Fatal(err)
				}
				if c == "" {
					t.Fatal("deep fingerprint without content")
				}
				return s + " " + c
			}
			shape := func() string {
				t.Helper()
				s, c, err := e.Fingerprint(false)
				if err != nil || c != "" {
					t.Fatalf("shallow fingerprint: content %q, %v", c, err)
				}
				return s
			}
			before, beforeShape := fp(), shape()
			if again := fp(); again != before {
				t.Fatalf("fingerprint not stable: %s then %s", before, again)
			}
			// Traffic through the foreign OUTPUT rule moves its counters.
			for i := 0; i < 3; i++ {
				if c, err := net.DialTimeout("tcp", "127.0.0.1:1", 100*time.Millisecond); err == nil {
					c.Close()
				}
			}
			out := strings.Fields(nstest.Sh(t, b.Iptables+" -v -x -n -L OUTPUT 1"))
			if len(out) == 0 || out[0] == "0" {
				t.Fatalf("no traffic went through the foreign rule, the test proves nothing: %v", out)
			}
			if now := fp(); now != before {
				t.Fatalf("fingerprint changed with packet counters only: %s -> %s", before, now)
			}
			nstest.Sh(t, b.Iptables+" -R OUTPUT 2 -d 10.0.0.2 -j ACCEPT")
			swapped := fp()
			if swapped == before {
				t.Fatal("fingerprint did not change when a rule was replaced by one of the same size")
			}
			if shape() != beforeShape {
				t.Fatal("the shape changed when a rule was replaced by one of the same size: the test does not test the content")
			}
			nstest.Sh(t, b.Iptables+" -t nat -D OUTPUT -p tcp -d 169.254.170.2 --dport 80 -j REDIRECT --to-ports 51679")
			if fp() == swapped {
				t.Fatal("fingerprint did not change when our rule was deleted")
			}
			if shape() == beforeShape {
				t.Fatal("the shape did not change when our rule was deleted")
			}
			// The same for IPv6 (struct ip6t_entry has its own layout).
			ip6 := strings.Replace(b.Iptables, "iptables", "ip6tables", 1)
			nstest.Sh(t, ip6+" -A OUTPUT -d ::1 -p tcp -j ACCEPT; "+ip6+" -A OUTPUT -d ::2 -j ACCEPT")
			before6 := fp()
			for i := 0; i < 3; i++ {
				if c, err := net.DialTimeout("tcp", "[::1]:1", 100*time.Millisecond); err == nil {
					c.Close()
				}
			}
			if out := strings.Fields(nstest.Sh(t, ip6+" -v -x -n -L OUTPUT 1")); len(out) == 0 || out[0] == "0" {
				t.Fatalf("no traffic went through the foreign IPv6 rule, the test proves nothing: %v", out)
			}
			if now := fp(); now != before6 {
				t.Fatalf("fingerprint changed with IPv6 packet counters only: %s -> %s", before6, now)
			}
			nstest.Sh(t, ip6+" -R OUTPUT 2 -d ::3 -j ACCEPT")
			if fp() == before6 {
				t.Fatal("fingerprint did not change when an IPv6 rule was replaced by one of the same size")
			}
		})
	})
}
