package main

import (
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ecs-remediator/ecs-remediator/pkg/policy"
	"github.com/ecs-remediator/ecs-remediator/test/nstest"
)

// switchesPolicy is the policy of a namespace test of ecs-init's switches:
// nothing persisted.
func switchesPolicy(h hostFiles, iptables string) *policy.Policy {
	p := h.netPolicy(iptables)
	p.ECSConfigBase = policy.Off
	p.Persist.Iptables, p.Persist.Sysctl = policy.Off, policy.Off
	return p
}

// Contract (issue 15): ecs-init's switches are read as ecs-init reads
// them — systemd's EnvironmentFile= parse of ecs.config (quotes removed),
// then strconv.ParseBool without trimming (invalid = false) — and
// network.block_introspection: auto follows ECS_ALLOW_OFFHOST_INTROSPECTION_ACCESS;
// the localhost guard stays whatever ECS_SKIP_LOCALHOST_TRAFFIC_FILTER says,
// and the findings say why.
func TestEcsInitSwitches(t *testing.T) {
	b := nstest.Backends[0]
	nstest.Require(t, b.Iptables, b.Save, b.Restore, "ip")
	for _, tc := range []struct {
		name, config string
		block        policy.BoolAuto // network.block_introspection ("": the default)
		introRules   bool            // the introspection DROP is made
		introDetail  string          // in the introspection_block finding
		guardDetail  string          // in the localhost_guard finding
	}{
		{"switches quoted", `ECS_ALLOW_OFFHOST_INTROSPECTION_ACCESS="true"` + "\n" + `ECS_SKIP_LOCALHOST_TRAFFIC_FILTER='TRUE'` + "\n", "",
			false, "ECS_ALLOW_OFFHOST_INTROSPECTION_ACCESS=true in " /* + path line 4 */, "ecs-remediator keeps it"},
		{"commented out", "#ECS_ALLOW_OFFHOST_INTROSPECTION_ACCESS=true\n", "", true, "present once", ""},
		{"invalid for ParseBool", "ECS_ALLOW_OFFHOST_INTROSPECTION_ACCESS=yes\nECS_SKIP_LOCALHOST_TRAFFIC_FILTER=on\n", "", true, "present once", ""},
		{"forced by policy", "ECS_ALLOW_OFFHOST_INTROSPECTION_ACCESS=1\n", policy.True, true, "present once", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHost(t, good+tc.config)
			p := switchesPolicy(h, b.Iptables)
			if tc.block != "" {
				p.Network.BlockIntrospection = tc.block
			}
			h.writePolicy(t, p)
			nstest.Run(t, func() {
				if r := run(t, "apply", "--config", h.policy); r.code != 0 {
					t.Fatalf("apply: exit %d\n%s%s", r.code, r.stdout, r.stderr)
				}
				r := run(t, "check", "--config", h.policy, "--json")
				if r.code != 0 {
					t.Fatalf("check after apply: exit %d\n%s", r.code, r.stdout)
				}
				rep := decodeReport(t, r.stdout)
				_, intro := findingOf(t, rep, "network.introspection_block")
				_, guard := findingOf(t, rep, "network.localhost_guard")
				live := nstest.Sh(t, b.Save+" -t filter")
				if got := strings.Contains(live, "--dport 51678"); got != tc.introRules {
					t.Errorf("introspection rules made: %v, want %v\n%s", got, tc.introRules, live)
				}
				if !strings.Contains(live, "RELATED,ESTABLISHED,DNAT") {
					t.Errorf("the localhost guard is missing:\n%s", live)
				}
				if !strings.Contains(intro, tc.introDetail) {
					t.Errorf("introspection_block detail %q, want it to hold %q", intro, tc.introDetail)
				}
				if !tc.introRules && !strings.Contains(intro, h.ecsConfig+" line 4") {
					t.Errorf("introspection_block detail %q does not name %s line 4", intro, h.ecsConfig)
				}
				if tc.guardDetail != "" && !strings.Contains(guard, tc.guardDetail) {
					t.Errorf("localhost_guard detail %q, want it to hold %q", guard, tc.guardDetail)
				}
				if tc.guardDetail == "" && strings.Contains(guard, "ECS_SKIP_LOCALHOST_TRAFFIC_FILTER") {
					t.Errorf("localhost_guard detail %q mentions a switch that is not on", guard)
				}
			})
		})
	}
}

// fakeDockerSocket answers GET /networks like Docker with a default bridge
// named bridge (a unix socket is a file: reachable from any namespace).
func fakeDockerSocket(t *testing.T, bridge string) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "docker.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/networks" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, `[{"Name":"bridge","Driver":"bridge","Options":{"com.docker.network.bridge.default_bridge":"true","com.docker.network.bridge.name":%q}}]`, bridge)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return sock
}

// Contract (issue 15): the introspection ACCEPT is for the bridge Docker
// reports as its default, not a hard-coded docker0; with no answer from
// Docker, for the docker0 interface when it exists.
func TestIntrospectionAcceptFollowsDockerBridge(t *testing.T) {
	b := nstest.Backends[0]
	nstest.Require(t, b.Iptables, b.Save, b.Restore, "ip")
	for _, tc := range []struct {
		name   string
		socket func(t *testing.T) string
		want   string // the ACCEPT's interface ("": no ACCEPT)
	}{
		{"Docker names ecs-br0", func(t *testing.T) string { return fakeDockerSocket(t, "ecs-br0") }, "ecs-br0"},
		{"no answer, docker0 exists", func(t *testing.T) string { return filepath.Join(t.TempDir(), "absent.sock") }, "docker0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHost(t, good)
			p := switchesPolicy(h, b.Iptables)
			p.Network.DockerSocket = tc.socket(t)
			h.writePolicy(t, p)
			nstest.Run(t, func() {
				nstest.Sh(t, "ip link add docker0 type bridge")
				if r := run(t, "apply", "--config", h.policy); r.code != 0 {
					t.Fatalf("apply: exit %d\n%s%s", r.code, r.stdout, r.stderr)
				}
				if r := run(t, "check", "--config", h.policy); r.code != 0 {
					t.Errorf("check after apply: exit %d\n%s", r.code, r.stdout)
				}
				for _, save := range []string{b.Save, "ip6tables-nft-save"} {
					live := nstest.Sh(t, save+" -t filter")
					var accepts []string
					for _, l := range strings.Split(live, "\n") {
						if strings.Contains(l, "--dport 51678") && strings.Contains(l, "-j ACCEPT") {
							accepts = append(accepts, l)
						}
					}
					if len(accepts) != 1 || !strings.Contains(accepts[0], "-i "+tc.want+" ") {
						t.Errorf("%s: ACCEPT rules %q, want one for -i %s", save, accepts, tc.want)
					}
				}
			})
		})
	}
}

// Contract (issue 15): the introspection rule of ecs-init before 1.97 (one
// IPv4 DROP on ECS_OFFHOST_INTROSPECTION_INTERFACE_NAME, default eth0)
// counts as ours: no second pair is added next to it.
func TestOlderIntrospectionRuleCounts(t *testing.T) {
	b := nstest.Backends[0]
	nstest.Require(t, b.Iptables, b.Save, b.Restore, "ip")
	for _, tc := range []struct{ config, ifc string }{
		{"", "eth0"},
		{"ECS_OFFHOST_INTROSPECTION_INTERFACE_NAME=ens5\n", "ens5"},
	} {
		t.Run(tc.ifc, func(t *testing.T) {
			h := newHost(t, good+tc.config)
			p := switchesPolicy(h, b.Iptables)
			p.Network.DockerSocket = policy.Off
			h.writePolicy(t, p)
			nstest.Run(t, func() {
				nstest.Sh(t, "ip link add docker0 type bridge")
				nstest.Sh(t, b.Iptables+" -I INPUT -p tcp -i "+tc.ifc+" --dport 51678 -j DROP")
				for i := 0; i < 2; i++ {
					if r := run(t, "apply", "--config", h.policy); r.code != 0 {
						t.Fatalf("apply: exit %d\n%s%s", r.code, r.stdout, r.stderr)
					}
				}
				r := run(t, "check", "--config", h.policy, "--json")
				if r.code != 0 {
					t.Fatalf("check: exit %d\n%s", r.code, r.stdout)
				}
				_, detail := findingOf(t, decodeReport(t, r.stdout), "network.introspection_block")
				if !strings.Contains(detail, "before 1.97") {
					t.Errorf("introspection_block detail %q does not say the older rule stands for ours", detail)
				}
				live := nstest.Sh(t, b.Save+" -t filter")
				if n := strings.Count(live, "--dport 51678"); n != 1 {
					t.Errorf("%d IPv4 introspection rules, want only ecs-init's older one:\n%s", n, live)
				}
			})
		})
	}
}
