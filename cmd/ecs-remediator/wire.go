package main

import (
	"path/filepath"

	"go.uber.org/zap"

	"github.com/ecs-remediator/ecs-remediator/pkg/credroute"
	"github.com/ecs-remediator/ecs-remediator/pkg/dockerapi"
	"github.com/ecs-remediator/ecs-remediator/pkg/dockerproxy"
	"github.com/ecs-remediator/ecs-remediator/pkg/dropin"
	"github.com/ecs-remediator/ecs-remediator/pkg/ecsconfig"
	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter"
	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter/saved"
	"github.com/ecs-remediator/ecs-remediator/pkg/policy"
	"github.com/ecs-remediator/ecs-remediator/pkg/reconcile"
	"github.com/ecs-remediator/ecs-remediator/pkg/redact"
	"github.com/ecs-remediator/ecs-remediator/pkg/sysctl"
)

// buildReconciler turns the policy into the ordered list of enforcers:
// ecs.config and the agent unit's proxy drop-ins first (what the agent
// reads at start), then the kernel —
// rules before route_localnet, so the localhost guard is in place before
// the sysctl opens 127.0.0.0/8 to routed traffic.
func buildReconciler(p *policy.Policy, log *zap.Logger) (*reconcile.Reconciler, error) {
	w, err := wire(p, log)
	if err != nil {
		return nil, err
	}
	return w.rec, nil
}

// wired is what a policy turns into: the reconciler, and what the daemon
// needs to know to watch it.
type wired struct {
	rec     *reconcile.Reconciler
	nf      *netfilter.Enforcer // nil when network.mode is ignore
	watched []string            // files (globs) whose change means "look again"
	sysctls []string            // /proc/sys values to poll (watch.Sysctls)
	routes  bool                // the credentials route is enforced (watch.Routes)
}

func wire(p *policy.Policy, log *zap.Logger) (*wired, error) {
	w := &wired{}
	var es []reconcile.Enforcer
	base := policy.Resolve(p.ECSConfigBase)
	w.watched = append(w.watched, p.ECSConfig)
	if base != "" {
		w.watched = append(w.watched, base)
	}
	es = append(es, ecsconfig.New(ecsconfig.Config{
		Path:                   p.ECSConfig,
		BasePath:               base,
		AgentJSONPath:          policy.Resolve(p.ECSConfigJSON),
		BackupPath:             p.BackupPath(),
		TaskIAMRole:            p.TaskIAMRole == policy.Enforce,
		TaskIAMRoleNetworkHost: p.TaskIAMRoleNetworkHost == policy.Enforce,
		NoProxy:                p.NoProxy == policy.Auto,
		Extra:                  p.ExtraSettings,
	}))
	if p.Agent.ProxyDropin == policy.Auto && policy.Resolve(p.Agent.ProxyDropinDir) != "" {
		w.watched = append(w.watched, filepath.Join(p.Agent.ProxyDropinDir, "*.conf"))
		es = append(es, dropin.New(dropin.Config{Dir: p.Agent.ProxyDropinDir, Enabled: true}))
	}
	if p.Docker.NoProxy == policy.Auto {
		dc := dockerproxy.Config{ProcRoot: p.Doctor.ProcRoot}
		if d := policy.Resolve(p.Docker.DropinDir); d != "" {
			dc.DropinDir = d
			w.watched = append(w.watched, filepath.Join(d, "*.conf"))
		}
		if f := policy.Resolve(p.Docker.Sysconfig); f != "" {
			dc.Sysconfig = f
			w.watched = append(w.watched, f)
		}
		es = append(es, dockerproxy.New(dc))
	}
	if p.Network.Mode == policy.Enforce {
		nc := netfilter.Config{
			Iptables:           p.Network.Iptables,
			AgentPort:          p.Network.AgentPort,
			IntrospectionPort:  p.Network.IntrospectionPort,
			Credentials:        true,
			LocalhostGuard:     p.Network.LocalhostGuard,
			BlockIntrospection: p.Network.BlockIntrospection != policy.False,
			IntrospectionAuto:  p.Network.BlockIntrospection == policy.AutoBool,
			EcsInit:            ecsInitSwitches(p.ECSConfig),
			BlockIMDS:          p.Network.BlockInstanceRoleForBridge,
			ProcRoot:           filepath.Dir(p.Network.ProcSys),
			ProcSys:            p.Network.ProcSys,
			SystemdDir:         p.Persist.SystemdDir,
			CredentialsInput:   p.Network.CredentialsInput,
			TaskBridges:        p.Network.TaskBridges,
		}
		if policy.Resolve(p.Persist.Iptables) != "" {
			var cands []saved.Target
			for _, c := range p.Persist.AutoCandidates {
				cands = append(cands, saved.Target{Path: c.Path, Service: c.Service})
			}
			t, err := saved.Resolve(p.Persist.Iptables, cands, p.Persist.UnitDirs())
			if err != nil {
				nc.PersistErr = err
			} else {
				nc.Persist = &t
				if t.Path != "" {
					w.watched = append(w.watched, t.Path)
				}
			}
		}
		if sock := policy.Resolve(p.Network.DockerSocket); sock != "" {
			nc.DefaultBridge = (&dockerapi.Bridge{Socket: sock}).Name
		}
		nf, err := netfilter.New(nc)
		if err != nil {
			return nil, p.Errorf("network.iptables", "%v", err)
		}
		nf.OnFallback(func(backend, reason string, err error) { logFallback(log, backend, reason, err) })
		es = append(es, nf)
		w.nf = nf
		// The credentials route of IPv6-only hosts (ecs-init adds it
		// there; nothing is done on a host with an IPv4 default route).
		es = append(es, credroute.New())
		w.routes = true
	}
	if p.Network.Mode == policy.Enforce && p.Network.RouteLocalnet == policy.Enforce {
		persist := policy.Resolve(p.Persist.Sysctl)
		if persist != "" {
			w.watched = append(w.watched, persist)
		}
		w.sysctls = append(w.sysctls, sysctl.LivePath(p.Network.ProcSys))
		sc := sysctl.Config{
			ProcSys:     p.Network.ProcSys,
			PersistPath: persist,
			Enforce:     true,
		}
		if w.nf != nil {
			sc.Guard = w.nf // route_localnet=1 only with the localhost guard in place
		}
		es = append(es, sysctl.New(sc))
	}
	w.rec = &reconcile.Reconciler{Enforcers: es, Log: log}
	for k, v := range p.ExtraSettings {
		w.rec.Secrets = append(w.rec.Secrets, redact.Secrets(k, v)...)
	}
	return w, nil
}

// logFallback is the debug line of a kernel read that fell back to the
// iptables binaries (the daemon also counts it: ecs_remediator_reader_fallbacks_total).
func logFallback(log *zap.Logger, backend, reason string, err error) {
	if log == nil {
		return
	}
	if ce := log.Check(zap.DebugLevel, "read the rules with the iptables binaries instead of the kernel reader"); ce != nil {
		fs := []zap.Field{zap.String("backend", backend), zap.String("reason", reason), zap.String("action", "reader-fallback")}
		if err != nil {
			fs = append(fs, zap.Error(err))
		}
		ce.Write(fs...)
	}
}
