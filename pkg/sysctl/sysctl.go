// Package sysctl owns net.ipv4.conf.all.route_localnet: its live value
// under /proc/sys and the sysctl.d file that sets it again at boot.
// route_localnet=1 lets the kernel deliver packets that the NAT rules
// redirect from 169.254.170.2 to the agent on 127.0.0.1; ecs-init's
// post-stop copies conf.default back into conf.all, so it silently drops to
// 0 whenever the agent stops.
//
// It touches no other sysctl and no file but its own sysctl.d file (and the
// temp files of its atomic write); other sysctl.d files are only read, to
// warn about one that overrides ours. The localhost guard rule that must go
// with route_localnet=1 is pkg/netfilter's job; the reconciler runs that
// first.
package sysctl

import (
	"context"
	"io"

	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
)

// Key is the sysctl this package enforces.
const Key = "net.ipv4.conf.all.route_localnet"

// Item ids (a stable contract of check --json).
const (
	ItemRouteLocalnet = "sysctl.route_localnet"
	ItemPersist       = "persist.sysctl"
)

// Config says where things are.
type Config struct {
	// ProcSys is the root of the sysctl tree, normally /proc/sys.
	ProcSys string
	// PersistPath is the sysctl.d file we own; "" = do not persist.
	PersistPath string
	// Enforce turns the enforcer on; off, it reports nothing.
	Enforce bool
	// Guard, when set, is asked before 1 is written: route_localnet=1
	// without the localhost guard opens 127.0.0.0/8 to the network. The
	// reconciler runs the network rules first, so it answers for the
	// same pass (cmd wires pkg/netfilter's enforcer here).
	Guard Guard
}

// Guard tells whether the localhost guard is in place at the end of this
// pass's network repair, and if not, why.
type Guard interface {
	LocalhostGuardInPlace() (ok bool, why string)
}

// Enforcer implements reconcile.Enforcer for route_localnet.
type Enforcer struct{ c Config }

// New returns the enforcer for c.
func New(c Config) *Enforcer { return &Enforcer{c: c} }

// Check observes the live value and the sysctl.d file.
func (e *Enforcer) Check(ctx context.Context) []finding.Finding {
	if !e.c.Enforce {
		return nil
	}
	fs := []finding.Finding{e.observeLive().f}
	if e.c.PersistPath != "" {
		fs = append(fs, e.observePersist().f)
	}
	return fs
}

// Apply sets the live value to 1 and keeps the sysctl.d file in step. With
// dryRun it only writes the command and the file's diff to plan.
func (e *Enforcer) Apply(ctx context.Context, dryRun bool, plan io.Writer) ([]finding.Finding, []finding.Change) {
	if !e.c.Enforce {
		return nil, nil
	}
	var fs []finding.Finding
	var cs []finding.Change
	f, c := e.applyLive(dryRun, plan)
	fs = append(fs, f)
	cs = append(cs, c...)
	if e.c.PersistPath != "" {
		f, c := e.applyPersist(dryRun, plan)
		fs = append(fs, f)
		cs = append(cs, c...)
	}
	return fs, cs
}
