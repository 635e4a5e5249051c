// Package policy owns the policy file (/etc/ecs-remediator/config.yaml): its
// types, the built-in defaults that serve a standard ECS host, and strict
// loading that names the file, line and key of every mistake. Every host path
// the product reads or writes comes from here, so tests can point all of
// them at a temporary directory. It touches no file but the policy file.
package policy

import (
	"fmt"
	"time"
)

// DefaultPath is where the policy file lives when --config is not given.
const DefaultPath = "/etc/ecs-remediator/config.yaml"

// Off switches a path or address setting off (ecs_config_base,
// persist.iptables, persist.sysctl, agent.proxy_dropin_dir,
// metrics.textfile, metrics.listen). It is decoded here and nowhere else:
// Resolve turns it into "", and below the policy "" is the only "none".
const Off = "off"

// Resolve returns a path or address setting as the packages below the
// policy take it: "" when it is Off.
func Resolve(setting string) string {
	if setting == Off {
		return ""
	}
	return setting
}

// Mode says whether an item is enforced.
type Mode string

const (
	Enforce Mode = "enforce"
	Ignore  Mode = "ignore"
)

// AutoMode is the mode of NO_PROXY handling.
type AutoMode string

const (
	Auto     AutoMode = "auto"
	AutoOff  AutoMode = "ignore"
	autoList          = "auto | ignore"
)

// BoolAuto is true, false or auto.
type BoolAuto string

const (
	True  BoolAuto = "true"
	False BoolAuto = "false"
	// AutoBool follows what ecs-init does on the host.
	AutoBool BoolAuto = "auto"
)

// RestartMode says when the ECS agent is restarted.
type RestartMode string

const (
	RestartOnChange RestartMode = "on-change"
	RestartNever    RestartMode = "never"
)

// Policy is the whole policy file. Field tags are the file's keys; they are a
// contract documented in README.md ("Policy file").
type Policy struct {
	// ECSConfig is the file to enforce.
	ECSConfig string `yaml:"ecs_config"`
	// ECSConfigBase is read before ECSConfig by ecs-init (and overridden by
	// it); it is never written.
	ECSConfigBase string `yaml:"ecs_config_base"`
	// ECSConfigJSON is the host path of the agent's JSON configuration
	// file (ecs-init points the agent at /etc/ecs/ecs.config.json with
	// ECS_AGENT_CONFIG_FILE_PATH); read only, to tell what decides a
	// task-role flag ecs.config does not set validly. "off" ignores it.
	ECSConfigJSON string `yaml:"ecs_config_json"`
	// Backup is where the original ecs.config is copied before the first
	// change; empty means "<ecs_config>.ecs-remediator.orig".
	Backup                 string            `yaml:"backup"`
	TaskIAMRole            Mode              `yaml:"task_iam_role"`
	TaskIAMRoleNetworkHost Mode              `yaml:"task_iam_role_network_host"`
	NoProxy                AutoMode          `yaml:"no_proxy"`
	ExtraSettings          map[string]string `yaml:"extra_settings"`
	Network                Network           `yaml:"network"`
	Persist                Persist           `yaml:"persist"`
	Agent                  Agent             `yaml:"agent"`
	Docker                 Docker            `yaml:"docker"`
	Doctor                 Doctor            `yaml:"doctor"`
	Metrics                Metrics           `yaml:"metrics"`
	LogLevel               string            `yaml:"log_level"`
	// ResyncInterval is the daemon's periodic full reconcile (safety net).
	ResyncInterval time.Duration `yaml:"resync_interval"`
	// PollInterval is how often the daemon polls what has no change events:
	// on the legacy iptables backend, a writer that bypasses the xtables
	// lock (its tools are seen through the lock at once). 5 s: the same
	// period as a poll-and-check loop, a fifth of the idle cost of the old
	// 1 s (see docs/performance.md).
	PollInterval time.Duration `yaml:"poll_interval"`
	// Debounce gathers a burst of events into one reconcile.
	Debounce time.Duration `yaml:"debounce"`
	path     string
	lines    map[string]int // key -> line in the file, for Errorf
}

// Errorf reports a problem with the value of key that shows only when the
// value is used (a binary that is not installed, a port already taken): the
// error names the policy file and the key's line, like a decoding error.
func (p *Policy) Errorf(key, format string, a ...any) error {
	file := p.path
	if file == "" {
		file = "built-in policy defaults"
	}
	return &Error{File: file, Line: p.lines[key], Key: key, Msg: fmt.Sprintf(format, a...)}
}

// Network is the kernel side: NAT rules for 169.254.170.2, the localhost
// guard, route_localnet.
type Network struct {
	// Mode turns all network enforcement on or off.
	Mode Mode `yaml:"mode"`
	// Iptables is the iptables binary (name on PATH or absolute path):
	// iptables, iptables-nft or iptables-legacy.
	Iptables string `yaml:"iptables"`
	// AgentPort is where the ECS agent serves credentials.
	AgentPort int `yaml:"agent_port"`
	// IntrospectionPort is the agent's introspection API port.
	IntrospectionPort int `yaml:"introspection_port"`
	// RouteLocalnet enforces net.ipv4.conf.all.route_localnet=1.
	RouteLocalnet Mode `yaml:"route_localnet"`
	// LocalhostGuard installs the DROP rule that keeps 127.0.0.0/8 closed to
	// the network while route_localnet is 1. Turning it off is warned about.
	LocalhostGuard bool `yaml:"localhost_guard"`
	// BlockIntrospection blocks off-host access to the introspection port:
	// true, false, or auto (the default: as ecs-init does, so not when
	// ECS_ALLOW_OFFHOST_INTROSPECTION_ACCESS=true for ecs-init).
	BlockIntrospection BoolAuto `yaml:"block_introspection"`
	// DockerSocket is Docker's API socket: the name of Docker's default
	// bridge is asked there.
	DockerSocket string `yaml:"docker_socket"`
	// BlockInstanceRoleForBridge drops bridge-mode containers' traffic to
	// IMDS in DOCKER-USER.
	BlockInstanceRoleForBridge bool `yaml:"block_instance_role_for_bridge"`
	// ProcSys is the root of the sysctl tree.
	ProcSys string `yaml:"proc_sys"`
	// CredentialsInput is enforce (open a credential path that a filter
	// rule of the iptables backend in use blocks) or report (findings only).
	CredentialsInput string `yaml:"credentials_input"`
	// TaskBridges are the bridges of bridge-mode tasks (iptables "+"
	// wildcards allowed); empty means Docker's default bridge.
	TaskBridges []string `yaml:"task_bridges"`
}

// Persist says where repairs are saved so they survive a reboot.
type Persist struct {
	// Iptables is "auto", "off" or a path.
	Iptables string `yaml:"iptables"`
	// Sysctl is a sysctl.d file path or "off".
	Sysctl string `yaml:"sysctl"`
	// AutoCandidates are the files "auto" chooses between, in order, with
	// the restore service that loads each at boot.
	AutoCandidates []PersistTarget `yaml:"auto_candidates"`
	// SystemdDir is where enabled units are linked (for the restore-service
	// check without D-Bus).
	SystemdDir string `yaml:"systemd_dir"`
}

// UnitDirs are the directories a restore unit of persist.auto is looked
// for in: SystemdDir, where enabled units are linked, then the two where
// packages install units (systemd's unit search path, systemd.unit(5):
// /usr/lib/systemd/system, and /lib/systemd/system where /lib is not a
// link to /usr/lib).
func (p Persist) UnitDirs() []string {
	return []string{p.SystemdDir, "/usr/lib/systemd/system", "/lib/systemd/system"}
}

// PersistTarget is one saved-ruleset location and the unit that restores it.
type PersistTarget struct {
	Path    string `yaml:"path"`
	Service string `yaml:"service"`
}

// Agent is the ECS agent's systemd unit.
type Agent struct {
	Unit               string        `yaml:"unit"`
	Restart            RestartMode   `yaml:"restart"`
	MinRestartInterval time.Duration `yaml:"min_restart_interval"`
	// ProxyDropinDir holds the unit's drop-ins (http-proxy.conf).
	ProxyDropinDir string `yaml:"proxy_dropin_dir"`
	// ProxyDropin enforces NO_PROXY in drop-ins that set a proxy.
	ProxyDropin AutoMode `yaml:"proxy_dropin"`
	// IntrospectionURL is the agent's metadata endpoint (doctor).
	IntrospectionURL string `yaml:"introspection_url"`
}

// Docker is Docker's daemon: its proxy environment.
type Docker struct {
	// NoProxy: auto makes Docker's NO_PROXY hold 169.254.169.254 and
	// 169.254.170.2 when Docker has a proxy (files only; Docker is never
	// restarted). ignore turns the item off.
	NoProxy AutoMode `yaml:"no_proxy"`
	// DropinDir is docker.service's drop-in directory, or off.
	DropinDir string `yaml:"dropin_dir"`
	// Sysconfig is the EnvironmentFile= of docker.service on Amazon Linux,
	// or off.
	Sysconfig string `yaml:"sysconfig"`
}

// Doctor tunes `doctor` and the daemon's periodic diagnosis.
type Doctor struct {
	IMDSEndpoint   string        `yaml:"imds_endpoint"`
	CredentialsURL string        `yaml:"credentials_url"`
	Timeout        time.Duration `yaml:"timeout"`
	Interval       time.Duration `yaml:"interval"`
	ProcRoot       string        `yaml:"proc_root"`
	// SSMRegistration is the SSM agent's registration file, checked on an
	// ECS Anywhere host (ECS_EXTERNAL=true).
	SSMRegistration string `yaml:"ssm_registration"`
	// ExternalCredentials is the shared credentials file ecs-init mounts
	// into the agent's container on an ECS Anywhere host.
	ExternalCredentials string `yaml:"external_credentials"`
}

// Metrics exports the daemon's state for Prometheus.
type Metrics struct {
	// Textfile is "auto", "off" or a path for node_exporter's textfile
	// collector; auto means DefaultTextfile when its directory exists.
	Textfile string `yaml:"textfile"`
	// Listen is "off" or a host:port for a /metrics endpoint.
	Listen string `yaml:"listen"`
	// AllowRemote permits a Listen address that is not loopback.
	AllowRemote bool `yaml:"allow_remote"`
}

// DefaultTextfile is where metrics.textfile: auto writes when the
// directory exists.
const DefaultTextfile = "/var/lib/node_exporter/textfile_collector/ecs_remediator.prom"

// Path is the file the policy was loaded from ("" for built-in defaults).
func (p *Policy) Path() string { return p.path }

// BackupPath is where the original ecs.config is kept.
func (p *Policy) BackupPath() string {
	if p.Backup != "" {
		return p.Backup
	}
	return p.ECSConfig + ".ecs-remediator.orig"
}

// Default returns the built-in policy, which serves a standard ECS host.
func Default() *Policy {
	return &Policy{
		ECSConfig:              "/etc/ecs/ecs.config",
		ECSConfigBase:          "/var/lib/ecs/ecs.config",
		ECSConfigJSON:          "/etc/ecs/ecs.config.json",
		TaskIAMRole:            Enforce,
		TaskIAMRoleNetworkHost: Enforce,
		NoProxy:                Auto,
		ExtraSettings:          map[string]string{},
		LogLevel:               "info",
		Network: Network{
			Mode:                       Enforce,
			Iptables:                   "iptables",
			AgentPort:                  51679,
			IntrospectionPort:          51678,
			RouteLocalnet:              Enforce,
			LocalhostGuard:             true,
			BlockIntrospection:         AutoBool,
			DockerSocket:               "/var/run/docker.sock",
			BlockInstanceRoleForBridge: false,
			ProcSys:                    "/proc/sys",
			CredentialsInput:           "enforce",
			TaskBridges:                []string{}, // Docker's default bridge
		},
		Persist: Persist{
			Iptables: "auto",
			Sysctl:   "/etc/sysctl.d/90-ecs-remediator.conf",
			AutoCandidates: []PersistTarget{
				{Path: "/etc/sysconfig/iptables", Service: "iptables.service"},
				{Path: "/etc/iptables/rules.v4", Service: "netfilter-persistent.service"},
			},
			SystemdDir: "/etc/systemd/system",
		},
		Agent: Agent{
			Unit:               "ecs.service",
			Restart:            RestartOnChange,
			MinRestartInterval: 60 * time.Second,
			ProxyDropinDir:     "/etc/systemd/system/ecs.service.d",
			ProxyDropin:        Auto,
			IntrospectionURL:   "http://localhost:51678/v1/metadata",
		},
		Docker: Docker{
			NoProxy:   Auto,
			DropinDir: "/etc/systemd/system/docker.service.d",
			Sysconfig: "/etc/sysconfig/docker",
		},
		ResyncInterval: 30 * time.Second,
		PollInterval:   5 * time.Second,
		Debounce:       20 * time.Millisecond,
		Doctor: Doctor{
			IMDSEndpoint:        "http://169.254.169.254",
			CredentialsURL:      "http://169.254.170.2/v2/credentials/",
			Timeout:             2 * time.Second,
			Interval:            5 * time.Minute,
			ProcRoot:            "/proc",
			SSMRegistration:     "/var/lib/amazon/ssm/registration",
			ExternalCredentials: "/root/.aws/credentials",
		},
		Metrics: Metrics{Textfile: "auto", Listen: "off"},
	}
}
