package e2e

import (
	"strings"
	"testing"

	"github.com/ecs-remediator/ecs-remediator/test/nspawn"
)

// TestDeb installs the deb with dpkg on a booted Debian (its maintainer
// scripts get configure/upgrade/remove instead of RPM's numbers), then
// reinstalls it (the upgrade path) and removes it.
func TestDeb(t *testing.T) {
	nspawn.Require(t)
	a := build(t)
	h := host{nspawn.Boot(t, nspawn.NewRoot(t))}
	h.CopyIn(t, a.Deb, "/var/tmp/ecs-remediator.deb", 0o644)
	h.WriteFile(t, "/etc/ecs/ecs.config", []byte("ECS_CLUSTER=e2e\n"), 0o644)

	h.MustExec(t, "dpkg", "-i", "/var/tmp/ecs-remediator.deb")
	if out, _ := h.Exec("systemctl", "is-enabled", daemon); strings.TrimSpace(out) != "enabled" {
		t.Fatalf("after dpkg -i, is-enabled = %q, want enabled (preset in postinst configure)", strings.TrimSpace(out))
	}
	if _, err := h.Exec("test", "-e", "/run/xtables.lock"); err != nil {
		t.Errorf("postinst did not run systemd-tmpfiles")
	}
	h.MustExec(t, "systemctl", "start", daemon)
	h.waitActive(t, daemon)
	cfg, _ := h.ReadFile("/etc/ecs/ecs.config")
	if ok, why := ecsConfigRepaired(cfg); !ok {
		t.Fatalf("the daemon from the deb did not repair ecs.config: %s", why)
	}

	pid := h.intProp(t, daemon, "MainPID")
	h.MustExec(t, "dpkg", "-i", "/var/tmp/ecs-remediator.deb") // configure with the old version: upgrade
	h.waitActive(t, daemon)
	if p := h.intProp(t, daemon, "MainPID"); p == pid {
		t.Errorf("reinstalling (postinst configure OLDVERSION) did not try-restart the running daemon")
	}

	h.MustExec(t, "dpkg", "-r", "ecs-remediator")
	if s := h.prop(t, daemon, "ActiveState"); s != "inactive" && s != "failed" {
		t.Errorf("after dpkg -r the daemon is %s", s)
	}
	if out, _ := h.Exec("systemctl", "is-enabled", daemon); strings.Contains(out, "enabled") {
		t.Errorf("after dpkg -r is-enabled says %q", strings.TrimSpace(out))
	}
	if got, _ := h.ReadFile("/etc/ecs/ecs.config"); got != cfg {
		t.Errorf("dpkg -r changed ecs.config")
	}
	if got, err := h.ReadFile("/etc/ecs-remediator/config.yaml"); err != nil || got == "" {
		t.Errorf("dpkg -r (not purge) removed the conffile: %v", err)
	}
}
