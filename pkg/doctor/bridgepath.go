package doctor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// checkBridgePath is credentials.bridge_path: one real TCP connection
// over the path a bridge-mode task's packets take. It puts a throw-away
// network namespace on the first task bridge that exists (a veth pair,
// one end a port of the bridge, the other the namespace's eth0 with a
// free address of the bridge's subnet and a default route via the
// bridge's address, as Docker sets up a container), asks
// http://169.254.170.2/ from inside, and removes everything again.
//
// The host side runs on the calling goroutine's thread, locked for the
// whole probe: "the host" is the network namespace of that thread (in
// tests, a private one). Everything is bounded by ctx; the removal gets a
// short budget of its own so that it also runs when ctx has ended.
func checkBridgePath(ctx context.Context, c Config) Result {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	r := Result{Item: ItemCredentialsBridgePath}
	skip := func(detail, fix string) Result {
		r.Status, r.Detail, r.Fix = Skip, detail, fix
		return r
	}
	target, err := bridgeProbeTarget(c.CredentialsURL)
	if err != nil {
		return skip(err.Error(), "")
	}
	if _, err := exec.LookPath(ipBinary); err != nil {
		return skip("the probe needs ip(8) from iproute2, which is not installed", "install iproute (dnf/yum install iproute, apt-get install iproute2)")
	}
	reserve := cleanupReserve(c.Timeout)
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(c.Timeout)
	}
	pctx, cancel := context.WithDeadline(ctx, deadline.Add(-reserve))
	defer cancel()

	removeStaleProbeLinks(pctx)
	var links []ipLink
	if err := ipJSON(pctx, &links, "-d", "link", "show", "type", "bridge"); err != nil {
		return skip("cannot list the bridges: "+err.Error(), "")
	}
	bridges := make([]string, 0, len(links))
	for _, l := range links {
		bridges = append(bridges, l.Name)
	}
	br := matchBridge(c.TaskBridges, bridges)
	if br == "" {
		return skip(fmt.Sprintf("no task bridge exists (network.task_bridges: %s; bridges here: %s): no bridge-mode task can run on this host now",
			strings.Join(c.TaskBridges, ", "), listOrNone(bridges)), "")
	}
	var brLink ipLink
	for _, l := range links {
		if l.Name == br {
			brLink = l
		}
	}
	if !brLink.up() {
		r.Status = Fail
		r.Detail = fmt.Sprintf("task bridge %s is down: bridge-mode tasks on it reach nothing, not even 169.254.170.2", br)
		r.Fix = fmt.Sprintf("`ip link set %s up`; Docker brings docker0 up when it starts: `systemctl restart docker`", br)
		return r
	}
	if brLink.LinkInfo.Data.STPState != 0 {
		return skip(fmt.Sprintf("task bridge %s runs STP: a new port forwards only after the forward delay, so a probe would measure STP, not the credential path", br), "")
	}
	bridgePrefix, taken, err := bridgeAddressing(pctx, br)
	if err != nil {
		return skip(err.Error(), "")
	}
	addr, err := probeAddress(bridgePrefix, taken)
	if err != nil {
		return skip(fmt.Sprintf("task bridge %s: %v", br, err), "")
	}

	w, err := newNSWorker()
	if err != nil {
		if errors.Is(err, unix.EPERM) {
			return skip("cannot create the probe's network namespace: "+err.Error()+" (doctor runs without CAP_SYS_ADMIN)", "run `sudo ecs-remediator doctor` as root for the bridge-path probe")
		}
		return skip("cannot create the probe's network namespace: "+err.Error(), "")
	}
	p := &bridgeProbe{c: c, bridge: br, bridgeAddr: bridgePrefix.Addr(), addr: netip.PrefixFrom(addr, bridgePrefix.Bits()),
		pid: os.Getpid(), target: target, w: w}
	defer p.cleanup(ctx, reserve)
	if err := p.setUp(pctx); err != nil {
		if errors.Is(ctx.Err(), context.Canceled) {
			return skip(fmt.Sprintf("interrupted while setting up the probe on %s", br), "")
		}
		if pctx.Err() != nil {
			return skip(fmt.Sprintf("setting up the probe on %s did not finish within %s: %v", br, c.Timeout, err), "give doctor more time: --timeout 5s")
		}
		if isPermission(err) {
			return skip("cannot set up the probe on "+br+": "+err.Error()+" (doctor runs without CAP_NET_ADMIN)", "run `sudo ecs-remediator doctor` as root for the bridge-path probe")
		}
		return skip("cannot set up the probe on "+br+": "+err.Error(), "")
	}
	return p.probe(pctx)
}

// bridgeProbeTarget is host:port of the credentials endpoint (the host of
// Config.CredentialsURL, 169.254.170.2 by default); the probe asks "/".
func bridgeProbeTarget(credentialsURL string) (string, error) {
	u, err := url.Parse(credentialsURL)
	if err != nil || u.Hostname() == "" {
		return "", fmt.Errorf("credentials URL %q has no host to probe", credentialsURL)
	}
	if u.Scheme != "http" {
		return "", fmt.Errorf("credentials URL %q is not http: the agent's endpoint 169.254.170.2 is plain HTTP on port 80", credentialsURL)
	}
	port := u.Port()
	if port == "" {
		port = "80"
	}
	return net.JoinHostPort(u.Hostname(), port), nil
}

// cleanupReserve is the part of the deadline kept for removing the probe.
func cleanupReserve(timeout time.Duration) time.Duration {
	return min(max(timeout/5, 100*time.Millisecond), 500*time.Millisecond)
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

func isPermission(err error) bool {
	s := strings.ToLower(err.Error())
	return strings.Contains(s, "operation not permitted") || strings.Contains(s, "permission denied")
}

// bridgeAddressing returns the bridge's first IPv4 address with its
// prefix, and the addresses a probe must not take: the bridge's own and
// every neighbour it knows, except neighbour entries an earlier probe left
// (probe MAC, process gone), which it removes.
func bridgeAddressing(ctx context.Context, br string) (netip.Prefix, map[netip.Addr]bool, error) {
	var addrs []ipAddrs
	if err := ipJSON(ctx, &addrs, "-4", "addr", "show", "dev", br); err != nil {
		return netip.Prefix{}, nil, fmt.Errorf("cannot read the addresses of %s: %v", br, err)
	}
	taken := map[netip.Addr]bool{}
	var prefix netip.Prefix
	for _, a := range addrs {
		for _, ai := range a.AddrInfo {
			ip, err := netip.ParseAddr(ai.Local)
			if ai.Family != "inet" || err != nil {
				continue
			}
			taken[ip] = true
			if !prefix.IsValid() {
				prefix = netip.PrefixFrom(ip, ai.PrefixLen)
			}
		}
	}
	if !prefix.IsValid() {
		return netip.Prefix{}, nil, fmt.Errorf("task bridge %s has no IPv4 address: bridge-mode tasks on it have no IPv4 path to 169.254.170.2", br)
	}
	var neighs []ipNeigh
	if err := ipJSON(ctx, &neighs, "-4", "neigh", "show", "dev", br); err != nil {
		return netip.Prefix{}, nil, fmt.Errorf("cannot read the neighbour table of %s: %v", br, err)
	}
	for _, n := range neighs {
		ip, err := netip.ParseAddr(n.Dst)
		if err != nil {
			continue
		}
		if pid, ours := probeMACPID(n.LLAddr); ours && !processAlive(pid) {
			_, _ = ipCmd(ctx, "", "neigh", "del", n.Dst, "dev", br)
			continue
		}
		taken[ip] = true
	}
	return prefix, taken, nil
}

// processAlive reports whether pid exists (kill(pid, 0)). Our own pid counts
// as gone: one process runs one probe at a time, so its leftovers are stale.
func processAlive(pid int) bool {
	if pid == os.Getpid() {
		return false
	}
	err := unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}

// removeStaleProbeLinks deletes ecsrp<pid> links whose process is gone.
func removeStaleProbeLinks(ctx context.Context) {
	var links []ipLink
	if err := ipJSON(ctx, &links, "link", "show"); err != nil {
		return
	}
	for _, l := range links {
		if pid, ok := probeLinkPID(strings.SplitN(l.Name, "@", 2)[0]); ok && !processAlive(pid) {
			_, _ = ipCmd(ctx, "", "link", "del", l.Name)
		}
	}
}

type bridgeProbe struct {
	c          Config
	bridge     string
	bridgeAddr netip.Addr
	addr       netip.Prefix // the probe's address, in the bridge's subnet
	pid        int
	target     string // 169.254.170.2:80
	w          *nsWorker
	linked     bool // the veth pair exists
	connect    time.Duration
}

func (p *bridgeProbe) hostLink() string { return probeLinkName(p.pid) }

// setUp creates the veth pair (its far end directly inside the probe's
// namespace, so at no moment does the host hold both ends), makes the near
// end a port of the bridge, and configures the namespace like Docker
// configures a container: address, link up, default route via the bridge.
func (p *bridgeProbe) setUp(ctx context.Context) error {
	if _, err := ipCmd(ctx, "", "link", "add", p.hostLink(), "address", pidMAC(hostMACPrefix, p.pid), "type", "veth",
		"peer", "name", "eth0", "address", pidMAC(probeMACPrefix, p.pid), "netns", p.w.nsPath()); err != nil {
		return err
	}
	p.linked = true
	if _, err := ipCmd(ctx, "", "link", "set", p.hostLink(), "master", p.bridge, "up"); err != nil {
		return err
	}
	var err error
	p.w.do(func() {
		// No IPv6 on the probe's link: no router solicitations or DAD
		// from it on the bridge. Best effort (IPv6 may be off already).
		_ = os.WriteFile("/proc/sys/net/ipv6/conf/eth0/disable_ipv6", []byte("1"), 0o644)
		_, err = ipCmd(ctx, fmt.Sprintf("link set lo up\naddr add %s dev eth0\nlink set eth0 up\nroute add default via %s dev eth0\n", p.addr, p.bridgeAddr),
			"-batch", "-")
	})
	if err != nil {
		return err
	}
	var port []ipLink
	if err := ipJSON(ctx, &port, "-d", "link", "show", "dev", p.hostLink()); err != nil {
		return err
	}
	if len(port) == 1 && port[0].LinkInfo.SlaveData.State != "" && port[0].LinkInfo.SlaveData.State != "forwarding" {
		return fmt.Errorf("the probe's port on %s is %s, not forwarding", p.bridge, port[0].LinkInfo.SlaveData.State)
	}
	return nil
}

// probe connects from inside the namespace and reads one HTTP answer.
func (p *bridgeProbe) probe(ctx context.Context) Result {
	r := Result{Item: ItemCredentialsBridgePath}
	url := "http://" + p.target + "/"
	where := fmt.Sprintf("from a probe namespace on %s (%s, default route via %s)", p.bridge, p.addr, p.bridgeAddr)
	var (
		conn    net.Conn
		dialErr error
	)
	p.connect = maxConnectTimeout
	if d, ok := ctx.Deadline(); ok {
		p.connect = min(p.connect, time.Until(d))
	}
	p.w.do(func() {
		conn, dialErr = (&net.Dialer{Timeout: p.connect}).DialContext(ctx, "tcp4", p.target)
	})
	if dialErr != nil {
		r.Status = Fail
		r.Detail, r.Fix = p.explainDial(ctx, url, where, dialErr)
		return r
	}
	defer conn.Close()
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d)
	}
	host, _, _ := net.SplitHostPort(p.target)
	req := "GET / HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: ecs-remediator-doctor\r\nAccept: */*\r\nConnection: close\r\n\r\n"
	resp, err := func() (*http.Response, error) {
		if _, err := conn.Write([]byte(req)); err != nil {
			return nil, err
		}
		return http.ReadResponse(bufio.NewReader(conn), nil)
	}()
	if err != nil {
		r.Status = Fail
		r.Detail = fmt.Sprintf("GET %s %s: TCP connected (the DNAT path works), but no HTTP answer: %v", url, where, err)
		r.Fix = "what listens on " + p.agentAddr() + " accepts connections but does not answer HTTP: `ss -ltnp 'sport = :" + strconv.Itoa(p.c.AgentPort) + "'`; the ECS agent answers there when it runs"
		return r
	}
	resp.Body.Close()
	r.Status = OK
	r.Detail = fmt.Sprintf("GET %s %s: HTTP %d: a bridge-mode task's packets cross %s, the DNAT to the agent port and the input filters, and something answers", url, where, resp.StatusCode, p.bridge)
	return r
}

// explainDial says where a connect from the probe stopped.
func (p *bridgeProbe) explainDial(ctx context.Context, url, where string, err error) (detail, fix string) {
	switch classify(err) {
	case netRefused:
		if p.agentListens(ctx) {
			return fmt.Sprintf("GET %s %s: connection refused, although something listens on %s on the host: a rule on the way rejects the SYN (REJECT with tcp-reset or icmp-port-unreachable, iptables' default)", url, where, p.agentAddr()),
				"run `ecs-remediator check`: network.credentials_input names the rule; `ecs-remediator apply` opens the path narrowly"
		}
		return fmt.Sprintf("GET %s %s: connection refused: the SYN crossed %s and the DNAT to the agent port, and nothing listens on %s", url, where, p.bridge, p.agentAddr()),
			"is the agent running? (`systemctl status ecs`, `docker ps --filter name=ecs-agent`, `ss -ltnp 'sport = :" + strconv.Itoa(p.c.AgentPort) + "'`)"
	case netUnreachable:
		if p.gatewayUnresolved(ctx) {
			return fmt.Sprintf("GET %s %s: host unreachable: %s's address %s did not answer ARP from the probe", url, where, p.bridge, p.bridgeAddr),
				"look for arptables/ebtables rules or a bridge filter (`nft list ruleset`, `ebtables -L`) that drops ARP on " + p.bridge
		}
		return fmt.Sprintf("GET %s %s: %v: a rule answers the SYN with an ICMP unreachable (a REJECT on the input path)", url, where, err),
			"run `ecs-remediator check`: network.credentials_input names the rule; `ecs-remediator apply` opens the path narrowly"
	case netTimeout:
		var stage string
		if p.gatewayUnresolved(ctx) {
			stage = fmt.Sprintf("%s's address %s did not answer ARP from the probe (arptables/ebtables, or a bridge filter)", p.bridge, p.bridgeAddr)
		} else if !p.routeLocalnet() {
			stage = fmt.Sprintf("route_localnet is 0 on %s, so the kernel drops the packet DNATed to 127.0.0.1 as a martian before INPUT", p.bridge)
		} else {
			stage = fmt.Sprintf("the SYN from %s got no answer: it is dropped on the way (a filter on the input path, e.g. an INPUT policy DROP as on CIS-hardened hosts, or an nftables input chain), or no DNAT rule sends 169.254.170.2:80 from %s to %s", p.bridge, p.bridge, p.agentAddr())
		}
		return fmt.Sprintf("GET %s %s: no answer to the SYN within %s: %s", url, where, p.connect.Round(time.Millisecond), stage),
			"run `ecs-remediator check` (network.credentials_dnat, network.credentials_input, sysctl.route_localnet name what blocks), then `ecs-remediator apply`"
	}
	return fmt.Sprintf("GET %s %s: %v", url, where, err), "run `ecs-remediator check` for the NAT rules, route_localnet and the input filters"
}

func (p *bridgeProbe) agentAddr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.c.AgentPort))
}

// agentListens reports whether something accepts connections on the agent
// port in the host's namespace (a connect over lo, from the probe's host
// thread), to tell "nothing listens" from "a rule rejects".
func (p *bridgeProbe) agentListens(ctx context.Context) bool {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 200*time.Millisecond)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(dctx, "tcp4", p.agentAddr())
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// explainTimeout bounds each look the probe takes after a failed connect
// to say where the packet stopped (a process in the probe namespace).
const explainTimeout = 2 * time.Second

// gatewayUnresolved reports whether the probe namespace failed to resolve
// the bridge's address (its neighbour entry is FAILED or INCOMPLETE).
//
// It runs `ip neigh` in the probe namespace, bounded by explainTimeout:
// the probe has already failed by then, and a loaded host can take longer
// than a connect's worth to start a process, which must not turn "the
// bridge did not answer ARP" into a vaguer verdict.
func (p *bridgeProbe) gatewayUnresolved(ctx context.Context) bool {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), explainTimeout)
	defer cancel()
	var neighs []ipNeigh
	var err error
	p.w.do(func() { err = ipJSON(cctx, &neighs, "-4", "neigh", "show", p.bridgeAddr.String(), "dev", "eth0") })
	if err != nil {
		return false
	}
	for _, n := range neighs {
		for _, s := range n.State {
			if s == "FAILED" || s == "INCOMPLETE" {
				return true
			}
		}
	}
	return false
}

// routeLocalnet reads the effective route_localnet of the bridge (the
// kernel ORs conf/all and conf/<dev>) in the host's namespace. Unreadable
// counts as on: the detail then names the other causes.
func (p *bridgeProbe) routeLocalnet() bool {
	on := func(dev string) (bool, bool) {
		b, err := os.ReadFile(filepath.Join(p.c.ProcRoot, "sys/net/ipv4/conf", dev, "route_localnet"))
		if err != nil {
			return false, false
		}
		return strings.TrimSpace(string(b)) != "0", true
	}
	all, ok1 := on("all")
	dev, ok2 := on(p.bridge)
	if !ok1 && !ok2 {
		return true
	}
	return all || dev
}

// cleanup removes the veth pair (deleting the host end deletes both), the
// neighbour entry the probe left on the bridge, and ends the namespace. It
// has a budget of its own, so it also runs after ctx ended.
func (p *bridgeProbe) cleanup(ctx context.Context, budget time.Duration) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), budget)
	defer cancel()
	if p.linked {
		_, _ = ipCmd(cctx, "", "link", "del", p.hostLink())
	}
	// Even when that failed, ending the namespace destroys its veth end
	// and with it the host end.
	p.w.close()
	var neighs []ipNeigh
	if err := ipJSON(cctx, &neighs, "-4", "neigh", "show", p.addr.Addr().String(), "dev", p.bridge); err == nil {
		for _, n := range neighs {
			if strings.EqualFold(n.LLAddr, pidMAC(probeMACPrefix, p.pid)) {
				_, _ = ipCmd(cctx, "", "neigh", "del", p.addr.Addr().String(), "dev", p.bridge)
			}
		}
	}
}
