package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ecs-remediator/ecs-remediator/test/nspawn"
)

// TestUpgradeFromPreviousRelease: a host that runs the RPM as releases
// before 0.1.0 were built (nfpm, the full policy reference as its
// config.yaml) and whose operator edited the policy, upgraded with rpm -U
// to this release's RPM (rpmbuild): the edited policy stays, the new short
// file lands beside it as config.yaml.rpmnew (the one time the shipped file
// changes), the running daemon is restarted exactly once and stays enabled,
// and rpm -V finds nothing changed but the operator's policy.
func TestUpgradeFromPreviousRelease(t *testing.T) {
	nspawn.Require(t)
	a := build(t)
	h := host{nspawn.Boot(t, nspawn.NewRoot(t))}
	h.CopyIn(t, a.RPMPrev, "/var/tmp/prev.rpm", 0o644)
	h.CopyIn(t, a.RPM, "/var/tmp/this.rpm", 0o644)
	h.WriteFile(t, "/etc/ecs/ecs.config", []byte("ECS_CLUSTER=e2e\n"), 0o644)
	h.MustExec(t, "rpm", "-i", "--nodeps", "--ignorearch", "/var/tmp/prev.rpm")
	if got := strings.TrimSpace(h.MustExec(t, "rpm", "-q", "--qf", "%{VERSION}", "ecs-remediator")); got != RPMPrevVersion {
		t.Fatalf("installed %s, want the previous release %s", got, RPMPrevVersion)
	}
	reference, err := os.ReadFile(filepath.Join(repoRoot(), "pkg/policy/reference.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(reference), "min_restart_interval: 60s", "min_restart_interval: 2m", 1)
	if edited == string(reference) {
		t.Fatal("pkg/policy/reference.yaml has no min_restart_interval: 60s to edit")
	}
	h.WriteFile(t, "/etc/ecs-remediator/config.yaml", []byte(edited), 0o644)
	h.MustExec(t, "systemctl", "start", daemon)
	h.waitActive(t, daemon)
	pid := h.intProp(t, daemon, "MainPID")

	cur := h.cursor(t)
	h.MustExec(t, "rpm", "-U", "--nodeps", "--ignorearch", "/var/tmp/this.rpm")
	if got := strings.TrimSpace(h.MustExec(t, "rpm", "-q", "--qf", "%{VERSION}", "ecs-remediator")); got != RPMVersion {
		t.Fatalf("after rpm -U: %s, want %s", got, RPMVersion)
	}
	if got, _ := h.ReadFile("/etc/ecs-remediator/config.yaml"); got != edited {
		t.Errorf("the upgrade replaced the operator's policy; now:\n%.400s", got)
	}
	shipped, _ := os.ReadFile(filepath.Join(repoRoot(), "packaging/config.yaml"))
	if got, err := h.ReadFile("/etc/ecs-remediator/config.yaml.rpmnew"); err != nil || got != string(shipped) {
		t.Errorf("no config.yaml.rpmnew with the new short file beside the edited policy (%v)", err)
	}
	h.waitActive(t, daemon)
	if p := h.intProp(t, daemon, "MainPID"); p == pid {
		t.Errorf("the upgrade did not restart the running daemon")
	}
	if n := h.unitStarts(t, cur, daemon); n != 1 {
		t.Errorf("systemd logged %d starts of %s during the upgrade, want exactly 1", n, daemon)
	}
	if out, _ := h.Exec("systemctl", "is-enabled", daemon); strings.TrimSpace(out) != "enabled" {
		t.Errorf("after the upgrade is-enabled says %q", strings.TrimSpace(out))
	}
	// rpm -V: only the edited policy differs from the package.
	out, _ := h.Exec("rpm", "-V", "--nodeps", "ecs-remediator")
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line != "" && !strings.HasSuffix(line, " /etc/ecs-remediator/config.yaml") {
			t.Errorf("rpm -V after the upgrade: %s", line)
		}
	}
	if _, err := h.Exec("test", "-e", "/usr/share/doc/ecs-remediator/LICENSE"); err == nil {
		t.Errorf("the previous release's /usr/share/doc/ecs-remediator/LICENSE is still there (the license is %%license now)")
	}
	if j := h.Journal("-b", "-u", daemon, "--since", "-30s"); strings.Contains(j, "Failed to parse") || strings.Contains(j, "Unknown lvalue") {
		t.Errorf("systemd complains about the new unit:\n%s", j)
	}
}
