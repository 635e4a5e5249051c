// Command ecs-remediator keeps an Amazon ECS container instance configured
// so that tasks get their IAM task-role credentials. This package holds the
// flags, the subcommands and the wiring only; the work is done in pkg/.
package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ecs-remediator/ecs-remediator/pkg/suggest"
)

// Set at build time with -ldflags "-X main.version=...".
var (
	version = "dev"
	commit  = "unknown"
)

// Exit codes, a contract documented in README.md.
const (
	exitOK    = 0
	exitDrift = 1 // check: drift found; doctor: a check failed
	exitError = 2 // bad flag, bad policy file, unreadable file, repair failed
)

type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{"check", "report every drift from the policy, read-only", runCheck},
		{"apply", "repair every drift once (user data, AMI bakes)", runApply},
		{"doctor", "diagnose what cannot be repaired here (agent, IMDS, instance profile, tasks), with the fix", runDoctor},
		{"lint-trust-policy", "check an IAM role trust policy for a task, instance or cross-account role", runLintTrustPolicy},
		{"run", "the daemon: watch, repair within moments, restart the ECS agent when its config changed", runDaemon},
		{"version", "print the version", runVersion},
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `ecs-remediator keeps an ECS container instance configured so that tasks get
their IAM task-role credentials instead of "Access Denied".

Usage:
  ecs-remediator <command> [flags]

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-18s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Run 'ecs-remediator <command> --help' for the flags of a command.

Examples:
  ecs-remediator check                 # what is wrong on this host? (read-only)
  ecs-remediator apply --dry-run       # show the repairs as a diff, change nothing
  ecs-remediator apply                 # repair once
  ecs-remediator doctor                # diagnose IMDS, instance profile, agent, tasks
`)
}

func main() {
	os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr))
}

func dispatch(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitError
	}
	switch args[0] {
	case "-h", "--help", "help":
		usage(stdout)
		return exitOK
	case "-v", "--version":
		return runVersion(nil, stdout, stderr)
	case "__man": // hidden: the packages' man page (man.go)
		return runMan(args[1:], stdout, stderr)
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(args[1:], stdout, stderr)
		}
	}
	msg := fmt.Sprintf("unknown command %q", args[0])
	if strings.HasPrefix(args[0], "-") {
		msg = fmt.Sprintf("unknown flag %s (flags come after the command: ecs-remediator check --help)", args[0])
	} else if c := suggest.Closest(args[0], commandNames()); c != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", c)
	}
	fmt.Fprintf(stderr, "ecs-remediator: %s; run 'ecs-remediator --help' for the commands\n", msg)
	return exitError
}

func runVersion(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("version", "", "Print the version of ecs-remediator.", "ecs-remediator version", stdout, stderr)
	if code, ok := fs.parse(args, 0); !ok {
		return code
	}
	fmt.Fprintf(stdout, "ecs-remediator %s (commit %s)\n", version, commit)
	return exitOK
}
