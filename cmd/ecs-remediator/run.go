package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"
	"go.uber.org/zap"

	"github.com/ecs-remediator/ecs-remediator/pkg/daemon"
	"github.com/ecs-remediator/ecs-remediator/pkg/metrics"
	"github.com/ecs-remediator/ecs-remediator/pkg/policy"
	"github.com/ecs-remediator/ecs-remediator/pkg/reconcile"
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
	if code, ok := fs.parse(args, 0); !ok {
		return code
	}
	p, err := load()
	if err != nil {
		fmt.Fprintf(stderr, "ecs-remediator run: %v\n", err)
		return exitError
	}
	log, err := newLogger(p.LogLevel, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "ecs-remediator run: %v\n", err)
		return exitError
	}
	defer log.Sync()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)

	listen := p.Metrics.Listen
	if listen == "off" {
		listen = ""
	}
	mx := metrics.New(metrics.Config{
		Textfile: metrics.ResolveTextfile(p.Metrics.Textfile, policy.DefaultTextfile),
		Listen:   listen, Version: version, Commit: commit,
	})
	go func() {
		if err := mx.Serve(ctx); err != nil {
			log.Error("metrics endpoint stopped: "+err.Error(), zap.String("action", "metrics-failed"))
		}
	}()

	wd, _ := sddaemon.SdWatchdogEnabled(false)
	err = daemon.Run(ctx, daemon.Options{
		Log:      log,
		Policy:   p,
		Reload:   load,
		Build:    func(p *policy.Policy) (*daemon.Setup, error) { return buildSetup(p, log) },
		Notify:   func(s string) { sddaemon.SdNotify(false, s) },
		Watchdog: wd / 2,
		Hangup:   hup,
		Reconciled: func(res reconcile.Result, took time.Duration) {
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
// watchers (files; nf_tables events, or polling on the legacy backend).
func buildSetup(p *policy.Policy, log *zap.Logger) (*daemon.Setup, error) {
	w, err := wire(p, log)
	if err != nil {
		return nil, err
	}
	s := &daemon.Setup{Reconciler: w.rec}
	s.Watch = func(ctx context.Context, out chan<- watch.Event) error {
		var errs []error
		if err := watch.Files(ctx, w.watched, out); err != nil {
			errs = append(errs, fmt.Errorf("watch files: %w", err))
		}
		if w.nf != nil {
			poll := !w.nf.HasEvents()
			if !poll {
				if err := watch.Nftables(ctx, out); err != nil {
					errs = append(errs, fmt.Errorf("nf_tables events (polling every %s instead): %w", p.PollInterval, err))
					poll = true
				}
			}
			if poll {
				watch.Poll(ctx, p.PollInterval, out)
			}
		}
		return errors.Join(errs...)
	}
	return s, nil
}
