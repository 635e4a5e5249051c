package netfilter

import "strconv"

// EcsInitSwitches are ecs-init's own switches as its process sees them
// (docs/ecs-init.md, "Switches"): the environment systemd builds from
// EnvironmentFile=/etc/ecs/ecs.config, each read with strconv.ParseBool
// of the raw value (no trimming; invalid or empty is false), as
// ecs-init/exec/iptables/iptables.go does.
type EcsInitSwitches struct {
	// AllowOffhostIntrospection: ECS_ALLOW_OFFHOST_INTROSPECTION_ACCESS is
	// true, so ecs-init adds no introspection rule.
	AllowOffhostIntrospection bool
	// SkipLocalhostFilter: ECS_SKIP_LOCALHOST_TRAFFIC_FILTER is true, so
	// ecs-init adds no localhost guard.
	SkipLocalhostFilter bool
	// OffhostInterface is ECS_OFFHOST_INTROSPECTION_INTERFACE_NAME, the
	// interface of the introspection DROP of ecs-init before 1.97 ("":
	// eth0).
	OffhostInterface string
	// AllowWhere and SkipWhere say where each true switch was set
	// ("/etc/ecs/ecs.config line 7"), for the findings.
	AllowWhere, SkipWhere string
}

// SwitchOn is ecs-init's reading of one of its switches.
func SwitchOn(raw string) bool {
	b, err := strconv.ParseBool(raw)
	return err == nil && b
}

// resolvePass fixes, for one pass, what depends on ecs-init and Docker:
// the switches, whether the introspection rules are enforced, and the
// bridge of the introspection ACCEPT.
func (c *Config) resolvePass() {
	c.sw = EcsInitSwitches{}
	if c.EcsInit != nil {
		c.sw = c.EcsInit()
	}
	c.bridge, c.bridgeNeeded, c.bridgeWhy = "docker0", c.docker0(), "no docker0 interface"
	if c.DefaultBridge == nil {
		return
	}
	name, ok, err := c.DefaultBridge()
	switch {
	case err == nil && ok:
		c.bridge, c.bridgeNeeded = name, true
	case err == nil:
		c.bridgeNeeded, c.bridgeWhy = false, "Docker reports no default bridge network"
	case c.bridgeNeeded:
		c.bridgeWhy = "" // Docker did not answer: the docker0 interface exists
	default:
		c.bridgeWhy = "Docker did not answer (" + err.Error() + ") and no docker0 interface exists"
	}
}

// introspectionEnforced reports whether the introspection rules are
// enforced in this pass: by policy, unless the policy follows ecs-init
// (auto) and ecs-init adds none.
func (c *Config) introspectionEnforced() bool {
	return c.BlockIntrospection && !(c.IntrospectionAuto && c.sw.AllowOffhostIntrospection)
}
