// Package daemon is the loop behind `ecs-remediator run`. One goroutine
// owns all state: watchers only send "look again" events, a burst of events
// is debounced into one reconcile, a resync timer is the safety net, the
// ECS agent is restarted (rate limited, coalesced) when what it reads at
// start changed, and systemd hears READY, WATCHDOG, STATUS and STOPPING.
// It repairs only through pkg/reconcile, exactly as `apply` does.
package daemon

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
	"github.com/ecs-remediator/ecs-remediator/pkg/logging"
	"github.com/ecs-remediator/ecs-remediator/pkg/policy"
	"github.com/ecs-remediator/ecs-remediator/pkg/reconcile"
	"github.com/ecs-remediator/ecs-remediator/pkg/watch"
)

// Restarter restarts the ECS agent. The daemon's goroutine drives it: it
// asks for restarts and calls Tick when Due says so; the Restarter owns
// coalescing and rate limiting and never runs a goroutine of its own.
type Restarter interface {
	// Request asks for one restart; reload asks for a systemd reload first
	// (a drop-in changed).
	Request(now time.Time, reason string, reload bool)
	// Due tells when Tick must be called next; false when nothing is pending.
	Due() (time.Time, bool)
	// Tick restarts the agent when a request is pending and due.
	Tick(ctx context.Context, now time.Time)
}

// Setup is what one policy turns into.
type Setup struct {
	Reconciler *reconcile.Reconciler
	// Watch starts the watchers; they send on events until ctx ends and
	// must never block (events only mean "look again").
	Watch func(ctx context.Context, events chan<- watch.Event) error
	// Restarter is nil when agent.restart is never.
	Restarter Restarter
	// Diagnose runs the periodic local diagnosis (may be nil); Interval is
	// how often.
	Diagnose         func(ctx context.Context)
	DiagnoseInterval time.Duration
	// Baseline is the legacy poller's baseline (nil: no poller), made by
	// Build and polled with once Watch starts watch.Poll. The loop probes
	// it right before and after every reconcile, on its goroutine: a poll
	// compares against the state the last quiet reconcile left.
	Baseline *watch.Baseline
	// Lock is the xtables lock watch (nil on nf_tables), made by Build and
	// started by Watch. The daemon's own pass takes the lock
	// (iptables-legacy-restore), so the loop pauses it during the pass;
	// when that may have hidden another writer's events (the pass
	// repaired something, or the tables moved while it ran) it asks for
	// one more look, and the quiet pass that follows takes the baseline.
	Lock *watch.LockWatch
	// Close releases what Build opened (D-Bus connections); may be nil.
	Close func()
}

// Options wire the daemon to the world.
type Options struct {
	Log    *zap.Logger
	Policy *policy.Policy
	// Reload reads the policy file again (SIGHUP).
	Reload func() (*policy.Policy, error)
	// Build turns a policy into a Setup.
	Build func(p *policy.Policy) (*Setup, error)
	// Notify sends one sd_notify state ("READY=1", ...); no-op outside systemd.
	Notify func(state string)
	// Watchdog is the interval at which WATCHDOG=1 is sent (0 = off).
	Watchdog time.Duration
	// Hangup delivers SIGHUP.
	Hangup <-chan os.Signal
	// OnResult, when set, is given the result of every reconcile and how
	// long it took (metrics, tests).
	OnResult func(res reconcile.Result, took time.Duration)
	// Fight, when set, is called once when a fight over item starts.
	Fight func(item string)
}

// MaxWaitFactor bounds debouncing: a continuous stream of events still gets
// a reconcile at least every MaxWaitFactor x debounce.
const MaxWaitFactor = 10

type loop struct {
	o      Options
	p      *policy.Policy
	s      *Setup
	events chan watch.Event
	stopW  context.CancelFunc

	fights     *fights
	errs       map[string]string // item -> detail of a repair that is impossible
	repairs    int
	lastRun    time.Time // start of the last reconcile
	lastEvent  time.Time // end of the last event-driven reconcile
	compliant  bool
	pending    bool
	firstEvent time.Time
	settledAt  time.Time   // when a pending Settled event wants its reconcile (zero: none)
	timer      *time.Timer // next event-driven reconcile
	restartT   *time.Timer
	pid        int         // this process: its own nf_tables transactions are not drift
	cause      cause       // what the events since the last reconcile said
	holdT      *time.Timer // a held item may be repaired again
}

// Run runs the daemon until ctx ends (SIGTERM). It returns an error only
// when the first setup fails.
func Run(ctx context.Context, o Options) error {
	if o.Notify == nil {
		o.Notify = func(string) {}
	}
	l := &loop{o: o, p: o.Policy, events: make(chan watch.Event, 64), fights: newFights(), errs: map[string]string{},
		timer: stoppedTimer(), restartT: stoppedTimer(), holdT: stoppedTimer(), // the first reconcile may already arm them
		pid: os.Getpid()}
	s, err := o.Build(o.Policy)
	if err != nil {
		return err
	}
	l.s = s
	l.reconcile(ctx, "start")
	l.startWatchers(ctx)
	o.Notify("READY=1")
	o.Log.Info("ecs-remediator is running",
		zap.String("ecs_config", l.p.ECSConfig), zap.Duration("resync_interval", l.p.ResyncInterval),
		zap.Bool("compliant", l.compliant))

	resync := time.NewTicker(l.p.ResyncInterval)
	defer resync.Stop()
	var wd <-chan time.Time
	if o.Watchdog > 0 {
		t := time.NewTicker(o.Watchdog)
		defer t.Stop()
		wd = t.C
	}
	var diag <-chan time.Time
	diagT := time.NewTicker(time.Hour)
	defer diagT.Stop()
	l.armDiagnose(diagT, &diag)
	fightT := time.NewTicker(10 * time.Second)
	defer fightT.Stop()
	l.armRestart()

	for {
		select {
		case <-ctx.Done():
			o.Notify("STOPPING=1")
			o.Log.Info("stopping on request")
			l.stopWatchers()
			if l.s.Close != nil {
				l.s.Close()
			}
			return nil
		case ev := <-l.events:
			l.onEvent(ev)
		case <-l.timer.C:
			l.pending, l.settledAt = false, time.Time{}
			l.reconcile(ctx, "event")
		case <-resync.C:
			l.reconcile(ctx, "resync")
		case <-l.holdT.C:
			l.reconcile(ctx, "back-off over")
		case <-wd:
			// Sent from this loop itself: a stuck reconcile stops the pings
			// and systemd restarts the daemon.
			o.Notify("WATCHDOG=1")
		case <-diag:
			if l.s.Diagnose != nil {
				l.s.Diagnose(ctx)
			}
		case <-l.restartT.C:
			if l.s.Restarter != nil {
				l.s.Restarter.Tick(ctx, time.Now())
				l.armRestart()
			}
		case <-fightT.C:
			for _, item := range l.fights.ended(time.Now()) {
				o.Log.Info(item+": the fight is over, the item has stayed as repaired", zap.String("item", item), zap.String("action", "fight-ended"))
			}
		case <-o.Hangup:
			if l.reload(ctx) {
				resync.Reset(l.p.ResyncInterval)
				l.armDiagnose(diagT, &diag)
			}
		}
	}
}

func stoppedTimer() *time.Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}

func (l *loop) armDiagnose(t *time.Ticker, c *<-chan time.Time) {
	if l.s.Diagnose == nil || l.s.DiagnoseInterval <= 0 {
		*c = nil
		return
	}
	t.Reset(l.s.DiagnoseInterval)
	*c = t.C
}

func (l *loop) startWatchers(ctx context.Context) {
	if l.s.Watch == nil {
		return
	}
	wctx, cancel := context.WithCancel(ctx)
	l.stopW = cancel
	if err := l.s.Watch(wctx, l.events); err != nil {
		l.o.Log.Warn("watchers could not start; relying on the periodic resync",
			zap.Error(err), zap.Duration("resync_interval", l.p.ResyncInterval))
	}
}

func (l *loop) stopWatchers() {
	if l.stopW != nil {
		l.stopW()
		l.stopW = nil
	}
}

// onEvent schedules one reconcile for a burst of events. A Settled event
// (a finished write, a committed nf_tables transaction) has nothing more to
// wait for: the reconcile runs at once, or, within a burst (an
// event-driven reconcile ended less than a debounce ago), a debounce after
// that one, so a stream
// of finished writes costs at most one reconcile per debounce (the start,
// resync and reload reconciles do not count). Other
// events (a write in progress) debounce after the latest event, but no
// later than MaxWaitFactor x debounce after the first. A fight never
// delays a pass: the pass holds the fighting item only (see reconcile).
// The daemon's own nf_tables transactions (its
// netlink batches, the iptables-nft-restore it runs) are not drift and
// schedule nothing.
func (l *loop) onEvent(ev watch.Event) {
	own := ev.PID > 0 && (ev.PID == l.pid || ev.PPID == l.pid)
	if ce := l.o.Log.Check(zap.DebugLevel, "event"); ce != nil {
		ce.Write(zap.String("source", ev.Source), zap.String("name", ev.Name), zap.Bool("settled", ev.Settled),
			zap.String("culprit", ev.Culprit), zap.Bool("own", own))
	}
	if own {
		return
	}
	l.cause.add(ev)
	now := time.Now()
	if !l.pending {
		l.pending = true
		l.firstEvent = now
	}
	at := now.Add(l.p.Debounce)
	if limit := l.firstEvent.Add(MaxWaitFactor * l.p.Debounce); at.After(limit) {
		at = limit
	}
	if ev.Settled {
		soon := l.lastEvent.Add(l.p.Debounce)
		if soon.Before(now) {
			soon = now
		}
		if l.settledAt.IsZero() || soon.Before(l.settledAt) {
			l.settledAt = soon
		}
	}
	if !l.settledAt.IsZero() && l.settledAt.Before(at) {
		at = l.settledAt
	}
	l.timer.Stop()
	select { // drain a fired timer that was not received yet
	case <-l.timer.C:
	default:
	}
	l.timer.Reset(time.Until(at))
}

func (l *loop) reconcile(ctx context.Context, why string) {
	start := time.Now()
	l.s.Lock.Pause()
	l.s.Baseline.Before()
	cause := l.cause
	l.cause = cause.next()
	hold := l.fights.holding(start)
	opts := reconcile.Options{Culprits: cause.culprit}
	if len(hold) > 0 {
		opts.Hold = func(item string) bool { _, ok := hold[item]; return ok }
	}
	res := l.s.Reconciler.Repair(ctx, opts)
	took := time.Since(start)
	l.s.Baseline.After(len(res.Changes) > 0)
	if l.s.Lock.Resume() && !l.s.Baseline.Quiet() {
		l.s.Lock.Poke("the xtables lock was taken during our own pass, which repaired something or saw the tables move: look again")
	}
	l.lastRun = start
	l.compliant = res.Compliant()
	now := time.Now()
	if why == "event" {
		l.lastEvent = now
	}
	var restartReasons []string
	reload := false
	for _, fs := range l.fights.pass(now, res.Changes) {
		c := fs.change
		culprit := cause.culprit(c)
		if l.o.Fight != nil {
			l.o.Fight(fs.item)
		}
		l.o.Log.Error(fmt.Sprintf("%s: another tool keeps undoing this repair (%d times within %s), undone by %s; holding the repaired state and backing off (this item only, at most %s between repairs) — find the tool that writes %s and fix its configuration",
			fs.item, fs.flips, l.fights.window, culprit, l.fights.maxDelayOf(fs.item), c.Target),
			logging.MessageID(logging.FightDetected),
			zap.String("item", fs.item), zap.String("action", "fight-detected"), zap.Int("flips", fs.flips),
			zap.String("culprit", culprit),
			zap.String("target", c.Target), zap.String("old", c.Old), zap.String("new", c.New))
	}
	for _, c := range res.Changes {
		l.repairs++
		if c.AgentRestart {
			restartReasons = append(restartReasons, c.Item)
		}
		reload = reload || c.SystemdReload
	}
	if len(restartReasons) > 0 {
		if l.s.Restarter != nil {
			l.s.Restarter.Request(now, strings.Join(restartReasons, ", ")+" changed", reload)
			l.armRestart()
		} else {
			l.o.Log.Warn("the ECS agent reads this only at start and agent.restart is never: restart it yourself (systemctl restart ecs)",
				logging.MessageID(logging.AgentRestartDeferred),
				zap.String("item", strings.Join(restartReasons, ",")), zap.String("action", "restart-needed"))
		}
	}
	l.logImpossible(res.Findings)
	l.armHold(res.Findings, hold)
	l.o.Notify(fmt.Sprintf("STATUS=%s; last reconcile %s (%s); %d repairs since start",
		map[bool]string{true: "compliant", false: "NOT compliant"}[l.compliant],
		start.Format(time.RFC3339), why, l.repairs))
	if l.o.OnResult != nil {
		l.o.OnResult(res, took)
	}
}

// armHold wakes the loop when the first drifted item this pass held may be
// repaired again: a held item needs no event to be repaired (level
// triggered).
func (l *loop) armHold(fs []finding.Finding, hold map[string]time.Time) {
	var at time.Time
	for _, f := range fs {
		if f.Status != finding.Drift {
			continue
		}
		if until, ok := hold[f.Item]; ok && (at.IsZero() || until.Before(at)) {
			at = until
		}
	}
	if at.IsZero() {
		return
	}
	l.holdT.Stop()
	select {
	case <-l.holdT.C:
	default:
	}
	l.holdT.Reset(time.Until(at))
}

// logImpossible logs a repair that cannot be made once, when it first
// happens or its reason changes, and once when it clears.
func (l *loop) logImpossible(fs []finding.Finding) {
	seen := map[string]bool{}
	for _, f := range fs {
		if f.Status != finding.Error {
			continue
		}
		seen[f.Item] = true
		if l.errs[f.Item] == f.Detail {
			continue
		}
		l.errs[f.Item] = f.Detail
		l.o.Log.Error(f.Item+": cannot be repaired: "+f.Detail,
			logging.MessageID(logging.RepairImpossible),
			zap.String("item", f.Item), zap.String("action", "repair-impossible"), zap.String("fix", f.Fix))
	}
	var cleared []string
	for item := range l.errs {
		if !seen[item] {
			cleared = append(cleared, item)
		}
	}
	sort.Strings(cleared)
	for _, item := range cleared {
		delete(l.errs, item)
		l.o.Log.Info(item+": can be observed and repaired again", zap.String("item", item), zap.String("action", "recovered"))
	}
}

func (l *loop) armRestart() {
	l.restartT.Stop()
	if l.s.Restarter == nil {
		return
	}
	at, ok := l.s.Restarter.Due()
	if !ok {
		return
	}
	l.restartT.Reset(time.Until(at))
}

// reload re-reads the policy file; a bad file is logged and the old
// policy kept.
func (l *loop) reload(ctx context.Context) bool {
	p, err := l.o.Reload()
	if err != nil {
		l.o.Log.Error("policy reload rejected, keeping the policy in force: "+err.Error(), logging.MessageID(logging.PolicyRejected), zap.String("action", "policy-rejected"))
		return false
	}
	s, err := l.o.Build(p)
	if err != nil {
		l.o.Log.Error("policy reload rejected, keeping the policy in force: "+err.Error(), logging.MessageID(logging.PolicyRejected), zap.String("action", "policy-rejected"))
		return false
	}
	l.stopWatchers()
	if l.s.Close != nil {
		l.s.Close()
	}
	l.p, l.s = p, s
	l.o.Log.Info("policy reloaded", logging.MessageID(logging.PolicyReloaded), zap.String("action", "policy-reloaded"), zap.String("file", p.Path()))
	l.reconcile(ctx, "reload")
	l.startWatchers(ctx)
	return true
}
