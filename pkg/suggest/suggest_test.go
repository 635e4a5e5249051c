package suggest

import "testing"

func TestClosest(t *testing.T) {
	cmds := []string{"check", "apply", "doctor", "lint-trust-policy", "run", "version"}
	keys := []string{"ecs_config", "ecs_config_base", "backup", "task_iam_role", "task_iam_role_network_host", "no_proxy", "log_level"}
	for _, tc := range []struct {
		name string
		in   []string
		want string
	}{
		{"chek", cmds, "check"},
		{"cehck", cmds, "check"},
		{"doctr", cmds, "doctor"},
		{"lint", cmds, "lint-trust-policy"},
		{"rnu", cmds, "run"},
		{"frobnicate", cmds, ""},
		{"x", cmds, ""},
		{"", cmds, ""},
		{"jsn", []string{"json", "config", "prometheus"}, "json"},
		{"dryrun", []string{"dry-run", "config"}, "dry-run"},
		{"task_iam_rol", keys, "task_iam_role"},
		{"task_iam_role_network", keys, "task_iam_role_network_host"},
		{"noproxy", keys, "no_proxy"},
		{"loglevel", keys, "log_level"},
		{"completely_else", keys, ""},
	} {
		if got := Closest(tc.name, tc.in); got != tc.want {
			t.Errorf("Closest(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}
