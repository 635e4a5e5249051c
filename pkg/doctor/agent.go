package doctor

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
)

// checkAgent returns agent.unit and agent.introspection.
func checkAgent(ctx context.Context, c Config) []Result {
	return []Result{checkAgentUnit(ctx, c), checkIntrospection(ctx, c)}
}

func checkAgentUnit(ctx context.Context, c Config) Result {
	r := Result{Item: ItemAgentUnit}
	if c.UnitState == nil {
		r.Status, r.Detail = Skip, "unit state unknown: no systemd D-Bus connection"
		return r
	}
	state, err := c.UnitState(ctx, c.AgentUnit)
	if err != nil {
		r.Status, r.Detail = Skip, fmt.Sprintf("cannot read the state of %s: %v", c.AgentUnit, err)
		return r
	}
	r.Detail = fmt.Sprintf("%s is %s", c.AgentUnit, state)
	switch state {
	case "active":
		r.Status = OK
	case "activating", "reloading":
		r.Status = Warn
		r.Fix = fmt.Sprintf("%s is still starting; if it stays there, see `journalctl -u %s` (ecs-init waits for Docker and pulls the agent image)", c.AgentUnit, c.AgentUnit)
	default: // inactive, failed, deactivating, or an unknown unit
		r.Status = Fail
		r.Fix = fmt.Sprintf("start it: `systemctl enable --now %s`; if it fails, read `journalctl -u %s` and /var/log/ecs/ecs-init.log", c.AgentUnit, c.AgentUnit)
	}
	return r
}

// agentMetadata is the answer of the agent's GET /v1/metadata.
type agentMetadata struct {
	Cluster              string  `json:"Cluster"`
	ContainerInstanceArn *string `json:"ContainerInstanceArn"`
	Version              string  `json:"Version"`
}

func checkIntrospection(ctx context.Context, c Config) Result {
	r := Result{Item: ItemAgentIntrospection}
	status, body, err := get(ctx, c.HTTPClient, http.MethodGet, c.IntrospectionURL, nil)
	if err != nil {
		r.Status = Fail
		switch classify(err) {
		case netRefused:
			r.Detail = fmt.Sprintf("GET %s: connection refused: nothing listens there", c.IntrospectionURL)
			r.Fix = fmt.Sprintf("the ECS agent is not running: `systemctl status %s`, `docker ps -a --filter name=ecs-agent`, `docker logs ecs-agent`", c.AgentUnit)
		case netTimeout:
			r.Detail = fmt.Sprintf("GET %s: no answer within %s", c.IntrospectionURL, c.Timeout)
			r.Fix = "a firewall drops traffic to the introspection port (51678) on the loopback, or the agent hangs: check `iptables -S INPUT` and `docker logs ecs-agent`"
		default:
			r.Detail = fmt.Sprintf("GET %s: %v", c.IntrospectionURL, err)
			r.Fix = fmt.Sprintf("check that the ECS agent runs (`systemctl status %s`) and that the URL is right (policy agent.introspection_url)", c.AgentUnit)
		}
		return r
	}
	if status != http.StatusOK {
		r.Status = Fail
		r.Detail = fmt.Sprintf("GET %s answered HTTP %d: %s", c.IntrospectionURL, status, snippet(body))
		r.Fix = "something other than the ECS agent answers on this port, or the agent is unhealthy: `docker logs ecs-agent`"
		return r
	}
	var md agentMetadata
	if err := json.Unmarshal(body, &md); err != nil {
		r.Status = Fail
		r.Detail = fmt.Sprintf("GET %s answered, but not with the agent's metadata JSON (%v): %s", c.IntrospectionURL, err, snippet(body))
		r.Fix = "something other than the ECS agent answers on this port: `ss -ltnp 'sport = :51678'`"
		return r
	}
	if md.ContainerInstanceArn == nil || *md.ContainerInstanceArn == "" {
		r.Status = Warn
		r.Detail = fmt.Sprintf("agent answers (%s, cluster %q) but is not registered yet: ContainerInstanceArn is empty", versionOr(md.Version), md.Cluster)
		r.Fix = "wait a minute; if it stays unregistered, read /var/log/ecs/ecs-agent.log: usually ECS_CLUSTER in /etc/ecs/ecs.config names a missing cluster, the instance role lacks AmazonEC2ContainerServiceforEC2Role, or the ECS endpoint is unreachable (proxy / NO_PROXY)"
		return r
	}
	r.Status = OK
	r.Detail = fmt.Sprintf("agent registered: cluster %q, container instance %s (%s)", md.Cluster, *md.ContainerInstanceArn, versionOr(md.Version))
	return r
}

func versionOr(v string) string {
	if v == "" {
		return "version unknown"
	}
	return v
}
