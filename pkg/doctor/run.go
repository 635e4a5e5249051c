package doctor

import (
	"context"
	"sync"
	"time"
)

// Run runs every check and returns the results in a stable order:
// agent.unit, agent.introspection, credentials.endpoint,
// credentials.bridge_path (unless c.SkipBridgePath), the imds.* items (all
// skips on an ECS Anywhere host, followed by external.ssm_registration and
// external.credentials), tasks.credentials_env. The agent, credentials and IMDS groups run
// concurrently, each within its own c.Timeout deadline, so Run returns
// within about c.Timeout (plus the /proc scan) whatever answers or not.
func Run(ctx context.Context, c Config) []Result {
	c = c.withDefaults()
	var agent, creds, bridge, md, tasks []Result
	var wg sync.WaitGroup
	group := func(dst *[]Result, network bool, fn func(context.Context, Config) []Result) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			gctx := ctx
			if network {
				var cancel context.CancelFunc
				gctx, cancel = context.WithTimeout(ctx, c.Timeout)
				defer cancel()
			}
			*dst = fn(gctx, c)
		}()
	}
	group(&agent, true, checkAgent)
	group(&creds, true, func(ctx context.Context, c Config) []Result { return []Result{checkCredentialsEndpoint(ctx, c)} })
	if !c.SkipBridgePath {
		group(&bridge, true, func(ctx context.Context, c Config) []Result { return []Result{checkBridgePath(ctx, c)} })
	}
	if c.External != nil {
		md = append(skipIMDSExternal(c.External), checkExternal(c, time.Now())...)
	} else {
		group(&md, true, checkIMDS)
	}
	group(&tasks, false, func(_ context.Context, c Config) []Result { return []Result{checkTasksCredentialsEnv(c.ProcRoot)} })
	wg.Wait()

	out := make([]Result, 0, len(agent)+len(creds)+len(bridge)+len(md)+len(tasks))
	for _, g := range [][]Result{agent, creds, bridge, md, tasks} {
		out = append(out, g...)
	}
	return out
}
