package e2e

import (
	"strings"
	"testing"

	"github.com/ecs-remediator/ecs-remediator/test/nspawn"
)

// TestDeb installs the deb with dpkg on a booted Debian (its maintainer
// scripts get configure/upgrade/remove instead of RPM's numbers), upgrades
// it to the next version over an edited conffile, and removes it.
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

	// The upgrade: the operator edited the conffile; dpkg keeps it without
	// a prompt (stdin is not a terminal: a prompt would fail the install)
	// and restarts the running daemon once.
	edited := "# edited by the operator\nlog_level: debug\n"
	h.WriteFile(t, "/etc/ecs-remediator/config.yaml", []byte(edited), 0o644)
	h.MustExec(t, "systemctl", "reload", daemon)
	pid := h.intProp(t, daemon, "MainPID")
	h.CopyIn(t, a.DebNext, "/var/tmp/ecs-remediator-next.deb", 0o644)
	cur := h.cursor(t)
	if out, err := h.Sh("dpkg -i /var/tmp/ecs-remediator-next.deb </dev/null"); err != nil {
		t.Fatalf("dpkg -i of the next version: %v\n%s", err, out)
	} else if strings.Contains(out, "Configuration file") {
		t.Errorf("dpkg asked about the conffile:\n%s", out)
	}
	h.waitActive(t, daemon)
	if p := h.intProp(t, daemon, "MainPID"); p == pid {
		t.Errorf("the upgrade (postinst configure OLDVERSION) did not try-restart the running daemon")
	}
	if n := h.unitStarts(t, cur, daemon); n != 1 {
		t.Errorf("systemd logged %d starts of %s during the upgrade, want exactly 1", n, daemon)
	}
	if got, _ := h.ReadFile("/etc/ecs-remediator/config.yaml"); got != edited {
		t.Errorf("the upgrade replaced the edited conffile; now:\n%s", got)
	}
	for _, leftover := range []string{".dpkg-dist", ".dpkg-new", ".dpkg-old"} {
		if _, err := h.Exec("test", "-e", "/etc/ecs-remediator/config.yaml"+leftover); err == nil {
			t.Errorf("the upgrade left /etc/ecs-remediator/config.yaml%s", leftover)
		}
	}
	if v := strings.TrimSpace(h.MustExec(t, "dpkg-query", "-W", "-f", "${Version}", "ecs-remediator")); v != RPMNextVersion+"-1" {
		t.Errorf("after the upgrade dpkg says version %s, want %s-1", v, RPMNextVersion)
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
