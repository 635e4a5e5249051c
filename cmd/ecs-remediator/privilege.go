package main

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
)

// notRead is the detail of a network finding that could not be observed
// because this process may not read the firewall.
const notRead = "not checked: reading the firewall needs root (or CAP_NET_ADMIN)"

// canReadFirewall reports whether the process holds CAP_NET_ADMIN, which
// iptables and nf_tables netlink require even to read the rules.
func canReadFirewall() bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return true // cannot tell: let the real errors speak
	}
	return data[0].Effective&(1<<unix.CAP_NET_ADMIN) != 0
}

// markUnread turns the network errors of an unprivileged run into one
// short "not checked" finding each (status error: nothing was observed),
// and returns the one line that explains them, or "" when the firewall
// was read.
func markUnread(cmd string, fs []finding.Finding, privileged bool) string {
	if privileged {
		return ""
	}
	n := 0
	var checked []string
	seen := map[string]bool{}
	for i := range fs {
		f := &fs[i]
		if f.Status == finding.Error && strings.HasPrefix(f.Item, "network.") {
			f.Detail = notRead
			f.Fix = "sudo ecs-remediator " + cmd
			n++
			continue
		}
		group := f.Item
		if i := strings.IndexByte(group, '.'); i > 0 && group[:i] != "network" {
			group = group[:i] + ".*"
		}
		if !seen[group] {
			seen[group] = true
			checked = append(checked, group)
		}
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("ecs-remediator %s: reading the firewall needs root (or CAP_NET_ADMIN), so %d network rule item(s) were not checked; checked without it: %s. Run 'sudo ecs-remediator %s' for all of it.",
		cmd, n, strings.Join(checked, ", "), cmd)
}
