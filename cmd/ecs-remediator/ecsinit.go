package main

import (
	"fmt"

	"github.com/ecs-remediator/ecs-remediator/pkg/envfile"
	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter"
	"github.com/ecs-remediator/ecs-remediator/pkg/safefile"
)

// maxSwitchFile caps the read of ecs.config for ecs-init's switches (the
// ecs.config enforcer refuses bigger files anyway).
const maxSwitchFile = 1 << 20

// ecsInitSwitches reads ecs-init's own switches as its process gets them:
// systemd's EnvironmentFile= parse of path (ecs.service:
// EnvironmentFile=-/etc/ecs/ecs.config), each value through ecs-init's
// strconv.ParseBool without trimming (docs/ecs-init.md, "Switches"). A
// missing, unreadable or oversized file, or one systemd skips (invalid
// UTF-8), sets no switch: ecs-init then starts without them too (the
// ecs.config items report the file itself).
func ecsInitSwitches(path string) func() netfilter.EcsInitSwitches {
	return func() netfilter.EcsInitSwitches {
		var sw netfilter.EcsInitSwitches
		f, err := safefile.Read(path, safefile.Options{Max: maxSwitchFile, Follow: safefile.FollowSameDir})
		if err != nil {
			return sw
		}
		v := envfile.Parse(f.Data)
		if x, ok := v.Lookup("ECS_ALLOW_OFFHOST_INTROSPECTION_ACCESS"); ok && netfilter.SwitchOn(x.Value) {
			sw.AllowOffhostIntrospection, sw.AllowWhere = true, fmt.Sprintf("%s line %d", path, x.Line)
		}
		if x, ok := v.Lookup("ECS_SKIP_LOCALHOST_TRAFFIC_FILTER"); ok && netfilter.SwitchOn(x.Value) {
			sw.SkipLocalhostFilter, sw.SkipWhere = true, fmt.Sprintf("%s line %d", path, x.Line)
		}
		if x, ok := v.Lookup("ECS_OFFHOST_INTROSPECTION_INTERFACE_NAME"); ok {
			sw.OffhostInterface = x.Value
		}
		return sw
	}
}
