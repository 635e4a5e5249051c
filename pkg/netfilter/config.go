package netfilter

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter/kernel"
	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter/saved"
)

// Config is what the lead wires from the policy. Nothing here has a
// default except Iptables ("iptables" on PATH) and ProcRoot ("/proc").
type Config struct {
	// Iptables is the IPv4 binary: iptables, iptables-nft,
	// iptables-legacy or an absolute path. Its -save and -restore
	// siblings, its ip6tables sibling and the other backend's binary are
	// derived from it.
	Iptables string
	// AgentPort is where the agent serves credentials (51679).
	AgentPort int
	// IntrospectionPort is the agent's introspection API port (51678).
	IntrospectionPort int
	// Credentials enforces the DNAT and REDIRECT rules for 169.254.170.2.
	Credentials bool
	// LocalhostGuard enforces the INPUT DROP that keeps 127.0.0.0/8 closed
	// to the network; when false the item is reported with a warning.
	LocalhostGuard bool
	// BlockIntrospection enforces the introspection-port rules (IPv4, and
	// IPv6 when the host has it).
	BlockIntrospection bool
	// IntrospectionAuto makes BlockIntrospection follow ecs-init: no
	// introspection rule when ecs-init adds none
	// (ECS_ALLOW_OFFHOST_INTROSPECTION_ACCESS true for its process;
	// network.block_introspection: auto).
	IntrospectionAuto bool
	// EcsInit reads ecs-init's switches as its process sees them; called
	// once per pass (nil: none is set).
	EcsInit func() EcsInitSwitches
	// DefaultBridge names Docker's default bridge, the interface of
	// ecs-init's introspection ACCEPT; called once per pass. ok false:
	// Docker answered and has none (no ACCEPT); err: Docker did not answer,
	// then docker0 is used when that interface exists. nil: docker0 when
	// it exists.
	DefaultBridge func() (name string, ok bool, err error)
	// BlockIMDS enforces the DOCKER-USER DROP of bridge containers' IMDS
	// traffic.
	BlockIMDS bool
	// ProcRoot is the proc mount ("/proc"): net/ip_tables_names is read
	// below it.
	ProcRoot string
	// ProcSys is the sysctl tree ("/proc/sys", network.proc_sys): IPv6
	// rules are made when net/ipv6 exists below it, as ecs-init does.
	ProcSys string
	// SysClassNet lists interfaces: docker0 is looked for there; ""
	// asks the kernel (netlink).
	SysClassNet string
	// Persist is the saved ruleset to keep in step (nil: off). It is
	// already resolved (see saved.Resolve).
	Persist *saved.Target
	// PersistErr is set when persist "auto" could not choose a target; it
	// is reported as a persist.iptables error.
	PersistErr error
	// SystemdDir is where enabled units are linked (/etc/systemd/system).
	SystemdDir string

	// Set by resolvePass for one pass.
	sw           EcsInitSwitches
	bridge       string // the introspection ACCEPT's interface
	bridgeNeeded bool   // the ACCEPT must exist
	bridgeWhy    string // why it need not ("" when it must)
	// CredentialsInput is "enforce" (open a blocked credential path in
	// the backend in use), "report" (findings only) or "" (not
	// evaluated). See credpath.go.
	CredentialsInput string
	// TaskBridges are the bridges bridge-mode tasks use (iptables "+"
	// wildcards allowed); empty: Docker's default bridge (taskBridges).
	TaskBridges []string
	// Nft is the nft binary that reads native nf_tables rulesets ("nft").
	Nft string
}

// Enforcer keeps the credential NAT rules, the localhost guard, the
// introspection block, the optional IMDS block and the saved ruleset in
// step. It implements reconcile.Enforcer.
type Enforcer struct {
	c   Config
	run kernel.Runner // the binaries: probes, restore batches, texts read for findings
	v4  tools
	v6  *tools // nil: no ip6tables of this backend
	oth string // the other backend's iptables binary ("" when absent)
	// read4 and read6 read each family's live rules (kernel.New; read6 nil
	// without ip6tables); nft4 and nft6 are those read over netlink, which
	// also write the repairs (nil otherwise).
	read4, read6 kernel.Reader
	nft4, nft6   *kernel.NFT
	// othSave is the other backend's -save output on a legacy host, valid
	// while the nf_tables generation is the same (kernel.NFTGeneration).
	othSave *kernel.Output
	cred    *credCache // the evaluator's texts (credpath_read.go)
	// guard is the localhost guards' state at the end of the last pass,
	// for LocalhostGuardInPlace.
	guard     guardState
	guardPass bool
	mu        sync.Mutex // one reconcile at a time
	fallback  func(backend, reason string, err error)
}

// Reasons a kernel reader falls back to the iptables binaries (OnFallback).
const (
	// FallbackKernelError: the netlink or getsockopt read failed (a
	// sandbox, an old kernel, a changed ABI).
	FallbackKernelError = kernel.FallbackKernelError
	// FallbackUnprintable: a rule that matters uses an expression or match
	// the decoder does not print (an iptables release that changed its
	// expression layout shows up here).
	FallbackUnprintable = kernel.FallbackUnprintable
)

// OnFallback sets fn to be called, on the reconcile's goroutine, whenever
// a read falls back from the netlink (backend "nft") or getsockopt
// ("legacy") reader to the iptables binaries, with FallbackKernelError or
// FallbackUnprintable and the error (nil for an unprintable rule). The
// fall-back costs time, never correctness; the hook makes it a number.
func (e *Enforcer) OnFallback(fn func(backend, reason string, err error)) { e.fallback = fn }

func (e *Enforcer) fellBack(backend, reason string, err error) {
	if e.fallback != nil {
		e.fallback(backend, reason, err)
	}
}

// New checks the configuration and finds the binaries. It fails when the
// iptables binary (or its -save/-restore sibling) is missing or does not
// run.
func New(c Config) (*Enforcer, error) {
	return newEnforcer(c, kernel.Exec{}, (*Enforcer).newReader)
}

// newEnforcer is New with the runner of the binaries and the choice of
// each family's reader given: tests pass a runner that answers without a
// kernel, with text readers (textReader).
func newEnforcer(c Config, r kernel.Runner, reader func(e *Enforcer, t tools, v6 bool) (kernel.Reader, *kernel.NFT)) (*Enforcer, error) {
	if c.Iptables == "" {
		c.Iptables = "iptables"
	}
	if c.ProcRoot == "" {
		c.ProcRoot = "/proc"
	}
	if c.Credentials && (c.AgentPort < 1 || c.AgentPort > 65535) {
		return nil, fmt.Errorf("agent port %d is not a TCP port (1-65535)", c.AgentPort)
	}
	if c.BlockIntrospection && (c.IntrospectionPort < 1 || c.IntrospectionPort > 65535) {
		return nil, fmt.Errorf("introspection port %d is not a TCP port (1-65535)", c.IntrospectionPort)
	}
	if c.Persist != nil && c.Persist.Path != "" && !filepath.IsAbs(c.Persist.Path) {
		return nil, fmt.Errorf("saved ruleset path %q must be absolute", c.Persist.Path)
	}
	v4, v6, err := probe(r, c.Iptables)
	if err != nil {
		return nil, err
	}
	e := &Enforcer{c: c, run: r, v4: v4, v6: v6}
	e.read4, e.nft4 = reader(e, v4, false)
	if v6 != nil {
		e.read6, e.nft6 = reader(e, *v6, true)
	}
	if o := otherBackendTool(c.Iptables, v4.backend); lookPath(o) {
		e.oth = o
	}
	return e, nil
}

// docker0 reports whether a docker0 interface exists: in SysClassNet
// when set (tests' fixture directories), else asked of the kernel over
// netlink (RTM_GETLINK), which answers for the daemon's own network
// namespace (/sys/class/net shows the namespace sysfs was mounted in).
func (c *Config) docker0() bool {
	if c.SysClassNet == "" {
		_, err := net.InterfaceByName("docker0")
		return err == nil
	}
	_, err := os.Stat(filepath.Join(c.SysClassNet, "docker0"))
	return err == nil
}

// ipv6 reports whether ecs-init makes IPv6 rules on this host:
// <proc_sys>/net/ipv6 exists (ecs-init/exec/iptables/iptables.go,
// checkIpv6KernelConfigExist; the caller also needs ip6tables found).
// Whether the host has IPv6 addresses does not matter.
func (c *Config) ipv6() bool {
	ps := c.ProcSys
	if ps == "" {
		ps = "/proc/sys"
	}
	_, err := os.Stat(filepath.Join(ps, "net", "ipv6"))
	return err == nil
}

// legacyInUse reports whether legacy iptables tables exist: reading them
// with iptables-legacy-save on a host that never used them would load the
// legacy kernel modules.
func (c *Config) legacyInUse() bool {
	b, err := os.ReadFile(filepath.Join(c.ProcRoot, "net", "ip_tables_names"))
	return err == nil && strings.TrimSpace(string(b)) != ""
}
