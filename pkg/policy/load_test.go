package policy

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseEmptyIsDefault(t *testing.T) {
	for _, doc := range []string{"", "# only a comment\n", "---\n"} {
		p, err := Parse([]byte(doc), "p.yaml")
		if err != nil {
			t.Fatalf("Parse(%q): %v", doc, err)
		}
		if !reflect.DeepEqual(p, Default()) {
			t.Errorf("Parse(%q) differs from Default()", doc)
		}
	}
}

func TestParseOverridesDefaults(t *testing.T) {
	doc := `
ecs_config: /tmp/x/ecs.config
task_iam_role: ignore
no_proxy: ignore
extra_settings:
  ECS_AWSVPC_BLOCK_IMDS: true
  ECS_CLUSTER: prod
network:
  agent_port: 51680
  localhost_guard: false
persist:
  iptables: off
agent:
  min_restart_interval: 5s
resync_interval: 10s
`
	p, err := Parse([]byte(doc), "p.yaml")
	if err != nil {
		t.Fatal(err)
	}
	d := Default()
	if p.ECSConfig != "/tmp/x/ecs.config" || p.TaskIAMRole != Ignore || p.NoProxy != AutoOff {
		t.Errorf("top-level keys not applied: %+v", p)
	}
	if p.TaskIAMRoleNetworkHost != Enforce {
		t.Errorf("unset key lost its default")
	}
	if got := p.ExtraSettings["ECS_AWSVPC_BLOCK_IMDS"]; got != "true" {
		t.Errorf("extra_settings bool should be the text true, got %q", got)
	}
	if p.Network.AgentPort != 51680 || p.Network.LocalhostGuard || p.Network.BlockIntrospection != AutoBool {
		t.Errorf("network section: %+v", p.Network)
	}
	if p.Network.Iptables != d.Network.Iptables {
		t.Errorf("network.iptables default lost")
	}
	if p.Persist.Iptables != "off" || p.Persist.Sysctl != d.Persist.Sysctl {
		t.Errorf("persist: %+v", p.Persist)
	}
	if p.Agent.MinRestartInterval != 5*time.Second || p.Agent.Unit != "ecs.service" {
		t.Errorf("agent: %+v", p.Agent)
	}
	if p.ResyncInterval != 10*time.Second {
		t.Errorf("resync_interval: %v", p.ResyncInterval)
	}
}

// Every mistake names the file, the line and the key.
func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		line      int
		key, msg  string
	}{
		{"unknown top-level key", "ecs_config: /etc/ecs/ecs.config\ntask_iam_rol: enforce\n", 2, "task_iam_rol", "unknown key at the top level"},
		{"unknown nested key", "network:\n  agent_prot: 1\n", 2, "network.agent_prot", "unknown key in section \"network\""},
		{"unknown key: did you mean", "task_iam_rol: enforce\n", 1, "task_iam_rol", "unknown key at the top level; did you mean task_iam_role?"},
		{"unknown nested key: did you mean", "network:\n  agent_prot: 1\n", 2, "network.agent_prot", "did you mean agent_port?"},
		{"unknown key far from any", "network:\n  zzzzzzzz: 1\n", 2, "network.zzzzzzzz", "known keys: agent_port,"},
		{"bad enum", "\n\ntask_iam_role: on\n", 3, "task_iam_role", "allowed: enforce | ignore"},
		{"bad enum bool-looking", "no_proxy: true\n", 1, "no_proxy", "invalid value \"true\"; allowed: auto | ignore"},
		{"int as text", "network:\n  agent_port: abc\n", 2, "network.agent_port", "expected a whole number"},
		{"port range", "network:\n  agent_port: 70000\n", 2, "network.agent_port", "expected 1 to 65535"},
		{"bool wrong", "network:\n  localhost_guard: yes please\n", 2, "network.localhost_guard", "expected true or false"},
		{"bool yes is not true", "network:\n  localhost_guard: yes\n", 2, "network.localhost_guard", "expected true or false, got \"yes\""},
		{"quoted yes is not true", "network:\n  block_introspection: \"on\"\n", 2, "network.block_introspection", "expected true, false or auto"},
		{"duration", "agent:\n  min_restart_interval: 60\n", 2, "agent.min_restart_interval", "expected a positive duration"},
		{"duration too short", "resync_interval: 1ms\n", 1, "resync_interval", "too short"},
		{"relative path", "ecs_config: ecs.config\n", 1, "ecs_config", "absolute path"},
		{"persist special", "persist:\n  iptables: maybe\n", 2, "persist.iptables", "auto | off"},
		{"section not mapping", "network: 5\n", 1, "network", "must be a mapping"},
		{"list for scalar", "ecs_config: [a, b]\n", 1, "ecs_config", "expected a single value"},
		{"null scalar", "ecs_config:\n", 1, "ecs_config", "has no value"},
		{"duplicate key", "no_proxy: auto\nno_proxy: ignore\n", 2, "no_proxy", "appears twice"},
		{"extra bad name", "extra_settings:\n  ECS-CLUSTER: x\n", 2, "extra_settings.ECS-CLUSTER", "not a variable name"},
		{"extra managed key", "extra_settings:\n  ECS_ENABLE_TASK_IAM_ROLE: \"false\"\n", 2, "extra_settings.ECS_ENABLE_TASK_IAM_ROLE", "task_iam_role"},
		{"extra not mapping", "extra_settings: [A]\n", 1, "extra_settings", "expected a mapping"},
		{"bad unit", "agent:\n  unit: ecs\n", 2, "agent.unit", "invalid unit name"},
		{"metrics remote", "metrics:\n  listen: 0.0.0.0:9723\n", 2, "metrics.listen", "reachable from the network"},
		{"metrics all interfaces", "metrics:\n  listen: :9723\n", 2, "metrics.listen", "reachable from the network"},
		{"metrics bad addr", "metrics:\n  listen: 9723\n", 2, "metrics.listen", "invalid address"},
		{"bad url", "doctor:\n  imds_endpoint: 169.254.169.254\n", 2, "doctor.imds_endpoint", "invalid URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc), "/etc/ecs-remediator/config.yaml")
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("want *policy.Error, got %v", err)
			}
			if pe.Line != tc.line || pe.Key != tc.key || !strings.Contains(pe.Msg, tc.msg) {
				t.Errorf("got line %d key %q msg %q; want line %d key %q msg containing %q", pe.Line, pe.Key, pe.Msg, tc.line, tc.key, tc.msg)
			}
			if !strings.HasPrefix(err.Error(), "/etc/ecs-remediator/config.yaml:") {
				t.Errorf("error does not start with the file name: %s", err)
			}
		})
	}
}

func TestParseSyntaxError(t *testing.T) {
	_, err := Parse([]byte("network:\n  agent_port: 1\n bad: [\n"), "p.yaml")
	var pe *Error
	if !errors.As(err, &pe) || pe.Line == 0 || !strings.Contains(pe.Msg, "not valid YAML") {
		t.Fatalf("got %v", err)
	}
}

func TestLoadMissing(t *testing.T) {
	dir := t.TempDir()
	p, err := Load(filepath.Join(dir, "none.yaml"), false)
	if err != nil || !reflect.DeepEqual(p, Default()) {
		t.Fatalf("missing default file should give defaults, got %v", err)
	}
	if _, err := Load(filepath.Join(dir, "none.yaml"), true); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("missing explicit file should be an error, got %v", err)
	}
	f := filepath.Join(dir, "p.yaml")
	os.WriteFile(f, []byte("task_iam_role: ignore\n"), 0o644)
	p, err = Load(f, true)
	if err != nil || p.TaskIAMRole != Ignore || p.Path() != f {
		t.Fatalf("Load: %v %+v", err, p)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("network:\n  agent_port: 1\n"))
	f.Add([]byte("extra_settings: {A: b}\n"))
	f.Add([]byte("a: &x [1]\nb: *x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data, "fuzz.yaml")
		if err == nil && p == nil {
			t.Fatal("nil policy without error")
		}
		if err != nil && !strings.HasPrefix(err.Error(), "fuzz.yaml") {
			t.Fatalf("error does not name the file: %v", err)
		}
	})
}

// equal tells whether a and b hold the same settings, wherever they were
// read from.
func equal(a, b *Policy) bool {
	x, y := *a, *b
	x.path, x.lines, y.path, y.lines = "", nil, "", nil
	return reflect.DeepEqual(x, y)
}

// equal compares settings, not where they came from.
func TestEqual(t *testing.T) {
	same, err := Parse([]byte("log_level: info\n"), "a.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !equal(same, Default()) {
		t.Error("a file that repeats a default is not equal to the defaults")
	}
	other, err := Parse([]byte("log_level: debug\n"), "a.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if equal(other, Default()) {
		t.Error("log_level debug is equal to the defaults")
	}
}

func TestResolveOff(t *testing.T) {
	for in, want := range map[string]string{Off: "", "": "", "auto": "auto", "/etc/x": "/etc/x", "127.0.0.1:9": "127.0.0.1:9"} {
		if got := Resolve(in); got != want {
			t.Errorf("Resolve(%q) = %q, want %q", in, got, want)
		}
	}
}

// A restore unit is looked for where units are enabled first, then where
// packages install them.
func TestUnitDirs(t *testing.T) {
	p := Default()
	p.Persist.SystemdDir = "/x/systemd"
	if got := p.Persist.UnitDirs(); !reflect.DeepEqual(got, []string{"/x/systemd", "/usr/lib/systemd/system", "/lib/systemd/system"}) {
		t.Fatalf("UnitDirs = %q", got)
	}
}

// A boolean in quotes, as templating tools write it, means what it says.
func TestParseQuotedBools(t *testing.T) {
	p, err := Parse([]byte("network:\n  localhost_guard: \"false\"\n  block_introspection: 'TRUE'\n"), "p.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if p.Network.LocalhostGuard || p.Network.BlockIntrospection != "true" {
		t.Errorf("localhost_guard %v, block_introspection %q; want false, true", p.Network.LocalhostGuard, p.Network.BlockIntrospection)
	}
	p, err = Parse([]byte("network:\n  block_introspection: \"auto\"\n  localhost_guard: True\n"), "p.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !p.Network.LocalhostGuard || p.Network.BlockIntrospection != AutoBool {
		t.Errorf("localhost_guard %v, block_introspection %q; want true, auto", p.Network.LocalhostGuard, p.Network.BlockIntrospection)
	}
}
