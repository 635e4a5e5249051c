package netfilter

import (
	"os"
	"path/filepath"

	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
)

// serviceFinding checks that the unit restoring the saved ruleset is
// enabled: a link named after it in one of SystemdDir's *.wants/
// directories (that is what `systemctl enable` creates; a vendor preset
// alone does not enable anything).
func (e *Enforcer) serviceFinding(t Target) finding.Finding {
	f := finding.Finding{Item: ItemPersistService, Status: finding.OK}
	if t.Service == "" {
		f.Warn()
		f.Detail = "no known unit restores " + t.Path + " at boot"
		f.Fix = "make sure something runs iptables-restore " + t.Path + " at boot (or use /etc/sysconfig/iptables with iptables-services, /etc/iptables/rules.v4 with iptables-persistent)"
		return f
	}
	if e.c.SystemdDir != "" {
		links, _ := filepath.Glob(filepath.Join(e.c.SystemdDir, "*.wants", t.Service))
		for _, l := range links {
			if _, err := os.Lstat(l); err == nil {
				f.Detail = t.Service + " is enabled (" + l + "): " + t.Path + " is restored at boot"
				return f
			}
		}
	}
	f.Warn()
	f.Detail = t.Service + " is not enabled (no link in " + filepath.Join(e.c.SystemdDir, "*.wants") + "): " + t.Path + " is not restored at boot"
	f.Fix = "systemctl enable " + t.Service
	return f
}
