package policy

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// envKeyRE is what a variable name in ecs.config may look like for us to
// enforce it (ecs-init itself accepts anything before the first "=").
var envKeyRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ifaceNameRE is a Linux interface name (IFNAMSIZ-1 bytes), or a prefix
// ending in "+" as iptables writes one.
var ifaceNameRE = regexp.MustCompile(`^[^\s/+:]{1,15}\+?$`)

// Managed keys are the ecs.config keys the dedicated policy keys enforce.
const (
	KeyTaskIAMRole            = "ECS_ENABLE_TASK_IAM_ROLE"
	KeyTaskIAMRoleNetworkHost = "ECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST"
	KeyNoProxy                = "NO_PROXY"
)

func (d *decoder) fail(key, format string, a ...any) error {
	return &Error{File: d.file, Line: d.lines[key], Key: key, Msg: fmt.Sprintf(format, a...)}
}

func (d *decoder) validate(p *Policy) error {
	enum := func(key, got string, allowed ...string) error {
		for _, a := range allowed {
			if got == a {
				return nil
			}
		}
		return d.fail(key, "invalid value %q; allowed: %s", got, strings.Join(allowed, " | "))
	}
	abs := func(key, got string, specials ...string) error {
		for _, s := range specials {
			if got == s {
				return nil
			}
		}
		if strings.ContainsAny(got, "\x00\n\r") {
			return d.fail(key, "the path %q holds a NUL byte or a line break; no file can be named that", got)
		}
		if !filepath.IsAbs(got) {
			want := "an absolute path"
			if len(specials) > 0 {
				want += " or one of " + strings.Join(specials, " | ")
			}
			return d.fail(key, "invalid value %q; expected %s", got, want)
		}
		return nil
	}
	checks := []error{
		abs("ecs_config", p.ECSConfig),
		abs("ecs_config_base", p.ECSConfigBase, Off),
		abs("ecs_config_json", p.ECSConfigJSON, Off),
		enum("task_iam_role", string(p.TaskIAMRole), "enforce", "ignore"),
		enum("task_iam_role_network_host", string(p.TaskIAMRoleNetworkHost), "enforce", "ignore"),
		enum("no_proxy", string(p.NoProxy), "auto", "ignore"),
		enum("log_level", p.LogLevel, "debug", "info", "warn", "error"),
		enum("network.mode", string(p.Network.Mode), "enforce", "ignore"),
		enum("network.route_localnet", string(p.Network.RouteLocalnet), "enforce", "ignore"),
		enum("network.credentials_input", p.Network.CredentialsInput, "enforce", "report"),
		abs("network.proc_sys", p.Network.ProcSys),
		abs("network.docker_socket", p.Network.DockerSocket, Off),
		abs("persist.iptables", p.Persist.Iptables, "auto", Off),
		abs("persist.sysctl", p.Persist.Sysctl, Off),
		abs("persist.systemd_dir", p.Persist.SystemdDir),
		enum("agent.restart", string(p.Agent.Restart), "on-change", "never"),
		enum("agent.proxy_dropin", string(p.Agent.ProxyDropin), "auto", "ignore"),
		abs("agent.proxy_dropin_dir", p.Agent.ProxyDropinDir, Off),
		enum("docker.no_proxy", string(p.Docker.NoProxy), "auto", "ignore"),
		abs("docker.dropin_dir", p.Docker.DropinDir, Off),
		abs("docker.sysconfig", p.Docker.Sysconfig, Off),
		abs("doctor.proc_root", p.Doctor.ProcRoot),
		abs("doctor.ssm_registration", p.Doctor.SSMRegistration),
		abs("doctor.external_credentials", p.Doctor.ExternalCredentials),
		abs("metrics.textfile", p.Metrics.Textfile, "auto", Off),
	}
	if p.Backup != "" {
		checks = append(checks, abs("backup", p.Backup))
	}
	for _, err := range checks {
		if err != nil {
			return err
		}
	}
	for i, c := range p.Persist.AutoCandidates {
		key := fmt.Sprintf("persist.auto_candidates[%d]", i)
		if !filepath.IsAbs(c.Path) || c.Service == "" || strings.ContainsAny(c.Path+c.Service, "\x00\n\r") {
			return d.fail("persist.auto_candidates", "entry %d needs an absolute path and a service name (%s)", i, key)
		}
	}
	for _, port := range []struct {
		key string
		v   int
	}{{"network.agent_port", p.Network.AgentPort}, {"network.introspection_port", p.Network.IntrospectionPort}} {
		if port.v < 1 || port.v > 65535 {
			return d.fail(port.key, "invalid port %d; expected 1 to 65535", port.v)
		}
	}
	for i, b := range p.Network.TaskBridges {
		if !ifaceNameRE.MatchString(b) {
			return d.fail("network.task_bridges", "entry %d %q is not an interface name; expected up to 15 characters without blanks or /, optionally ending in + (a prefix, as in iptables: docker+)", i, b)
		}
	}
	if strings.TrimSpace(p.Network.Iptables) == "" || strings.ContainsAny(p.Network.Iptables, " \t\n\r\x00") {
		return d.fail("network.iptables", "invalid value %q; expected a binary name such as iptables, iptables-nft or iptables-legacy, or an absolute path", p.Network.Iptables)
	}
	if p.Agent.Unit == "" || strings.ContainsAny(p.Agent.Unit, "/ \t\n\r\x00") || !strings.Contains(p.Agent.Unit, ".") {
		return d.fail("agent.unit", "invalid unit name %q; expected a systemd unit such as ecs.service", p.Agent.Unit)
	}
	for _, u := range []struct{ key, v string }{
		{"agent.introspection_url", p.Agent.IntrospectionURL},
		{"doctor.imds_endpoint", p.Doctor.IMDSEndpoint},
		{"doctor.credentials_url", p.Doctor.CredentialsURL},
	} {
		if pu, err := url.Parse(u.v); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			return d.fail(u.key, "invalid URL %q; expected http://host[:port]/path", u.v)
		} else if port := pu.Port(); port != "" && !validPort(port) {
			return d.fail(u.key, "invalid port %q in %q; expected 1 to 65535", port, u.v)
		}
	}
	// Upper bounds: past them a value is a typo (30h for 30s) that would
	// switch the safety net, the polling or the diagnosis off in effect.
	for _, t := range []struct {
		key      string
		v        time.Duration
		min, max time.Duration
	}{
		{"resync_interval", p.ResyncInterval, time.Second, time.Hour},
		{"poll_interval", p.PollInterval, 10 * time.Millisecond, time.Hour},
		{"debounce", p.Debounce, time.Millisecond, 10 * time.Second},
		{"agent.min_restart_interval", p.Agent.MinRestartInterval, time.Second, 24 * time.Hour},
		{"doctor.timeout", p.Doctor.Timeout, 10 * time.Millisecond, 5 * time.Minute},
		{"doctor.interval", p.Doctor.Interval, time.Second, 24 * time.Hour},
	} {
		if t.v < t.min {
			return d.fail(t.key, "%s is too short; the minimum is %s", t.v, t.min)
		}
		if t.v > t.max {
			return d.fail(t.key, "%s is too long; the maximum is %s", t.v, t.max)
		}
	}
	if Resolve(p.Metrics.Listen) != "" {
		host, port, err := net.SplitHostPort(p.Metrics.Listen)
		if err != nil || !validPort(port) {
			return d.fail("metrics.listen", "invalid address %q; expected off or host:port such as 127.0.0.1:9723", p.Metrics.Listen)
		}
		if !p.Metrics.AllowRemote && !isLoopback(host) {
			return d.fail("metrics.listen", "%q is reachable from the network; use a loopback address such as 127.0.0.1:9723, or set metrics.allow_remote: true if you really want that", p.Metrics.Listen)
		}
	}
	for k, v := range p.ExtraSettings {
		key := "extra_settings." + k
		if !envKeyRE.MatchString(k) {
			return d.fail(key, "%q is not a variable name; use letters, digits and _ (for example ECS_AWSVPC_BLOCK_IMDS)", k)
		}
		if strings.ContainsAny(v, "\n\r\x00") {
			return d.fail(key, "the value holds a line break or NUL byte, which ecs.config cannot carry")
		}
		switch k {
		case KeyTaskIAMRole:
			return d.fail(key, "is enforced by the key task_iam_role; remove it from extra_settings")
		case KeyTaskIAMRoleNetworkHost:
			return d.fail(key, "is enforced by the key task_iam_role_network_host; remove it from extra_settings")
		case KeyNoProxy:
			if p.NoProxy == Auto {
				return d.fail(key, "NO_PROXY is managed by no_proxy: auto; set no_proxy: ignore to pin it here instead")
			}
		}
	}
	return nil
}

// validPort reports whether s is a port number from 1 to 65535.
func validPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 1 && n <= 65535
}

// isLoopback reports whether host (from host:port) only listens on loopback.
// An empty host means every interface.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
