package doctor

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ecs-remediator/ecs-remediator/test/nstest"
)

// TestBridgePathInNamespace runs the real probe in a private namespace
// that plays the host: a docker0 bridge with Docker's address, the DNAT
// rule ecs-init adds for bridge-mode tasks, route_localnet=1 and a server
// on 127.0.0.1:51679 standing in for the agent. Each case then changes one
// thing on the way (a CIS-hardened INPUT, no server, route_localnet=0, no
// bridge ...) and checks the verdict names it. After every case the test
// namespace must hold exactly what the test put there: no probe link, no
// neighbour entry of the probe's MAC, and a stale probe link planted
// beforehand is gone.
func TestBridgePathInNamespace(t *testing.T) {
	const (
		dnat      = "-t nat -A PREROUTING -d 169.254.170.2/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 127.0.0.1:51679"
		cisInput  = "%[1]s -P INPUT DROP; %[1]s -A INPUT -i lo -j ACCEPT; %[1]s -A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT"
		narrowAcc = "-I INPUT -i docker0 -d 127.0.0.1/32 -p tcp --dport 51679 -m conntrack --ctstate DNAT -j ACCEPT"
	)
	type tcase struct {
		name         string
		noBridge     bool
		bridges      []string // Config.TaskBridges; nil: the default
		rules        []string // iptables commands after the DNAT rule (%[1]s is the binary)
		noServer     bool
		routeLocal   string // route_localnet of conf/all; "" means 1
		extra        string // more shell in the host namespace before the probe
		cancelAfter  time.Duration
		anyStatus    bool // only the cleanup matters
		want         Status
		detailHas    []string
		detailHasNot string
	}
	cases := []tcase{
		{name: "agent port answers", want: OK, detailHas: []string{"HTTP 200", "docker0", "172.17.255.254/16"}},
		{name: "CIS-hardened INPUT drops the DNATed SYN", rules: []string{cisInput}, want: Fail,
			detailHas: []string{"no answer to the SYN within", "dropped on the way", "INPUT policy DROP"}},
		{name: "CIS-hardened with the narrow accept", rules: []string{cisInput, "%[1]s " + narrowAcc}, want: OK, detailHas: []string{"HTTP 200"}},
		{name: "nothing listens on the agent port", noServer: true, want: Fail, detailHas: []string{"connection refused", "nothing listens on 127.0.0.1:51679"}},
		{name: "route_localnet is 0", routeLocal: "0", want: Fail, detailHas: []string{"route_localnet is 0 on docker0", "martian"}},
		{name: "a reject answers", rules: []string{"%[1]s -I INPUT -i docker0 -p tcp -j REJECT"}, want: Fail,
			detailHas: []string{"connection refused, although something listens on 127.0.0.1:51679", "rejects the SYN"}},
		{name: "a reject host-prohibited answers", rules: []string{"%[1]s -I INPUT -i docker0 -p tcp -j REJECT --reject-with icmp-host-prohibited"}, want: Fail,
			detailHas: []string{"ICMP unreachable"}},
		{name: "no bridge", noBridge: true, want: Skip, detailHas: []string{"no task bridge exists", "docker0"}},
		{name: "bridge not a task bridge", bridges: []string{"br-+"}, want: Skip, detailHas: []string{"no task bridge exists", "br-+", "bridges here: docker0"}},
		{name: "wildcard task bridge", bridges: []string{"cni0", "dock+"}, want: OK, detailHas: []string{"HTTP 200", "docker0"}},
		{name: "last address is a container's", extra: "ip neigh add 172.17.255.254 lladdr 02:42:ac:11:ff:fe dev docker0 nud permanent",
			want: OK, detailHas: []string{"172.17.255.253/16"}, detailHasNot: "172.17.255.254/"},
		// Cancelled during the setup or while the SYN waits, depending on
		// the machine's load: either way nothing may be left.
		{name: "cancelled midway", rules: []string{cisInput}, cancelAfter: 150 * time.Millisecond, anyStatus: true,
			detailHas: []string{"docker0"}},
		{name: "native nftables input chain drops (AL2023 style)",
			extra: `nft 'add table inet filter; add chain inet filter input { type filter hook input priority 0; policy drop; }; add rule inet filter input iif lo accept; add rule inet filter input ct state established,related accept'`,
			want:  Fail, detailHas: []string{"no answer to the SYN within", "nftables input chain"}},
		{name: "bridge answers no ARP", extra: "ip link set docker0 arp off", want: Fail, detailHas: []string{"172.17.0.1 did not answer ARP"}},
		{name: "bridge down", extra: "ip link set docker0 down", want: Fail, detailHas: []string{"docker0 is down"}},
	}
	for _, b := range nstest.Backends {
		for _, tc := range cases {
			t.Run(b.Name+"/"+tc.name, func(t *testing.T) {
				nstest.Require(t, b.Iptables, "ip", "nft")
				nstest.Run(t, func() {
					rl := tc.routeLocal
					if rl == "" {
						rl = "1"
					}
					if err := os.WriteFile("/proc/sys/net/ipv4/conf/all/route_localnet", []byte(rl), 0o644); err != nil {
						t.Fatalf("route_localnet in the namespace: %v", err)
					}
					if !tc.noBridge {
						nstest.Sh(t, "ip link add docker0 address 02:42:8e:00:00:01 type bridge && ip addr add 172.17.0.1/16 dev docker0 && ip link set docker0 up")
					}
					nstest.Sh(t, b.Iptables+" "+dnat)
					for _, rule := range tc.rules {
						nstest.Sh(t, fmt.Sprintf(rule, b.Iptables))
					}
					if tc.extra != "" {
						nstest.Sh(t, tc.extra)
					}
					stale := probeLinkName(deadPID(t))
					nstest.Sh(t, "ip link add "+stale+" type veth peer name stale0") // as a killed probe would have left it, were that possible
					if !tc.noServer {
						ln, err := net.Listen("tcp", "127.0.0.1:51679") // created here: lives in the namespace
						if err != nil {
							t.Fatal(err)
						}
						srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
							_, _ = w.Write([]byte("agent stand-in\n"))
						})}
						go srv.Serve(ln)
						defer srv.Close()
					}
					before := nstest.Sh(t, b.Save)

					// 3s: the drop cases end at the 1s connect cap, and a
					// loaded machine still sets the probe up in time.
					c := Config{Timeout: 3 * time.Second, TaskBridges: tc.bridges}.withDefaults()
					ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
					if tc.cancelAfter > 0 {
						time.AfterFunc(tc.cancelAfter, cancel)
					}
					r := checkBridgePath(ctx, c)
					cancel()
					if r.Item != ItemCredentialsBridgePath || (r.Status != tc.want && !tc.anyStatus) {
						t.Fatalf("got %+v, want %s", r, tc.want)
					}
					for _, s := range tc.detailHas {
						if !strings.Contains(r.Detail, s) {
							t.Errorf("detail %q lacks %q", r.Detail, s)
						}
					}
					if tc.detailHasNot != "" && strings.Contains(r.Detail, tc.detailHasNot) {
						t.Errorf("detail %q has %q", r.Detail, tc.detailHasNot)
					}
					if !tc.anyStatus && (r.Fix == "") != (r.Status == OK || r.Status == Skip) {
						t.Errorf("fix %q for status %s", r.Fix, r.Status)
					}

					// Nothing of the probe is left, and nothing else changed.
					links := nstest.Sh(t, "ip -o link show")
					if strings.Contains(links, probeLinkPrefix) || strings.Contains(links, "stale0") || strings.Contains(links, "veth") {
						t.Errorf("links left behind:\n%s", links)
					}
					if !tc.noBridge {
						if neigh := nstest.Sh(t, "ip neigh show dev docker0"); strings.Contains(neigh, probeMACPrefix) {
							t.Errorf("the probe's neighbour entry is left on docker0:\n%s", neigh)
						}
						if tc.extra != "" && strings.HasPrefix(tc.extra, "ip neigh add") {
							if neigh := nstest.Sh(t, "ip neigh show dev docker0"); !strings.Contains(neigh, "02:42:ac:11:ff:fe") {
								t.Errorf("the container's neighbour entry is gone:\n%s", neigh)
							}
						}
					}
					if after := nstest.Sh(t, b.Save); stripCounters(after) != stripCounters(before) {
						t.Errorf("the probe changed the ruleset:\n%s\nwas:\n%s", after, before)
					}
				})
			})
		}
	}
}

// deadPID returns the pid of a process that has exited.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

// stripCounters drops iptables-save's comment lines and [packets:bytes]
// counters, which the probe's own packets change.
func stripCounters(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "#") {
			continue
		}
		if i := strings.Index(l, " ["); i > 0 && strings.HasPrefix(l, ":") {
			l = l[:i]
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}
