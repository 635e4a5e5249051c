// Package testpolicy writes the policy files of the tests and the benchmark
// that run the real binary. New gives the built-in policy with every host
// path the product reads or writes moved into the test's temporary
// directory, so a test names only what it changes; Write refuses a policy
// that still names a path outside the directories it was given, checked on
// the file as pkg/policy parses it, so a key added to the policy is covered
// without a change here. It touches nothing but the file it writes; the
// suite-level guard that the machine did not change is test/testbin's.
package testpolicy

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/ecs-remediator/ecs-remediator/pkg/policy"
)

// AbsentUnit is the agent unit of a test policy: a unit no machine has,
// so a restart the product asks for never reaches the host's ECS agent.
const AbsentUnit = "ecs-remediator-test-absent.service"

// Netns is the root a test passes to Write when it runs the product in a
// private network namespace (test/nstest) and gives it the namespace's own
// /proc (NewNetns): network.proc_sys and doctor.proc_root stay /proc/sys and
// /proc there, whose net/ is the namespace's.
const Netns = "/proc"

// New returns the built-in policy with every host path in dir, in the
// layout of the host's: dir/etc/ecs/ecs.config, dir/proc/sys, ... Nothing is
// created (WriteFile makes doctor.proc_root: an empty process list). The
// agent unit is AbsentUnit, metrics.textfile is off (what auto gives on a
// host without node_exporter) and the network items stay on: a test that
// runs without a namespace turns them off (Network.Mode) or runs in one
// (NewNetns). A path key added to the policy and not moved here fails this
// package's TestNewIsHermetic.
func New(dir string) *policy.Policy {
	in := func(p string) string { return filepath.Join(dir, p) }
	p := policy.Default()
	p.ECSConfig = in(p.ECSConfig)
	p.ECSConfigBase = in(p.ECSConfigBase)
	p.ECSConfigJSON = in(p.ECSConfigJSON)
	p.Network.DockerSocket = in("docker.sock")
	p.Network.ProcSys = in(p.Network.ProcSys)
	p.Persist.Sysctl = in(p.Persist.Sysctl)
	for i := range p.Persist.AutoCandidates {
		p.Persist.AutoCandidates[i].Path = in(p.Persist.AutoCandidates[i].Path)
	}
	p.Persist.SystemdDir = in(p.Persist.SystemdDir)
	p.Agent.Unit = AbsentUnit
	p.Agent.ProxyDropinDir = in(p.Agent.ProxyDropinDir)
	p.Docker.DropinDir = in(p.Docker.DropinDir)
	p.Docker.Sysconfig = in(p.Docker.Sysconfig)
	p.Doctor.ProcRoot = in(p.Doctor.ProcRoot)
	p.Doctor.SSMRegistration = in(p.Doctor.SSMRegistration)
	p.Doctor.ExternalCredentials = in(p.Doctor.ExternalCredentials)
	p.Metrics.Textfile = policy.Off
	return p
}

// NewNetns is New for a test that runs the product in a private network
// namespace: the kernel side reads and writes the namespace's /proc/sys and
// /proc/net. Write it with the Netns root.
func NewNetns(dir string) *policy.Policy {
	p := New(dir)
	d := policy.Default()
	p.Network.ProcSys, p.Doctor.ProcRoot = d.Network.ProcSys, d.Doctor.ProcRoot
	return p
}

// Write writes p to path as YAML, parses the file back with pkg/policy and
// fails t when the parsed policy names an absolute path outside path's
// directory and roots (see Outside).
func Write(t testing.TB, path string, p *policy.Policy, roots ...string) {
	t.Helper()
	if err := WriteFile(path, p, roots...); err != nil {
		t.Fatal(err)
	}
}

// WriteFile is Write for a caller without a testing.TB (the benchmark). A
// doctor.proc_root in path's directory is created empty when absent, so
// the diagnosis sees no processes rather than no procfs.
func WriteFile(path string, p *policy.Policy, roots ...string) error {
	if inside(filepath.Dir(path), p.Doctor.ProcRoot) {
		if err := os.MkdirAll(p.Doctor.ProcRoot, 0o755); err != nil {
			return err
		}
	}
	data, err := Marshal(p)
	if err != nil {
		return fmt.Errorf("test policy %s: %v", path, err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return err
	}
	return CheckFile(path, roots...)
}

// Marshal is p as a policy file: every key, in the order of the Policy
// type.
func Marshal(p *policy.Policy) ([]byte, error) {
	return yaml.Marshal(p)
}

// CheckFile parses the policy file at path as the product does and
// returns an error naming every key whose path is outside path's directory
// and roots.
func CheckFile(path string, roots ...string) error {
	loaded, err := policy.Load(path, true)
	if err != nil {
		return fmt.Errorf("test policy: %v", err)
	}
	if out := Outside(loaded, append([]string{filepath.Dir(path)}, roots...)...); len(out) > 0 {
		return fmt.Errorf("test policy %s names host paths outside %s (give the test a path there, or off):\n  %s",
			path, strings.Join(append([]string{filepath.Dir(path)}, roots...), ", "), strings.Join(out, "\n  "))
	}
	return nil
}

// Outside lists, as "key: path", every setting of p whose value is an
// absolute path not inside one of roots. It walks every string of the
// parsed policy (struct fields by their file key, lists, map values), so a
// new key is covered as soon as pkg/policy has it; the "auto" of
// metrics.textfile counts as the path it stands for, and backup's "" as
// the path next to ecs_config it means.
func Outside(p *policy.Policy, roots ...string) []string {
	var out []string
	check := func(key, v string) {
		if !filepath.IsAbs(v) {
			return
		}
		for _, r := range roots {
			if inside(r, v) {
				return
			}
		}
		out = append(out, key+": "+v)
	}
	walk(reflect.ValueOf(*p), "", check)
	if p.Metrics.Textfile == "auto" {
		check("metrics.textfile (auto)", policy.DefaultTextfile)
	}
	check("backup", p.BackupPath())
	sort.Strings(out)
	return out
}

// inside tells whether path is root or below it.
func inside(root, path string) bool {
	rel, err := filepath.Rel(root, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

func walk(v reflect.Value, key string, check func(key, v string)) {
	switch v.Kind() {
	case reflect.String:
		check(key, v.String())
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name := strings.Split(f.Tag.Get("yaml"), ",")[0]
			if key != "" {
				name = key + "." + name
			}
			walk(v.Field(i), name, check)
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			walk(v.Index(i), fmt.Sprintf("%s[%d]", key, i), check)
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			walk(v.MapIndex(k), fmt.Sprintf("%s.%v", key, k), check)
		}
	}
}
