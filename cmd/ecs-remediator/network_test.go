package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ecs-remediator/ecs-remediator/pkg/policy"
	"github.com/ecs-remediator/ecs-remediator/test/nstest"
)

// The binary, run in a private network namespace with the real iptables of
// each backend: check finds the kernel side missing, apply repairs and
// persists it, check is then clean, and ecs-init's duplicate is removed.
func TestNetworkCheckApplyInNamespace(t *testing.T) {
	for _, b := range nstest.Backends {
		t.Run(b.Name, func(t *testing.T) {
			nstest.Require(t, b.Iptables, b.Save, b.Restore, "ip")
			h := newHost(t, good)
			saved := filepath.Join(h.dir, "rules.v4")
			sysctlFile := filepath.Join(h.dir, "sysctl.d/90-ecs-remediator.conf")
			p := h.netPolicy(b.Iptables)
			p.ECSConfigBase = policy.Off
			p.Persist.Iptables, p.Persist.Sysctl = saved, sysctlFile
			h.writePolicy(t, p)

			nstest.Run(t, func() {
				r := run(t, "check", "--config", h.policy, "--json")
				if r.code != 1 {
					t.Fatalf("check on an empty namespace: exit %d, want 1\n%s%s", r.code, r.stdout, r.stderr)
				}
				rep := decodeReport(t, r.stdout)
				for _, item := range []string{"network.credentials_dnat", "network.credentials_redirect", "network.localhost_guard", "sysctl.route_localnet", "persist.iptables", "persist.sysctl"} {
					if st, _ := findingOf(t, rep, item); st != "drift" {
						t.Errorf("%s: %s, want drift", item, st)
					}
				}
				for _, f := range rep.Findings {
					// (network.credentials_route is a route, not a rule: no
					// namespace here has an IPv4 default route.)
					if strings.HasPrefix(f.Item, "network.") && f.Item != "network.credentials_route" && f.Status == "drift" && !strings.Contains(f.Fix, "(runs: "+b.Iptables+" -t ") {
						t.Errorf("%s: the JSON fix is not the whole command: %q", f.Item, f.Fix)
					}
				}
				// On a terminal a fix that repeats the detail's rule is
				// shortened, and a drift row says nothing about rules that
				// are not needed (no docker0 here).
				tty := runTTY(t, 200, unwrapEnv, "check", "--config", h.policy)
				if !strings.Contains(tty.stdout, " -t nat -A PREROUTING with the rule above)") || strings.Contains(tty.stdout, "(runs: ") ||
					strings.Contains(tty.stdout, "not needed") {
					t.Errorf("check on a terminal:\n%s", tty.stdout)
				}
				if n, l := longest(tty.stdout); n > 200 {
					t.Errorf("a line of %d on a 200-column terminal: %q", n, l)
				}
				r = run(t, "apply", "--config", h.policy)
				if r.code != 0 {
					t.Fatalf("apply: exit %d\n%s", r.code, r.stderr)
				}
				if r := run(t, "check", "--config", h.policy, "--json"); r.code != 0 {
					t.Fatalf("check after apply: exit %d\n%s", r.code, r.stdout)
				}
				live := nstest.Sh(t, b.Save)
				for _, want := range []string{"--to-destination 127.0.0.1:51679", "--to-ports 51679", "RELATED,ESTABLISHED,DNAT"} {
					if strings.Count(live, want) != 1 {
						t.Errorf("live ruleset holds %q %d times, want 1:\n%s", want, strings.Count(live, want), live)
					}
				}
				if v := strings.TrimSpace(nstest.Sh(t, "cat /proc/sys/net/ipv4/conf/all/route_localnet")); v != "1" {
					t.Errorf("route_localnet = %s", v)
				}
				if b, err := os.ReadFile(saved); err != nil || !strings.Contains(string(b), "169.254.170.2") {
					t.Errorf("saved ruleset: %v %q", err, b)
				}
				if b, err := os.ReadFile(sysctlFile); err != nil || !strings.Contains(string(b), "route_localnet = 1") {
					t.Errorf("sysctl file: %v %q", err, b)
				}
				// ecs-init restarts and adds its copy unchecked: apply removes
				// the extra copy.
				nstest.Sh(t, b.Iptables+" -t nat -A OUTPUT -p tcp -d 169.254.170.2 --dport 80 -j REDIRECT --to-ports 51679")
				if r := run(t, "check", "--config", h.policy); r.code != 1 {
					t.Errorf("check with a duplicate: exit %d, want 1", r.code)
				}
				if r := run(t, "apply", "--config", h.policy); r.code != 0 {
					t.Fatalf("apply: exit %d\n%s", r.code, r.stderr)
				}
				if n := strings.Count(nstest.Sh(t, b.Save+" -t nat"), "--to-ports 51679"); n != 1 {
					t.Errorf("after dedupe: %d copies", n)
				}
				// Dry-run on drift changes nothing.
				nstest.Sh(t, b.Iptables+" -t nat -F")
				before := nstest.Sh(t, b.Save+" -t nat")
				if r := run(t, "apply", "--config", h.policy, "--dry-run"); r.code != 0 || !strings.Contains(r.stdout, "169.254.170.2") {
					t.Errorf("dry-run: exit %d\n%s", r.code, r.stdout)
				}
				if after := nstest.Sh(t, b.Save+" -t nat"); stripCounters(after) != stripCounters(before) {
					t.Errorf("dry-run changed the ruleset")
				}
			})
		})
	}
}

func stripCounters(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "#") {
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

// Without CAP_NET_ADMIN (here: the real binary as user nobody, in a
// namespace) check says once that reading the firewall needs root and what
// it still checked, instead of one iptables error per rule.
func TestCheckWithoutRoot(t *testing.T) {
	b := nstest.Backends[0]
	nstest.Require(t, b.Iptables, b.Save, b.Restore, "ip")
	h := newHost(t, good)
	for d := h.dir; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		os.Chmod(d, 0o755) // nobody reads the policy and ecs.config
	}
	p := h.netPolicy(b.Iptables)
	p.ECSConfigBase = policy.Off
	p.Persist.Iptables, p.Persist.Sysctl = policy.Off, policy.Off
	h.writePolicy(t, p)
	nobody := &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	exe := filepath.Join(h.dir, "ecs-remediator") // bin's directory is private
	if data, err := os.ReadFile(bin); err != nil || os.WriteFile(exe, data, 0o755) != nil {
		t.Fatal("copy the binary:", err)
	}
	nstest.Run(t, func() {
		r := runAs(t, exe, nobody, "check", "--config", h.policy)
		if r.code != 2 {
			t.Errorf("exit %d, want 2 (not everything could be observed)", r.code)
		}
		if strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, "needs root (or CAP_NET_ADMIN)") ||
			!strings.Contains(r.stderr, "checked without it: ecs_config.*") || !strings.Contains(r.stderr, "sudo ecs-remediator check") {
			t.Errorf("stderr:\n%s", r.stderr)
		}
		if strings.Contains(r.stdout, "Permission denied") || strings.Contains(r.stdout, "network.credentials_dnat") ||
			!strings.Contains(r.stdout, "ecs_config.ECS_ENABLE_TASK_IAM_ROLE") || !strings.Contains(r.stdout, "not checked (needs root)") {
			t.Errorf("table:\n%s", r.stdout)
		}
		// JSON keeps every item: the unread ones are errors saying why.
		rep := decodeReport(t, runAs(t, exe, nobody, "check", "--config", h.policy, "--json").stdout)
		if st, d := findingOf(t, rep, "network.credentials_dnat"); st != "error" || d != notRead {
			t.Errorf("network.credentials_dnat: %s %q", st, d)
		}
		// As root the same namespace is read.
		if r := run(t, "check", "--config", h.policy); r.code != 1 || strings.Contains(r.stderr, "needs root") {
			t.Errorf("as root: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	})
}
