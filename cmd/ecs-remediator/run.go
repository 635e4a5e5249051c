package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"
	"go.uber.org/zap"

	"github.com/ecs-remediator/ecs-remediator/pkg/daemon"
	"github.com/ecs-remediator/ecs-remediator/pkg/policy"
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

	wd, _ := sddaemon.SdWatchdogEnabled(false)
	err = daemon.Run(ctx, daemon.Options{
		Log:      log,
		Policy:   p,
		Reload:   load,
		Build:    func(p *policy.Policy) (*daemon.Setup, error) { return buildSetup(p, log) },
		Notify:   func(s string) { sddaemon.SdNotify(false, s) },
		Watchdog: wd / 2,
		Hangup:   hup,
	})
	if err != nil {
		log.Error("cannot start: " + err.Error())
		return exitError
	}
	return exitOK
}

// buildSetup turns a policy into what the daemon runs.
func buildSetup(p *policy.Policy, log *zap.Logger) (*daemon.Setup, error) {
	rec, err := buildReconciler(p, log)
	if err != nil {
		return nil, err
	}
	return &daemon.Setup{Reconciler: rec}, nil
}
