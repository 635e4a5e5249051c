package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ecs-remediator/ecs-remediator/pkg/envfile"
	"github.com/ecs-remediator/ecs-remediator/pkg/noproxy"
	"github.com/ecs-remediator/ecs-remediator/pkg/policy"
	"github.com/ecs-remediator/ecs-remediator/test/ecsinit"
)

// HTTP_PROXY="" through the binary: check says drift (not "no proxy
// configured"), doctor agrees, apply removes the line and keeps a backup.
func TestEmptyQuotedProxy(t *testing.T) {
	in := good + "HTTP_PROXY=\"\"\n"
	h := newHost(t, in)
	r := run(t, "check", "--config", h.policy, "--json")
	rep := decodeReport(t, r.stdout)
	if st, detail := findingOf(t, rep, "ecs_config.HTTP_PROXY"); r.code != 1 || st != "drift" || !strings.Contains(detail, "broken proxy") {
		t.Fatalf("check: exit %d, %s %q\n%s", r.code, st, detail, r.stdout)
	}
	if _, detail := findingOf(t, rep, "ecs_config.NO_PROXY"); strings.Contains(detail, "no proxy configured") {
		t.Errorf("NO_PROXY says %q", detail)
	}
	r = run(t, "doctor", "--config", h.policy, "--json", "--imds-endpoint", closedPort(t), "--timeout", "200ms")
	if _, st := decodeDoctor(t, r.stdout); st["ecs_config.HTTP_PROXY"] != "fail" || r.code != 1 {
		t.Errorf("doctor: exit %d, ecs_config.HTTP_PROXY %q", r.code, st["ecs_config.HTTP_PROXY"])
	}
	r = run(t, "apply", "--config", h.policy)
	if r.code != 0 {
		t.Fatalf("apply: exit %d\n%s", r.code, r.stderr)
	}
	if b, _ := os.ReadFile(h.ecsConfig); string(b) != good {
		t.Errorf("after apply %q, want the line removed", b)
	}
	if b, _ := os.ReadFile(h.ecsConfig + ".ecs-remediator.orig"); string(b) != in {
		t.Errorf("backup %q", b)
	}
	if r := run(t, "check", "--config", h.policy); r.code != 0 {
		t.Errorf("check after apply: exit %d\n%s", r.code, r.stdout)
	}
}

// Invalid UTF-8: a warning naming the line (compliant, exit 0), bytes kept;
// doctor shows it as warn.
func TestInvalidUTF8Warning(t *testing.T) {
	in := good + "ECS_INSTANCE_ATTRIBUTES={\"owner\": \"Jos\xe9\"}\n"
	h := newHost(t, in)
	r := run(t, "check", "--config", h.policy, "--json")
	st, detail := findingOf(t, decodeReport(t, r.stdout), "ecs_config.environment_file")
	if r.code != 0 || st != "warn" || !strings.Contains(detail, "line 4") {
		t.Fatalf("check: exit %d, %s %q", r.code, st, detail)
	}
	r = run(t, "doctor", "--config", h.policy, "--json", "--imds-endpoint", closedPort(t), "--timeout", "200ms")
	if _, st := decodeDoctor(t, r.stdout); st["ecs_config.environment_file"] != "warn" {
		t.Errorf("doctor: %q", st["ecs_config.environment_file"])
	}
	if r := run(t, "apply", "--config", h.policy); r.code != 0 {
		t.Fatalf("apply: %d %s", r.code, r.stderr)
	}
	if b, _ := os.ReadFile(h.ecsConfig); string(b) != in {
		t.Errorf("bytes changed: %q", b)
	}
}

// NO_PROXY = a,b (a near miss for ecs-init, NO_PROXY=a,b for systemd):
// after apply both readers have a, b and the required entries.
func TestNearMissNoProxyApply(t *testing.T) {
	h := newHost(t, good+"HTTP_PROXY=http://p:3128\nNO_PROXY = a,b\n")
	if r := run(t, "apply", "--config", h.policy); r.code != 0 {
		t.Fatalf("apply: %d %s", r.code, r.stderr)
	}
	b, _ := os.ReadFile(h.ecsConfig)
	sv, _ := envfile.Parse(b).Lookup("NO_PROXY")
	for reader, v := range map[string]string{"agent": ecsinit.AgentEnv(b)["NO_PROXY"], "systemd": sv.Value} {
		want := append([]string{"a", "b"}, noproxy.Required...)
		if got := noproxy.Split(v); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s reads NO_PROXY=%q, want %q (file %q)", reader, v, strings.Join(want, ","), b)
		}
	}
}

// An unset flag is true by ecs-init's default: the daemon pins it without a
// restart request; ="true" (the agent reads it as off) is repaired with one.
func TestDaemonPinsUnsetFlagWithoutRestart(t *testing.T) {
	h := newHost(t, "ECS_CLUSTER=prod\nECS_ENABLE_TASK_IAM_ROLE=true\n", func(p *policy.Policy) { p.Debounce = 50 * time.Millisecond })
	logs := &syncBuffer{}
	cmd := exec.Command(bin, "run", "--config", h.policy)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	eventually(t, "unset flag pinned", logs, fileHas(h.ecsConfig, "ECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST=true\n"))
	eventually(t, "daemon up", logs, func() bool { return strings.Contains(logs.String(), "is running") })
	if !strings.Contains(logs.String(), "unset (true by ecs-init's default)") {
		t.Errorf("the repair does not say why:\n%s", logs.String())
	}

	os.WriteFile(h.ecsConfig, []byte("ECS_CLUSTER=prod\nECS_ENABLE_TASK_IAM_ROLE=\"true\"\nECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST=true\n"), 0o644)
	eventually(t, "quoted flag repaired", logs, fileHas(h.ecsConfig, "\nECS_ENABLE_TASK_IAM_ROLE=true\n"))
	// The restarter gathers every reason it was asked for: the one attempt
	// names the quoted flag, and never the pinned one.
	eventually(t, "a restart attempt for the quoted flag", logs, func() bool {
		return strings.Contains(logs.String(), `"reason": "ecs_config.ECS_ENABLE_TASK_IAM_ROLE changed"`) &&
			strings.Contains(logs.String(), `"action": "restart-`)
	})
	if l := logs.String(); strings.Contains(l, "ECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST changed") || strings.Contains(l, "ECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST, ") {
		t.Fatalf("pinning the unset flag asked for an agent restart:\n%s", l)
	}
}

// apply says whether the agent needs a restart.
func TestApplyRestartAdvice(t *testing.T) {
	for _, tc := range []struct {
		file, want, not string
	}{
		{"ECS_ENABLE_TASK_IAM_ROLE=true\n", "no agent restart", "restart it (systemctl restart ecs)"},
		{"ECS_ENABLE_TASK_IAM_ROLE=yes\nECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST=true\n", "restart it (systemctl restart ecs)", "no agent restart"},
	} {
		h := newHost(t, tc.file)
		r := run(t, "apply", "--config", h.policy)
		if r.code != 0 || !strings.Contains(r.stderr, tc.want) || strings.Contains(r.stderr, tc.not) {
			t.Errorf("%q: exit %d\n%s", tc.file, r.code, r.stderr)
		}
	}
}

// docker.no_proxy through the binary: drift, apply repairs the drop-in and
// never restarts Docker, the running dockerd (a fake /proc) with the old
// value is a warning until it runs with the new one; ignore turns it off.
func TestDockerNoProxyBinary(t *testing.T) {
	proc := t.TempDir()
	fakeProc := func(p *policy.Policy) { p.Doctor.ProcRoot = proc }
	h := newHost(t, good, fakeProc)
	dropin := filepath.Join(h.pol.Docker.DropinDir, "http-proxy.conf")
	os.MkdirAll(filepath.Dir(dropin), 0o755)
	os.WriteFile(dropin, []byte("[Service]\nEnvironment=\"HTTP_PROXY=http://10.0.0.1:3128\" \"NO_PROXY=localhost\"\n"), 0o644)
	dockerd := func(noProxy string) {
		os.MkdirAll(filepath.Join(proc, "731"), 0o755)
		os.WriteFile(filepath.Join(proc, "731", "comm"), []byte("dockerd\n"), 0o644)
		os.WriteFile(filepath.Join(proc, "731", "environ"), []byte("HTTP_PROXY=http://10.0.0.1:3128\x00NO_PROXY="+noProxy+"\x00"), 0o644)
	}
	dockerd("localhost")

	r := run(t, "check", "--config", h.policy, "--json")
	if st, detail := findingOf(t, decodeReport(t, r.stdout), "docker.no_proxy"); r.code != 1 || st != "drift" {
		t.Fatalf("check: exit %d %s %q", r.code, st, detail)
	}
	r = run(t, "apply", "--config", h.policy)
	if r.code != 0 || strings.Contains(r.stderr, "restart it (systemctl restart ecs)") {
		t.Fatalf("apply: exit %d\n%s", r.code, r.stderr)
	}
	if b, _ := os.ReadFile(dropin); !strings.Contains(string(b), `"NO_PROXY=localhost,169.254.169.254,169.254.170.2"`) {
		t.Errorf("drop-in after apply:\n%s", b)
	}
	r = run(t, "check", "--config", h.policy, "--json")
	if st, detail := findingOf(t, decodeReport(t, r.stdout), "docker.no_proxy"); r.code != 0 || st != "warn" || !strings.Contains(detail, "Docker still runs with the old value") {
		t.Fatalf("check after apply: exit %d %s %q", r.code, st, detail)
	}
	dockerd("localhost,169.254.169.254,169.254.170.2")
	r = run(t, "check", "--config", h.policy, "--json")
	if st, detail := findingOf(t, decodeReport(t, r.stdout), "docker.no_proxy"); st != "ok" {
		t.Fatalf("after Docker's restart: %s %q", st, detail)
	}

	off := newHost(t, good, fakeProc, func(p *policy.Policy) { p.Docker.NoProxy = policy.AutoOff })
	r = run(t, "check", "--config", off.policy, "--json")
	for _, f := range decodeReport(t, r.stdout).Findings {
		if f.Item == "docker.no_proxy" {
			t.Errorf("docker.no_proxy: ignore still reports %+v", f)
		}
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ECS Anywhere through the binary: doctor skips the IMDS tree with the
// reason and checks the SSM registration and the credentials file instead.
func TestDoctorECSAnywhere(t *testing.T) {
	dir := t.TempDir()
	regFile, credFile := filepath.Join(dir, "ssm/registration"), filepath.Join(dir, "root/.aws/credentials")
	os.MkdirAll(filepath.Dir(regFile), 0o755)
	os.MkdirAll(filepath.Dir(credFile), 0o700)
	os.WriteFile(regFile, []byte(`{"ManagedInstanceID":"mi-0abc","Region":"eu-west-1"}`), 0o600)
	h := newHost(t, good+"ECS_EXTERNAL=true\nAWS_DEFAULT_REGION=eu-west-1\n", func(p *policy.Policy) {
		p.Doctor.ProcRoot, p.Doctor.SSMRegistration, p.Doctor.ExternalCredentials = filepath.Join(dir, "proc"), regFile, credFile
	})
	doctor := func() map[string]string {
		r := run(t, "doctor", "--config", h.policy, "--json", "--imds-endpoint", closedPort(t), "--timeout", "200ms")
		_, st := decodeDoctor(t, r.stdout)
		if !strings.Contains(r.stdout, "ECS Anywhere") {
			t.Errorf("no reason for the skipped IMDS tree:\n%s", r.stdout)
		}
		return st
	}
	st := doctor()
	for _, item := range []string{"imds.reachable", "imds.v2", "imds.instance_profile", "imds.instance_profile_info", "imds.role_credentials"} {
		if st[item] != "skip" {
			t.Errorf("%s = %q, want skip", item, st[item])
		}
	}
	if st["external.ssm_registration"] != "ok" || st["external.credentials"] != "fail" {
		t.Errorf("no credentials file yet: %v", st)
	}
	os.WriteFile(credFile, []byte("[default]\naws_access_key_id=A\naws_secret_access_key=B\naws_session_token=C\n"), 0o600)
	if st := doctor(); st["external.credentials"] != "ok" {
		t.Errorf("fresh credentials: %v", st)
	}
	// ECS_EXTERNAL=1: external for the agent, not for ecs-init (which
	// then mounts no credentials).
	os.WriteFile(h.ecsConfig, []byte(good+"ECS_EXTERNAL=1\n"), 0o644)
	if st := doctor(); st["external.credentials"] != "fail" || st["imds.reachable"] != "skip" {
		t.Errorf("ECS_EXTERNAL=1: %v", st)
	}
}
