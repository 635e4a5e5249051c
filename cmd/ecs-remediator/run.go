package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"
	"go.uber.org/zap"

	"github.com/ecs-remediator/ecs-remediator/pkg/agent"
	"github.com/ecs-remediator/ecs-remediator/pkg/daemon"
	"github.com/ecs-remediator/ecs-remediator/pkg/doctor"
	"github.com/ecs-remediator/ecs-remediator/pkg/logging"
	"github.com/ecs-remediator/ecs-remediator/pkg/metrics"
	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter"
	"github.com/ecs-remediator/ecs-remediator/pkg/policy"
	"github.com/ecs-remediator/ecs-remediator/pkg/reconcile"
	"github.com/ecs-remediator/ecs-remediator/pkg/sysctl"
	"github.com/ecs-remediator/ecs-remediator/pkg/watch"
)

func runDaemon(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("run", "", `Run the daemon: repair drift within moments of it happening, through the
same code as apply. Watches ecs.config (and its directory), the ecs unit's
drop-ins and the kernel's nf_tables change events (the legacy backend is
polled), with a periodic full resync as a safety net. Restarts the ECS agent
(try-restart over D-Bus, rate limited) only when something it reads at start
changed. Speaks sd_notify (Type=notify, watchdog) and logs to journald under
systemd. SIGHUP reloads the policy file; SIGTERM stops.`, "systemctl enable --now ecs-remediator   # as installed by the package\necs-remediator run --config ./policy.yaml   # in the foreground", stdout, stderr)
	load := fs.configFlag()
	logFormat := fs.logFormatFlag()
	if code, ok := fs.parse(args, 0); !ok {
		return code
	}
	if code, ok := fs.checkLogFormat(*logFormat); !ok {
		return code
	}
	p, err := load()
	if err != nil {
		fmt.Fprintf(stderr, "ecs-remediator run: %v\n", err)
		return exitError
	}
	log, err := newLogger(p.LogLevel, *logFormat, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "ecs-remediator run: %v\n", err)
		return exitError
	}
	defer log.Sync()
	limitProcs()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)

	mx := metrics.New(metrics.Config{
		Textfile: metrics.ResolveTextfile(policy.Resolve(p.Metrics.Textfile), policy.DefaultTextfile),
		Listen:   policy.Resolve(p.Metrics.Listen), Version: version, Commit: commit,
	})
	go func() {
		if err := mx.Serve(ctx); err != nil {
			log.Error("metrics endpoint stopped: "+err.Error(), zap.String("action", "metrics-failed"))
		}
	}()

	wd, _ := sddaemon.SdWatchdogEnabled(false)
	pf := &policyFile{path: p.Path(), log: log}
	err = daemon.Run(ctx, daemon.Options{
		Log:      log,
		Policy:   p,
		Reload:   pf.reload(load),
		Build:    func(p *policy.Policy) (*daemon.Setup, error) { return buildSetup(p, log, mx) },
		Notify:   func(s string) { sddaemon.SdNotify(false, s) },
		Watchdog: wd / 2,
		Hangup:   hup,
		OnResult: func(res reconcile.Result, took time.Duration) {
			pf.observe()
			now := time.Now()
			mx.Observe(res.Findings, res.Changes, took, now)
			if err := mx.Flush(now); err != nil {
				log.Warn("metrics textfile: "+err.Error(), zap.String("action", "metrics-failed"))
			}
		},
		Fight: mx.Fight,
	})
	if err != nil {
		log.Error("cannot start: " + err.Error())
		return exitError
	}
	return exitOK
}

// buildSetup turns a policy into what the daemon runs: the reconciler, the
// watchers (files; nf_tables events, or polling on the legacy backend), the
// agent restarter and the periodic diagnosis.
func buildSetup(p *policy.Policy, log *zap.Logger, mx *metrics.Metrics) (*daemon.Setup, error) {
	w, err := wire(p, log)
	if err != nil {
		return nil, err
	}
	if p.Path() != "" {
		w.watched = append(w.watched, p.Path()) // its deletion is logged (policyfile.go)
	}
	units := agent.NewDBus(agent.DBusOptions{LateResult: func(unit, result string) {
		if result == "done" {
			log.Debug("the ECS agent's restart job finished", zap.String("unit", unit), zap.String("result", result))
			return
		}
		log.Warn(fmt.Sprintf("the restart of the ECS agent (%s) ended with result %q: see systemctl status %s and journalctl -u %s", unit, result, unit, unit),
			logging.MessageID(logging.AgentRestartDeferred), zap.String("unit", unit), zap.String("result", result),
			zap.String("action", "restart-failed"), zap.String("detail", "job result "+result))
	}})
	s := &daemon.Setup{Reconciler: w.rec, Close: units.Close}
	if w.nf != nil {
		w.nf.OnFallback(func(backend, reason string, err error) {
			logFallback(log, backend, reason, err)
			mx.ReaderFallback(backend, reason)
		})
	}
	if p.Agent.Restart == policy.RestartOnChange {
		s.Restarter = agent.NewRestarter(units, agent.Config{
			Unit:               p.Agent.Unit,
			Mode:               agent.OnChange,
			MinRestartInterval: p.Agent.MinRestartInterval,
			Settle:             restartSettle,
			Log:                log,
			Observe:            restartMetrics(mx),
		})
	}
	diag := doctor.NewSchedule(doctorConfig(p, units), p.Doctor.Interval, log, mx.Doctor)
	s.Diagnose, s.DiagnoseInterval = diag.Run, diag.Interval()
	if w.nf != nil {
		// The daemon probes the poller's baseline around its reconciles
		// and pauses the lock watch during them (daemon.Setup).
		s.Baseline = watch.NewBaseline(legacyProbe(p, w.nf))
		if w.nf.Legacy() {
			s.Lock = watch.NewLockWatch(watch.XtablesLockPath())
		}
	}
	s.Watch = func(ctx context.Context, out chan<- watch.Event) error {
		var errs []error
		if err := watch.Files(ctx, w.watched, out); err != nil {
			errs = append(errs, fmt.Errorf("watch files: %w", err))
		}
		// ecs-init's post-stop resets route_localnet without touching a
		// rule: read it every sysctlEvery, whatever the backend.
		watch.Sysctls(ctx, w.sysctls, sysctlEvery, out)
		if w.routes {
			if err := watch.Routes(ctx, out); err != nil {
				errs = append(errs, err)
			}
		}
		if w.nf != nil {
			poll := !w.nf.HasEvents()
			if w.nf.UsesNFT() {
				if err := watch.Nftables(ctx, out); err != nil {
					errs = append(errs, fmt.Errorf("nf_tables events (polling every %s instead): %w", p.PollInterval, err))
					poll = true
				}
			}
			if poll {
				watch.Poll(ctx, p.PollInterval, deepPollEvery, s.Baseline, out)
			}
			if s.Lock != nil {
				if err := s.Lock.Start(ctx, out); err != nil {
					errs = append(errs, fmt.Errorf("xtables lock events (polling every %s only): %w", p.PollInterval, err))
				}
			}
		}
		return errors.Join(errs...)
	}
	return s, nil
}

// limitProcs runs the daemon on at most two Ps unless GOMAXPROCS is set.
// Go's default is one per CPU, and every wake-up of an idle process (a
// poll, a timer) starts threads spinning for work on as many (the figure:
// docs/performance.md, "The daemon's own constants"). Two keep the
// parallel netlink dumps of a big ruleset parallel.
func limitProcs() {
	if os.Getenv("GOMAXPROCS") == "" && runtime.GOMAXPROCS(0) > 2 {
		runtime.GOMAXPROCS(2)
	}
}

// restartSettle is how long a restart waits after the repair that asked
// for it, so that ecs.config and a drop-in repaired together give one.
const restartSettle = time.Second

// sysctlEvery is how often the daemon reads route_localnet (one pread):
// a value reset by ecs-init's post-stop is back within a second
// (docs/ecs-init.md).
const sysctlEvery = 500 * time.Millisecond

// deepPollEvery: on legacy every poll compares the tables' shape (sizes and
// entry counts), every deepPollEvery-th also their rules. A deleted, added
// or flushed rule that the xtables lock did not announce (a raw setsockopt
// writer) is seen within one poll_interval; a rule replaced in place by one
// of the same size within deepPollEvery intervals (25 s by default).
// Reading the rules makes the kernel vmalloc a copy of every counter, so
// the shallow polls cost less CPU (docs/performance.md, "The daemon's own
// constants").
const deepPollEvery = 5

// restartMetrics counts the restarter's restarts, and the requests it
// deferred or merged into a pending restart, in the metrics.
func restartMetrics(mx *metrics.Metrics) func(agent.Event) {
	return func(e agent.Event) {
		switch e {
		case agent.EventRestarted:
			mx.AgentRestarted()
		case agent.EventCoalesced, agent.EventDeferred:
			mx.RestartSuppressed()
		}
	}
}

// legacyProbe is what the poller compares on the legacy backend: the
// tables' fingerprint and route_localnet, so that an idle host costs a few
// getsockopt calls per poll_interval, not a reconcile. On nf_tables (events
// failed) the fingerprint fails and every poll reconciles.
func legacyProbe(p *policy.Policy, nf *netfilter.Enforcer) watch.Probe {
	return func(deep bool) (string, string, error) {
		shape, content, err := nf.Fingerprint(deep)
		if err != nil {
			return "", "", err
		}
		v, _ := sysctl.ReadLive(p.Network.ProcSys) // unreadable: the reconcile reports it
		return shape + " " + v, content, nil
	}
}
