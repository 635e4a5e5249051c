// Package ecsinit replays, command by command, what ecs-init does to the
// host at `ecs-init pre-start` (ExecStartPre) and `ecs-init post-stop`
// (ExecStopPost), so that tests can run the real daemon next to it. It is
// for tests only, and runs inside a namespace the test made (it changes
// the rules, sysctls and routes of the namespace it runs in).
//
// Read from aws/amazon-ecs-agent release 1.105 (docs/ecs-init.md):
// ecs-init/engine/engine.go (PreStart, PostStop: the order),
// ecs-init/exec/iptables/iptables.go (Create, Remove, modifyNetfilterEntry:
// the rules, -A/-I without -C and without -w, ip6tables for the
// introspection rules when /proc/sys/net/ipv6 exists and ip6tables is on
// PATH, a failed IPv4 call skips its IPv6 twin and ends pre-start),
// ecs-init/exec/sysctl/sysctl.go (route_localnet, accept_ra) and
// ecs-init/routes/routes.go (the IPv6-only route). Like ecs-init, every
// call is its own process found on PATH.
package ecsinit

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// Host is one ecs-init installation.
type Host struct {
	// PATH is ecs-init's PATH: iptables, ip6tables, sysctl and ip are
	// looked up there (a temp dir of symlinks plays update-alternatives).
	PATH string
	// ProcSys is where net/ipv6 is looked for ("" = /proc/sys). sysctl
	// itself always writes the real /proc/sys (of the namespace).
	ProcSys string
	// Env is ecs-init's own process environment (systemd's parse of
	// EnvironmentFile=/etc/ecs/ecs.config): ECS_SKIP_LOCALHOST_TRAFFIC_FILTER,
	// ECS_ALLOW_OFFHOST_INTROSPECTION_ACCESS,
	// ECS_OFFHOST_INTROSPECTION_INTERFACE_NAME.
	Env map[string]string
	// Bridge is the name Docker reports for its default bridge network
	// ("" when Docker reports none: no ACCEPT rule).
	Bridge string
	// Before197 replays ecs-init before 1.97: one introspection rule
	// `-I INPUT -p tcp -i <ECS_OFFHOST_INTROSPECTION_INTERFACE_NAME or
	// eth0> --dport 51678 -j DROP`, IPv4 only, no ACCEPT.
	Before197 bool
	// Log, when set, receives every command run and its error.
	Log func(cmd string, err error)
}

const (
	credentialsAddr = "169.254.170.2"
	agentPort       = "51679"
	introPort       = "51678"
)

func (h Host) run(name string, args ...string) (string, error) {
	bin, err := h.lookPath(name)
	if err != nil {
		return "", err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "PATH="+h.PATH)
	out, err := cmd.CombinedOutput()
	if err != nil {
		err = fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	if h.Log != nil {
		h.Log(name+" "+strings.Join(args, " "), err)
	}
	return string(out), err
}

// lookPath finds name on h.PATH, as exec.LookPath does with ecs-init's
// environment.
func (h Host) lookPath(name string) (string, error) {
	for _, dir := range filepath.SplitList(h.PATH) {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: executable file not found in $PATH", name)
}

// switchOn is ecs-init's reading of a switch: strconv.ParseBool of the
// raw value, invalid or empty = false.
func (h Host) switchOn(key string) bool {
	b, err := strconv.ParseBool(h.Env[key])
	return err == nil && b
}

func (h Host) ipv6() bool {
	ps := h.ProcSys
	if ps == "" {
		ps = "/proc/sys"
	}
	_, err := os.Stat(filepath.Join(ps, "net/ipv6"))
	return err == nil
}

// rule is one of ecs-init's rules: table, chain and the match (the verb
// is -A/-I or -D).
type rule struct {
	table, chain, verb string
	args               []string
	v6                 bool // also with ip6tables
	intro              bool // an introspection rule
}

func (h Host) rules() []rule {
	var rs []rule
	rs = append(rs, rule{"nat", "PREROUTING", "-A", strings.Fields("-p tcp -d " + credentialsAddr + " --dport 80 -j DNAT --to-destination 127.0.0.1:" + agentPort), false, false})
	if !h.switchOn("ECS_SKIP_LOCALHOST_TRAFFIC_FILTER") {
		rs = append(rs, rule{"filter", "INPUT", "-I", []string{"--dst", "127.0.0.0/8", "!", "--src", "127.0.0.0/8", "-m", "conntrack", "!", "--ctstate", "RELATED,ESTABLISHED,DNAT", "-j", "DROP"}, false, false})
	}
	if h.Before197 {
		ifc := h.Env["ECS_OFFHOST_INTROSPECTION_INTERFACE_NAME"]
		if ifc == "" {
			ifc = "eth0"
		}
		rs = append(rs, rule{"filter", "INPUT", "-I", strings.Fields("-p tcp -i " + ifc + " --dport " + introPort + " -j DROP"), false, true})
	} else {
		rs = append(rs, rule{"filter", "INPUT", "-I", strings.Fields("-p tcp --dport " + introPort + " ! -i lo -j DROP"), true, true})
		if h.Bridge != "" {
			rs = append(rs, rule{"filter", "INPUT", "-I", strings.Fields("-p tcp --dport " + introPort + " -i " + h.Bridge + " -j ACCEPT"), true, true})
		}
	}
	rs = append(rs, rule{"nat", "OUTPUT", "-A", strings.Fields("-p tcp -d " + credentialsAddr + " --dport 80 -j REDIRECT --to-ports " + agentPort), false, false})
	return rs
}

// modify is modifyNetfilterEntry: the IPv4 call, then (for the
// introspection rules) the IPv6 one when /proc/sys/net/ipv6 exists and
// ip6tables is found; a failed IPv4 call returns before it.
func (h Host) modify(r rule, verb string) error {
	args := append([]string{"-t", r.table, verb, r.chain}, r.args...)
	if _, err := h.run("iptables", args...); err != nil {
		return err
	}
	if r.v6 && h.ipv6() {
		if _, err := h.lookPath("ip6tables"); err != nil {
			return nil // ecs-init warns and goes on
		}
		if _, err := h.run("ip6tables", args...); err != nil {
			return err
		}
	}
	return nil
}

// hasIPv4DefaultRoute is netutils.HasDefaultRoute(FAMILY_V4).
func (h Host) hasIPv4DefaultRoute() (bool, error) {
	out, err := h.run("ip", "-4", "route", "show", "default")
	if err != nil {
		return false, err
	}
	return strings.TrimSpace(out) != "", nil
}

// PreStart is `ecs-init pre-start`'s part that touches the network:
// route_localnet, accept_ra, the IPv6-only route, the rules. It stops at
// the first failure, as ecs-init does.
func (h Host) PreStart() error {
	if _, err := h.run("sysctl", "-w", "net.ipv4.conf.all.route_localnet=1"); err != nil {
		return err
	}
	if _, err := h.run("sysctl", "-e", "-w", "net.ipv6.conf.docker0.accept_ra=0"); err != nil {
		return err
	}
	v4, err := h.hasIPv4DefaultRoute()
	if err != nil {
		return err
	}
	if !v4 {
		if out, err := h.run("ip", "route", "add", credentialsAddr+"/32", "dev", "lo", "scope", "link"); err != nil && !strings.Contains(out, "File exists") {
			return err
		}
	}
	offhost := h.switchOn("ECS_ALLOW_OFFHOST_INTROSPECTION_ACCESS")
	for _, r := range h.rules() {
		if offhost && r.intro {
			continue
		}
		if err := h.modify(r, r.verb); err != nil {
			return err
		}
	}
	return nil
}

// PostStop is `ecs-init post-stop`: conf.default.route_localnet into
// conf.all, the IPv6-only route removed, one copy of each rule deleted
// (errors ignored; the introspection rules are deleted even when
// ECS_ALLOW_OFFHOST_INTROSPECTION_ACCESS is true, the guard only when it
// was added). It returns the route_localnet error, as ecs-init does.
func (h Host) PostStop() error {
	var sysErr error
	out, err := h.run("sysctl", "net.ipv4.conf.default.route_localnet")
	if err != nil {
		sysErr = err
	} else {
		parts := strings.SplitN(out, "=", 2)
		if len(parts) != 2 {
			sysErr = fmt.Errorf("sysctl output %q", out)
		} else if v, err := strconv.ParseInt(strings.TrimSpace(parts[1]), 10, 64); err != nil {
			sysErr = err
		} else {
			_, sysErr = h.run("sysctl", "-w", "net.ipv4.conf.all.route_localnet="+strconv.FormatInt(v, 10))
		}
	}
	if v4, err := h.hasIPv4DefaultRoute(); err == nil && !v4 {
		h.run("ip", "route", "del", credentialsAddr+"/32", "dev", "lo", "scope", "link")
	}
	// Remove's order: PREROUTING, guard, introspection DROP, ACCEPT, OUTPUT.
	for _, r := range h.rules() {
		h.modify(r, "-D")
	}
	return sysErr
}
