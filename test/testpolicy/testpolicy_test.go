package testpolicy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/ecs-remediator/ecs-remediator/pkg/policy"
)

// New moves every host path of the built-in policy: none is left outside
// dir, and the file Write makes parses back to the same policy.
func TestNewIsHermetic(t *testing.T) {
	dir := t.TempDir()
	p := New(dir)
	p.Network.BlockIntrospection = policy.True // a BoolAuto is written as the policy takes it
	if out := Outside(p, dir); len(out) != 0 {
		t.Errorf("New left host paths: %v", out)
	}
	path := filepath.Join(dir, "config.yaml")
	Write(t, path, p)
	loaded, err := policy.Load(path, true)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := yaml.Marshal(p)
	b, _ := yaml.Marshal(loaded)
	if string(a) != string(b) {
		t.Errorf("the written policy parses to another one:\nwrote\n%s\nread\n%s", a, b)
	}
	if n := NewNetns(dir); n.Network.ProcSys != "/proc/sys" || n.Doctor.ProcRoot != "/proc" || len(Outside(n, dir, Netns)) != 0 {
		t.Errorf("NewNetns: proc_sys %s proc_root %s, outside %v", n.Network.ProcSys, n.Doctor.ProcRoot, Outside(n, dir, Netns))
	}
}

// The built-in policy's host paths are all named, by their file key, and
// the sentinels count as the paths they stand for.
func TestOutsideNamesEveryHostPath(t *testing.T) {
	out := strings.Join(Outside(policy.Default(), t.TempDir()), "\n")
	for _, want := range []string{
		"ecs_config: /etc/ecs/ecs.config", "backup: /etc/ecs/ecs.config.ecs-remediator.orig",
		"network.proc_sys: /proc/sys", "persist.sysctl: ", "persist.auto_candidates[1].path: /etc/iptables/rules.v4",
		"agent.proxy_dropin_dir: ", "docker.sysconfig: ", "doctor.ssm_registration: ",
		"metrics.textfile (auto): " + policy.DefaultTextfile,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("Outside misses %q:\n%s", want, out)
		}
	}
	p := New("/tmp/x")
	p.ExtraSettings = map[string]string{"ECS_CONFIG_DIR": "/etc/ecs"}
	if got := Outside(p, "/tmp/x"); len(got) != 1 || got[0] != "extra_settings.ECS_CONFIG_DIR: /etc/ecs" {
		t.Errorf("a path in a map value: %v", got)
	}
	if got := Outside(New("/tmp/x"), "/tmp/x2"); len(got) == 0 {
		t.Error("/tmp/x is not inside /tmp/x2")
	}
}

// Write fails on a policy that names a host path, and says which key.
func TestCheckFileNamesTheKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	p := New(dir)
	p.Persist.Sysctl = "/etc/sysctl.d/90-ecs-remediator.conf"
	err := WriteFile(path, p)
	if err == nil || !strings.Contains(err.Error(), "persist.sysctl: /etc/sysctl.d/90-ecs-remediator.conf") || !strings.Contains(err.Error(), path) {
		t.Fatalf("err = %v", err)
	}
	os.WriteFile(path, []byte("ecs_config: /etc/ecs/ecs.config\n"), 0o644)
	if err := CheckFile(path); err == nil || !strings.Contains(err.Error(), "ecs_config: /etc/ecs/ecs.config") {
		t.Fatalf("a hand-written file: err = %v", err)
	}
}
