// Package agent restarts the ECS agent's systemd unit when a repair changed
// something the agent reads only at start (ecs.config, the unit's
// drop-ins). It owns the decision of when: a burst of requests gives one
// restart, restarts are rate limited, a failed one is retried with
// back-off, and an agent that is not running is never started (try-restart
// semantics: the operator's stop wins).
//
// It talks to systemd over D-Bus only (never by running systemctl) and
// touches no unit but the one it is configured with. The Restarter is pure
// logic driven by the caller's clock and goroutine; the D-Bus client sits
// behind the narrow Units interface declared here.
package agent

import (
	"context"
	"time"
)

// Units is what the Restarter needs from systemd. DBus implements it.
type Units interface {
	// TryRestart restarts unit if it is active (a stopped unit stays
	// stopped) and reports the job's failure.
	TryRestart(ctx context.Context, unit string) error
	// Reload makes systemd read unit files and drop-ins again
	// (daemon-reload).
	Reload(ctx context.Context) error
	// ActiveState is the unit's ActiveState: active, reloading, inactive,
	// failed, activating, deactivating or maintenance.
	ActiveState(ctx context.Context, unit string) (string, error)
	// StartedAt is when the unit last began to start (systemd's
	// InactiveExitTimestamp); zero when it never did or systemd does not
	// say. An agent that began to start after a repair has read it.
	StartedAt(ctx context.Context, unit string) (time.Time, error)
}

// Mode says whether the agent is restarted.
type Mode string

const (
	// OnChange restarts the agent after a repair it must pick up.
	OnChange Mode = "on-change"
	// Never only logs that a restart is needed.
	Never Mode = "never"
)
