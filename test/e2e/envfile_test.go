package e2e

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/ecs-remediator/ecs-remediator/pkg/envfile"
	"github.com/ecs-remediator/ecs-remediator/pkg/noproxy"
	"github.com/ecs-remediator/ecs-remediator/test/ecsinit"
)

// systemdEnv runs env under the container's systemd with path as the
// unit's EnvironmentFile=- and returns the variables whose names start with
// prefix.
func systemdEnv(t *testing.T, h host, path, prefix string) map[string]string {
	t.Helper()
	out := h.MustExec(t, "systemd-run", "--quiet", "--wait", "--pipe", "-p", "EnvironmentFile=-"+path, "/usr/bin/env", "-0")
	env := map[string]string{}
	for _, l := range strings.Split(out, "\x00") {
		if k, v, ok := strings.Cut(l, "="); ok && strings.HasPrefix(k, prefix) {
			env[k] = v
		}
	}
	return env
}

// environmentFileAsSystemd compares pkg/envfile with the real systemd on
// every rule docs/ecs-config.md states, then repairs an ecs.config with a
// near-miss NO_PROXY, an only-quotes proxy and a Latin-1 byte with the
// installed binary, and reads the result as both readers do: ecs-init's own
// process through the real systemd, the agent through ecs-init's loop.
func environmentFileAsSystemd(t *testing.T, h host) {
	cases := []string{
		"T_A=1\n# caf\xe9 comment\nT_B=2\n",
		"T_A=1\nT_B=caf\xe9\nT_C=3\n",
		"T_A=1\nT_K\xe9Y=2\nT_C=3\n",
		"T_A=1\nT_NO_PROXY = a,b\nT_C=3\n",
		"T_A=1\nT_HTTP_PROXY=\"\"\nT_C=''\n",
		"T_A=1\n# comment \\\nT_B=2\nT_C=3\n",
		"T_A=\"x\"y\nT_B=a\\\nb\nT_C= spaced  \n",
		"export T_A=1\nT_B=2\r\nT_C=3\rT_X=4\n",
		"\xef\xbb\xbfT_A=1\nT_B=2\n",
		"T_A=1\n;T_B=2\n  #T_C=3\nT_X=a#b\n",
		"T_A='x\\y' B\nT_C=\"q\\\"\\$\\n\"\n",
		"T_A=1\nT_A=2",
		"T_A=\"multi\nline\"\nT_B=\\\"q\\\"\n",
	}
	for i, in := range cases {
		path := fmt.Sprintf("/var/tmp/envfile-%d", i)
		h.WriteFile(t, path, []byte(in), 0o644)
		got := systemdEnv(t, h, path, "T_")
		want := map[string]string{}
		if v := envfile.Parse([]byte(in)); v.Skipped == nil {
			for k, sv := range v.Vars {
				want[k] = sv.Value
			}
		}
		if fmt.Sprint(sorted(got)) != fmt.Sprint(sorted(want)) {
			t.Errorf("case %d %q:\nsystemd     %q\npkg/envfile %q", i, in, sorted(got), sorted(want))
		}
	}

	// The repair, read by both readers.
	in := "ECS_CLUSTER=caf\xe9\nECS_ENABLE_TASK_IAM_ROLE=true\nHTTPS_PROXY=\"\"\nHTTP_PROXY=http://10.0.0.1:3128\nNO_PROXY = a,b\n"
	h.WriteFile(t, "/var/tmp/nearmiss/ecs.config", []byte(in), 0o644)
	h.WriteFile(t, "/var/tmp/nearmiss/policy.yaml", []byte("ecs_config: /var/tmp/nearmiss/ecs.config\necs_config_base: \"off\"\necs_config_json: \"off\"\nnetwork:\n  mode: ignore\ndocker:\n  no_proxy: ignore\nagent:\n  proxy_dropin: ignore\n  restart: never\n"), 0o644)
	out, err := h.Exec("ecs-remediator", "check", "--config", "/var/tmp/nearmiss/policy.yaml", "--json")
	if err == nil || !strings.Contains(out, `"ecs_config.environment_file"`) || !strings.Contains(out, `"ecs_config.HTTPS_PROXY"`) {
		t.Errorf("check: %v\n%s", err, out)
	}
	// Before: systemd refuses the file (the Latin-1 byte): ecs-init's
	// process has no NO_PROXY at all.
	if env := systemdEnv(t, h, "/var/tmp/nearmiss/ecs.config", "NO_PROXY"); len(env) != 0 {
		t.Errorf("systemd read a file with invalid UTF-8: %q", env)
	}
	if out, err := h.Exec("ecs-remediator", "apply", "--config", "/var/tmp/nearmiss/policy.yaml"); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	repaired, _ := h.ReadFile("/var/tmp/nearmiss/ecs.config")
	if !strings.HasPrefix(repaired, "ECS_CLUSTER=caf\xe9\n") {
		t.Errorf("the Latin-1 byte was not kept: %q", repaired)
	}
	// Systemd still skips the file (the byte is the operator's): fix the
	// byte as the warning says, then read it as both readers do.
	fixed := strings.Replace(repaired, "caf\xe9", "cafe", 1)
	h.WriteFile(t, "/var/tmp/nearmiss/ecs.config", []byte(fixed), 0o644)
	sys := systemdEnv(t, h, "/var/tmp/nearmiss/ecs.config", "")
	agent := ecsinit.AgentEnv([]byte(fixed))
	for reader, v := range map[string]string{"ecs-init's process (systemd)": sys["NO_PROXY"], "the agent (ecs-init's loop)": agent["NO_PROXY"]} {
		if got, want := strings.Join(noproxy.Split(v), ","), "a,b,"+strings.Join(noproxy.Required, ","); got != want {
			t.Errorf("%s reads NO_PROXY=%q, want %q (file %q)", reader, v, want, fixed)
		}
	}
	if _, ok := agent["HTTPS_PROXY"]; ok || sys["HTTPS_PROXY"] != "" {
		t.Errorf("the only-quotes HTTPS_PROXY is still there: %q", fixed)
	}
}

func sorted(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}
