package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ecs-remediator/ecs-remediator/test/nspawn"
)

// The Docker scenario's peers inside the container host.
const (
	// taskImage is a few-MB image of the credclient alone (a static Go
	// binary: the AWS SDK for Go v2's credential chain, and a plain GET),
	// imported from a file: no registry.
	taskImage = "local/task"
	// imdsAddr is served by busybox httpd in a network namespace of its own
	// behind a veth, so a container's packets to it are forwarded, as to
	// the real IMDS on an instance (not delivered locally like 169.254.170.2).
	imdsAddr   = "169.254.169.254"
	instanceID = "i-0e2edocker00000"
	// otherPort is a host service that the CIS-hardened INPUT keeps closed:
	// opening the credential path must not open it to containers.
	otherPort = "8081"
)

// TestDockerBridge is the credential path of a bridge-mode task with real
// Docker: Debian's dockerd inside a booted container with its real DOCKER,
// DOCKER-USER, FORWARD and nat chains on docker0, the RPM installed, the
// stand-in agent on 127.0.0.1:51679 and ecs-init's DNAT rule and
// route_localnet in place. Then a CIS hardening (INPUT policy DROP, only lo
// and ESTABLISHED accepted) cuts the path, and doctor's probe says where;
// the daemon reopens it narrowly, keeps bridge containers away from IMDS
// while the host still reaches it, and a Docker restart (which rebuilds its
// chains) leaves all of it working.
func TestDockerBridge(t *testing.T) {
	nspawn.Require(t)
	a := build(t)
	h := host{nspawn.BootWith(t, nspawn.NewRootOf(t, nspawn.Docker), nspawn.Options{Docker: true})}

	// The instance: the package, the stand-in agent, the scenario's policy.
	h.CopyIn(t, a.RPM, "/var/tmp/ecs-remediator.rpm", 0o644)
	h.MustExec(t, "rpm", "-i", "--nodeps", "--ignorearch", "/var/tmp/ecs-remediator.rpm")
	h.CopyIn(t, a.Credclient, "/usr/local/bin/credclient", 0o755)
	h.CopyIn(t, "testdata/ecs.service", "/etc/systemd/system/ecs.service", 0o644)
	h.CopyIn(t, "testdata/policy-docker.yaml", "/etc/ecs-remediator/config.yaml", 0o644)
	h.WriteFile(t, "/etc/ecs/ecs.config", []byte("ECS_CLUSTER=e2e\nECS_ENABLE_TASK_IAM_ROLE=true\nECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST=true\n"), 0o644)
	h.MustExec(t, "systemctl", "daemon-reload")
	h.MustExec(t, "systemctl", "start", agent, "docker.service")
	h.waitActive(t, agent)
	h.waitFor(t, "dockerd to answer", 30*time.Second, func() (bool, string) {
		out, err := h.Exec("docker", "info", "--format", "{{.ServerVersion}} {{.Driver}}")
		return err == nil, out
	})
	h.MustSh(t, `set -e
rm -rf /var/tmp/img && mkdir -p /var/tmp/img/etc
cp /usr/local/bin/credclient /var/tmp/img/credclient
tar -C /var/tmp/img -c . | docker import - `+taskImage)
	h.MustSh(t, `set -e
mkdir -p /srv/imds/latest/meta-data /srv/other
printf '`+instanceID+`' > /srv/imds/latest/meta-data/instance-id
echo other > /srv/other/index.html
ip netns add imds
ip link add imds0 type veth peer name eth0 netns imds
ip addr add 169.254.169.1/24 dev imds0 && ip link set imds0 up
ip -n imds addr add `+imdsAddr+`/24 dev eth0 && ip -n imds link set eth0 up && ip -n imds link set lo up
systemd-run --unit=imds-standin ip netns exec imds busybox httpd -f -p `+imdsAddr+`:80 -h /srv/imds
systemd-run --unit=other-service busybox httpd -f -p 0.0.0.0:`+otherPort+` -h /srv/other`)

	// What ecs-init does at agent start: the DNAT for bridge-mode tasks and
	// route_localnet.
	h.MustExec(t, "iptables", "-t", "nat", "-A", "PREROUTING", "-d", "169.254.170.2/32", "-p", "tcp", "-m", "tcp", "--dport", "80",
		"-j", "DNAT", "--to-destination", "127.0.0.1:51679")
	h.MustExec(t, "sysctl", "-q", "-w", "net.ipv4.conf.all.route_localnet=1")

	// Before hardening: the path, the image and the IMDS stand-in work, so
	// what fails later fails for the reason the test gives it.
	h.waitFor(t, "a bridge-mode container to get credentials on the open host", 20*time.Second, func() (bool, string) {
		out, err := h.task("/credclient", "fetch")
		return err == nil && strings.Contains(out, "access_key_id=ASIAE2ETESTCREDENTIAL"), out
	})
	if out, err := h.task("/credclient", "get", "http://"+imdsAddr+"/latest/meta-data/instance-id"); err != nil || out != instanceID {
		t.Fatalf("before the daemon, a bridge container cannot reach the IMDS stand-in (%q, %v): the setup is broken", out, err)
	}

	// CIS hardening.
	h.MustSh(t, `iptables -A INPUT -i lo -j ACCEPT && iptables -A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT && iptables -P INPUT DROP`)
	if out, err := h.task("/credclient", "get", "http://169.254.170.2/v2/credentials/e2e-task"); err == nil {
		t.Fatalf("on the hardened host, a bridge container still reached the credentials endpoint: %s", out)
	}
	if r := h.bridgePath(t); r.Status != "fail" || !strings.Contains(r.Detail, "no answer to the SYN") || !strings.Contains(r.Detail, "docker0") {
		t.Errorf("doctor on the hardened host: credentials.bridge_path = %s (%s), want fail: the SYN is dropped", r.Status, r.Detail)
	}
	inputBefore := policyLine(h.MustExec(t, "iptables", "-S", "INPUT"))

	// The daemon starts: bridge containers lose IMDS at once.
	h.MustExec(t, "systemctl", "start", daemon)
	h.waitActive(t, daemon)
	h.waitFor(t, "the daemon's IMDS block for bridge containers", 20*time.Second, func() (bool, string) {
		out, err := h.task("/credclient", "get", "http://"+imdsAddr+"/latest/meta-data/instance-id")
		return err != nil, out
	})
	h.imdsBlocked(t, "after the daemon started")

	// It reopens the credential path, narrowly (network.credentials_input's
	// repair).
	if !h.hasItem(t, "network.credentials_input") {
		t.Fatalf("check --json has no network.credentials_input item: the daemon cannot judge the credential path on this hardened host")
	}
	credentials := func(when string) {
		t.Helper()
		h.waitFor(t, "a bridge-mode container to get credentials through 169.254.170.2 "+when, 30*time.Second, func() (bool, string) {
			out, err := h.task("/credclient", "fetch")
			return err == nil && strings.Contains(out, "access_key_id=ASIAE2ETESTCREDENTIAL"), out + "\n" + h.MustExec(t, "iptables", "-S", "INPUT")
		})
		if p := policyLine(h.MustExec(t, "iptables", "-S", "INPUT")); p != inputBefore {
			t.Errorf("%s: the INPUT policy changed: %q, was %q", when, p, inputBefore)
		}
		if out, err := h.task("/credclient", "get", "http://172.17.0.1:"+otherPort+"/"); err == nil {
			t.Errorf("%s: opening the credential path opened host port %s to containers too: %s", when, otherPort, out)
		}
	}
	credentials("after the daemon's repair")
	if out, err := h.Exec("ecs-remediator", "check"); err != nil {
		t.Errorf("ecs-remediator check after the repair: %v\n%s", err, out)
	}
	if r := h.bridgePath(t); r.Status != "ok" || !strings.Contains(r.Detail, "docker0") {
		t.Errorf("doctor after the repair: credentials.bridge_path = %s (%s), want ok on docker0", r.Status, r.Detail)
	}
	if links := h.MustExec(t, "ip", "-o", "link", "show"); strings.Contains(links, "ecsrp") {
		t.Errorf("doctor's probe left a link behind:\n%s", links)
	}

	// Docker rebuilds its chains on restart.
	h.MustExec(t, "systemctl", "restart", "docker.service")
	h.waitFor(t, "dockerd to answer after the restart", 30*time.Second, func() (bool, string) {
		out, err := h.Exec("docker", "info", "--format", "{{.ServerVersion}}")
		return err == nil, out
	})
	credentials("after systemctl restart docker")
	h.waitFor(t, "the IMDS block back after the Docker restart", 30*time.Second, func() (bool, string) {
		out, err := h.task("/credclient", "get", "http://"+imdsAddr+"/latest/meta-data/instance-id")
		return err != nil, out
	})
	h.imdsBlocked(t, "after the Docker restart")
}

// hasItem reports whether check --json reports item.
func (h host) hasItem(t *testing.T, item string) bool {
	t.Helper()
	out, _ := h.Exec("ecs-remediator", "check", "--json") // exit 1 on drift
	var rep struct {
		Findings []struct {
			Item string `json:"item"`
		} `json:"findings"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("check --json: %v\n%s", err, out)
	}
	for _, f := range rep.Findings {
		if f.Item == item {
			return true
		}
	}
	return false
}

// task runs a bridge-mode container of taskImage with the task's
// credential variable, as the ECS agent starts a task with a role.
func (h host) task(args ...string) (string, error) {
	full := append([]string{"docker", "run", "--rm", "--network", "bridge",
		"-e", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=/v2/credentials/e2e-task", "-e", "AWS_EC2_METADATA_DISABLED=true",
		"-e", "CREDCLIENT_TIMEOUT=5s",
		taskImage}, args...)
	out, err := h.Exec(full...)
	return strings.TrimSpace(out), err
}

// imdsBlocked: bridge containers cannot reach IMDS, the host can.
func (h host) imdsBlocked(t *testing.T, when string) {
	t.Helper()
	if out, err := h.task("/credclient", "get", "http://"+imdsAddr+"/latest/meta-data/instance-id"); err == nil {
		t.Errorf("%s: a bridge container reached IMDS (%q) with block_instance_role_for_bridge: true", when, out)
	}
	if out, err := h.Exec("/usr/local/bin/credclient", "get", "http://"+imdsAddr+"/latest/meta-data/instance-id"); err != nil || strings.TrimSpace(out) != instanceID {
		t.Errorf("%s: the host cannot reach IMDS (%q, %v): only bridge containers may be blocked", when, out, err)
	}
}

type doctorResult struct {
	Item   string `json:"item"`
	Status string `json:"status"`
	Detail string `json:"detail"`
}

// bridgePath runs doctor --json and returns its credentials.bridge_path.
func (h host) bridgePath(t *testing.T) doctorResult {
	t.Helper()
	out, _ := h.Exec("ecs-remediator", "doctor", "--json", "--timeout", "3s") // exit 1 when something fails
	var rep struct {
		Findings []doctorResult `json:"findings"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("doctor --json: %v\n%s", err, out)
	}
	for _, r := range rep.Findings {
		if r.Item == "credentials.bridge_path" {
			return r
		}
	}
	t.Fatalf("doctor --json has no credentials.bridge_path:\n%s", out)
	return doctorResult{}
}

// policyLine is the "-P INPUT ..." line of iptables -S INPUT.
func policyLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "-P ") {
			return l
		}
	}
	return ""
}
