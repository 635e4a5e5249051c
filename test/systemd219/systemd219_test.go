package systemd219

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ecs-remediator/ecs-remediator/pkg/policy"
	"github.com/ecs-remediator/ecs-remediator/test/nstest"
	"github.com/ecs-remediator/ecs-remediator/test/testbin"
	"github.com/ecs-remediator/ecs-remediator/test/testpolicy"
)

var (
	bin    string // the real ecs-remediator
	helper string // sd219exec, compiled by TestMain when cc and libseccomp exist
	noHelp string // why it is not there
)

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "ecs-remediator-sd219-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if !testing.Short() {
		if bin, err = testbin.Build(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.RemoveAll(dir)
			os.Exit(1)
		}
		helper = filepath.Join(dir, "sd219exec")
		if out, err := exec.Command("cc", "-O2", "-Wall", "-o", helper, "testdata/sd219exec.c", "-lseccomp").CombinedOutput(); err != nil {
			helper, noHelp = "", fmt.Sprintf("cannot build testdata/sd219exec.c (apt-get install -y gcc libseccomp-dev): %v\n%s", err, out)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// requireHelper skips (fails in CI) without root or the compiled helper.
func requireHelper(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: the seccomp simulation builds a C helper and the binary")
	}
	nstest.Require(t)
	if helper == "" {
		if os.Getenv("ECS_REMEDIATOR_REQUIRE_NS") == "1" {
			t.Fatal(noHelp)
		}
		t.Skip(noHelp)
	}
}

// libseccomp resolves names with the helper, as 219 does with
// seccomp_syscall_resolve_name.
func libseccomp(t *testing.T) Resolver {
	cache := map[string]int{}
	return func(name string) int {
		if id, ok := cache[name]; ok {
			return id
		}
		out, err := exec.Command(helper, "resolve", name).Output()
		if err != nil {
			t.Fatalf("sd219exec resolve %s: %v", name, err)
		}
		f := strings.Fields(string(out))
		id, err := strconv.Atoi(f[len(f)-1])
		if err != nil {
			t.Fatalf("sd219exec resolve %s: %q", name, out)
		}
		cache[name] = id
		return id
	}
}

const unitPath = "../../systemd/ecs-remediator.service"

// fakeResolver knows a few plain names, like libseccomp, and no @groups.
func fakeResolver(name string) int {
	ids := map[string]int{"execve": 59, "exit": 60, "exit_group": 231, "rt_sigreturn": 15, "read": 0, "write": 1, "mount": 165, "ptrace": 101, "reboot": 169}
	if id, ok := ids[name]; ok {
		return id
	}
	return -1
}

func sorted(xs []int) []int {
	out := append([]int(nil), xs...)
	sort.Ints(out)
	return out
}

// The rules of systemd 219 that decide the filter (pure logic).
func TestParseRules(t *testing.T) {
	cases := []struct {
		name, unit string
		allow      bool
		calls      []int
		ignored    int
	}{
		{"a group is unknown: the allow list holds only the defaults", "[Service]\nSystemCallFilter=@system-service\n", true, []int{15, 59, 60, 231}, 1},
		{"the first line decides: a later ~ line removes from the allow list", "[Service]\nSystemCallFilter=read @system-service\nSystemCallFilter=~@privileged read\n", true, []int{15, 59, 60, 231}, 2},
		{"a deny list of groups is empty", "[Service]\nSystemCallFilter=~@clock @mount\n", false, []int{}, 2},
		{"named calls in a deny list are denied", "[Service]\nSystemCallFilter=~@mount mount ptrace\nSystemCallFilter=~reboot\n", false, []int{101, 165, 169}, 1},
		{"a later allow line removes from a deny list", "[Service]\nSystemCallFilter=~mount ptrace\nSystemCallFilter=ptrace\n", false, []int{165}, 0},
		{"an empty assignment resets", "[Service]\nSystemCallFilter=@system-service\nSystemCallFilter=\nSystemCallFilter=~mount\n", false, []int{165}, 1},
		{"other sections do not count", "[Unit]\nSystemCallFilter=read\n[Service]\n# SystemCallFilter=read\n", false, nil, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := Parse(fakeResolver, c.unit)
			if s.SyscallAllowList != c.allow || fmt.Sprint(sorted(s.Syscalls)) != fmt.Sprint(c.calls) || (s.Syscalls == nil) != (c.calls == nil) {
				t.Errorf("allow=%v calls=%v, want allow=%v calls=%v", s.SyscallAllowList, sorted(s.Syscalls), c.allow, c.calls)
			}
			if len(s.Ignored) != c.ignored {
				t.Errorf("ignored %q, want %d", s.Ignored, c.ignored)
			}
		})
	}
	s := Parse(fakeResolver, "[Service]\nSystemCallErrorNumber=EPERM\nSystemCallArchitectures=native x86-64 aarch64\nRestrictAddressFamilies=AF_UNIX AF_INET\nRestrictAddressFamilies=~AF_INET\nNoNewPrivileges=yes\n")
	if s.Errno != 1 || !s.ArchsSet || len(s.Archs) != 2 || !s.AFAllowList || fmt.Sprint(s.AFs) != "[1]" || !s.NoNewPrivileges {
		t.Errorf("sandbox = %+v", s)
	}
}

// The packaged unit, read with 219's rules: the daemon must not get an
// allow list (219 cannot build the one we mean), and the deny list must
// hold real system calls, so Amazon Linux 2 gets a filter that does
// something.
func TestPackagedUnitFilterShape(t *testing.T) {
	requireHelper(t)
	s, err := LoadFiles(libseccomp(t), unitPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("systemd 219 ignores: %s", strings.Join(s.Ignored, ", "))
	if s.SyscallAllowList {
		t.Fatalf("under systemd 219 SystemCallFilter= of %s is an allow list of %d system calls: the daemon cannot run", unitPath, len(s.Syscalls))
	}
	r := libseccomp(t)
	for _, name := range []string{"init_module", "mount", "ptrace", "reboot", "kexec_load", "bpf"} {
		id := r(name)
		found := false
		for _, c := range s.Syscalls {
			found = found || c == id
		}
		if !found {
			t.Errorf("under systemd 219 the unit does not deny %s (list it by name next to the groups 219 does not know)", name)
		}
	}
	if s.Errno == 0 || !s.ArchsSet || !s.AFAllowList || !s.NoNewPrivileges {
		t.Errorf("sandbox under 219 = %+v, want EPERM, native architecture, an address family allow list and no_new_privs", s)
	}
}

// The negative control: the unit as it was (allow list @system-service)
// gives, under 219, an allow list of the defaults only, and the binary
// cannot even print its version under it. If this passes, the simulation
// would catch the bug.
func TestOldAllowListBreaksTheDaemon(t *testing.T) {
	requireHelper(t)
	s := Parse(libseccomp(t), "[Service]\nNoNewPrivileges=yes\nSystemCallArchitectures=native\nSystemCallFilter=@system-service\nSystemCallFilter=~@privileged @resources\nSystemCallErrorNumber=EPERM\n")
	if !s.SyscallAllowList || len(s.Syscalls) > 5 {
		t.Fatalf("the old unit under 219: allow=%v with %d calls, want an allow list of at most 5", s.SyscallAllowList, len(s.Syscalls))
	}
	r := run(t, s, nil, bin, "version")
	if r.err == nil {
		t.Fatalf("ecs-remediator version works under an allow list of %v: the simulation does not filter\n%s", s.Syscalls, r.out)
	}
	t.Logf("under the old unit's 219 filter: %v\n%s", r.err, r.out)
}

type result struct {
	out string
	err error
}

// run runs argv under the sandbox and waits (bounded, not timed).
func run(t *testing.T, s Sandbox, env []string, argv ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := command(ctx, s, argv...)
	cmd.Env = append(os.Environ(), env...)
	var b bytes.Buffer
	cmd.Stdout, cmd.Stderr = &b, &b
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%v under the 219 filter did not return (hung?):\n%s", argv, b.String())
	}
	return result{b.String(), err}
}

func command(ctx context.Context, s Sandbox, argv ...string) *exec.Cmd {
	args := append(append(append([]string{"exec"}, s.Args()...), "--"), argv...)
	return exec.CommandContext(ctx, helper, args...)
}

// host is a temp dir the binary's policy points everything into; the kernel
// side is the namespace's.
type host struct {
	dir, policy, ecsConfig string
}

func newHost(t *testing.T, iptables string) host {
	dir := t.TempDir()
	h := host{dir: dir, policy: filepath.Join(dir, "config.yaml"), ecsConfig: filepath.Join(dir, "etc/ecs/ecs.config")}
	os.MkdirAll(filepath.Dir(h.ecsConfig), 0o755)
	os.WriteFile(h.ecsConfig, []byte("ECS_CLUSTER=al2\nECS_ENABLE_TASK_IAM_ROLE=\"true\"\n"), 0o644)
	p := func(s string) string { return filepath.Join(dir, s) }
	pol := testpolicy.NewNetns(dir)
	pol.ECSConfigBase = policy.Off
	pol.Network.Iptables = iptables
	pol.Persist.Iptables, pol.Persist.Sysctl = p("rules.v4"), p("sysctl.d/90-ecs-remediator.conf")
	pol.Persist.SystemdDir = p("systemd")
	pol.Agent.Restart = policy.RestartNever
	pol.Agent.ProxyDropinDir = p("ecs.service.d")
	pol.Doctor.IMDSEndpoint, pol.Doctor.CredentialsURL = "http://127.0.0.1:9", "http://127.0.0.1:9/v2/credentials/"
	pol.Metrics.Textfile = p("metrics/ecs_remediator.prom")
	pol.ResyncInterval = 2 * time.Second
	testpolicy.Write(t, h.policy, pol, testpolicy.Netns)
	return h
}

func repaired(cfg string) bool {
	return strings.Contains(cfg, "\nECS_ENABLE_TASK_IAM_ROLE=true\n") && strings.Contains(cfg, "\nECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST=true\n")
}

// The packaged unit's filters as systemd 219 builds them, with the real
// binary and the real iptables of both backends in a private network
// namespace: check finds the drift, apply repairs it, check is then clean,
// and the daemon runs, repairs a hand edit and a flushed nat table, and
// stops cleanly on SIGTERM. Children (iptables) run under the filter too,
// as under systemd.
func TestPackagedUnitRunsUnderSystemd219Filter(t *testing.T) {
	requireHelper(t)
	s, err := LoadFiles(libseccomp(t), unitPath)
	if err != nil {
		t.Fatal(err)
	}
	if r := run(t, s, nil, bin, "version"); r.err != nil {
		t.Fatalf("ecs-remediator version under the 219 filter: %v\n%s", r.err, r.out)
	}
	for _, b := range nstest.Backends {
		t.Run(b.Name, func(t *testing.T) {
			nstest.Require(t, b.Iptables, b.Save, "ip")
			h := newHost(t, b.Iptables)
			nstest.Run(t, func() {
				if r := run(t, s, nil, bin, "check", "--config", h.policy); exitCode(r.err) != 1 {
					t.Fatalf("check on a drifted host under the 219 filter: %v, want exit 1 (drift)\n%s", r.err, r.out)
				}
				if r := run(t, s, nil, bin, "apply", "--config", h.policy); r.err != nil {
					t.Fatalf("apply under the 219 filter: %v\n%s", r.err, r.out)
				}
				if r := run(t, s, nil, bin, "check", "--config", h.policy); r.err != nil {
					t.Fatalf("check after apply under the 219 filter: %v\n%s", r.err, r.out)
				}
				if live := nstest.Sh(t, b.Save+" -t nat"); !strings.Contains(live, "127.0.0.1:51679") {
					t.Fatalf("apply under the 219 filter left no DNAT rule:\n%s", live)
				}
				daemon(t, s, h, b.Iptables)
			})
		})
	}
}

func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// daemon runs `ecs-remediator run` under the filter (from the namespace
// goroutine), makes it repair twice, and stops it.
func daemon(t *testing.T, s Sandbox, h host, iptables string) {
	var logs testbin.Log
	cmd := command(context.Background(), s, bin, "run", "--config", h.policy)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
		}
	}()
	alive := func(what string) {
		select {
		case err := <-done:
			t.Fatalf("%s: the daemon died under the 219 filter (%v)\n%s", what, err, logs.String())
		default:
		}
	}
	eventually := func(what string, cond func() bool) {
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			alive(what)
			if time.Now().After(deadline) {
				t.Fatalf("%s: not reached\n%s", what, logs.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	eventually("daemon up", func() bool { return strings.Contains(logs.String(), "is running") })
	os.WriteFile(h.ecsConfig, []byte("ECS_CLUSTER=al2\nECS_ENABLE_TASK_IAM_ROLE=false\n"), 0o644)
	eventually("hand edit repaired", func() bool { b, _ := os.ReadFile(h.ecsConfig); return repaired(string(b)) })
	if out, err := exec.Command(iptables, "-t", "nat", "-F").CombinedOutput(); err != nil {
		t.Fatalf("%s -t nat -F: %v %s", iptables, err, out)
	}
	eventually("nat rules back", func() bool {
		out, _ := exec.Command(iptables, "-t", "nat", "-S").Output()
		return strings.Contains(string(out), "127.0.0.1:51679")
	})
	alive("after the repairs")
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the daemon exited with %v after SIGTERM under the 219 filter\n%s", err, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the daemon ignored SIGTERM\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "operation not permitted") {
		t.Errorf("something in the daemon was denied a system call under the 219 filter:\n%s", logs.String())
	}
}

// Every directive the unit uses is in docs/platforms.md's table of what
// systemd 219 does with it, so a new directive cannot skip the question.
func TestUnitDirectivesAreListed(t *testing.T) {
	unit, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../../docs/platforms.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(unit), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' || line[0] == '[' {
			continue
		}
		k, _, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		if !bytes.Contains(doc, []byte("`"+k+"=")) {
			t.Errorf("%s uses %s=, which docs/platforms.md does not list: say what systemd 219 does with it (src/core/load-fragment-gperf.gperf.m4 at tag v219)", unitPath, k)
		}
	}
}
