package netfilter

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter/rule"
	"github.com/ecs-remediator/ecs-remediator/test/nstest"
	"github.com/ecs-remediator/ecs-remediator/test/testbin"
)

// The credential path on the real kernel, both backends: a bridge named
// docker0 with a veth "container" on it, the AWS CLI in the container
// and on the host, a credentials server on 127.0.0.1:51679, and the
// hardened rulesets of issue 14. Before: the client fails and the item
// is drift; after apply (or the finding's nft command): the client works,
// the operator's rules are unchanged, and another host port stays closed.

// startBridgeContainer makes docker0 (172.17.0.1/16) and a container
// namespace on it (172.17.0.2, default route via docker0); it returns the
// pid of a process in the container.
func startBridgeContainer(t *testing.T) int {
	t.Helper()
	self, err := os.Readlink("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	child := exec.Command("unshare", "-n", "sleep", "300")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { child.Process.Kill(); child.Wait() })
	pid := child.Process.Pid
	for i := 0; ; i++ {
		ns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
		if ns != "" && ns != self {
			break
		}
		if i > 500 {
			t.Fatal("unshare -n did not create its namespace")
		}
		time.Sleep(10 * time.Millisecond)
	}
	p := strconv.Itoa(pid)
	nstest.Sh(t, "ip link add docker0 type bridge && ip addr add 172.17.0.1/16 dev docker0 && ip link set docker0 up"+
		" && ip link add veth-host type veth peer name eth0 && ip link set eth0 netns "+p+
		" && ip link set veth-host master docker0 && ip link set veth-host up")
	nstest.Sh(t, "nsenter -t "+p+" -n sh -c 'ip link set lo up && ip addr add 172.17.0.2/16 dev eth0 && ip link set eth0 up && ip route add default via 172.17.0.1'")
	return pid
}

// ctrAWS runs the AWS CLI in the container (a bridge-mode task).
func ctrAWS(t *testing.T, aws string, pid int) (map[string]string, error) {
	home := t.TempDir()
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(c, "nsenter", "-t", strconv.Itoa(pid), "-n", aws, "configure", "export-credentials", "--format", "env")
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + home,
		"AWS_CONFIG_FILE=" + home + "/config", "AWS_SHARED_CREDENTIALS_FILE=" + home + "/credentials",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI=http://169.254.170.2/v2/credentials/" + credID,
		"AWS_EC2_METADATA_DISABLED=true",
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("aws configure export-credentials in the container: %v: %s", err, out)
	}
	got := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(strings.TrimPrefix(l, "export "), "="); ok {
			got[k] = v
		}
	}
	return got, nil
}

// serveOther listens on 0.0.0.0:8080 here: a host port the container
// must not reach through our accepts.
func serveOther(t *testing.T) {
	ln, err := net.Listen("tcp", "0.0.0.0:8080")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "other") }), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

// otherReachable: where want (it was reachable before), a timeout is
// tried again, as curlReaches does.
func otherReachable(pid int, want bool) bool {
	try := func() bool {
		c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return exec.CommandContext(c, "nsenter", "-t", strconv.Itoa(pid), "-n", "curl", "-sS", "--fail", "--connect-timeout", "1", "--max-time", "3", "http://172.17.0.1:8080/").Run() == nil
	}
	ok := try()
	for i := 1; i < 3 && want && !ok; i++ {
		ok = try()
	}
	return ok
}

// pathEnv is one namespace with the agent, the container and the clients.
type pathEnv struct {
	t     *testing.T
	b     nstest.Backend
	aws   string
	pid   int
	creds agentCreds
}

func newPathEnv(t *testing.T, b nstest.Backend, aws string) *pathEnv {
	nstest.Sh(t, "ip route add 169.254.170.2/32 dev lo src 127.0.0.1")
	if err := os.WriteFile("/proc/sys/net/ipv4/conf/all/route_localnet", []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	creds := agentCreds{RoleArn: "arn:aws:iam::123456789012:role/task-role", AccessKeyID: "ASIACREDPATH" + strings.ToUpper(b.Name),
		SecretAccessKey: "secret/" + b.Name, Token: "token-" + b.Name, Expiration: time.Now().Add(6 * time.Hour).UTC().Format(time.RFC3339)}
	serveAgent(t, 51679, creds)
	serveOther(t)
	return &pathEnv{t: t, b: b, aws: aws, pid: startBridgeContainer(t), creds: creds}
}

// bridge and host say whether each path works (curl: fails fast). want
// is what the caller expects: where a path should work, a connect a loaded
// machine lets time out is tried again (curlReaches); where it should
// fail, one try is the answer.
func (p *pathEnv) bridge(want bool) bool { return p.reaches(p.pid, want) }
func (p *pathEnv) host(want bool) bool   { return p.reaches(0, want) }

func (p *pathEnv) reaches(pid int, want bool) bool {
	url := "http://169.254.170.2/v2/credentials/" + credID
	if want {
		_, err := curlReaches(pid, url)
		return err == nil
	}
	_, err := curlFrom(pid, url)
	return err == nil
}

// works proves both paths with the real AWS CLI.
func (p *pathEnv) works(when string) {
	t := p.t
	t.Helper()
	if got, err := ctrAWS(t, p.aws, p.pid); err != nil {
		t.Errorf("%s: bridge path: %v", when, err)
	} else if got["AWS_ACCESS_KEY_ID"] != p.creds.AccessKeyID || got["AWS_SESSION_TOKEN"] != p.creds.Token {
		t.Errorf("%s: bridge path: the AWS CLI got %v", when, got)
	}
	if got, err := hostClient(t, p.aws); err != nil {
		t.Errorf("%s: host path: %v", when, err)
	} else if got["AWS_ACCESS_KEY_ID"] != p.creds.AccessKeyID {
		t.Errorf("%s: host path: the AWS CLI got %v", when, got)
	}
}

func credNSConfig(t *testing.T, b nstest.Backend) Config {
	c := nsConfig(t, b, true)
	c.ProcRoot = t.TempDir() // IPv4 only
	c.CredentialsInput = "enforce"
	return c
}

// withoutOurFilter is `-S` of filter without our rules (by meaning).
func withoutOurFilter(t *testing.T, b nstest.Backend, ws []rule.Want) string {
	return policyCounters.ReplaceAllString(withoutOurs(saveAll(t, b.Save, "iptables", false), ws), "[0:0]")
}

var policyCounters = regexp.MustCompile(`\[\d+:\d+\]`)

var backticks = regexp.MustCompile("`([^`]+)`")

// binary builds the real ecs-remediator once for the tests that run it.
var remediatorBin = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "ecs-remediator-netfilter-test")
	if err != nil {
		return "", err
	}
	return testbin.Build(dir)
})

type binResult struct {
	code     int
	out, err string
	findings map[string]finding.Finding
}

// runBinary runs the binary (in the calling thread's namespace); with
// --json its findings are decoded.
func runBinary(t *testing.T, args ...string) binResult {
	t.Helper()
	bin, err := remediatorBin()
	if err != nil {
		t.Fatal(err)
	}
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(c, bin, args...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	r := binResult{findings: map[string]finding.Finding{}}
	if err := cmd.Run(); err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatal(err)
		}
		r.code = ee.ExitCode()
	}
	r.out, r.err = out.String(), errb.String()
	var rep struct{ Findings []finding.Finding }
	if json.Unmarshal([]byte(r.out), &rep) == nil {
		for _, f := range rep.Findings {
			r.findings[f.Item] = f
		}
	}
	return r
}

// binPolicy writes a policy for the binary with every path it writes in a
// temp dir (nothing under the host's /etc: docker.no_proxy is off) and the
// kernel side of this namespace; extra is more network: keys.
func binPolicy(t *testing.T, b nstest.Backend, dir, name, extra string) (policy, saved string) {
	ecs := dir + "/ecs.config"
	if err := os.WriteFile(ecs, []byte("ECS_ENABLE_TASK_IAM_ROLE=true\nECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST=true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	saved = dir + "/rules.v4"
	policy = dir + "/" + name
	pol := fmt.Sprintf("ecs_config: %s\necs_config_base: \"off\"\nnetwork:\n  iptables: %s\n%spersist:\n  iptables: %s\n  sysctl: %s/sysctl.conf\n  systemd_dir: %s/systemd\nagent:\n  restart: never\n  proxy_dropin_dir: %s/dropins\ndocker:\n  no_proxy: ignore\nmetrics:\n  textfile: \"off\"\n",
		ecs, b.Iptables, extra, saved, dir, dir, dir)
	if err := os.WriteFile(policy, []byte(pol), 0o644); err != nil {
		t.Fatal(err)
	}
	return policy, saved
}

func TestCredentialPathHardened(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test (AWS CLI, bridge, veth, the binary): skipped with -short")
	}
	aws := awsCLI(t)
	for _, tc := range []struct {
		name string
		// setup runs with IPT set to the backend's iptables.
		setup string
		// which path the hardening blocks
		bridgeBlocked, hostBlocked bool
		// native: the block is in a native nft table (fix by command)
		native bool
		// ok: nothing to do (no false positive, nothing added)
		ok bool
	}{
		{name: "CIS AL2 INPUT policy DROP", bridgeBlocked: true,
			setup: "$IPT -A INPUT -i lo -j ACCEPT; $IPT -A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT; $IPT -A INPUT -p tcp --dport 22 -j ACCEPT; $IPT -P INPUT DROP"},
		{name: "explicit docker0 DROP", bridgeBlocked: true,
			setup: "$IPT -A INPUT -i docker0 -j DROP"},
		{name: "OUTPUT policy DROP", hostBlocked: true,
			setup: "$IPT -A OUTPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT; $IPT -P OUTPUT DROP; $IPT -A INPUT -i docker0 -p tcp --dport 8080 -j DROP"},
		{name: "native inet filter input policy drop", bridgeBlocked: true, native: true,
			setup: "nft -f - <<'EOF'\ntable inet filter {\n chain input {\n  type filter hook input priority filter; policy drop;\n  iif \"lo\" accept\n  ct state established,related accept\n  tcp dport 22 accept\n }\n}\nEOF"},
		{name: "nft tcp dport 51679 reject", bridgeBlocked: true, hostBlocked: true, native: true,
			setup: "nft -f - <<'EOF'\ntable inet hardening {\n chain input {\n  type filter hook input priority 10; policy accept;\n  tcp dport 8080 drop\n  tcp dport 51679 reject\n }\n}\nEOF"},
		{name: "OUTPUT policy DROP with -o lo accepted (169.254.170.2 is routed via lo here)", ok: true,
			setup: "$IPT -A OUTPUT -o lo -j ACCEPT; $IPT -A OUTPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT; $IPT -P OUTPUT DROP"},
		{name: "operator's own accept", ok: true,
			setup: "$IPT -A INPUT -i lo -j ACCEPT; $IPT -A INPUT -i docker0 -d 127.0.0.1 -p tcp --dport 51679 -j ACCEPT; $IPT -P INPUT DROP"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forBackends(t, func(t *testing.T, b nstest.Backend) {
				nstest.Require(t, "nsenter", "unshare", "curl", "nft")
				nstest.Run(t, func() {
					env := newPathEnv(t, b, aws)
					dir := t.TempDir()
					policy, saved := binPolicy(t, b, dir, "config.yaml", "")
					// our NAT rules and guards first, as on a host where
					// check said "compliant" before this item existed
					report, _ := binPolicy(t, b, dir, "report.yaml", "  credentials_input: report\n")
					if r := runBinary(t, "apply", "--config", report); r.code != 0 {
						t.Fatalf("apply (report): exit %d\n%s%s", r.code, r.out, r.err)
					}
					nstest.Sh(t, "IPT="+b.Iptables+"\n"+tc.setup)
					c := credNSConfig(t, b)
					ws := c.wants(true, false)
					beforeRules := withoutOurFilter(t, b, ws)
					if br, ho := env.bridge(!tc.bridgeBlocked), env.host(!tc.hostBlocked); br != !tc.bridgeBlocked || ho != !tc.hostBlocked {
						t.Fatalf("before: bridge path works %v, host path works %v; want %v, %v", br, ho, !tc.bridgeBlocked, !tc.hostBlocked)
					}
					otherBefore := otherReachable(env.pid, true) // tried again when closed: a timeout must not pass for closed

					r := runBinary(t, "check", "--config", policy, "--json")
					f := r.findings[ItemCredentialsInput]
					switch {
					case tc.ok && (r.code != 0 || f.Status != finding.OK):
						t.Fatalf("check: exit %d, %+v; want 0, ok\n%s", r.code, f, r.out)
					case !tc.ok && (r.code != 1 || f.Status != finding.Drift):
						t.Fatalf("check: exit %d, %+v; want 1, drift\n%s", r.code, f, r.out)
					}
					t.Logf("check: %s: %s; fix: %s", f.Status, f.Detail, f.Fix)
					if !tc.ok && !tc.native {
						// the dry run prints our accept and changes nothing
						r = runBinary(t, "apply", "--config", policy, "--dry-run")
						if r.code != 0 || !strings.Contains(r.out, "-p tcp --dport 51679 -m conntrack --ctstate DNAT -j ACCEPT") {
							t.Errorf("dry run: exit %d\n%s", r.code, r.out)
						}
						if after := withoutOurFilter(t, b, ws); after != beforeRules || env.bridge(!tc.bridgeBlocked) != !tc.bridgeBlocked {
							t.Errorf("the dry run changed the ruleset")
						}
					}
					r = runBinary(t, "apply", "--config", policy)
					switch {
					case tc.native:
						if r.code != 2 {
							t.Fatalf("apply with a native block: exit %d, want 2 (cannot repair)\n%s", r.code, r.err)
						}
						if !strings.Contains(f.Fix, "`nft ") || !strings.Contains(f.Fix, "nftables.conf") {
							t.Fatalf("fix does not give the nft command and where to persist it: %s", f.Fix)
						}
						for _, m := range backticks.FindAllStringSubmatch(f.Fix, -1) {
							nstest.Sh(t, m[1])
						}
					case r.code != 0:
						t.Fatalf("apply: exit %d\n%s", r.code, r.err)
					}
					r = runBinary(t, "check", "--config", policy, "--json")
					if r.code != 0 {
						t.Errorf("check after the repair: exit %d\n%s", r.code, r.out)
					}
					env.works("after the repair")
					if otherAfter := otherReachable(env.pid, otherBefore); otherAfter != otherBefore {
						t.Errorf("host port 8080 reachable from the container: %v before, %v after", otherBefore, otherAfter)
					}
					if after := withoutOurFilter(t, b, ws); after != beforeRules {
						t.Errorf("the operator's rules or policies changed:\nbefore:\n%s\nafter:\n%s", beforeRules, after)
					}
					// exactly once, persisted, and stable
					r = runBinary(t, "apply", "--config", policy)
					if r.code != 0 || strings.Contains(r.err, "inserted rule") {
						t.Errorf("second apply: exit %d\n%s", r.code, r.err)
					}
					e := newNS(t, c)
					ours := countOurs(t, e, ws)
					for k, n := range ours {
						if n != 1 {
							t.Errorf("%d copies of %s", n, k)
						}
					}
					file, err := os.ReadFile(saved)
					if err != nil {
						t.Fatal(err)
					}
					for _, w := range ws {
						if w.Item != ItemCredentialsInput {
							continue
						}
						live := ours[w.Family()+" "+w.Chain+" "+w.Spell()] == 1
						inFile := strings.Count(string(file), "-A "+w.Chain+" "+w.Spell()) == 1
						if live != inFile || (live && (tc.native || tc.ok)) {
							t.Errorf("our accept %s: live %v, in %s %v (native %v, ok %v)", w.Spell(), live, saved, inFile, tc.native, tc.ok)
						}
					}
				})
			})
		})
	}
}

// TestRouteLocalnetWaitsForGuard: when the guard cannot be installed
// (legacy: another tool holds the xtables lock; nf_tables: the restore
// fails), apply does not write route_localnet=1, says why, and exits 2;
// once the insert works, it writes it.
func TestRouteLocalnetWaitsForGuard(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary: skipped with -short")
	}
	forBackends(t, func(t *testing.T, b nstest.Backend) {
		nstest.Require(t, "unshare", "flock", "mount")
		nstest.Run(t, func() {
			dir := t.TempDir()
			policy, _ := binPolicy(t, b, dir, "config.yaml", "")
			blocked := policy
			var prefix []string
			if b.Name == "legacy" {
				// the real lock, in a private mount namespace (its own /run)
				prefix = []string{"unshare", "-m", "sh", "-c", "mount -t tmpfs tmpfs /run && flock /run/xtables.lock sleep 60 & sleep 0.3; exec \"$0\" \"$@\""}
			} else {
				// iptables-nft takes no lock: a restore that fails as one
				// would when another tool's transaction wins
				wrap := dir + "/bin"
				os.MkdirAll(wrap, 0o755)
				for name, body := range map[string]string{
					"iptables-nft":         "exec " + b.Iptables + " \"$@\"",
					"iptables-nft-save":    "exec " + b.Save + " \"$@\"",
					"iptables-nft-restore": "echo 'iptables-nft-restore: line 2 failed: Resource temporarily unavailable' >&2; exit 4",
				} {
					if err := os.WriteFile(wrap+"/"+name, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
						t.Fatal(err)
					}
				}
				blocked, _ = binPolicy(t, nstest.Backend{Iptables: wrap + "/iptables-nft"}, dir, "blocked.yaml", "")
			}
			nstest.Sh(t, "echo 0 > /proc/sys/net/ipv4/conf/all/route_localnet")
			var r binResult
			if len(prefix) > 0 {
				bin, err := remediatorBin()
				if err != nil {
					t.Fatal(err)
				}
				args := append(prefix[:len(prefix):len(prefix)], bin, "apply", "--config", blocked)
				out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
				ee, _ := err.(*exec.ExitError)
				if ee == nil || ee.ExitCode() != 2 {
					t.Fatalf("apply with the xtables lock held: %v, want exit 2\n%s", err, out)
				}
				r.err = string(out)
			} else {
				r = runBinary(t, "apply", "--config", blocked)
				if r.code != 2 {
					t.Fatalf("apply with the restore failing: exit %d, want 2\n%s", r.code, r.err)
				}
			}
			if v := strings.TrimSpace(nstest.Sh(t, "cat /proc/sys/net/ipv4/conf/all/route_localnet")); v != "0" {
				t.Fatalf("route_localnet = %s with no guard in place", v)
			}
			chk := runBinary(t, "check", "--config", policy, "--json")
			if f := chk.findings[ItemLocalhostGuard]; f.Status != finding.Drift {
				t.Errorf("guard: %+v", f)
			}
			t.Logf("apply without the guard:\n%s", r.err)
			if !strings.Contains(r.err, "not written") {
				t.Errorf("apply does not say why route_localnet was not written:\n%s", r.err)
			}
			// the lock is gone (the mount namespace died with apply), the
			// restore works: the guard goes in, then route_localnet
			if r := runBinary(t, "apply", "--config", policy); r.code != 0 {
				t.Fatalf("apply: exit %d\n%s", r.code, r.err)
			}
			if v := strings.TrimSpace(nstest.Sh(t, "cat /proc/sys/net/ipv4/conf/all/route_localnet")); v != "1" {
				t.Errorf("route_localnet = %s after the guard is in place", v)
			}
		})
	})
}

// TestShadowedGuardBinary: a foreign `-I INPUT 1 -i <if> -j ACCEPT` above
// the conntrack guard, and no raw guard: a host on the network reaches
// 127.0.0.1 while route_localnet=1. check exits 1 (drift, not a warning),
// apply puts the raw guard back and closes it without touching the
// foreign rule, and check is then clean.
func TestShadowedGuardBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test (veth, the binary): skipped with -short")
	}
	forBackends(t, func(t *testing.T, b nstest.Backend) {
		nstest.Require(t, "nsenter", "unshare", "curl")
		nstest.Run(t, func() {
			if err := os.WriteFile("/proc/sys/net/ipv4/conf/all/route_localnet", []byte("1"), 0o644); err != nil {
				t.Fatal(err)
			}
			serveAgent(t, 51679, agentCreds{AccessKeyID: "ASIALOOPBACKONLY0002"})
			pid := startContainer(t, true)
			reachable := func(want bool) bool {
				fetch := curlFrom
				if want {
					fetch = curlReaches
				}
				_, err := fetch(pid, "http://127.0.0.1:51679/v2/credentials/"+credID)
				return err == nil
			}
			policy, _ := binPolicy(t, b, t.TempDir(), "config.yaml", "")
			if r := runBinary(t, "apply", "--config", policy); r.code != 0 {
				t.Fatalf("apply: exit %d\n%s", r.code, r.err)
			}
			if reachable(false) {
				t.Fatal("127.0.0.1:51679 reachable from the network with both guards")
			}
			nstest.Sh(t, b.Iptables+" -I INPUT 1 -i veth-host -j ACCEPT; "+b.Iptables+" -t raw -D PREROUTING ! -i lo -d 127.0.0.0/8 -j DROP")
			if !reachable(true) {
				t.Fatal("the shadowed guard did not open 127.0.0.1 (test setup)")
			}
			r := runBinary(t, "check", "--config", policy, "--json")
			if f := r.findings[ItemLocalhostGuard]; r.code != 1 || f.Status != finding.Drift || !strings.Contains(f.Detail, "-i veth-host -j ACCEPT") {
				t.Errorf("check: exit %d, %+v; want 1 and drift naming the foreign rule", r.code, f)
			}
			if r := runBinary(t, "apply", "--config", policy); r.code != 0 {
				t.Fatalf("apply: exit %d\n%s", r.code, r.err)
			}
			if reachable(false) {
				t.Error("127.0.0.1:51679 still reachable from the network after apply")
			}
			r = runBinary(t, "check", "--config", policy, "--json")
			if f := r.findings[ItemLocalhostGuard]; r.code != 0 || f.Status != finding.OK || !strings.Contains(f.Detail, "raw guard drops") {
				t.Errorf("check after apply: exit %d, %+v", r.code, f)
			}
			if in := nstest.Sh(t, b.Iptables+" -S INPUT 1"); !strings.Contains(in, "-A INPUT -i veth-host -j ACCEPT") {
				t.Errorf("the foreign rule was moved or removed: INPUT 1 is %s", in)
			}
		})
	})
}
