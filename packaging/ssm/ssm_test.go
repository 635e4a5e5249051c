// Package ssm tests the SSM Command document ecs-remediator-diagnose.yaml:
// its schema, its parameters, and its script run with sh and bash against
// the real ecs-remediator binary on a policy that points every path at a
// temporary directory. It holds no non-test code.
package ssm

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/ecs-remediator/ecs-remediator/pkg/policy"
	"github.com/ecs-remediator/ecs-remediator/test/testpolicy"
)

const docFile = "ecs-remediator-diagnose.yaml"

// document is the part of the SSM Command document schema 2.2 we use;
// decoding is strict, so a misspelled key fails the test.
type document struct {
	SchemaVersion string               `yaml:"schemaVersion"`
	Description   string               `yaml:"description"`
	Parameters    map[string]parameter `yaml:"parameters"`
	MainSteps     []step               `yaml:"mainSteps"`
}

type parameter struct {
	Type              string   `yaml:"type"`
	Description       string   `yaml:"description"`
	Default           string   `yaml:"default"`
	AllowedValues     []string `yaml:"allowedValues"`
	AllowedPattern    string   `yaml:"allowedPattern"`
	InterpolationType string   `yaml:"interpolationType"`
}

type step struct {
	Action       string              `yaml:"action"`
	Name         string              `yaml:"name"`
	Precondition map[string][]string `yaml:"precondition"`
	Inputs       struct {
		TimeoutSeconds string   `yaml:"timeoutSeconds"`
		RunCommand     []string `yaml:"runCommand"`
	} `yaml:"inputs"`
}

func load(t *testing.T) document {
	t.Helper()
	data, err := os.ReadFile(docFile)
	if err != nil {
		t.Fatal(err)
	}
	var d document
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s: %v", docFile, err)
	}
	return d
}

var placeholder = regexp.MustCompile(`\{\{\s*([A-Za-z0-9_]+)\s*\}\}`)

func TestDocumentSchema(t *testing.T) {
	d := load(t)
	if d.SchemaVersion != "2.2" {
		t.Errorf("schemaVersion %q, want \"2.2\"", d.SchemaVersion)
	}
	if strings.TrimSpace(d.Description) == "" {
		t.Error("description is empty")
	}
	for name, p := range d.Parameters {
		if p.Type != "String" {
			t.Errorf("parameter %s: type %q, want String", name, p.Type)
		}
		if p.Description == "" {
			t.Errorf("parameter %s: no description", name)
		}
		if p.InterpolationType != "" && p.InterpolationType != "ENV_VAR" {
			t.Errorf("parameter %s: interpolationType %q, want ENV_VAR or none", name, p.InterpolationType)
		}
		if len(p.AllowedValues) == 0 && p.AllowedPattern == "" {
			t.Errorf("parameter %s: neither allowedValues nor allowedPattern; a value is pasted into a shell script", name)
		}
		if len(p.AllowedValues) > 0 && !slices.Contains(p.AllowedValues, p.Default) {
			t.Errorf("parameter %s: default %q not in allowedValues %v", name, p.Default, p.AllowedValues)
		}
		if p.AllowedPattern != "" {
			re, err := regexp.Compile(p.AllowedPattern)
			if err != nil {
				t.Errorf("parameter %s: allowedPattern: %v", name, err)
			} else if !re.MatchString(p.Default) {
				t.Errorf("parameter %s: default %q does not match allowedPattern %s", name, p.Default, p.AllowedPattern)
			}
		}
	}
	apply := d.Parameters["Apply"]
	if !slices.Equal(apply.AllowedValues, []string{"false", "true"}) || apply.Default != "false" {
		t.Errorf("Apply: allowedValues %v default %q, want [false true] and \"false\" (read-only unless asked)", apply.AllowedValues, apply.Default)
	}
	cfg := d.Parameters["ConfigPath"]
	if cfg.Default != "/etc/ecs-remediator/config.yaml" {
		t.Errorf("ConfigPath default %q, want /etc/ecs-remediator/config.yaml", cfg.Default)
	}
	if re, err := regexp.Compile(cfg.AllowedPattern); err == nil {
		for _, good := range []string{"/etc/ecs-remediator/config.yaml", "/opt/ecs_remediator/prod-1.2.yaml", t.TempDir() + "/p.yaml"} {
			if !re.MatchString(good) {
				t.Errorf("ConfigPath allowedPattern refuses %q", good)
			}
		}
		for _, bad := range []string{"", "relative.yaml", "/x'; reboot; '", "/x$(reboot)", "/x`id`", "/x y", "/x\nreboot", "/x;id", "/x\"", "/x|id"} {
			if re.MatchString(bad) {
				t.Errorf("ConfigPath allowedPattern accepts %q, which could break out of the script's quotes", bad)
			}
		}
	}

	if len(d.MainSteps) != 1 {
		t.Fatalf("%d mainSteps, want 1", len(d.MainSteps))
	}
	s := d.MainSteps[0]
	if s.Action != "aws:runShellScript" {
		t.Errorf("action %q, want aws:runShellScript", s.Action)
	}
	if !regexp.MustCompile(`^[A-Za-z0-9_.-]{1,100}$`).MatchString(s.Name) {
		t.Errorf("step name %q is not a valid SSM step name", s.Name)
	}
	if got := s.Precondition["StringEquals"]; !slices.Equal(got, []string{"platformType", "Linux"}) {
		t.Errorf("precondition %v, want StringEquals [platformType Linux]", s.Precondition)
	}
	if !regexp.MustCompile(`^[0-9]+$`).MatchString(s.Inputs.TimeoutSeconds) {
		t.Errorf("timeoutSeconds %q is not a number", s.Inputs.TimeoutSeconds)
	}
	script := strings.Join(s.Inputs.RunCommand, "\n")
	if strings.TrimSpace(script) == "" {
		t.Fatal("runCommand is empty")
	}
	used := map[string]bool{}
	for _, m := range placeholder.FindAllStringSubmatch(script, -1) {
		if _, ok := d.Parameters[m[1]]; !ok {
			t.Errorf("runCommand uses {{ %s }}, which is not a parameter", m[1])
		}
		used[m[1]] = true
	}
	for name, p := range d.Parameters {
		if p.InterpolationType == "ENV_VAR" && !strings.Contains(script, "SSM_"+name) {
			t.Errorf("parameter %s has interpolationType ENV_VAR but the script never reads $SSM_%s", name, name)
		}
		if !used[name] {
			t.Errorf("parameter %s is never used as {{ %s }} (older SSM agents need the text form)", name, name)
		}
	}
	for _, want := range []string{"check --json", "doctor --json", " apply "} {
		if !strings.Contains(script, want) {
			t.Errorf("runCommand never runs %q", want)
		}
	}
	for _, sh := range []string{"sh", "bash"} {
		if out, err := exec.Command(sh, "-n", "-c", script).CombinedOutput(); err != nil {
			t.Errorf("%s -n: %v\n%s", sh, err, out)
		}
	}
}

// script returns the step's commands with the parameters substituted as SSM
// does it textually.
func script(t *testing.T, d document, params map[string]string) string {
	t.Helper()
	s := strings.Join(d.MainSteps[0].Inputs.RunCommand, "\n")
	return placeholder.ReplaceAllStringFunc(s, func(m string) string {
		name := placeholder.FindStringSubmatch(m)[1]
		if v, ok := params[name]; ok {
			return v
		}
		return d.Parameters[name].Default
	})
}

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// realBinary builds ./cmd/ecs-remediator once into a directory that holds
// nothing else, and returns that directory.
func realBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the real binary; skipped with -short")
	}
	buildOnce.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			buildErr = fmt.Errorf("go not on PATH: %w", err)
			return
		}
		out, err := exec.Command(goBin, "env", "GOMOD").Output()
		if err != nil || strings.TrimSpace(string(out)) == "" {
			buildErr = fmt.Errorf("go env GOMOD: %v (%s)", err, out)
			return
		}
		root := filepath.Dir(strings.TrimSpace(string(out)))
		binDir, err = os.MkdirTemp("", "ssm-test-bin-")
		if err != nil {
			buildErr = err
			return
		}
		cmd := exec.Command(goBin, "build", "-o", filepath.Join(binDir, "ecs-remediator"), "./cmd/ecs-remediator")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/ecs-remediator: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// host is one temporary "instance": an ecs.config and a policy that points
// every path the binary uses at the temporary directory and every network
// check at a closed local port.
type host struct {
	dir, ecsConfig, policy string
}

func newHost(t *testing.T, ecsConfig string) host {
	t.Helper()
	dir := t.TempDir()
	h := host{dir: dir, ecsConfig: filepath.Join(dir, "ecs.config"), policy: filepath.Join(dir, "config.yaml")}
	if err := os.WriteFile(h.ecsConfig, []byte(ecsConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	p := testpolicy.New(dir)
	p.ECSConfig, p.ECSConfigBase = h.ecsConfig, policy.Off
	p.Network.Mode = policy.Ignore
	p.Persist.Iptables, p.Persist.Sysctl = policy.Off, policy.Off
	p.Agent.ProxyDropin, p.Agent.Restart = policy.AutoOff, policy.RestartNever
	p.Agent.IntrospectionURL = "http://127.0.0.1:9/v1/metadata"
	p.Doctor.IMDSEndpoint, p.Doctor.CredentialsURL = "http://127.0.0.1:9", "http://127.0.0.1:9/v2/credentials/"
	p.Doctor.Timeout, p.Doctor.ProcRoot = time.Second, filepath.Join(dir, "proc")
	testpolicy.Write(t, h.policy, p)
	return h
}

const (
	compliantConfig = "ECS_CLUSTER=prod\nECS_ENABLE_TASK_IAM_ROLE=true\nECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST=true\n"
	// The quotes are kept by ecs-init, so the agent reads an invalid bool.
	brokenConfig = "ECS_CLUSTER=prod\nECS_ENABLE_TASK_IAM_ROLE=\"true\"\nECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST=true\n"
)

type run struct {
	code           int
	stdout, stderr string
}

// runScript runs the document's script with shell. With envVar the
// ConfigPath reaches it as $SSM_ConfigPath (new SSM agents) and the text
// placeholder holds a bogus path, proving the variable wins; without, only
// the text is substituted (older agents).
func runScript(t *testing.T, shell, pathDirs string, params map[string]string, envVar bool) run {
	t.Helper()
	d := load(t)
	sub := maps(params)
	env := []string{"PATH=" + pathDirs, "HOME=" + t.TempDir(), "TMPDIR=" + t.TempDir(), "LC_ALL=C"}
	if envVar {
		env = append(env, "SSM_ConfigPath="+params["ConfigPath"])
		sub["ConfigPath"] = "/nonexistent/bogus-from-text.yaml"
	}
	cmd := exec.Command(shell, "-c", script(t, d, sub))
	cmd.Env = env
	cmd.Dir = t.TempDir()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", shell, err)
	}
	return run{code, stdout.String(), stderr.String()}
}

func maps(m map[string]string) map[string]string {
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// doctorCode is the exit status of the real binary's doctor on h, or -1
// when this build has no doctor command yet (the script then skips it).
func doctorCode(t *testing.T, bin string, h host) int {
	t.Helper()
	if err := exec.Command(bin, "doctor", "--help").Run(); err != nil {
		t.Logf("ecs-remediator has no doctor command yet (doctor --help: %v): the script's doctor part is skipped and only check decides", err)
		return -1
	}
	err := exec.Command(bin, "doctor", "--json", "--config", h.policy).Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0
}

// summaryLine is the summary's line that starts with prefix, without it
// ("" when there is none). The summary ends at the first empty line.
func summaryLine(out, prefix string) string {
	head, _, _ := strings.Cut(out, "\n\n")
	for _, l := range strings.Split(head, "\n") {
		if rest, ok := strings.CutPrefix(l, prefix); ok {
			return rest
		}
	}
	return ""
}

// worst combines exit statuses as the script must: 2 > 1 > 0.
func worst(codes ...int) int {
	w := 0
	for _, c := range codes {
		switch {
		case c < 0 || c == 0:
		case c == 1:
			w = max(w, 1)
		default:
			w = 2
		}
	}
	return w
}

var verdicts = map[int]string{0: "RESULT: OK", 1: "RESULT: NOT-OK", 2: "RESULT: ERROR"}

func TestScriptWithRealBinary(t *testing.T) {
	dir := realBinary(t)
	bin := filepath.Join(dir, "ecs-remediator")
	path := dir + ":/usr/bin:/bin"

	for _, c := range []struct {
		name      string
		config    string
		apply     string
		checkCode int    // what check must report on its own
		notOK     string // an entry the summary must list
		warning   string // an entry the summary must list as a warning, not as not ok
		after     string // a line ecs.config must hold afterwards
	}{
		{name: "compliant", config: compliantConfig, apply: "false", checkCode: 0},
		// A byte of invalid UTF-8: systemd skips the file for ecs-init's own
		// process, a warning (compliant, check exits 0).
		{name: "warning", config: "ECS_CLUSTER=caf\xe9\n" + compliantConfig[len("ECS_CLUSTER=prod\n"):], apply: "false", checkCode: 0,
			warning: "ecs_config.environment_file=warn"},
		{name: "broken", config: brokenConfig, apply: "false", checkCode: 1,
			notOK: "ecs_config.ECS_ENABLE_TASK_IAM_ROLE=drift", after: `ECS_ENABLE_TASK_IAM_ROLE="true"`},
		{name: "broken, Apply=true repairs first", config: brokenConfig, apply: "true", checkCode: 0,
			after: "ECS_ENABLE_TASK_IAM_ROLE=true"},
	} {
		for _, shell := range []string{"sh", "bash"} {
			for _, envVar := range []bool{false, true} {
				name := fmt.Sprintf("%s/%s/envvar=%v", c.name, shell, envVar)
				t.Run(name, func(t *testing.T) {
					h := newHost(t, c.config)
					doctor := doctorCode(t, bin, h)
					r := runScript(t, shell, path, map[string]string{"Apply": c.apply, "ConfigPath": h.policy}, envVar)
					want := worst(c.checkCode, doctor)
					if c.checkCode == 0 && doctor < 0 && want != 0 {
						t.Fatalf("test bug: want %d", want)
					}
					if r.code != want {
						t.Errorf("exit %d, want %d (check alone %d, doctor %d)\nstdout:\n%s\nstderr:\n%s", r.code, want, c.checkCode, doctor, r.stdout, r.stderr)
					}
					if c.checkCode != 0 && r.code == 0 {
						t.Errorf("a broken ecs.config did not fail the invocation")
					}
					first, _, _ := strings.Cut(r.stdout, "\n")
					if !strings.HasPrefix(first, verdicts[want]) {
						t.Errorf("first line %q, want it to start with %q (the summary comes first)", first, verdicts[want])
					}
					if !strings.Contains(r.stdout, fmt.Sprintf("== ecs-remediator check --json (exit %d)", c.checkCode)) {
						t.Errorf("check's report or exit code missing from the output:\n%s", r.stdout)
					}
					if !strings.Contains(r.stdout, "== ecs-remediator doctor --json") {
						t.Errorf("doctor's section missing from the output:\n%s", r.stdout)
					}
					if wantCompliant := fmt.Sprintf(`"compliant": %v`, c.checkCode == 0); !strings.Contains(r.stdout, wantCompliant) {
						t.Errorf("check --json output without %s:\n%s", wantCompliant, r.stdout)
					}
					if !strings.Contains(r.stdout, "policy: "+h.policy) {
						t.Errorf("the script did not use ConfigPath %s:\n%s", h.policy, r.stdout)
					}
					if c.notOK != "" && !strings.Contains(r.stdout, c.notOK) {
						t.Errorf("summary does not list %s:\n%s", c.notOK, r.stdout)
					}
					if c.warning != "" {
						notOK, warnings := summaryLine(r.stdout, "not ok: "), summaryLine(r.stdout, "warnings: ")
						if strings.Contains(notOK, c.warning) || !strings.Contains(warnings, c.warning) {
							t.Errorf("summary: %s must be a warning, not ok\nnot ok: %q\nwarnings: %q\n%s", c.warning, notOK, warnings, r.stdout)
						}
					}
					if c.apply == "true" && !strings.Contains(r.stdout, "== ecs-remediator apply (exit 0)") {
						t.Errorf("apply did not run or failed:\n%s\n%s", r.stdout, r.stderr)
					}
					if c.apply != "true" && strings.Contains(r.stdout, "== ecs-remediator apply") {
						t.Errorf("apply ran with Apply=%s", c.apply)
					}
					if c.after != "" {
						data, err := os.ReadFile(h.ecsConfig)
						if err != nil {
							t.Fatal(err)
						}
						if !slices.Contains(strings.Split(string(data), "\n"), c.after) {
							t.Errorf("ecs.config afterwards lacks the line %s:\n%s", c.after, data)
						}
					}
				})
			}
		}
	}
}

func TestScriptMissingPolicyIsAnError(t *testing.T) {
	dir := realBinary(t)
	h := newHost(t, compliantConfig)
	missing := filepath.Join(h.dir, "missing.yaml")
	r := runScript(t, "sh", dir+":/usr/bin:/bin", map[string]string{"ConfigPath": missing}, false)
	if r.code != 2 || !strings.HasPrefix(r.stdout, "RESULT: ERROR") {
		t.Errorf("exit %d, want 2 with RESULT: ERROR for a missing non-default policy\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, missing) {
		t.Errorf("stderr does not name %s:\n%s", missing, r.stderr)
	}
}

func TestScriptWithoutBinary(t *testing.T) {
	for _, d := range []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"} {
		if _, err := os.Stat(filepath.Join(d, "ecs-remediator")); err == nil {
			t.Skipf("ecs-remediator is installed in %s on this machine; the script would find it", d)
		}
	}
	h := newHost(t, compliantConfig)
	for _, shell := range []string{"sh", "bash"} {
		r := runScript(t, shell, "/nonexistent", map[string]string{"ConfigPath": h.policy}, false)
		if r.code != 2 {
			t.Errorf("%s: exit %d without the binary, want 2\nstdout:\n%s\nstderr:\n%s", shell, r.code, r.stdout, r.stderr)
		}
		if !strings.HasPrefix(r.stdout, "RESULT: ERROR - ecs-remediator is not installed") || !strings.Contains(r.stderr, "install the ecs-remediator package") {
			t.Errorf("%s: no clear message without the binary\nstdout:\n%s\nstderr:\n%s", shell, r.stdout, r.stderr)
		}
	}
}
