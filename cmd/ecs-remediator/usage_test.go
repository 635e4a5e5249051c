package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// A usage error is one line on stderr naming the flag (GNU style) and what
// it accepts, then where the help is; exit 2; nothing on stdout.
func TestUsageErrorsAreOneLine(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"doctor", "--timeout", "2"}, []string{`--timeout "2"`, "duration with a unit", "run 'ecs-remediator doctor --help'"}},
		{[]string{"doctor", "--timeout"}, []string{"--timeout needs a value", "run 'ecs-remediator doctor --help'"}},
		{[]string{"doctor", "--timeout", "10m"}, []string{"--timeout 10m0s is out of range", "run 'ecs-remediator doctor --help'"}},
		{[]string{"doctor", "--imds-endpoint", "nope"}, []string{"--imds-endpoint", "run 'ecs-remediator doctor --help'"}},
		{[]string{"check", "--jsn"}, []string{"unknown flag --jsn", "did you mean --json?", "run 'ecs-remediator check --help'"}},
		{[]string{"check", "-jsn"}, []string{"unknown flag --jsn", "did you mean --json?"}},
		{[]string{"apply", "--dryrun"}, []string{"unknown flag --dryrun", "did you mean --dry-run?", "run 'ecs-remediator apply --help'"}},
		{[]string{"check", "--json=maybe"}, []string{`--json "maybe"`, "takes no value", "run 'ecs-remediator check --help'"}},
		{[]string{"check", "--json", "--prometheus"}, []string{"--json and --prometheus exclude each other"}},
		{[]string{"check", "stray"}, []string{`unexpected argument "stray"`, "run 'ecs-remediator check --help'"}},
		{[]string{"lint-trust-policy", "--for", "task"}, []string{"expected 1 argument(s) (FILE)", "run 'ecs-remediator lint-trust-policy --help'"}},
		{[]string{"lint-trust-policy", "x.json", "--for", "tsk"}, []string{`--for "tsk": give task, instance or cross-account`}},
		{[]string{"lint-trust-policy", "x.json"}, []string{"--for is required"}},
		{[]string{"version", "--short"}, []string{"unknown flag --short", "run 'ecs-remediator version --help'"}},
	} {
		r := run(t, tc.args...)
		name := strings.Join(tc.args, " ")
		if r.code != 2 {
			t.Errorf("%s: exit %d, want 2", name, r.code)
		}
		if r.stdout != "" {
			t.Errorf("%s: printed on stdout:\n%s", name, r.stdout)
		}
		if n := strings.Count(r.stderr, "\n"); n != 1 || !strings.HasSuffix(r.stderr, "\n") {
			t.Errorf("%s: %d lines on stderr, want 1:\n%s", name, n, r.stderr)
		}
		if !strings.HasPrefix(r.stderr, "ecs-remediator "+tc.args[0]+": ") {
			t.Errorf("%s: stderr does not start with the command: %q", name, r.stderr)
		}
		for _, w := range tc.want {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("%s: stderr lacks %q: %q", name, w, r.stderr)
			}
		}
		if strings.Contains(r.stderr, "parse error") || regexp.MustCompile(`(^|\s)-[a-z][a-z]`).MatchString(r.stderr) {
			t.Errorf("%s: not GNU style or leaks the flag package's words: %q", name, r.stderr)
		}
	}
}

func TestUnknownCommandSuggests(t *testing.T) {
	for _, tc := range []struct{ arg, want string }{
		{"chek", `did you mean "check"?`},
		{"doctr", `did you mean "doctor"?`},
		{"aply", `did you mean "apply"?`},
		{"frobnicate", ""},
	} {
		r := run(t, tc.arg)
		if r.code != 2 || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, `unknown command "`+tc.arg+`"`) ||
			!strings.Contains(r.stderr, "run 'ecs-remediator --help'") {
			t.Errorf("%s: exit %d stderr %q", tc.arg, r.code, r.stderr)
		}
		if tc.want != "" && !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%s: no suggestion %q in %q", tc.arg, tc.want, r.stderr)
		}
		if tc.want == "" && strings.Contains(r.stderr, "did you mean") {
			t.Errorf("%s: a wild guess: %q", tc.arg, r.stderr)
		}
	}
}

// Help names every flag GNU style (--config FILE), never the flag
// package's -config.
func TestHelpIsGNUStyle(t *testing.T) {
	for _, c := range commands() {
		r := run(t, c.name, "--help")
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("%s --help: exit %d stderr %q", c.name, r.code, r.stderr)
		}
		if m := regexp.MustCompile(`(?m)^\s+-[a-z][a-z]`).FindString(r.stdout); m != "" {
			t.Errorf("%s --help has a single-dash flag %q:\n%s", c.name, m, r.stdout)
		}
		if !strings.Contains(r.stdout, "-h, --help") {
			t.Errorf("%s --help does not list --help:\n%s", c.name, r.stdout)
		}
		for _, l := range strings.Split(r.stdout, "\n") {
			if len(l) > 100 && !strings.HasPrefix(l, "  ecs-remediator ") {
				t.Errorf("%s --help: line of %d characters: %q", c.name, len(l), l)
			}
		}
	}
	r := run(t, "doctor", "--help")
	for _, w := range []string{"--config FILE", "--timeout DURATION", "--imds-endpoint URL", "--json "} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("doctor --help lacks %q:\n%s", w, r.stdout)
		}
	}
	if r := run(t, "lint-trust-policy", "--help"); !strings.Contains(r.stdout, "--for task|instance|cross-account") {
		t.Errorf("lint-trust-policy --help:\n%s", r.stdout)
	}
	// Old single-dash spelling still parses (scripts use it).
	if r := run(t, "check", "-config", "/nonexistent/policy.yaml"); r.code != 2 || !strings.Contains(r.stderr, "does not exist") {
		t.Errorf("-config: exit %d %q", r.code, r.stderr)
	}
}

func TestPolicyKeySuggestion(t *testing.T) {
	h := newHost(t, good)
	// A typo appended to a valid policy.
	pol := append(mustRead(t, h.policy), "task_iam_rol: enforce\n"...)
	os.WriteFile(h.policy, pol, 0o644)
	r := run(t, "check", "--config", h.policy)
	if r.code != 2 || !strings.Contains(r.stderr, h.policy+":") || !strings.Contains(r.stderr, "did you mean task_iam_role?") {
		t.Fatalf("exit %d stderr %q", r.code, r.stderr)
	}
}
