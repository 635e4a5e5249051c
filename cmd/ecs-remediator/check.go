package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
	"github.com/ecs-remediator/ecs-remediator/pkg/metrics"
)

func runCheck(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("check", "", `Report every drift from the policy, read-only: the ecs.config flags as
ecs-init and the agent really read them, NO_PROXY, the 169.254.170.2 NAT
rules, route_localnet and its localhost guard, and their persistence.

Exit status: 0 compliant, 1 drift found, 2 error (bad flag, bad policy file,
unreadable file).`, "ecs-remediator check --json | jq '.findings[] | select(.status != \"ok\")'", stdout, stderr)
	load := fs.configFlag()
	asJSON := fs.Bool("json", false, `print one JSON object {"compliant": bool, "findings": [...]}`)
	fs.wideFlag()
	asProm := fs.Bool("prometheus", false, "print the compliance gauges in Prometheus text format (for cron, SSM or node_exporter's textfile collector)")
	if code, ok := fs.parse(args, 0); !ok {
		return code
	}
	if *asJSON && *asProm {
		return fs.usageError("--json and --prometheus exclude each other: pick one")
	}
	p, err := load()
	if err != nil {
		fmt.Fprintf(stderr, "ecs-remediator check: %v\n", err)
		return exitError
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rec, err := buildReconciler(p, nil)
	if err != nil {
		fmt.Fprintf(stderr, "ecs-remediator check: %v\n", err)
		return exitError
	}
	res := rec.Check(ctx)
	if line := markUnread("check", res.Findings, canReadFirewall()); line != "" {
		fmt.Fprintln(stderr, line)
	}
	if *asProm {
		if err := metrics.WriteText(stdout, res.Findings); err != nil {
			fmt.Fprintf(stderr, "ecs-remediator check: %v\n", err)
			return exitError
		}
	} else if *asJSON {
		if err := writeJSON(stdout, report{Compliant: res.Compliant(), Findings: nonNil(res.Findings)}); err != nil {
			fmt.Fprintf(stderr, "ecs-remediator check: %v\n", err)
			return exitError
		}
	} else {
		writeTable(stdout, res.Findings)
	}
	switch {
	case hasStatus(res.Findings, finding.Error):
		return exitError
	case !res.Compliant():
		return exitDrift
	}
	return exitOK
}

func nonNil(fs []finding.Finding) []finding.Finding {
	if fs == nil {
		return []finding.Finding{}
	}
	return fs
}
