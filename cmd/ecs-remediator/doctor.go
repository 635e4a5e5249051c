package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/ecs-remediator/ecs-remediator/pkg/agent"
	"github.com/ecs-remediator/ecs-remediator/pkg/doctor"
	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
	"github.com/ecs-remediator/ecs-remediator/pkg/policy"
)

// doctorReport is the JSON shape of doctor --json, a documented contract:
// like check --json, with "healthy" (nothing failed) next to "compliant"
// (what check would say about the host's files and kernel).
type doctorReport struct {
	Compliant bool            `json:"compliant"`
	Healthy   bool            `json:"healthy"`
	Findings  []doctor.Result `json:"findings"`
}

func runDoctor(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("doctor", "", `Diagnose why tasks may get "Access Denied": everything check reports, then
what ecs-remediator cannot repair — the ECS agent's unit and registration,
the credentials endpoint 169.254.170.2 end to end, IMDS and the instance
profile (IMDSv2 through the AWS SDK), and task processes that lost
AWS_CONTAINER_CREDENTIALS_RELATIVE_URI. Each finding says what was seen and
the fix. Read-only. A check that cannot run here is "skip" with the reason;
the network checks run concurrently within --timeout.

Exit status: 0 nothing failed, 1 a check failed, 2 error (bad flag, bad
policy file).`, "ecs-remediator doctor\necs-remediator doctor --json | jq '.findings[] | select(.status == \"fail\")'", stdout, stderr)
	load := fs.configFlag()
	asJSON := fs.Bool("json", false, `print one JSON object {"compliant": bool, "healthy": bool, "findings": [...]}`)
	imds := fs.String("imds-endpoint", "", "base `URL` of the instance metadata service (default: the policy's doctor.imds_endpoint, "+doctor.DefaultIMDSEndpoint+")")
	timeout := fs.Duration("timeout", 0, "deadline of each network check group, e.g. 2s (default: the policy's doctor.timeout, 2s)")
	if code, ok := fs.parse(args, 0); !ok {
		return code
	}
	if *imds != "" {
		if err := checkURL(*imds); err != nil {
			fmt.Fprintf(stderr, "ecs-remediator doctor: --imds-endpoint %q: %v; give a base URL such as http://169.254.169.254\n", *imds, err)
			return exitError
		}
	}
	if *timeout < 0 || (*timeout > 0 && *timeout < 10*time.Millisecond) || *timeout > 5*time.Minute {
		fmt.Fprintf(stderr, "ecs-remediator doctor: --timeout %s is out of range; give a duration between 10ms and 5m, e.g. 2s\n", *timeout)
		return exitError
	}
	p, err := load()
	if err != nil {
		fmt.Fprintf(stderr, "ecs-remediator doctor: %v\n", err)
		return exitError
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rec, err := buildReconciler(p, nil)
	if err != nil {
		fmt.Fprintf(stderr, "ecs-remediator doctor: %v\n", err)
		return exitError
	}
	checked := rec.Check(ctx)
	units := agent.NewDBus(agent.DBusOptions{CallTimeout: doctorTimeout(p, *timeout)})
	defer units.Close()
	c := doctorConfig(p, units)
	if *imds != "" {
		c.IMDSEndpoint = strings.TrimRight(*imds, "/")
	}
	if *timeout > 0 {
		c.Timeout = *timeout
	}
	rs := append(fromFindings(checked.Findings), doctor.Run(ctx, c)...)
	if *asJSON {
		if err := writeJSON(stdout, doctorReport{Compliant: checked.Compliant(), Healthy: !doctor.Failed(rs), Findings: rs}); err != nil {
			fmt.Fprintf(stderr, "ecs-remediator doctor: %v\n", err)
			return exitError
		}
	} else {
		writeResults(stdout, rs, "healthy", "NOT healthy")
	}
	if doctor.Failed(rs) {
		return exitDrift
	}
	return exitOK
}

func doctorTimeout(p *policy.Policy, flag time.Duration) time.Duration {
	if flag > 0 {
		return flag
	}
	return p.Doctor.Timeout
}

// doctorConfig is where doctor looks, from the policy.
func doctorConfig(p *policy.Policy, units *agent.DBus) doctor.Config {
	return doctor.Config{
		IMDSEndpoint:     strings.TrimRight(p.Doctor.IMDSEndpoint, "/"),
		CredentialsURL:   p.Doctor.CredentialsURL,
		IntrospectionURL: p.Agent.IntrospectionURL,
		AgentUnit:        p.Agent.Unit,
		ProcRoot:         p.Doctor.ProcRoot,
		Timeout:          p.Doctor.Timeout,
		UnitState:        units.ActiveState,
	}
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("the scheme must be http or https")
	}
	if u.Host == "" {
		return fmt.Errorf("no host")
	}
	return nil
}

// fromFindings turns check's findings into doctor results: drift and error
// are failures, an ok finding with a warning is a warning.
func fromFindings(fs []finding.Finding) []doctor.Result {
	rs := make([]doctor.Result, 0, len(fs))
	for _, f := range fs {
		r := doctor.Result{Item: f.Item, Detail: f.Detail, Fix: f.Fix}
		switch {
		case f.Status == finding.Drift || f.Status == finding.Error:
			r.Status = doctor.Fail
		case f.Warned():
			r.Status = doctor.Warn
		default:
			r.Status = doctor.OK
			r.Fix = ""
		}
		rs = append(rs, r)
	}
	return rs
}

// writeResults prints doctor (or lint) results as an aligned table with the
// fix under each one that needs it, then a one-line verdict.
func writeResults(w io.Writer, rs []doctor.Result, good, bad string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STATUS\tITEM\tDETAIL")
	counts := map[doctor.Status]int{}
	for _, r := range rs {
		counts[r.Status]++
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Status, r.Item, oneLine(r.Detail))
		if r.Fix != "" && r.Status != doctor.OK {
			fmt.Fprintf(tw, "\t  fix:\t%s\n", oneLine(r.Fix))
		}
	}
	tw.Flush()
	verdict := good
	if doctor.Failed(rs) {
		verdict = bad
	}
	var parts []string
	for _, st := range []doctor.Status{doctor.OK, doctor.Warn, doctor.Fail, doctor.Skip} {
		parts = append(parts, fmt.Sprintf("%d %s", counts[st], st))
	}
	fmt.Fprintf(w, "\n%s: %s\n", verdict, strings.Join(parts, ", "))
}
