package sysctl

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
)

// LivePath is the file under procSys (normally /proc/sys) that holds Key.
func LivePath(procSys string) string {
	return filepath.Join(procSys, strings.ReplaceAll(Key, ".", "/"))
}

// ReadLive returns Key's value as the kernel under procSys holds it now
// (one read of LivePath), without surrounding white space.
func ReadLive(procSys string) (string, error) {
	b, err := os.ReadFile(LivePath(procSys))
	return strings.TrimSpace(string(b)), err
}

// procPath is the file under ProcSys that holds Key.
func (e *Enforcer) procPath() string { return LivePath(e.c.ProcSys) }

// live is one observation of the kernel value.
type live struct {
	f     finding.Finding
	value string // as read, trimmed ("" on error)
}

func (e *Enforcer) observeLive() live {
	p := e.procPath()
	l := live{f: finding.Finding{Item: ItemRouteLocalnet}}
	v, err := ReadLive(e.c.ProcSys)
	if err != nil {
		l.f.Status = finding.Error
		l.f.Detail = fmt.Sprintf("read %s: %v", p, err)
		l.f.Fix = "run ecs-remediator on the host itself as root, with network.proc_sys pointing at /proc/sys"
		return l
	}
	l.value = v
	if l.value == "1" {
		l.f.Status, l.f.Detail = finding.OK, fmt.Sprintf("%s = 1 (%s)", Key, p)
		return l
	}
	l.f.Status = finding.Drift
	l.f.Detail = fmt.Sprintf("%s = %s (%s): the kernel drops the packets the NAT rules redirect from 169.254.170.2 to the agent on 127.0.0.1, so tasks cannot get their role credentials; ecs-init's post-stop resets it from net.ipv4.conf.default.route_localnet whenever the agent stops",
		Key, l.value, p)
	l.f.Fix = fmt.Sprintf("ecs-remediator apply, or sysctl -w %s=1 once the localhost guard rule is in place (ecs-remediator check shows it)", Key)
	return l
}

// applyLive writes 1 when the value differs.
func (e *Enforcer) applyLive(dryRun bool, plan io.Writer) (finding.Finding, []finding.Change) {
	l := e.observeLive()
	if l.f.Status != finding.Drift {
		return l.f, nil
	}
	c := finding.Change{
		Item:   ItemRouteLocalnet,
		Action: "wrote 1",
		Target: e.procPath(),
		Old:    l.value,
		New:    "1",
		Reason: fmt.Sprintf("route_localnet was %s, so 169.254.170.2 could not reach the agent on 127.0.0.1 (ecs-init's post-stop resets it from conf.default)", l.value),
	}
	if e.c.Guard != nil {
		if ok, why := e.c.Guard.LocalhostGuardInPlace(); !ok {
			l.f.Detail += "; not written: " + why + ", and route_localnet=1 without it makes every service bound to 127.0.0.1 reachable from the network"
			l.f.Fix = "fix network.localhost_guard first (ecs-remediator check names what is wrong; a held xtables lock clears when the other tool finishes), then run ecs-remediator apply again"
			if plan != nil && dryRun {
				fmt.Fprintf(plan, "# not: sysctl -w %s=1 (%s)\n", Key, why)
			}
			return l.f, nil
		}
	}
	if dryRun {
		if plan != nil {
			fmt.Fprintf(plan, "sysctl -w %s=1   # now %s\n", Key, l.value)
		}
		return l.f, []finding.Change{c}
	}
	// O_WRONLY without O_CREATE: a missing file is an error, never created.
	fd, err := os.OpenFile(e.procPath(), os.O_WRONLY, 0)
	if err == nil {
		_, err = fd.Write([]byte("1\n"))
		if cerr := fd.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		l.f.Status = finding.Error
		l.f.Detail += fmt.Sprintf("; writing 1 failed: %v", err)
		l.f.Fix = "run ecs-remediator as root in the host's network namespace (a container needs CAP_NET_ADMIN and a writable /proc/sys)"
		return l.f, nil
	}
	return e.observeLive().f, []finding.Change{c}
}
