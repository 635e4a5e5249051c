package ecsconfig

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

// KeyAgentConfigFilePath is the variable that tells the agent where its
// JSON configuration file is. ecs-init sets it to /etc/ecs/ecs.config.json
// (ecs-init/docker/docker.go getContainerConfig, config.AgentJSONConfigFile)
// and ecs.config may override it; it is a path inside the agent's
// container, where ecs-init bind-mounts the host's /etc/ecs at /etc/ecs.
const KeyAgentConfigFilePath = "ECS_AGENT_CONFIG_FILE_PATH"

// containerConfigDir is the host directory ecs-init mounts into the agent's
// container at the same path.
const containerConfigDir = "/etc/ecs/"

// jsonField maps a flag's variable to its field in the agent's Config
// struct (agent/config/types.go), as the JSON file and user data name it.
var jsonField = map[string]string{
	KeyTaskIAMRole:            "TaskIAMRoleEnabled",
	KeyTaskIAMRoleNetworkHost: "TaskIAMRoleEnabledForNetworkHost",
}

// jsonBool is one flag as the agent's JSON file sets it.
type jsonBool struct {
	set bool   // the file sets it to a value the agent takes
	val bool   // that value
	raw string // the JSON text, for the detail ("" when absent)
}

// agentJSON is what the agent's JSON configuration file says, read from the
// host.
type agentJSON struct {
	path   string // host path read ("" when none could be read)
	note   string // how the path was chosen, or why it is not read
	exists bool
	err    error // the file does not parse: the agent fails to start
	flags  map[string]jsonBool
}

// readAgentJSON finds and reads the agent's JSON configuration file: the
// path ecs-init gives the agent, unless ecs.config overrides it (v holds
// both files). hostPath is the policy's host path of
// /etc/ecs/ecs.config.json ("" when the policy turns it off).
func readAgentJSON(v *view, hostPath string) *agentJSON {
	j := &agentJSON{flags: map[string]jsonBool{}}
	if hostPath == "" {
		j.note = "the policy turns reading the agent's JSON file off (ecs_config_json: off)"
		return j
	}
	j.path = hostPath
	if s, ok := v.lookup(KeyAgentConfigFilePath); ok {
		p := s.a.Value
		switch {
		case p == "":
			// utils.DefaultIfBlank: the agent falls back to
			// /etc/ecs_container_agent/config.json, which ecs-init does
			// not mount.
			j.path, j.note = "", fmt.Sprintf("%s sets %s empty, so the agent looks for /etc/ecs_container_agent/config.json in its container, which ecs-init does not mount", s.where(), KeyAgentConfigFilePath)
			return j
		case strings.HasPrefix(p, containerConfigDir) && !strings.Contains(p, ".."):
			j.path = filepath.Join(filepath.Dir(hostPath), strings.TrimPrefix(p, containerConfigDir))
			j.note = fmt.Sprintf("%s sets %s=%s", s.where(), KeyAgentConfigFilePath, show(p))
		default:
			j.path, j.note = "", fmt.Sprintf("%s sets %s=%s, a path in the agent's container outside the /etc/ecs ecs-init mounts; not checked", s.where(), KeyAgentConfigFilePath, show(p))
			return j
		}
	}
	data, _, exists, err := readFile(j.path)
	if err != nil {
		j.err = err
		return j
	}
	j.exists = exists
	if !exists || len(bytes.TrimSpace(data)) == 0 {
		return j // the agent: an empty file is no configuration
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(data, &doc); err != nil {
		j.err = fmt.Errorf("%s is not a JSON object (%v): the agent logs \"Error reading cfg json data\" and does not start", j.path, err)
		return j
	}
	for env, field := range jsonField {
		// encoding/json matches field names case-insensitively; the
		// last matching key wins.
		var raw json.RawMessage
		for k, r := range doc {
			if strings.EqualFold(k, field) {
				raw = r
			}
		}
		if raw == nil {
			continue
		}
		text := string(bytes.TrimSpace(raw))
		jb := jsonBool{raw: text}
		switch env {
		case KeyTaskIAMRole:
			// BooleanDefaultFalse.UnmarshalJSON: strconv.ParseBool of the
			// JSON text; null is "not set"; anything else fails the whole
			// file.
			if text != "null" {
				b, err := strconv.ParseBool(text)
				if err != nil {
					j.err = fmt.Errorf("%s: %s is %s, which the agent cannot read as a boolean: it logs \"Error reading cfg json data\" and does not start", j.path, field, text)
					return j
				}
				jb.set, jb.val = true, b
			}
		default:
			// A plain bool: only JSON true and false.
			switch text {
			case "true", "false":
				jb.set, jb.val = true, text == "true"
			case "null":
			default:
				j.err = fmt.Errorf("%s: %s is %s, not a JSON boolean: the agent logs \"Error reading cfg json data\" and does not start", j.path, field, text)
				return j
			}
		}
		j.flags[env] = jb
	}
	return j
}
