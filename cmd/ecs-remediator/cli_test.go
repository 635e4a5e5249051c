package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ecs-remediator/ecs-remediator/pkg/policy"
	"github.com/ecs-remediator/ecs-remediator/test/testbin"
	"github.com/ecs-remediator/ecs-remediator/test/testpolicy"
)

// bin is the real binary, built once for every CLI test.
var bin string

func TestMain(m *testing.M) { testbin.Main(m, &bin) }

type result struct {
	code           int
	stdout, stderr string
}

func run(t *testing.T, args ...string) result {
	t.Helper()
	return runAs(t, bin, nil, args...)
}

// runAs runs the binary at path with attr (nil: as this process).
func runAs(t *testing.T, path string, attr *syscall.SysProcAttr, args ...string) result {
	t.Helper()
	cmd := exec.Command(path, args...)
	cmd.SysProcAttr = attr
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code, out.String(), errb.String()}
}

// hostFiles is a temp dir with a policy that points every path into it
// (test/testpolicy).
type hostFiles struct {
	dir, policy, ecsConfig string
	pol                    *policy.Policy // what newHost wrote
}

// newHost writes ecsConfig (unless it is "") and a policy that leaves the
// kernel alone (network.mode ignore; network tests run in namespaces and
// write their own with writePolicy); edits change that policy.
func newHost(t *testing.T, ecsConfig string, edits ...func(*policy.Policy)) hostFiles {
	t.Helper()
	dir := t.TempDir()
	p := testpolicy.New(dir)
	h := hostFiles{dir: dir, policy: filepath.Join(dir, "config.yaml"), ecsConfig: p.ECSConfig, pol: p}
	if ecsConfig != "" {
		os.MkdirAll(filepath.Dir(h.ecsConfig), 0o755)
		if err := os.WriteFile(h.ecsConfig, []byte(ecsConfig), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p.Network.Mode = policy.Ignore
	for _, e := range edits {
		e(p)
	}
	h.writePolicy(t, p)
	return h
}

// netPolicy is h's policy for a test that runs the product in a private
// network namespace with the iptables binary iptables.
func (h hostFiles) netPolicy(iptables string) *policy.Policy {
	p := testpolicy.NewNetns(h.dir)
	p.Network.Iptables = iptables
	return p
}

// writePolicy replaces h's policy with p, whose paths must be in the
// test's temporary directories (h.dir's parent holds every t.TempDir() of
// t) or the namespace's /proc (testpolicy.Netns).
func (h hostFiles) writePolicy(t *testing.T, p *policy.Policy) {
	t.Helper()
	testpolicy.Write(t, h.policy, p, filepath.Dir(h.dir), testpolicy.Netns)
}

func decodeReport(t *testing.T, s string) report {
	t.Helper()
	var r report
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		t.Fatalf("check --json printed invalid JSON: %v\n%s", err, s)
	}
	return r
}

func findingOf(t *testing.T, r report, item string) (status, detail string) {
	t.Helper()
	for _, f := range r.Findings {
		if f.Item == item {
			return string(f.Status), f.Detail
		}
	}
	t.Fatalf("no finding %q in %+v", item, r.Findings)
	return "", ""
}

const good = "ECS_CLUSTER=prod\nECS_ENABLE_TASK_IAM_ROLE=true\nECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST=true\n"

func TestCheckCompliant(t *testing.T) {
	h := newHost(t, good)
	r := run(t, "check", "--config", h.policy, "--json")
	if r.code != 0 {
		t.Fatalf("exit %d, want 0\n%s%s", r.code, r.stdout, r.stderr)
	}
	rep := decodeReport(t, r.stdout)
	if !rep.Compliant {
		t.Fatalf("not compliant: %s", r.stdout)
	}
	for _, f := range rep.Findings {
		if f.Item == "" || f.Status == "" {
			t.Errorf("finding without item or status: %+v", f)
		}
	}
	// The human table is aligned and ends with a verdict.
	r = run(t, "check", "--config", h.policy)
	if r.code != 0 || !strings.Contains(r.stdout, "STATUS") || !strings.Contains(r.stdout, "compliant:") {
		t.Fatalf("table output: exit %d\n%s", r.code, r.stdout)
	}
}

// The traps of docs/ecs-config.md, end to end through the binary.
func TestCheckDrift(t *testing.T) {
	for _, tc := range []struct{ name, file, item string }{
		{"quoted true", "ECS_ENABLE_TASK_IAM_ROLE=\"true\"\nECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST=true\n", "ecs_config.ECS_ENABLE_TASK_IAM_ROLE"},
		{"yes", "ECS_ENABLE_TASK_IAM_ROLE=yes\nECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST=true\n", "ecs_config.ECS_ENABLE_TASK_IAM_ROLE"},
		{"later false wins", good + "ECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST=false\n", "ecs_config.ECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST"},
		{"spaced key", "ECS_ENABLE_TASK_IAM_ROLE = true\nECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST=true\n", "ecs_config.ECS_ENABLE_TASK_IAM_ROLE"},
		{"proxy without no_proxy", good + "HTTP_PROXY=10.0.0.1:3128\n", "ecs_config.NO_PROXY"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHost(t, tc.file)
			r := run(t, "check", "--config", h.policy, "--json")
			if r.code != 1 {
				t.Fatalf("exit %d, want 1\n%s%s", r.code, r.stdout, r.stderr)
			}
			rep := decodeReport(t, r.stdout)
			if st, _ := findingOf(t, rep, tc.item); st != "drift" || rep.Compliant {
				t.Fatalf("%s: status %s compliant %v", tc.item, st, rep.Compliant)
			}
		})
	}
}

func TestCheckErrors(t *testing.T) {
	h := newHost(t, good)
	// A bad policy names file, line and key, and exits 2.
	bad := filepath.Join(h.dir, "bad.yaml")
	os.WriteFile(bad, []byte("ecs_config: /x\nnetwork:\n  agent_port: many\n"), 0o644)
	r := run(t, "check", "--config", bad)
	if r.code != 2 || !strings.Contains(r.stderr, bad+":3") || !strings.Contains(r.stderr, "network.agent_port") {
		t.Fatalf("bad policy: exit %d stderr %q", r.code, r.stderr)
	}
	// A value that is only wrong when used (an iptables binary that is not
	// installed) is still reported at its file, line and key, before anything
	// is touched.
	os.WriteFile(bad, []byte("log_level: info\nnetwork:\n  iptables: "+filepath.Join(h.dir, "no/iptables")+"\n"), 0o644)
	for _, cmd := range []string{"check", "apply"} {
		r = run(t, cmd, "--config", bad)
		if r.code != 2 || !strings.Contains(r.stderr, bad+":3") || !strings.Contains(r.stderr, `"network.iptables"`) {
			t.Fatalf("%s with a missing iptables binary: exit %d stderr %q", cmd, r.code, r.stderr)
		}
	}
	// An explicit policy file that does not exist is an error.
	if r := run(t, "check", "--config", filepath.Join(h.dir, "missing.yaml")); r.code != 2 || !strings.Contains(r.stderr, "does not exist") {
		t.Fatalf("missing policy: exit %d stderr %q", r.code, r.stderr)
	}
	// A bad flag exits 2.
	if r := run(t, "check", "--nope"); r.code != 2 {
		t.Fatalf("bad flag: exit %d", r.code)
	}
	if r := run(t, "check", "extra-arg"); r.code != 2 {
		t.Fatalf("stray argument: exit %d", r.code)
	}
	if r := run(t, "frobnicate"); r.code != 2 || !strings.Contains(r.stderr, "unknown command") {
		t.Fatalf("unknown command: exit %d", r.code)
	}
	// An ecs.config that is a directory is an error, not drift.
	os.Remove(h.ecsConfig)
	os.Mkdir(h.ecsConfig, 0o755)
	if r := run(t, "check", "--config", h.policy); r.code != 2 {
		t.Fatalf("directory as ecs.config: exit %d\n%s", r.code, r.stdout)
	}
}

func TestApply(t *testing.T) {
	orig := "# cluster settings\r\nECS_CLUSTER=prod\r\nECS_ENABLE_TASK_IAM_ROLE=\"true\"\r\nUNKNOWN_KEY=keep me\r\n"
	h := newHost(t, orig)
	os.Chmod(h.ecsConfig, 0o640)

	// Dry-run prints a diff and changes nothing.
	r := run(t, "apply", "--config", h.policy, "--dry-run")
	if r.code != 0 || !strings.Contains(r.stdout, "-ECS_ENABLE_TASK_IAM_ROLE=\"true\"") || !strings.Contains(r.stdout, "+ECS_ENABLE_TASK_IAM_ROLE=true") {
		t.Fatalf("dry-run: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if b, _ := os.ReadFile(h.ecsConfig); string(b) != orig {
		t.Fatalf("dry-run changed the file:\n%q", b)
	}
	if _, err := os.Stat(h.ecsConfig + ".ecs-remediator.orig"); err == nil {
		t.Fatal("dry-run made a backup")
	}

	r = run(t, "apply", "--config", h.policy)
	if r.code != 0 {
		t.Fatalf("apply: exit %d\n%s", r.code, r.stderr)
	}
	want := "# cluster settings\r\nECS_CLUSTER=prod\r\nECS_ENABLE_TASK_IAM_ROLE=true\r\nUNKNOWN_KEY=keep me\r\nECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST=true\r\n"
	if b, _ := os.ReadFile(h.ecsConfig); string(b) != want {
		t.Fatalf("after apply:\n%q\nwant\n%q", b, want)
	}
	if fi, _ := os.Stat(h.ecsConfig); fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode changed to %v", fi.Mode().Perm())
	}
	if b, _ := os.ReadFile(h.ecsConfig + ".ecs-remediator.orig"); string(b) != orig {
		t.Fatalf("backup is not the original: %q", b)
	}
	// The log names the item and says why.
	if !strings.Contains(r.stderr, "ecs_config.ECS_ENABLE_TASK_IAM_ROLE") {
		t.Fatalf("apply did not log the repair:\n%s", r.stderr)
	}
	// Now compliant; a second apply changes nothing and keeps the backup.
	if r := run(t, "check", "--config", h.policy); r.code != 0 {
		t.Fatalf("check after apply: exit %d\n%s", r.code, r.stdout)
	}
	os.WriteFile(h.ecsConfig, []byte("ECS_ENABLE_TASK_IAM_ROLE=false\n"), 0o640)
	if r := run(t, "apply", "--config", h.policy); r.code != 0 {
		t.Fatalf("second apply: exit %d", r.code)
	}
	if b, _ := os.ReadFile(h.ecsConfig + ".ecs-remediator.orig"); string(b) != orig {
		t.Fatalf("backup was overwritten: %q", b)
	}
}

func TestApplyCreatesMissingFile(t *testing.T) {
	h := newHost(t, "")
	if r := run(t, "apply", "--config", h.policy); r.code != 0 {
		t.Fatalf("apply: exit %d\n%s", r.code, r.stderr)
	}
	fi, err := os.Stat(h.ecsConfig)
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("created file: %v %v", err, fi)
	}
	if r := run(t, "check", "--config", h.policy); r.code != 0 {
		t.Fatalf("check after creating: exit %d\n%s", r.code, r.stdout)
	}
}

func TestHelp(t *testing.T) {
	for _, c := range commands() {
		r := run(t, c.name, "--help")
		if r.code != 0 || !strings.Contains(r.stdout, "Example") || !strings.Contains(r.stdout, "Usage: ecs-remediator "+c.name) {
			t.Errorf("%s --help: exit %d\n%s%s", c.name, r.code, r.stdout, r.stderr)
		}
	}
	if r := run(t, "--help"); r.code != 0 || !strings.Contains(r.stdout, "check") {
		t.Errorf("--help: exit %d", r.code)
	}
	if r := run(t, "version"); r.code != 0 || !strings.HasPrefix(r.stdout, "ecs-remediator ") {
		t.Errorf("version: %q", r.stdout)
	}
}
