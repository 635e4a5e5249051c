package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ecs-remediator/ecs-remediator/test/nspawn"
)

// TestDockerProxy gives the real dockerd (in a booted container) a proxy
// through a docker.service drop-in without the NO_PROXY entries:
// docker.no_proxy is drift; apply repairs the drop-in and does not restart
// Docker; check then reads the running dockerd's /proc environ and warns
// that it still runs with the old value; after the operator's restart it is
// ok.
func TestDockerProxy(t *testing.T) {
	nspawn.Require(t)
	a := build(t)
	h := host{nspawn.BootWith(t, nspawn.NewRootOf(t, nspawn.Docker), nspawn.Options{Docker: true})}
	h.CopyIn(t, a.RPM, "/var/tmp/ecs-remediator.rpm", 0o644)
	h.MustExec(t, "rpm", "-i", "--nodeps", "--ignorearch", "/var/tmp/ecs-remediator.rpm")
	const dropin = "/etc/systemd/system/docker.service.d/http-proxy.conf"
	h.WriteFile(t, dropin, []byte("[Service]\nEnvironment=\"HTTP_PROXY=http://10.255.255.1:3128\"\nEnvironment=\"NO_PROXY=localhost\"\n"), 0o644)
	h.WriteFile(t, "/var/tmp/dp/ecs.config", []byte("ECS_ENABLE_TASK_IAM_ROLE=true\nECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST=true\n"), 0o644)
	h.WriteFile(t, "/var/tmp/dp/policy.yaml", []byte("ecs_config: /var/tmp/dp/ecs.config\necs_config_base: \"off\"\nnetwork:\n  mode: ignore\nagent:\n  proxy_dropin: ignore\n  restart: never\n"), 0o644)
	h.MustExec(t, "systemctl", "daemon-reload")
	h.MustExec(t, "systemctl", "start", "docker.service")
	h.waitFor(t, "dockerd to answer", 30*time.Second, func() (bool, string) {
		out, err := h.Exec("docker", "info", "--format", "{{.HTTPProxy}}")
		return err == nil && strings.Contains(out, "10.255.255.1"), out
	})
	item := func(when string) (status, detail string) {
		out, _ := h.Exec("ecs-remediator", "check", "--config", "/var/tmp/dp/policy.yaml", "--json")
		var rep struct {
			Findings []struct{ Item, Status, Detail string }
		}
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("%s: check --json: %v\n%s", when, err, out)
		}
		for _, f := range rep.Findings {
			if f.Item == "docker.no_proxy" {
				return f.Status, f.Detail
			}
		}
		t.Fatalf("%s: no docker.no_proxy finding:\n%s", when, out)
		return "", ""
	}
	if st, d := item("before"); st != "drift" || !strings.Contains(d, "lacks 169.254.169.254, 169.254.170.2") {
		t.Fatalf("before: %s %q", st, d)
	}
	pid := h.prop(t, "docker.service", "MainPID")
	if out, err := h.Exec("ecs-remediator", "apply", "--config", "/var/tmp/dp/policy.yaml"); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	if got, _ := h.ReadFile(dropin); !strings.Contains(got, `"NO_PROXY=localhost,169.254.169.254,169.254.170.2"`) {
		t.Errorf("drop-in after apply:\n%s", got)
	}
	if now := h.prop(t, "docker.service", "MainPID"); now != pid {
		t.Fatalf("apply restarted Docker (MainPID %s -> %s): it must never do that", pid, now)
	}
	if st, d := item("after apply"); st != "warn" || !strings.Contains(d, "Docker still runs with the old value") || !strings.Contains(d, "pid "+pid) {
		t.Fatalf("after apply: %s %q", st, d)
	}
	// The operator restarts Docker when convenient.
	h.MustExec(t, "systemctl", "daemon-reload")
	h.MustExec(t, "systemctl", "restart", "docker.service")
	h.waitFor(t, "the restarted dockerd with the repaired NO_PROXY", 30*time.Second, func() (bool, string) {
		st, d := item("after Docker's restart")
		return st == "ok" && strings.Contains(d, "has a proxy and NO_PROXY holds"), st + " " + d
	})
}
