package netfilter

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter/kernel"
)

// Backend names.
const (
	backendNFT    = "nf_tables"
	backendLegacy = "legacy"
)

// tools is one family's (IPv4 or IPv6) set of binaries of one backend.
type tools struct {
	cmd     string // iptables, iptables-nft, /usr/sbin/ip6tables-legacy, ...
	save    string
	restore string
	backend string // backendNFT or backendLegacy
}

// binaries are t as the kernel readers see them.
func (t tools) binaries(v6 bool) kernel.Binaries {
	return kernel.Binaries{Cmd: t.cmd, Save: t.save, V6: v6, Legacy: t.backend == backendLegacy}
}

// deriveTool turns the iptables binary into a sibling: the same directory
// (when one was given) and the same suffix. deriveTool("iptables-nft",
// "ip6tables", "-save") is "ip6tables-nft-save";
// deriveTool("/usr/sbin/iptables", "iptables", "-restore") is
// "/usr/sbin/iptables-restore".
func deriveTool(iptables, family, suffix string) string {
	dir, base := filepath.Split(iptables)
	rest := strings.TrimPrefix(base, "iptables")
	if rest == base { // not named iptables*: keep its name as the family stem
		return iptables + suffix
	}
	return dir + family + rest + suffix
}

// otherBackendTool is the same family's binary of the other backend:
// iptables (nf_tables) -> iptables-legacy, /sbin/iptables-legacy -> /sbin/iptables-nft.
func otherBackendTool(iptables, backend string) string {
	dir, base := filepath.Split(iptables)
	stem := "iptables"
	if strings.HasPrefix(base, "ip6tables") {
		stem = "ip6tables"
	}
	if backend == backendNFT {
		return dir + stem + "-legacy"
	}
	return dir + stem + "-nft"
}

// parseVersion reads the backend from `iptables -V`: "iptables v1.8.9
// (nf_tables)" or "(legacy)"; versions before 1.8 print no backend and are
// legacy.
func parseVersion(out string) (string, error) {
	out = strings.TrimSpace(out)
	if !strings.Contains(out, "tables v") {
		return "", fmt.Errorf("unexpected version output %q", out)
	}
	if strings.Contains(out, "(nf_tables)") {
		return backendNFT, nil
	}
	return backendLegacy, nil
}

// probe finds the binaries for iptables and checks that they run. ip6 is
// the IPv6 set when its binaries exist, else nil.
func probe(r kernel.Runner, iptables string) (v4 tools, v6 *tools, err error) {
	if _, err := exec.LookPath(iptables); err != nil {
		return tools{}, nil, fmt.Errorf("iptables binary %q not found: install iptables or set network.iptables to an existing binary: %w", iptables, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := r.Run(ctx, nil, iptables, "-V")
	if err != nil {
		return tools{}, nil, fmt.Errorf("run %s -V: %w", iptables, err)
	}
	backend, err := parseVersion(string(out))
	if err != nil {
		return tools{}, nil, fmt.Errorf("%s -V: %w", iptables, err)
	}
	v4 = tools{cmd: iptables, backend: backend,
		save:    deriveTool(iptables, "iptables", "-save"),
		restore: deriveTool(iptables, "iptables", "-restore")}
	for _, b := range []string{v4.save, v4.restore} {
		if _, err := exec.LookPath(b); err != nil {
			return tools{}, nil, fmt.Errorf("%s needs %s next to it, which is missing: %w", iptables, b, err)
		}
	}
	six := tools{
		cmd:     deriveTool(iptables, "ip6tables", ""),
		save:    deriveTool(iptables, "ip6tables", "-save"),
		restore: deriveTool(iptables, "ip6tables", "-restore")}
	for _, b := range []string{six.cmd, six.save, six.restore} {
		if _, err := exec.LookPath(b); err != nil {
			return v4, nil, nil
		}
	}
	// ip6tables is its own alternative (Debian's update-alternatives
	// switches iptables and ip6tables separately): read and write IPv6
	// with the backend its binary runs, which may differ from IPv4's.
	out, err = r.Run(ctx, nil, six.cmd, "-V")
	if err != nil {
		return tools{}, nil, fmt.Errorf("run %s -V: %w", six.cmd, err)
	}
	if six.backend, err = parseVersion(string(out)); err != nil {
		return tools{}, nil, fmt.Errorf("%s -V: %w", six.cmd, err)
	}
	return v4, &six, nil
}

func lookPath(name string) bool {
	_, err := exec.LookPath(name)
	return err == nil
}
