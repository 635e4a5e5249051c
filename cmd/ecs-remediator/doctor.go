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
	"time"

	"github.com/ecs-remediator/ecs-remediator/pkg/agent"
	"github.com/ecs-remediator/ecs-remediator/pkg/dockerapi"
	"github.com/ecs-remediator/ecs-remediator/pkg/doctor"
	"github.com/ecs-remediator/ecs-remediator/pkg/ecsconfig"
	"github.com/ecs-remediator/ecs-remediator/pkg/envfile"
	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter"
	"github.com/ecs-remediator/ecs-remediator/pkg/policy"
	"github.com/ecs-remediator/ecs-remediator/pkg/safefile"
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
	fs.wideFlag()
	imds := fs.String("imds-endpoint", "", "base `URL` of the instance metadata service (default: the policy's doctor.imds_endpoint, "+doctor.DefaultIMDSEndpoint+")")
	timeout := fs.Duration("timeout", 0, "deadline of each network check group, e.g. 2s (default: the policy's doctor.timeout, 2s)")
	if code, ok := fs.parse(args, 0); !ok {
		return code
	}
	if *imds != "" {
		if err := checkURL(*imds); err != nil {
			return fs.usageError("--imds-endpoint %q: %v; give a base URL such as http://169.254.169.254", *imds, err)
		}
	}
	if *timeout < 0 || (*timeout > 0 && *timeout < 10*time.Millisecond) || *timeout > 5*time.Minute {
		return fs.usageError("--timeout %s is out of range: give a duration between 10ms and 5m, e.g. 2s", *timeout)
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
	if line := markUnread("doctor", checked.Findings, canReadFirewall()); line != "" {
		fmt.Fprintln(stderr, line)
	}
	units := agent.NewDBus(agent.DBusOptions{CallTimeout: doctorTimeout(p, *timeout)})
	defer units.Close()
	c := doctorConfig(p, units)
	if *imds != "" {
		c.IMDSEndpoint = strings.TrimRight(*imds, "/")
	}
	if *timeout > 0 {
		c.Timeout = *timeout
	}
	probed := doctor.Run(ctx, c)
	crossCheckBridgePath(checked.Findings, probed)
	rs := append(fromFindings(checked.Findings), probed...)
	for i := range rs {
		rs[i].Detail, rs[i].Fix = rec.Scrub(rs[i].Detail), rec.Scrub(rs[i].Fix)
	}
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
	c := doctor.Config{
		IMDSEndpoint:     strings.TrimRight(p.Doctor.IMDSEndpoint, "/"),
		CredentialsURL:   p.Doctor.CredentialsURL,
		IntrospectionURL: p.Agent.IntrospectionURL,
		AgentUnit:        p.Agent.Unit,
		ProcRoot:         p.Doctor.ProcRoot,
		AgentPort:        p.Network.AgentPort,
		TaskBridges:      doctorTaskBridges(p),
		Timeout:          p.Doctor.Timeout,
		UnitState:        units.ActiveState,
	}
	c.External = externalConfig(p)
	return c
}

// externalConfig says whether this is an ECS Anywhere host: ECS_EXTERNAL
// true for the agent (ecs-init's map of ecs.config, the agent's
// strconv.ParseBool) or for ecs-init (systemd's parse, exactly "true") —
// nil otherwise, or when ecs.config cannot be read (check reports that).
func externalConfig(p *policy.Policy) *doctor.External {
	env, err := ecsconfig.ReadAgentEnv(p.ECSConfig, policy.Resolve(p.ECSConfigBase))
	if err != nil {
		return nil
	}
	s, set := env["ECS_EXTERNAL"]
	agentExt, valid := ecsconfig.ParseBool(s.Value)
	agentExt = set && valid && agentExt
	initExt := false
	if f, err := safefile.Read(p.ECSConfig, safefile.Options{Max: ecsconfig.MaxSize}); err == nil {
		v, ok := envfile.Parse(f.Data).Lookup("ECS_EXTERNAL")
		initExt = ok && v.Value == "true"
	}
	if !agentExt && !initExt {
		return nil
	}
	profile := "default"
	if a, ok := env["ECS_ALTERNATE_CREDENTIAL_PROFILE"]; ok && a.Value != "" {
		profile = a.Value
	}
	why := p.ECSConfig
	if set {
		why = fmt.Sprintf("%s line %d", s.File, s.Line)
	}
	return &doctor.External{
		Why:             why,
		Value:           s.Value,
		Agent:           agentExt,
		ECSInit:         initExt,
		CredentialsFile: p.Doctor.ExternalCredentials,
		Profile:         profile,
		SSMRegistration: p.Doctor.SSMRegistration,
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

// itemCredentialsInput is check's static evaluation of the credential
// flows through the input filters.
const itemCredentialsInput = netfilter.ItemCredentialsInput

// doctorTaskBridges are the bridges the probe looks for: the policy's
// network.task_bridges, resolved as the static evaluation resolves them
// (empty: the default bridge Docker reports, else docker0), so that probe
// and check judge the same bridge.
func doctorTaskBridges(p *policy.Policy) []string {
	if len(p.Network.TaskBridges) > 0 {
		return p.Network.TaskBridges
	}
	if sock := policy.Resolve(p.Network.DockerSocket); sock != "" {
		if name, ok, _ := (&dockerapi.Bridge{Socket: sock}).Name(); ok && name != "" {
			return []string{name}
		}
	}
	return []string{netfilter.DefaultTaskBridge}
}

// crossCheckBridgePath compares check's static verdict on the bridge path
// (network.credentials_input) with what the real probe
// (credentials.bridge_path) measured, and says so in the probe's line when
// they disagree: one of the two is wrong, and that is worth knowing.
//   - check ok, probe failed: something the evaluator does not see blocks
//     the path (or it is not the filter: no agent, no DNAT, route_localnet;
//     the probe's detail names the stage). The probe stays a failure.
//   - check drift, probe ok: the evaluator sees a block the packets do not
//     meet. The probe's ok becomes a warning.
//
// A skipped probe or an absent item (older policy) compares nothing.
func crossCheckBridgePath(fs []finding.Finding, rs []doctor.Result) {
	var static *finding.Finding
	for i := range fs {
		if fs[i].Item == itemCredentialsInput {
			static = &fs[i]
		}
	}
	if static == nil {
		return
	}
	for i := range rs {
		r := &rs[i]
		if r.Item != doctor.ItemCredentialsBridgePath {
			continue
		}
		switch {
		case static.Status == finding.OK && r.Status == doctor.Fail:
			r.Detail = fmt.Sprintf("check says ok (%s: %s) but the probe failed: %s", itemCredentialsInput, oneLine(static.Detail), r.Detail)
			r.Fix += "; if the probe's stage is the input filters, the static evaluation missed a rule: report it with `iptables-save`, `nft list ruleset` and this output"
		case static.Status == finding.Drift && r.Status == doctor.OK:
			r.Status = doctor.Warn
			r.Detail = fmt.Sprintf("check says the path is blocked (%s: %s) but the probe got through: %s", itemCredentialsInput, oneLine(static.Detail), r.Detail)
			r.Fix = "one of the two is wrong: `ecs-remediator apply` would add an accept that may not be needed; report it with `iptables-save`, `nft list ruleset` and this output"
		}
	}
}

// fromFindings turns check's findings into doctor results: drift and error
// are failures, an ok finding with a warning is a warning.
func fromFindings(fs []finding.Finding) []doctor.Result {
	rs := make([]doctor.Result, 0, len(fs))
	for _, f := range fs {
		r := doctor.Result{Item: f.Item, Detail: f.Detail, Fix: f.Fix}
		switch {
		case f.Detail == notRead:
			r.Status, r.Fix = doctor.Skip, ""
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
