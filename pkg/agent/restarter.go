package agent

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/ecs-remediator/ecs-remediator/pkg/logging"
)

// Config tunes a Restarter.
type Config struct {
	// Unit is the ECS agent's unit ("ecs.service").
	Unit string
	// Mode is OnChange or Never.
	Mode Mode
	// MinRestartInterval is the least time between two restarts; a
	// request inside it waits for its end.
	MinRestartInterval time.Duration
	// Settle delays the first restart after a request, so that changes
	// made together (ecs.config, then a drop-in) give one restart. 0
	// restarts at the first Tick.
	Settle time.Duration
	// RetryMin and RetryMax bound the back-off after a failed attempt
	// (defaults 1s and 5m); RetryMin is also how long a unit that is
	// starting or stopping is waited for.
	RetryMin, RetryMax time.Duration
	// Log receives one line per restart, deferral, skip and failure; nil
	// logs nothing.
	Log *zap.Logger
	// Observe, when set, hears every Event as it happens, on the caller's
	// goroutine (the daemon counts restarts and deferred or merged
	// requests in its metrics).
	Observe func(Event)
}

// Event is one thing a Restarter did, as Config.Observe hears it.
type Event int

const (
	EventRequested      Event = iota + 1 // Request was called
	EventRestarted                       // a try-restart succeeded
	EventCoalesced                       // a request merged into a restart already pending
	EventDeferred                        // a restart has to wait for MinRestartInterval
	EventFailed                          // an attempt failed (D-Bus unreachable, job failed)
	EventSkippedStopped                  // a pending restart dropped: the agent was not running (it reads the change at its next start)
	EventStartedAfter                    // a pending restart dropped: the agent began to start after the last repair (it read the repaired files)
	EventSuppressed                      // a request not acted on because Mode is Never
)

// Outcome is what one Step did.
type Outcome int

const (
	Idle         Outcome = iota // nothing pending
	Waiting                     // pending, not due yet (or the unit is starting/stopping)
	Restarted                   // try-restart succeeded
	AgentStopped                // the agent is not running: nothing to restart
	Failed                      // the attempt failed; retried with back-off
	StartedAfter                // the agent started after the repair: it has read it, no restart
)

// Restarter decides when the ECS agent is restarted. It never runs a
// goroutine: the caller's single loop calls Request after a repair, arms a
// timer for Due, and calls Tick (or Step) when it fires. Time comes from
// the caller, so tests drive it with a fake clock. Not safe for concurrent
// use.
type Restarter struct {
	u Units
	c Config

	pending   bool
	reload    bool
	reasons   []string
	since     time.Time // first request of the pending restart
	latest    time.Time // last request of the pending restart
	restarted bool      // lastRestart is set
	last      time.Time // last successful restart
	failures  int       // consecutive failed attempts
	retryAt   time.Time
	neverLast string // reason last logged in Mode Never
	restarts  int    // successful restarts, for the log
}

// NewRestarter returns a Restarter for u.
func NewRestarter(u Units, c Config) *Restarter {
	if c.RetryMin <= 0 {
		c.RetryMin = time.Second
	}
	if c.RetryMax <= 0 {
		c.RetryMax = 5 * time.Minute
	}
	if c.RetryMax < c.RetryMin {
		c.RetryMax = c.RetryMin
	}
	if c.Log == nil {
		c.Log = zap.NewNop()
	}
	if c.Mode == "" {
		c.Mode = OnChange
	}
	if c.Observe == nil {
		c.Observe = func(Event) {}
	}
	return &Restarter{u: u, c: c}
}

// Request asks for a restart because of reason; reload asks for a systemd
// daemon-reload first (a drop-in changed). Requests while one is pending
// are merged into it.
func (r *Restarter) Request(now time.Time, reason string, reload bool) {
	r.c.Observe(EventRequested)
	if r.c.Mode == Never {
		r.c.Observe(EventSuppressed)
		if reason != r.neverLast {
			r.neverLast = reason
			r.c.Log.Warn(fmt.Sprintf("the ECS agent must be restarted to pick up a repair (%s), and agent.restart is never: run systemctl try-restart %s", reason, r.c.Unit),
				logging.MessageID(logging.AgentRestartDeferred), zap.String("unit", r.c.Unit), zap.String("reason", reason),
				zap.String("action", "restart-needed"), zap.String("detail", "agent.restart is never"))
		}
		return
	}
	r.reload = r.reload || reload
	r.latest = now
	if r.pending {
		r.c.Observe(EventCoalesced)
		r.addReason(reason)
		return
	}
	r.pending, r.since, r.reasons = true, now, nil
	r.addReason(reason)
	if r.restarted && now.Before(r.last.Add(r.c.MinRestartInterval)) {
		r.c.Observe(EventDeferred)
		at, _ := r.Due()
		r.c.Log.Info(fmt.Sprintf("the ECS agent will be restarted at %s (%s): at most one restart per %s", at.Format(time.TimeOnly), r.reason(), r.c.MinRestartInterval),
			logging.MessageID(logging.AgentRestartDeferred), zap.String("unit", r.c.Unit), zap.String("reason", r.reason()),
			zap.String("action", "restart-deferred"), zap.Time("due", at),
			zap.String("detail", "rate limited by agent.min_restart_interval ("+r.c.MinRestartInterval.String()+")"))
	}
}

func (r *Restarter) addReason(reason string) {
	for _, x := range r.reasons {
		if x == reason {
			return
		}
	}
	r.reasons = append(r.reasons, reason)
}

func (r *Restarter) reason() string { return strings.Join(r.reasons, "; ") }

// Due tells when Tick should run next; false when no restart is pending.
func (r *Restarter) Due() (time.Time, bool) {
	if !r.pending {
		return time.Time{}, false
	}
	at := r.since.Add(r.c.Settle)
	if r.restarted {
		if t := r.last.Add(r.c.MinRestartInterval); t.After(at) {
			at = t
		}
	}
	if r.retryAt.After(at) {
		at = r.retryAt
	}
	return at, true
}

// Tick runs Step; Step logs everything worth knowing, so the error is not
// needed here. It satisfies the daemon's Restarter interface.
func (r *Restarter) Tick(ctx context.Context, now time.Time) {
	_, _ = r.Step(ctx, now)
}

// Step restarts the agent when a restart is pending and due: daemon-reload
// first if a drop-in changed, then ActiveState, then try-restart. A failure
// keeps the request pending and schedules a retry with back-off; the error
// is returned (and logged).
func (r *Restarter) Step(ctx context.Context, now time.Time) (Outcome, error) {
	at, ok := r.Due()
	if !ok {
		return Idle, nil
	}
	if now.Before(at) {
		return Waiting, nil
	}
	if r.reload {
		if err := r.u.Reload(ctx); err != nil {
			return r.fail(now, err)
		}
		r.reload = false
	}
	state, err := r.u.ActiveState(ctx, r.c.Unit)
	if err != nil {
		return r.fail(now, err)
	}
	switch state {
	case "active", "reloading":
	case "activating", "deactivating":
		// try-restart of a unit in transition does nothing; look again
		// when it has settled.
		r.retryAt = now.Add(r.c.RetryMin)
		return Waiting, nil
	default: // inactive, failed, maintenance, or a unit that does not exist
		r.c.Observe(EventSkippedStopped)
		r.c.Log.Info(fmt.Sprintf("the ECS agent (%s) is %s: not starting it; the change (%s) will be picked up at its next start", r.c.Unit, state, r.reason()),
			zap.String("unit", r.c.Unit), zap.String("reason", r.reason()), zap.String("state", state), zap.String("action", "restart-skipped"))
		r.clear()
		return AgentStopped, nil
	}
	// An agent that began to start after the last repair has read it:
	// the host booted with a broken file that was repaired before the
	// agent started (Before=ecs.service), or the operator restarted it.
	// When systemd cannot say, restart.
	if started, err := r.u.StartedAt(ctx, r.c.Unit); err == nil && started.After(r.latest) {
		r.c.Observe(EventStartedAfter)
		r.c.Log.Info(fmt.Sprintf("the ECS agent (%s) started at %s, after the repair (%s): it has read it, no restart needed", r.c.Unit, started.Format(time.TimeOnly), r.reason()),
			zap.String("unit", r.c.Unit), zap.String("reason", r.reason()), zap.Time("started", started), zap.String("action", "restart-unneeded"))
		r.clear()
		return StartedAfter, nil
	}
	if err := r.u.TryRestart(ctx, r.c.Unit); err != nil {
		return r.fail(now, err)
	}
	r.restarts++
	r.restarted, r.last = true, now
	r.c.Observe(EventRestarted)
	r.c.Log.Info(fmt.Sprintf("restarted the ECS agent (%s) to pick up: %s", r.c.Unit, r.reason()),
		logging.MessageID(logging.AgentRestarted), zap.String("unit", r.c.Unit), zap.String("reason", r.reason()),
		zap.String("action", "agent-restarted"), zap.Int("restarts", r.restarts))
	r.clear()
	return Restarted, nil
}

func (r *Restarter) clear() {
	r.pending, r.reasons, r.failures, r.retryAt = false, nil, 0, time.Time{}
}

func (r *Restarter) fail(now time.Time, err error) (Outcome, error) {
	r.failures++
	r.c.Observe(EventFailed)
	d := r.c.RetryMin
	for i := 1; i < r.failures && d < r.c.RetryMax; i++ {
		d *= 2
	}
	if d > r.c.RetryMax {
		d = r.c.RetryMax
	}
	r.retryAt = now.Add(d)
	r.c.Log.Warn(fmt.Sprintf("could not restart the ECS agent (%s), attempt %d; retrying in %s: %v", r.c.Unit, r.failures, d, err),
		logging.MessageID(logging.AgentRestartDeferred), zap.String("unit", r.c.Unit), zap.String("reason", r.reason()),
		zap.String("action", "restart-failed"), zap.Int("attempt", r.failures), zap.Duration("retry_in", d),
		zap.Error(err), zap.String("detail", err.Error()))
	return Failed, err
}
