package netfilter

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/ecs-remediator/ecs-remediator/pkg/atomicfile"
	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter/rule"
	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter/saved"
)

// persist keeps the saved ruleset in step: findings for persist.iptables
// and persist.restore_service, and the change when the file was written.
func (e *Enforcer) persist(ws []rule.Want, m mode, w io.Writer) ([]finding.Finding, []finding.Change) {
	if e.c.PersistErr != nil {
		// Not an error: the daemon itself restores the rules at boot
		// (it starts before ecs.service); a saved ruleset only has them in
		// place earlier. A warning keeps a host without either package
		// compliant while saying what is missing.
		return []finding.Finding{{Item: ItemPersistIptables, Status: finding.Warn,
			Detail: e.c.PersistErr.Error() + " — nothing restores the rules at boot until ecs-remediator starts",
			Fix:    "install iptables-services (Amazon Linux, RHEL: dnf install -y iptables-services; systemctl enable iptables.service) or iptables-persistent (Debian, Ubuntu), or set persist.iptables to a path or off"}}, nil
	}
	t := e.c.Persist
	if t == nil || t.Path == "" {
		return nil, nil
	}
	f := finding.Finding{Item: ItemPersistIptables, Status: finding.OK}
	where := t.Path
	if t.Chosen != "" {
		where += " (" + t.Chosen + ")"
	}
	old, err := saved.Read(t.Path)
	if err != nil {
		f.Status, f.Detail, f.Fix = finding.Error, err.Error(), "make "+t.Path+" a readable regular file (move away whatever is there; the restore service reads a text file), or set persist.iptables to another path or off"
		return []finding.Finding{f, e.serviceFinding(*t)}, nil
	}
	var sf *saved.File
	if old == nil {
		sf = saved.New(*t)
	} else {
		sf = saved.Parse(string(old), rule.InterestOf(ws).Needles)
	}
	res := sf.Ensure(ws)
	data := sf.Bytes()
	changed := !bytes.Equal(data, old)
	switch {
	case old == nil:
		f.Detail = where + " does not exist"
	case changed:
		f.Detail = where + ": " + strings.Join(res.Notes, "; ")
	default:
		f.Detail = where + " holds each of our rules once"
	}
	var cs []finding.Change
	if changed {
		f.Status = finding.Drift
		f.Fix = "ecs-remediator apply (edits only our rules in " + t.Path + ")"
		action := "updated saved ruleset"
		if old == nil {
			action = "created saved ruleset"
		}
		c := finding.Change{Item: ItemPersistIptables, Action: action, Target: t.Path,
			Old: strings.Join(res.Notes, "; "), New: "each of our rules once",
			Reason: "rules not in the saved ruleset are lost at the next reboot"}
		if old == nil {
			c.Old = "absent"
		}
		switch m {
		case modeDryRun:
			fmt.Fprint(w, atomicfile.Diff(t.Path, old, data))
			cs = append(cs, c)
		case modeRepair:
			if err := atomicfile.Replace(t.Path, data, atomicfile.Options{Perm: 0o600}); err != nil {
				f.Status, f.Detail, f.Fix = finding.Error, err.Error(), "check that "+t.Path+" is writable"
			} else {
				f.Status, f.Fix = finding.OK, ""
				f.Detail = where + " updated: " + strings.Join(res.Notes, "; ")
				if old == nil {
					f.Detail = where + " created with our rules"
				}
				cs = append(cs, c)
			}
		}
	}
	if len(res.Docker) > 0 {
		f.Warn()
		f.Detail += fmt.Sprintf("; it also holds Docker-managed chains or rules (lines %s): restoring them at boot freezes Docker's per-container rules of the moment they were saved", joinInts(res.Docker))
		if f.Fix != "" {
			f.Fix += "; "
		}
		f.Fix += "delete those lines from " + t.Path + " (Docker re-creates its chains and rules when it starts)"
	}
	return []finding.Finding{f, e.serviceFinding(*t)}, cs
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}
