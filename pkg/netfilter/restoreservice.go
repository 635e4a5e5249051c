package netfilter

import (
	"path/filepath"

	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter/saved"
)

// serviceFinding checks that the unit restoring the saved ruleset is
// enabled (see saved.EnabledLink).
func (e *Enforcer) serviceFinding(t saved.Target) finding.Finding {
	f := finding.Finding{Item: ItemPersistService, Status: finding.OK}
	if t.Service == "" {
		f.Warn()
		f.Detail = "no known unit restores " + t.Path + " at boot"
		f.Fix = "make sure something runs iptables-restore " + t.Path + " at boot (or use /etc/sysconfig/iptables with iptables-services, /etc/iptables/rules.v4 with iptables-persistent)"
		return f
	}
	if l := saved.EnabledLink(e.c.SystemdDir, t.Service); l != "" {
		f.Detail = t.Service + " is enabled (" + l + "): " + t.Path + " is restored at boot"
		return f
	}
	f.Warn()
	f.Detail = t.Service + " is not enabled (no link in " + filepath.Join(e.c.SystemdDir, "*.wants") + "): " + t.Path + " is not restored at boot"
	f.Fix = "systemctl enable " + t.Service
	return f
}
