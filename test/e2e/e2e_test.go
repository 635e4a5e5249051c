package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ecs-remediator/ecs-remediator/test/nspawn"
)

const (
	daemon = "ecs-remediator.service"
	agent  = "ecs.service"
	// settle is how long the suite watches for something that must NOT
	// happen (a second agent restart): several agent.min_restart_interval
	// (1s in testdata/policy.yaml) plus a resync (5s).
	settle = 7 * time.Second
)

// TestE2E installs the RPM in a booted container as an AMI bake would, boots
// it as a fresh instance, and runs the scenarios in order on that one
// instance. Each scenario states what it expects to find and leaves the
// host compliant for the next one; scenario 6 (erase) is last.
func TestE2E(t *testing.T) {
	nspawn.Require(t)
	a := build(t)
	h := host{nspawn.Boot(t, nspawn.NewRoot(t))}
	bake(t, h, a)
	h.Reboot(t)

	t.Run("1_boot_ordering", func(t *testing.T) { bootOrdering(t, h) })
	t.Run("2_hand_edit_restarts_agent_once", func(t *testing.T) { handEdit(t, h, a) })
	t.Run("3_nat_flush_repaired_without_agent_restart", func(t *testing.T) { natFlush(t, h) })
	t.Run("4_reboot_keeps_persisted_state", func(t *testing.T) { reboot(t, h) })
	t.Run("fresh_host_without_etc_ecs", func(t *testing.T) { freshHost(t, h) })
	t.Run("5_sdk_client_gets_credentials_via_169.254.170.2", func(t *testing.T) { client(t, h) })
	t.Run("operator_stopped_agent_stays_stopped", func(t *testing.T) { operatorStopped(t, h) })
	t.Run("legacy_backend_inside_the_sandbox", func(t *testing.T) { legacy(t, h) })
	t.Run("7_watchdog_restarts_a_hung_daemon", func(t *testing.T) { watchdog(t, h) })
	t.Run("security_exposure", func(t *testing.T) { security(t, h) })
	t.Run("ecs_config_as_systemd_reads_it", func(t *testing.T) { environmentFileAsSystemd(t, h) })
	t.Run("6_upgrade_keeps_policy_then_erase_leaves_config", func(t *testing.T) { upgradeErase(t, h, a) })
}

// bake is the image build: the RPM installed with rpm (its scriptlets run
// against the live systemd), the stand-in agent enabled, the test's edited
// policy, and an ecs.config that is broken in the way that fools people.
// Nothing is started: the next boot is the instance's first.
func bake(t *testing.T, h host, a artifacts) {
	h.CopyIn(t, a.RPM, "/var/tmp/ecs-remediator.rpm", 0o644)
	h.MustExec(t, "rpm", "-i", "--nodeps", "--ignorearch", "/var/tmp/ecs-remediator.rpm")
	if got := strings.TrimSpace(h.MustExec(t, "rpm", "-q", "--qf", "%{VERSION}", "ecs-remediator")); got != RPMVersion {
		t.Fatalf("rpm -q ecs-remediator = %q, want %s", got, RPMVersion)
	}
	// The %post scriptlet: preset enabled the unit, did not start it.
	if out, _ := h.Exec("systemctl", "is-enabled", daemon); strings.TrimSpace(out) != "enabled" {
		t.Fatalf("after rpm -i, systemctl is-enabled %s = %q, want enabled (the preset in %%post)", daemon, out)
	}
	if s := h.prop(t, daemon, "ActiveState"); s != "inactive" {
		t.Fatalf("rpm -i started the daemon (ActiveState=%s); only user data or a boot should", s)
	}
	// %post ran systemd-tmpfiles: what the sandbox needs to exist.
	for _, p := range []string{"/etc/ecs", "/run/xtables.lock"} {
		if _, err := h.Exec("test", "-e", p); err != nil {
			t.Errorf("after rpm -i, %s does not exist (packaging/tmpfiles.conf, systemd-tmpfiles in %%post)", p)
		}
	}
	if _, err := h.Exec("systemd-analyze", "verify", daemon); err != nil {
		t.Errorf("systemd-analyze verify %s: %v", daemon, err)
	}
	// The default policy file is the packaged one, byte for byte.
	want, err := os.ReadFile(filepath.Join(repoRoot(), "packaging/config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := h.ReadFile("/etc/ecs-remediator/config.yaml"); got != string(want) {
		t.Fatalf("/etc/ecs-remediator/config.yaml is not packaging/config.yaml")
	}

	h.CopyIn(t, a.Credclient, "/usr/local/bin/credclient", 0o755)
	for _, u := range []string{"ecs.service", "e2e-snapshot.service"} {
		h.CopyIn(t, filepath.Join("testdata", u), "/etc/systemd/system/"+u, 0o644)
	}
	h.MustExec(t, "systemctl", "daemon-reload")
	h.MustExec(t, "systemctl", "enable", "ecs.service", "e2e-snapshot.service")
	h.CopyIn(t, "testdata/policy.yaml", "/etc/ecs-remediator/config.yaml", 0o644)
	h.CopyIn(t, "testdata/ecs.config.broken", "/etc/ecs/ecs.config", 0o644)
	if _, err := h.Exec("ecs-remediator", "check"); err == nil {
		t.Fatal("ecs-remediator check says the baked image is compliant; the scenarios need drift")
	}
}

// 1. The daemon repairs a broken ecs.config at boot before the agent starts,
// and the agent is not restarted for it.
func bootOrdering(t *testing.T, h host) {
	h.waitActive(t, daemon)
	h.waitActive(t, agent)
	cfg, _ := h.ReadFile("/etc/ecs/ecs.config")
	if ok, why := ecsConfigRepaired(cfg); !ok {
		t.Fatalf("ecs.config not repaired at boot: %s", why)
	}
	if _, err := h.ReadFile("/etc/ecs/ecs.config.ecs-remediator.orig"); err != nil {
		t.Errorf("no backup of the original ecs.config: %v", err)
	}
	repairs := h.changes(t, "", "ecs_config.ECS_ENABLE_TASK_IAM_ROLE")
	if len(repairs) == 0 {
		// Still check the ordering on the message text, and say what is missing.
		t.Errorf("no journal record with the field ITEM=ecs_config.ECS_ENABLE_TASK_IAM_ROLE from %s at this boot (structured journald logging)", daemon)
		for _, e := range ofUnit(h.journal(t, "-b"), daemon) {
			if strings.HasPrefix(e["MESSAGE"], "ecs_config.ECS_ENABLE_TASK_IAM_ROLE:") || strings.Contains(e["MESSAGE"], `"item": "ecs_config.ECS_ENABLE_TASK_IAM_ROLE"`) {
				repairs = append(repairs, e)
			}
		}
		if len(repairs) == 0 {
			t.Fatalf("no journal record of the ECS_ENABLE_TASK_IAM_ROLE repair at this boot:\n%s", h.Journal("-b", "-u", daemon, "-n", "40"))
		}
	}
	repairedAt, _ := strconv.ParseInt(repairs[0]["__MONOTONIC_TIMESTAMP"], 10, 64)
	agentAt := h.intProp(t, agent, "ActiveEnterTimestampMonotonic")
	if agentAt <= repairedAt {
		t.Fatalf("the agent became active at %dus, before the repair was logged at %dus: Before=ecs.service / READY=1 ordering is broken", agentAt, repairedAt)
	}
	pid := h.intProp(t, agent, "ExecMainPID")
	time.Sleep(settle)
	if n := h.intProp(t, agent, "NRestarts"); n != 0 {
		t.Errorf("agent NRestarts=%d, want 0", n)
	}
	if now := h.intProp(t, agent, "ExecMainPID"); now != pid {
		t.Fatalf("the agent was restarted after the boot-time repair (ExecMainPID %d -> %d); it started with the repaired file", pid, now)
	}
}

// 2. A hand edit that switches task roles off is repaired, the agent is
// restarted exactly once (it reads ecs.config only at start), and journald
// holds the structured record and its catalog text.
func handEdit(t *testing.T, h host, a artifacts) {
	h.waitActive(t, agent)
	pid0 := h.intProp(t, agent, "ExecMainPID")
	cur := h.cursor(t)
	h.MustExec(t, "sed", "-i", "s/^ECS_ENABLE_TASK_IAM_ROLE=.*/ECS_ENABLE_TASK_IAM_ROLE=false/", "/etc/ecs/ecs.config")
	h.waitFor(t, "ecs.config repaired after the hand edit", 20*time.Second, func() (bool, string) {
		cfg, _ := h.ReadFile("/etc/ecs/ecs.config")
		return ecsConfigRepaired(cfg)
	})
	h.waitFor(t, "the agent restarted after the repair", 30*time.Second, func() (bool, string) {
		p := h.intProp(t, agent, "ExecMainPID")
		return p != pid0 && p != 0, "ExecMainPID=" + strconv.FormatInt(p, 10)
	})
	pid1 := h.intProp(t, agent, "ExecMainPID")
	time.Sleep(settle)
	if p := h.intProp(t, agent, "ExecMainPID"); p != pid1 {
		t.Errorf("the agent was restarted more than once (ExecMainPID %d -> %d -> %d)", pid0, pid1, p)
	}
	if n := h.unitStarts(t, cur, agent); n != 1 {
		t.Errorf("systemd logged %d starts of %s after the edit, want exactly 1", n, agent)
	}
	if s := h.prop(t, agent, "ActiveState"); s != "active" {
		t.Errorf("agent ActiveState=%s after the restart", s)
	}

	recs := h.changes(t, cur, "ecs_config.ECS_ENABLE_TASK_IAM_ROLE")
	if len(recs) == 0 {
		t.Fatalf("no journal record with ITEM=ecs_config.ECS_ENABLE_TASK_IAM_ROLE after the edit:\n%s",
			messages(ofUnit(h.after(t, cur), daemon)))
	}
	id := recs[0]["MESSAGE_ID"]
	if id == "" {
		t.Fatalf("the repair record has no MESSAGE_ID: %v", recs[0])
	}
	entry, err := h.Exec("journalctl", "--no-pager", "--dump-catalog", id)
	if err != nil || !strings.Contains(entry, "Subject:") {
		t.Fatalf("the installed catalog has no entry for MESSAGE_ID=%s (journalctl --dump-catalog): %v\n%s", id, err, entry)
	}
	subject := ""
	for _, line := range strings.Split(entry, "\n") {
		if s, ok := strings.CutPrefix(line, "Subject:"); ok {
			subject = strings.TrimSpace(s)
			break
		}
	}
	// journalctl -x fills the catalog's @FIELD@ placeholders from the
	// entry: compare the fixed text before the first one.
	if i := strings.Index(subject, "@"); i > 0 {
		subject = subject[:i]
	}
	x := h.MustExec(t, "journalctl", "--no-pager", "-x", "-b", "-u", daemon, "MESSAGE_ID="+id)
	if !strings.Contains(x, "░░ Subject: "+subject) || strings.Contains(x, "@ITEM@") {
		t.Fatalf("journalctl -x does not show the catalog subject %q for MESSAGE_ID=%s:\n%s", subject, id, x)
	}
}

// 3. Flushing the nat table (another tool's iptables-restore, a firewall
// reload) is repaired, the saved ruleset holds the rules, and the agent is
// not restarted: rules need no restart.
func natFlush(t *testing.T, h host) {
	pid := h.intProp(t, agent, "ExecMainPID")
	h.MustExec(t, "iptables", "-t", "nat", "-F")
	h.waitFor(t, "the credential NAT rules back after iptables -t nat -F", 20*time.Second, func() (bool, string) {
		rules := h.natRules(t)
		d, r := credentialRules(rules)
		return d == 1 && r == 1, rules
	})
	h.waitFor(t, "/etc/iptables/rules.v4 to hold the credential rules", 20*time.Second, func() (bool, string) {
		saved, _ := h.ReadFile("/etc/iptables/rules.v4")
		d, r := credentialRules(saved)
		return d == 1 && r == 1, saved
	})
	if out, err := h.Sh("iptables-restore --test < /etc/iptables/rules.v4"); err != nil {
		t.Errorf("the saved ruleset does not load: %v\n%s", err, out)
	}
	time.Sleep(settle)
	if p := h.intProp(t, agent, "ExecMainPID"); p != pid {
		t.Errorf("the agent was restarted for a rules repair (ExecMainPID %d -> %d)", pid, p)
	}
}

// 4. After a reboot the saved rules are restored by netfilter-persistent
// before the daemon starts, the sysctl file is there, nothing is duplicated,
// and check finds the host compliant.
func reboot(t *testing.T, h host) {
	h.Reboot(t)
	h.waitActive(t, daemon)
	before, err := h.ReadFile("/run/e2e-rules-before-remediator")
	if err != nil {
		t.Fatalf("the boot probe did not run: %v", err)
	}
	if d, r := credentialRules(before); d != 1 || r != 1 {
		t.Errorf("the ruleset restored at boot (before ecs-remediator started) has %d DNAT / %d REDIRECT credential rules, want 1 / 1:\n%s", d, r, before)
	}
	if sysctl, err := h.ReadFile("/etc/sysctl.d/90-ecs-remediator.conf"); err != nil || !strings.Contains(sysctl, "route_localnet") {
		t.Errorf("/etc/sysctl.d/90-ecs-remediator.conf: %v %q", err, sysctl)
	}
	h.waitFor(t, "ecs-remediator check to report compliance", 20*time.Second, func() (bool, string) {
		out, err := h.Exec("ecs-remediator", "check")
		return err == nil, out
	})
	if d, r := credentialRules(h.natRules(t)); d != 1 || r != 1 {
		t.Errorf("after reboot: %d DNAT / %d REDIRECT credential rules, want exactly 1 / 1 (restored + re-added = duplicates)", d, r)
	}
	if v := strings.TrimSpace(h.MustExec(t, "cat", "/proc/sys/net/ipv4/conf/all/route_localnet")); v != "1" {
		t.Errorf("route_localnet=%s after reboot", v)
	}
}

// A custom AMI without /etc/ecs at all: at boot tmpfiles creates the
// directory, so the sandbox can make it writable, and the daemon writes a
// complete ecs.config before the agent starts.
func freshHost(t *testing.T, h host) {
	// Stop the daemon first: while it runs it re-creates ecs.config, and
	// rm -rf races it ("Directory not empty").
	h.MustExec(t, "systemctl", "stop", daemon)
	h.MustExec(t, "rm", "-rf", "/etc/ecs")
	h.Reboot(t)
	h.waitActive(t, daemon)
	cfg, err := h.ReadFile("/etc/ecs/ecs.config")
	if err != nil {
		t.Fatalf("no /etc/ecs/ecs.config after booting without /etc/ecs: %v\n%s", err, h.Journal("-b", "-u", daemon, "-n", "40"))
	}
	if ok, why := ecsConfigRepaired(cfg); !ok {
		t.Fatalf("the created ecs.config is not complete: %s", why)
	}
	if s := h.prop(t, daemon, "NRestarts"); s != "0" {
		t.Errorf("the daemon needed %s restarts to come up", s)
	}
}

// 5. A real client (AWS SDK for Go v2, default credential chain) reaches
// the stand-in agent through http://169.254.170.2, i.e. through the NAT
// rules and route_localnet the daemon maintains.
func client(t *testing.T, h host) {
	h.waitActive(t, agent)
	// An instance reaches 169.254.170.2 through its default route; the
	// container has only lo, so give the address a route.
	h.MustExec(t, "ip", "route", "replace", "169.254.170.2/32", "dev", "lo", "src", "127.0.0.1")
	cur := h.cursor(t)
	var out string
	h.waitFor(t, "the SDK client to get credentials", 20*time.Second, func() (bool, string) {
		var err error
		out, err = h.Exec("env", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=/v2/credentials/e2e-task",
			"AWS_EC2_METADATA_DISABLED=true", "/usr/local/bin/credclient", "fetch")
		return err == nil, out
	})
	if !strings.Contains(out, "access_key_id=ASIAE2ETESTCREDENTIAL") {
		t.Fatalf("the client got other credentials: %s", out)
	}
	// The agent's log line reaches the journal through its stdout stream,
	// a moment later.
	h.waitFor(t, "the stand-in agent to log a request addressed to 169.254.170.2", 10*time.Second, func() (bool, string) {
		served := messages(ofUnit(h.after(t, cur), agent))
		return strings.Contains(served, `credentials request for "e2e-task"`) && strings.Contains(served, "Host 169.254.170.2"), served
	})
}

// The daemon repairs ecs.config while the operator has stopped the agent,
// and does not start it.
func operatorStopped(t *testing.T, h host) {
	h.MustExec(t, "systemctl", "stop", agent)
	h.MustExec(t, "sed", "-i", "s/^ECS_ENABLE_TASK_IAM_ROLE=.*/ECS_ENABLE_TASK_IAM_ROLE=false/", "/etc/ecs/ecs.config")
	h.waitFor(t, "ecs.config repaired while the agent is stopped", 20*time.Second, func() (bool, string) {
		cfg, _ := h.ReadFile("/etc/ecs/ecs.config")
		return ecsConfigRepaired(cfg)
	})
	time.Sleep(settle)
	if s := h.prop(t, agent, "ActiveState"); s != "inactive" {
		t.Errorf("the daemon started the agent the operator had stopped (ActiveState=%s)", s)
	}
	h.MustExec(t, "systemctl", "start", agent)
}

// With network.iptables: iptables-legacy the daemon repairs the legacy
// tables from inside its sandbox (raw socket: CAP_NET_RAW; the xtables lock
// under a read-only /run).
func legacy(t *testing.T, h host) {
	edited, err := os.ReadFile("testdata/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		h.WriteFile(t, "/etc/ecs-remediator/config.yaml", edited, 0o644)
		h.MustExec(t, "systemctl", "reload", daemon)
	}()
	h.WriteFile(t, "/etc/ecs-remediator/config.yaml", append(append([]byte{}, edited...), []byte("network:\n  iptables: iptables-legacy\n")...), 0o644)
	h.MustExec(t, "systemctl", "reload", daemon)
	h.waitFor(t, "the credential rules in the legacy nat table", 20*time.Second, func() (bool, string) {
		out, err := h.Exec("iptables-legacy", "-t", "nat", "-S")
		d, r := credentialRules(out)
		return err == nil && d == 1 && r == 1, out
	})
	h.MustExec(t, "iptables-legacy", "-t", "nat", "-F")
	h.waitFor(t, "the legacy rules repaired after iptables-legacy -t nat -F", 20*time.Second, func() (bool, string) {
		out, err := h.Exec("iptables-legacy", "-t", "nat", "-S")
		d, r := credentialRules(out)
		return err == nil && d == 1 && r == 1, out
	})
	if j := h.Journal("-b", "-u", daemon, "--since", "-30s"); strings.Contains(j, "xtables.lock") || strings.Contains(j, "Permission denied") {
		t.Errorf("the daemon hit the sandbox with iptables-legacy:\n%s", j)
	}
	h.MustExec(t, "iptables-legacy", "-t", "nat", "-F")
	h.MustExec(t, "iptables-legacy", "-t", "filter", "-F")
	h.MustExec(t, "ip6tables-legacy", "-t", "filter", "-F")
}

// 7. A daemon that stops answering is killed and restarted by systemd's
// watchdog (WatchdogSec=3s in a test drop-in).
func watchdog(t *testing.T, h host) {
	h.CopyIn(t, "testdata/watchdog.conf", "/etc/systemd/system/ecs-remediator.service.d/e2e-watchdog.conf", 0o644)
	h.MustExec(t, "systemctl", "daemon-reload")
	h.MustExec(t, "systemctl", "restart", daemon)
	h.waitActive(t, daemon)
	if w := h.prop(t, daemon, "WatchdogUSec"); w != "3s" {
		t.Fatalf("WatchdogUSec=%s, the drop-in did not apply", w)
	}
	restarts := h.intProp(t, daemon, "NRestarts")
	pid := h.intProp(t, daemon, "MainPID")
	// It must keep answering while healthy: wait past one watchdog period.
	time.Sleep(5 * time.Second)
	if p := h.intProp(t, daemon, "MainPID"); p != pid {
		t.Fatalf("the healthy daemon was restarted (MainPID %d -> %d): it does not send WATCHDOG=1 in time\n%s", pid, p, h.Journal("-b", "-u", daemon, "-n", "30"))
	}
	h.MustExec(t, "kill", "-STOP", strconv.FormatInt(pid, 10))
	h.waitFor(t, "systemd to restart the hung daemon", 30*time.Second, func() (bool, string) {
		p := h.intProp(t, daemon, "MainPID")
		s := h.prop(t, daemon, "ActiveState")
		return p != pid && p != 0 && s == "active", "MainPID=" + strconv.FormatInt(p, 10) + " ActiveState=" + s
	})
	if n := h.intProp(t, daemon, "NRestarts"); n != restarts+1 {
		t.Errorf("NRestarts %d -> %d, want one restart", restarts, n)
	}
	if j := h.Journal("-b", "-u", daemon); !strings.Contains(j, "Watchdog timeout") {
		t.Errorf("the journal does not say the watchdog fired:\n%s", j)
	}
	h.MustExec(t, "rm", "/etc/systemd/system/ecs-remediator.service.d/e2e-watchdog.conf")
	h.MustExec(t, "systemctl", "daemon-reload")
	h.MustExec(t, "systemctl", "restart", daemon)
	h.waitActive(t, daemon)
}

// security records systemd-analyze security's exposure score of the
// installed unit (lower is better; the aim is 2.0 or less).
func security(t *testing.T, h host) {
	out := h.MustExec(t, "systemd-analyze", "security", "--no-pager", daemon)
	var score string
	for _, line := range strings.Split(out, "\n") {
		if i := strings.Index(line, "Overall exposure level for "+daemon+": "); i >= 0 {
			score = strings.Fields(line[i+len("Overall exposure level for "+daemon+": "):])[0]
		}
	}
	v, err := strconv.ParseFloat(score, 64)
	if err != nil {
		t.Fatalf("no exposure score in:\n%s", out)
	}
	t.Logf("systemd-analyze security %s: exposure %.1f", daemon, v)
	if v > 2.0 {
		t.Errorf("exposure %.1f is above 2.0:\n%s", v, out)
	}
	// The bounds a local user cannot push the daemon past (docs/security.md).
	for prop, want := range map[string]string{"LimitNOFILE": "1024", "MemoryMax": "268435456", "TasksMax": "128"} {
		if got := h.prop(t, daemon, prop); got != want {
			t.Errorf("%s %s = %s, want %s", daemon, prop, got, want)
		}
	}
}

// 6. Upgrading keeps the edited policy and restarts the running daemon (not
// the agent); erasing stops and disables the daemon and leaves ecs.config,
// the rules and the sysctl file as they are.
func upgradeErase(t *testing.T, h host, a artifacts) {
	h.waitActive(t, daemon)
	h.waitActive(t, agent)
	policy, _ := h.ReadFile("/etc/ecs-remediator/config.yaml")
	edited, _ := os.ReadFile("testdata/policy.yaml")
	if policy != string(edited) {
		t.Fatalf("precondition: the policy file is not the test's edited one")
	}
	daemonPID := h.intProp(t, daemon, "MainPID")
	agentPID := h.intProp(t, agent, "ExecMainPID")

	h.CopyIn(t, a.RPMNext, "/var/tmp/ecs-remediator-next.rpm", 0o644)
	cur := h.cursor(t)
	h.MustExec(t, "rpm", "-U", "--nodeps", "--ignorearch", "/var/tmp/ecs-remediator-next.rpm")
	if got := strings.TrimSpace(h.MustExec(t, "rpm", "-q", "--qf", "%{VERSION}", "ecs-remediator")); got != RPMNextVersion {
		t.Fatalf("after rpm -U: version %q, want %s", got, RPMNextVersion)
	}
	if got, _ := h.ReadFile("/etc/ecs-remediator/config.yaml"); got != string(edited) {
		t.Fatalf("the upgrade replaced the edited policy file; now:\n%s", got)
	}
	h.waitActive(t, daemon)
	if p := h.intProp(t, daemon, "MainPID"); p == daemonPID {
		t.Errorf("the upgrade did not restart the running daemon (try-restart in %%post)")
	}
	if n := h.unitStarts(t, cur, daemon); n != 1 {
		t.Errorf("systemd logged %d starts of %s during the upgrade, want exactly 1", n, daemon)
	}
	// The shipped policy is all comments and did not change: the edited
	// file is kept without a .rpmnew beside it.
	if _, err := h.Exec("test", "-e", "/etc/ecs-remediator/config.yaml.rpmnew"); err == nil {
		t.Errorf("the upgrade left /etc/ecs-remediator/config.yaml.rpmnew")
	}
	if out, _ := h.Exec("systemctl", "is-enabled", daemon); strings.TrimSpace(out) != "enabled" {
		t.Errorf("after the upgrade the daemon is %q, want still enabled", strings.TrimSpace(out))
	}

	cfg, _ := h.ReadFile("/etc/ecs/ecs.config")
	saved, _ := h.ReadFile("/etc/iptables/rules.v4")
	sysctl, _ := h.ReadFile("/etc/sysctl.d/90-ecs-remediator.conf")
	h.MustExec(t, "rpm", "-e", "--nodeps", "ecs-remediator")
	if s := h.prop(t, daemon, "ActiveState"); s != "inactive" && s != "failed" {
		t.Errorf("after rpm -e the daemon is %s, want stopped", s)
	}
	if out, _ := h.Exec("systemctl", "is-enabled", daemon); strings.Contains(out, "enabled") {
		t.Errorf("after rpm -e systemctl is-enabled says %q", strings.TrimSpace(out))
	}
	if _, err := h.Exec("test", "-e", "/etc/systemd/system/multi-user.target.wants/ecs-remediator.service"); err == nil {
		t.Errorf("rpm -e left the multi-user.target.wants link")
	}
	if got, _ := h.ReadFile("/etc/ecs/ecs.config"); got != cfg {
		t.Errorf("rpm -e changed ecs.config:\n%s", got)
	}
	if got, _ := h.ReadFile("/etc/iptables/rules.v4"); got != saved {
		t.Errorf("rpm -e changed the saved ruleset")
	}
	if got, _ := h.ReadFile("/etc/sysctl.d/90-ecs-remediator.conf"); got != sysctl {
		t.Errorf("rpm -e changed or removed the sysctl file")
	}
	if d, r := credentialRules(h.natRules(t)); d != 1 || r != 1 {
		t.Errorf("rpm -e changed the live rules: %d DNAT / %d REDIRECT", d, r)
	}
	if p := h.intProp(t, agent, "ExecMainPID"); p != agentPID {
		t.Errorf("upgrade or erase restarted the agent (ExecMainPID %d -> %d)", agentPID, p)
	}
}
