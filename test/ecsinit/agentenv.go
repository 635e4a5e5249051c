package ecsinit

import "strings"

// AgentEnv is ecs-init's loop over one file, exactly (ecs-init/docker/
// docker.go getEnvVars): TrimSpace the file, split at "\n", TrimSpace each
// line, SplitN at the first "=", skip lines without one, the last duplicate
// wins. The agent's environment is ecs-init's defaults, overridden by this
// map of /var/lib/ecs/ecs.config, overridden by this map of
// /etc/ecs/ecs.config (docs/ecs-config.md).
func AgentEnv(data []byte) map[string]string {
	env := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(strings.TrimSpace(line), "=", 2)
		if len(parts) != 2 {
			continue
		}
		env[parts[0]] = parts[1]
	}
	return env
}
