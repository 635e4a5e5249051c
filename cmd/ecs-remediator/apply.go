package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
)

func runApply(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("apply", "", `Repair every drift once, then exit: rewrite the lines of ecs.config that
decide a wrong value (every other byte stays; the original is backed up
first), restore the NAT rules and the localhost guard, set route_localnet,
and persist the repairs so they survive a reboot. Meant for EC2 user data
and AMI bakes; the daemon ("run") does the same continuously.

apply does not restart the ECS agent: in user data it runs before the agent
starts. After a manual apply on a running host, restart the agent when
ecs.config changed (the log says so): systemctl restart ecs

Exit status: 0 compliant at the end (whether or not something changed),
2 error (bad flag, bad policy file, a repair that failed).`, "ecs-remediator apply --dry-run   # print the diff, change nothing\necs-remediator apply", stdout, stderr)
	load := fs.configFlag()
	dryRun := fs.Bool("dry-run", false, "print a unified diff of the files and the commands it would run; change nothing")
	logFormat := fs.logFormatFlag()
	fs.wideFlag()
	if code, ok := fs.parse(args, 0); !ok {
		return code
	}
	if code, ok := fs.checkLogFormat(*logFormat); !ok {
		return code
	}
	p, err := load()
	if err != nil {
		fmt.Fprintf(stderr, "ecs-remediator apply: %v\n", err)
		return exitError
	}
	log, err := newLogger(p.LogLevel, *logFormat, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "ecs-remediator apply: %v\n", err)
		return exitError
	}
	defer log.Sync()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rec, err := buildReconciler(p, log)
	if err != nil {
		fmt.Fprintf(stderr, "ecs-remediator apply: %v\n", err)
		return exitError
	}
	var plan bytes.Buffer
	res := rec.Apply(ctx, *dryRun, &plan)
	if *dryRun {
		stdout.Write(plan.Bytes())
		if plan.Len() == 0 {
			fmt.Fprintln(stderr, "ecs-remediator apply --dry-run: nothing to change")
		}
		if hasStatus(res.Findings, finding.Error) {
			writeTable(stderr, res.Findings)
			return exitError
		}
		return exitOK
	}
	if !res.Compliant() {
		writeTable(stderr, res.Findings)
		fmt.Fprintln(stderr, "ecs-remediator apply: the host is still not compliant; see the items above")
		return exitError
	}
	if len(res.Changes) == 0 {
		fmt.Fprintln(stderr, "ecs-remediator apply: already compliant, nothing changed")
	} else {
		fmt.Fprintf(stderr, "ecs-remediator apply: %d repair(s) made; the host is compliant\n", len(res.Changes))
		restart := false
		for _, c := range res.Changes {
			restart = restart || c.AgentRestart
		}
		if restart {
			fmt.Fprintln(stderr, "ecs-remediator apply: the ECS agent reads ecs.config only at start: if it is running, restart it (systemctl restart ecs)")
		} else {
			fmt.Fprintln(stderr, "ecs-remediator apply: no agent restart needed: the agent already runs with these values")
		}
	}
	return exitOK
}
