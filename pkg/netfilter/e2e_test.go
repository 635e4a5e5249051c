package netfilter

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ecs-remediator/ecs-remediator/test/nstest"
)

// End to end with real clients: the AWS CLI on the host path (OUTPUT
// REDIRECT) and curl from a second namespace behind a veth pair on the
// bridge path (PREROUTING DNAT + route_localnet + the localhost guard).
// Failures are checked with curl on both paths, whose connect timeout is
// short; the AWS CLI's container provider retries for ~10 s.

const credID = "4f0c8e7e-task-creds"

type agentCreds struct {
	RoleArn         string `json:"RoleArn"`
	AccessKeyID     string `json:"AccessKeyId"`
	SecretAccessKey string `json:"SecretAccessKey"`
	Token           string `json:"Token"`
	Expiration      string `json:"Expiration"`
}

// awsCLI is Debian's awscli (2.x), which has `configure export-credentials`.
func awsCLI(t *testing.T) string {
	for _, p := range []string{"/usr/bin/aws", "aws"} {
		if path, err := exec.LookPath(p); err == nil {
			if exec.Command(path, "configure", "export-credentials", "help").Run() == nil {
				return path
			}
		}
	}
	msg := "needs the AWS CLI with `aws configure export-credentials` (apt-get install -y awscli)"
	if os.Getenv("ECS_REMEDIATOR_REQUIRE_NS") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// serveAgent answers /v2/credentials/<id> like the ECS agent. Call from
// the namespace's thread: the socket is created there.
func serveAgent(t *testing.T, port int, creds agentCreds) {
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v2/credentials/"+credID {
			http.Error(w, `{"code":"NotFound"}`, http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(creds)
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

// hostClient runs the AWS CLI as a task with host networking would.
func hostClient(t *testing.T, aws string) (map[string]string, error) {
	home := t.TempDir()
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(c, aws, "configure", "export-credentials", "--format", "env")
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + home,
		"AWS_CONFIG_FILE=" + filepath.Join(home, "config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "credentials"),
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=/v2/credentials/" + credID,
		"AWS_EC2_METADATA_DISABLED=true",
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("aws configure export-credentials: %v: %s", err, out)
	}
	got := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(strings.TrimPrefix(l, "export "), "="); ok {
			got[k] = v
		}
	}
	return got, nil
}

// curlClient fetches the credentials with curl, in the container
// namespace of pid (0: here). Its short connect timeout makes a missing
// rule fail in a second (the AWS CLI retries for about ten).
func curlClient(pid int) (agentCreds, error) {
	return curlFrom(pid, "http://169.254.170.2/v2/credentials/"+credID)
}

// curlReaches is curlFrom where the path must work: a connect that a
// loaded machine (2 cores, many namespaces) lets time out is tried again,
// up to 3 times. Where a path must fail, one try is the answer.
func curlReaches(pid int, url string) (agentCreds, error) {
	got, err := curlFrom(pid, url)
	for i := 1; i < 3 && err != nil; i++ {
		got, err = curlFrom(pid, url)
	}
	return got, err
}

func curlFrom(pid int, url string) (agentCreds, error) {
	var got agentCreds
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := []string{"curl", "-sS", "--fail", "--connect-timeout", "1", "--max-time", "5", url}
	if pid != 0 {
		args = append([]string{"nsenter", "-t", strconv.Itoa(pid), "-n"}, args...)
	}
	out, err := exec.CommandContext(c, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return got, fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
	if err := json.Unmarshal(out, &got); err != nil {
		return got, fmt.Errorf("curl: %v: %s", err, out)
	}
	return got, nil
}

// startContainer makes a second namespace joined by a veth pair
// (10.200.0.1 here, 10.200.0.2 there, default route back here) and
// returns the pid of a process living in it. With attacker, its loopback
// stays down and 127.0.0.0/8 is routed to us: a host on the network that
// sends packets to our 127.0.0.1, which route_localnet=1 accepts.
func startContainer(t *testing.T, attacker bool) int {
	self, err := os.Readlink("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	child := exec.Command("unshare", "-n", "sleep", "120")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { child.Process.Kill(); child.Wait() })
	pid := child.Process.Pid
	for i := 0; ; i++ { // wait until unshare has switched namespaces
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
	nstest.Sh(t, "ip link add veth-host type veth peer name veth-ctr && ip link set veth-ctr netns "+p+
		" && ip addr add 10.200.0.1/24 dev veth-host && ip link set veth-host up")
	script := "ip link set lo up && ip addr add 10.200.0.2/24 dev veth-ctr && ip link set veth-ctr up && ip route add default via 10.200.0.1"
	if attacker {
		script = "ip addr add 10.200.0.2/24 dev veth-ctr && ip link set veth-ctr up && ip route add default via 10.200.0.1" +
			" && echo 1 > /proc/sys/net/ipv4/conf/all/route_localnet && ip route add 127.0.0.0/8 via 10.200.0.1 dev veth-ctr"
	}
	nstest.Sh(t, "nsenter -t "+p+" -n sh -c '"+script+"'")
	return pid
}

func TestCredentialsEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test (AWS CLI, veth): skipped with -short")
	}
	aws := awsCLI(t)
	forBackends(t, func(t *testing.T, b nstest.Backend) {
		nstest.Require(t, "nsenter", "unshare", "curl")
		nstest.Run(t, func() {
			nstest.Sh(t, "ip route add 169.254.170.2/32 dev lo src 127.0.0.1")
			if err := os.WriteFile("/proc/sys/net/ipv4/conf/all/route_localnet", []byte("1"), 0o644); err != nil {
				t.Fatal(err)
			}
			creds := agentCreds{
				RoleArn:         "arn:aws:iam::123456789012:role/task-role",
				AccessKeyID:     "ASIAEXAMPLETASKROLE1",
				SecretAccessKey: "secret/" + b.Name + "/wJalrXUtnFEMI",
				Token:           "token-" + b.Name + "-IQoJb3JpZ2luX2VjEJr",
				Expiration:      time.Now().Add(6 * time.Hour).UTC().Format(time.RFC3339),
			}
			serveAgent(t, 51679, creds)
			pid := startContainer(t, false)
			c := nsConfig(t, b, false)
			c.ProcRoot = t.TempDir()
			c.ProcSys = c.ProcRoot // no net/ipv6 there: IPv4 only
			e := newNS(t, c)

			works := func(when string) {
				t.Helper()
				got, err := hostClient(t, aws)
				if err != nil {
					t.Errorf("%s: host path: %v", when, err)
				} else if got["AWS_ACCESS_KEY_ID"] != creds.AccessKeyID || got["AWS_SECRET_ACCESS_KEY"] != creds.SecretAccessKey || got["AWS_SESSION_TOKEN"] != creds.Token {
					t.Errorf("%s: host path: the AWS CLI got %v, want %+v", when, got, creds)
				}
				bc, err := curlReaches(pid, "http://169.254.170.2/v2/credentials/"+credID)
				if err != nil {
					t.Errorf("%s: bridge path: %v", when, err)
				} else if bc != creds {
					t.Errorf("%s: bridge path got %+v, want %+v", when, bc, creds)
				}
			}
			fails := func(when string) {
				t.Helper()
				if got, err := curlClient(0); err == nil {
					t.Errorf("%s: host path still works: %+v", when, got)
				}
				if got, err := curlClient(pid); err == nil {
					t.Errorf("%s: bridge path still works: %+v", when, got)
				}
			}

			fails("before apply")
			fs, _ := e.Apply(ctx(t), false, nil)
			requireCompliant(t, fs)
			works("after apply")
			nstest.Sh(t, b.Iptables+" -t nat -F")
			fails("after iptables -t nat -F")
			fs, cs := e.Apply(ctx(t), false, nil)
			requireCompliant(t, fs)
			if len(cs) != 2 {
				t.Errorf("re-apply: %d changes, want the 2 NAT rules: %+v", len(cs), cs)
			}
			works("after re-apply")
		})
	})
}

// TestLocalhostGuardClosesLoopback: with route_localnet=1 a host on the
// network reaches services bound to 127.0.0.1; the guard closes that, and
// the credentials DNAT still works through it (TestCredentialsEndToEnd).
func TestLocalhostGuardClosesLoopback(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test (veth): skipped with -short")
	}
	forBackends(t, func(t *testing.T, b nstest.Backend) {
		nstest.Require(t, "nsenter", "unshare", "curl")
		nstest.Run(t, func() {
			if err := os.WriteFile("/proc/sys/net/ipv4/conf/all/route_localnet", []byte("1"), 0o644); err != nil {
				t.Fatal(err)
			}
			creds := agentCreds{AccessKeyID: "ASIALOOPBACKONLY0001"}
			serveAgent(t, 51679, creds)
			pid := startContainer(t, true)
			url := "http://127.0.0.1:51679/v2/credentials/" + credID
			open := func(when string, want bool) {
				t.Helper()
				fetch := curlFrom
				if want {
					fetch = curlReaches
				}
				got, err := fetch(pid, url)
				if want && (err != nil || got != creds) {
					t.Errorf("%s: 127.0.0.1:51679 should be reachable from the network: %+v %v", when, got, err)
				}
				if !want && err == nil {
					t.Errorf("%s: 127.0.0.1:51679 is reachable from the network: %+v", when, got)
				}
			}
			open("without the guard (the hole route_localnet opens)", true)
			c := nsConfig(t, b, false)
			c.ProcRoot = t.TempDir()
			c.ProcSys = c.ProcRoot // no net/ipv6 there: IPv4 only
			e := newNS(t, c)
			fs, _ := e.Apply(ctx(t), false, nil)
			requireCompliant(t, fs)
			open("after apply", false)
			// A foreign ACCEPT above the conntrack guard (the shadowed guard
			// of issue 14): the raw guard still drops the packets first.
			nstest.Sh(t, b.Iptables+" -I INPUT 1 -i veth-host -j ACCEPT")
			open("conntrack guard shadowed, raw guard in place", false)
			if f := findingOf(e.Check(ctx(t)), ItemLocalhostGuard); f.Status != "ok" || !strings.Contains(f.Detail, "raw guard drops") {
				t.Errorf("check with the conntrack guard shadowed and the raw guard in place: %+v", f)
			}
			nstest.Sh(t, b.Iptables+" -t raw -D PREROUTING ! -i lo -d 127.0.0.0/8 -j DROP")
			open("raw guard deleted, conntrack guard shadowed", true)
			if f := findingOf(e.Check(ctx(t)), ItemLocalhostGuard); f.Status != "drift" || !strings.Contains(f.Detail, "-i veth-host -j ACCEPT") {
				t.Errorf("check with the conntrack guard shadowed and no raw guard: %+v", f)
			}
			e.Apply(ctx(t), false, nil)
			open("after re-apply (the raw guard is back)", false)
			nstest.Sh(t, b.Iptables+" -D INPUT -i veth-host -j ACCEPT")
			nstest.Sh(t, b.Iptables+" -D INPUT --dst 127.0.0.0/8 ! --src 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP")
			nstest.Sh(t, b.Iptables+" -t raw -D PREROUTING ! -i lo -d 127.0.0.0/8 -j DROP")
			open("both guards deleted", true)
			if f := findingOf(e.Check(ctx(t)), ItemLocalhostGuard); f.Status != "drift" {
				t.Errorf("check with the guards deleted: %+v", f)
			}
			e.Apply(ctx(t), false, nil)
			open("after re-apply", false)
		})
	})
}
