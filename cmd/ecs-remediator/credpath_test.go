package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ecs-remediator/ecs-remediator/pkg/policy"
	"github.com/ecs-remediator/ecs-remediator/test/nstest"
)

// bridgeTask makes docker0 (172.17.0.1/16) with a container namespace on
// it and returns a function that fetches http://169.254.170.2/creds from
// the container with curl (true: an answer came).
func bridgeTask(t *testing.T) func() bool {
	t.Helper()
	child := exec.Command("unshare", "-n", "sleep", "300")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { child.Process.Kill(); child.Wait() })
	pid := strconv.Itoa(child.Process.Pid)
	self, _ := os.Readlink("/proc/thread-self/ns/net")
	for i := 0; ; i++ {
		if ns, _ := os.Readlink("/proc/" + pid + "/ns/net"); ns != "" && ns != self {
			break
		}
		if i > 500 {
			t.Fatal("unshare -n did not create its namespace")
		}
		time.Sleep(10 * time.Millisecond)
	}
	nstest.Sh(t, "ip link add docker0 type bridge && ip addr add 172.17.0.1/16 dev docker0 && ip link set docker0 up"+
		" && ip link add veth-task type veth peer name eth0 && ip link set eth0 netns "+pid+
		" && ip link set veth-task master docker0 && ip link set veth-task up")
	nstest.Sh(t, "nsenter -t "+pid+" -n sh -c 'ip link set lo up && ip addr add 172.17.0.2/16 dev eth0 && ip link set eth0 up && ip route add default via 172.17.0.1'")
	return func() bool {
		return exec.Command("nsenter", "-t", pid, "-n", "curl", "-sS", "--fail", "--connect-timeout", "1", "--max-time", "3", "http://169.254.170.2/creds").Run() == nil
	}
}

// TestDaemonReopensCredentialPath: the daemon runs; a hardening change
// (`iptables -P INPUT DROP`) closes the path of bridge-mode tasks; within
// moments the daemon has added its narrow accept and the task gets its
// credentials again, while the policy stays DROP.
func TestDaemonReopensCredentialPath(t *testing.T) {
	for _, b := range nstest.Backends {
		t.Run(b.Name, func(t *testing.T) {
			nstest.Require(t, b.Iptables, b.Save, b.Restore, "ip", "unshare", "nsenter", "curl")
			h := newHost(t, good)
			p := h.netPolicy(b.Iptables)
			p.ECSConfigBase = policy.Off
			p.ResyncInterval, p.PollInterval = 60*time.Second, 200*time.Millisecond
			p.Persist.Iptables, p.Persist.Sysctl = filepath.Join(h.dir, "rules.v4"), filepath.Join(h.dir, "90-ecs.conf")
			p.Agent.Restart = policy.RestartNever
			h.writePolicy(t, p)

			nstest.Run(t, func() {
				ln, err := net.Listen("tcp", "127.0.0.1:51679")
				if err != nil {
					t.Fatal(err)
				}
				srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"AccessKeyId":"ASIADAEMON"}`) }), ReadHeaderTimeout: 5 * time.Second}
				go srv.Serve(ln)
				defer srv.Close()
				fetch := bridgeTask(t)

				logs := &syncBuffer{}
				cmd := exec.Command(bin, "run", "--config", h.policy)
				cmd.Stdout, cmd.Stderr = logs, logs
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				defer func() {
					cmd.Process.Signal(syscall.SIGTERM)
					cmd.Wait()
				}()
				eventually(t, "the daemon opens the path", logs, func() bool {
					return strings.Contains(logs.String(), "is running") && fetch()
				})

				nstest.Sh(t, b.Iptables+" -A INPUT -i lo -j ACCEPT; "+b.Iptables+" -A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT; "+b.Iptables+" -P INPUT DROP")
				eventually(t, "the daemon reopens the path after -P INPUT DROP", logs, func() bool {
					return strings.Contains(logs.String(), "network.credentials_input: inserted rule") && fetch()
				})
				in := nstest.Sh(t, b.Iptables+" -S INPUT")
				if !strings.HasPrefix(in, "-P INPUT DROP\n") || strings.Count(in, "--ctstate DNAT -j ACCEPT") != 1 {
					t.Errorf("INPUT after the repair:\n%s", in)
				}
				if !strings.Contains(in, "-A INPUT -d 127.0.0.1/32 -i docker0 -p tcp -m tcp --dport 51679 -m conntrack --ctstate DNAT -j ACCEPT") {
					t.Errorf("our accept is not the narrow one:\n%s", in)
				}
			})
		})
	}
}
