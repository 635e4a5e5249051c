package doctor

import (
	"context"
	"net"
	"net/http"
	"time"
)

// Defaults used when a Config field is empty. They match a stock ECS
// container instance.
const (
	DefaultIMDSEndpoint     = "http://169.254.169.254"
	DefaultCredentialsURL   = "http://169.254.170.2/v2/credentials/"
	DefaultIntrospectionURL = "http://localhost:51678/v1/metadata"
	DefaultAgentUnit        = "ecs.service"
	DefaultProcRoot         = "/proc"
	DefaultSysRoot          = "/sys"
	DefaultTimeout          = 2 * time.Second
	DefaultAgentPort        = 51679
)

// DefaultTaskBridges are the bridges the bridge-path probe looks for when
// Config.TaskBridges is nil: Docker's default bridge.
var DefaultTaskBridges = []string{"docker0"}

// maxConnectTimeout caps how long one TCP connect may take: every peer
// doctor talks to is on the host or on-link, so a connect that takes longer
// will not succeed.
const maxConnectTimeout = time.Second

// Config says where doctor looks. Zero values take the defaults above.
type Config struct {
	IMDSEndpoint     string // base URL of IMDS, without /latest
	CredentialsURL   string // the agent's credentials path, reached through the NAT rules
	IntrospectionURL string // the agent's introspection metadata URL
	AgentUnit        string // the agent's systemd unit
	ProcRoot         string // procfs mount, for tasks.credentials_env
	// SysRoot is the sysfs mount, read to tell whether this machine is an
	// EC2 instance when IMDS does not answer. Default /sys.
	SysRoot string
	// Timeout is the deadline of each network check group (agent,
	// credentials endpoint, IMDS); the groups run concurrently.
	Timeout time.Duration
	// UnitState returns the ActiveState of a systemd unit ("active",
	// "failed", ...). Nil, or an error, makes agent.unit a skip.
	UnitState func(ctx context.Context, unit string) (string, error)
	// SkipIMDS turns every imds.* item into a skip.
	SkipIMDS bool
	// External is set on an ECS Anywhere host (ECS_EXTERNAL=true): the
	// imds.* items are skipped with the reason, and what replaces IMDS
	// there is checked instead (external.*).
	External *External
	// TaskBridges are the bridges bridge-mode tasks sit on (the policy's
	// network.task_bridges), iptables-style names where a trailing "+"
	// matches any suffix. The bridge-path probe uses the first that
	// exists. Nil means DefaultTaskBridges; empty means none (a skip).
	TaskBridges []string
	// AgentPort is where the agent serves credentials on 127.0.0.1 (the
	// DNAT target; the policy's network.agent_port). Default 51679.
	AgentPort int
	// SkipBridgePath leaves credentials.bridge_path out: the probe adds a
	// port to a task bridge for a moment, which `ecs-remediator doctor`
	// does on request and the daemon's periodic diagnosis never does.
	SkipBridgePath bool
	// HTTPClient, when set, makes every HTTP request (tests use it to dial
	// from inside a network namespace). Nil builds a client that ignores
	// proxy variables and connects within min(Timeout, 1s).
	HTTPClient *http.Client
}

func (c Config) withDefaults() Config {
	if c.IMDSEndpoint == "" {
		c.IMDSEndpoint = DefaultIMDSEndpoint
	}
	if c.CredentialsURL == "" {
		c.CredentialsURL = DefaultCredentialsURL
	}
	if c.IntrospectionURL == "" {
		c.IntrospectionURL = DefaultIntrospectionURL
	}
	if c.AgentUnit == "" {
		c.AgentUnit = DefaultAgentUnit
	}
	if c.ProcRoot == "" {
		c.ProcRoot = DefaultProcRoot
	}
	if c.SysRoot == "" {
		c.SysRoot = DefaultSysRoot
	}
	if c.AgentPort == 0 {
		c.AgentPort = DefaultAgentPort
	}
	if c.TaskBridges == nil {
		c.TaskBridges = DefaultTaskBridges
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.HTTPClient == nil {
		c.HTTPClient = newHTTPClient(c.Timeout)
	}
	return c
}

// newHTTPClient builds the client of every network check. It ignores
// HTTP_PROXY/HTTPS_PROXY on purpose: doctor asks whether the local paths
// work, and a proxy in between would answer for them (docs/proxy.md: without
// NO_PROXY, credential requests go to the proxy and fail — `check` reports
// that). Keep-alives are off so each check opens its own connection and a
// dead peer cannot hand a stale one to the next check.
func newHTTPClient(timeout time.Duration) *http.Client {
	connect := min(timeout, maxConnectTimeout)
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                  nil,
			DialContext:            (&net.Dialer{Timeout: connect}).DialContext,
			DisableKeepAlives:      true,
			ResponseHeaderTimeout:  timeout,
			MaxResponseHeaderBytes: 64 << 10,
		},
		// Never follow redirects: neither IMDS nor the agent redirects,
		// and a redirect would mean something else answered.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
