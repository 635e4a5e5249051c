package sysctl

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/ecs-remediator/ecs-remediator/pkg/atomicfile"
	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
	"github.com/ecs-remediator/ecs-remediator/pkg/safefile"
)

// maxConf is the largest sysctl.d file we read; a real one is tiny.
const maxConf = 1 << 20

// readConf reads a sysctl.d file (pkg/safefile: nothing but a regular file
// is opened, never blocking, at most maxConf bytes); without follow a final
// symlink is refused. exists is false, err nil, when there is no file.
func readConf(path string, follow bool) (data string, exists bool, err error) {
	o := safefile.Options{Max: maxConf, Follow: safefile.FollowNone}
	if follow {
		o.Follow = safefile.FollowAny
	}
	f, err := safefile.Read(path, o)
	var se *safefile.Error
	switch {
	case err == nil:
		return string(f.Data), true, nil
	case errors.Is(err, os.ErrNotExist):
		return "", false, nil
	case errors.Is(err, safefile.ErrParentNoDir):
		return "", false, fmt.Errorf("%s: a parent of this path is a file, not a directory; remove or rename it, or set persist.sysctl to another path", path)
	case errors.As(err, &se) && se.Kind == safefile.ErrSymlink:
		return "", true, fmt.Errorf("%s is a symlink to %s (a link to /dev/null masks the file on purpose); ecs-remediator only writes a regular file: remove the link, or set persist.sysctl: off", path, se.Target)
	case errors.As(err, &se) && se.Kind == safefile.ErrNotRegular:
		return "", true, fmt.Errorf("%s is %s, not a regular file; move it away, or set persist.sysctl to another path", path, safefile.Describe(se.Mode))
	case errors.Is(err, safefile.ErrTooLarge):
		return "", true, fmt.Errorf("%v for a sysctl.d file here; check it by hand", err)
	}
	return "", true, err
}

// persist is one observation of our sysctl.d file.
type persist struct {
	f      finding.Finding
	old    string // content as read
	repair edit   // set when f is a drift
	oldVal string // the value the file sets, "(unset)" when none
}

func (e *Enforcer) observePersist() persist {
	path := e.c.PersistPath
	p := persist{f: finding.Finding{Item: ItemPersist}, oldVal: "(unset)"}
	data, exists, err := readConf(path, false)
	if err != nil {
		p.f.Status, p.f.Detail = finding.Error, err.Error()
		p.f.Fix = "fix the file by hand as the detail says, then run ecs-remediator check"
		return p
	}
	p.old = data
	i, v := lastSetting(splitLines(data))
	if i >= 0 {
		p.oldVal = v
	}
	override := e.overriddenBy()
	repair, drift := desired(data, exists)
	if !drift {
		p.f.Status = finding.OK
		p.f.Detail = fmt.Sprintf("%s line %d sets %s at boot", path, i+1, PersistLine)
		if override != "" {
			p.f.Warn()
			p.f.Detail += "; but " + override
			p.f.Fix = "remove or change that line, so route_localnet stays 1 after a reboot"
		}
		return p
	}
	p.repair = repair
	p.f.Status = finding.Drift
	switch {
	case !exists:
		p.f.Detail = fmt.Sprintf("%s does not exist: nothing sets %s at boot", path, PersistLine)
	case i >= 0:
		p.f.Detail = fmt.Sprintf("%s line %d sets %s to %s at boot", path, i+1, Key, strconv.Quote(v))
	default:
		p.f.Detail = fmt.Sprintf("%s does not set %s", path, PersistLine)
	}
	p.f.Detail += ": after a reboot tasks cannot reach their credentials until the agent or ecs-remediator sets it again"
	if override != "" {
		p.f.Detail += "; also " + override
	}
	p.f.Fix = fmt.Sprintf("ecs-remediator apply, or add the line %q to %s", PersistLine, path)
	return p
}

// overriddenBy names a file of the same directory that systemd-sysctl
// reads after ours (a later name) and that sets Key to another value ("" when
// none does).
func (e *Enforcer) overriddenBy() string {
	dir, base := filepath.Split(e.c.PersistPath)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return ""
	}
	var later []string
	for _, d := range ents {
		if n := d.Name(); strings.HasSuffix(n, ".conf") && n > base {
			later = append(later, n)
		}
	}
	sort.Strings(later)
	var found string
	for _, n := range later {
		data, _, err := readConf(filepath.Join(dir, n), true)
		if err != nil {
			continue
		}
		if i, v := lastSetting(splitLines(data)); i >= 0 {
			found = ""
			if v != "1" {
				found = fmt.Sprintf("%s line %d sets it to %s and is read after %s", filepath.Join(dir, n), i+1, strconv.Quote(v), base)
			}
		}
	}
	return found
}

// applyPersist writes the file when its content must change.
func (e *Enforcer) applyPersist(dryRun bool, plan io.Writer) (finding.Finding, []finding.Change) {
	p := e.observePersist()
	if p.f.Status != finding.Drift {
		return p.f, nil
	}
	path := e.c.PersistPath
	c := finding.Change{
		Item:   ItemPersist,
		Action: p.repair.action,
		Target: path,
		Old:    p.oldVal,
		New:    "1",
		Reason: "nothing set route_localnet=1 at boot",
	}
	if p.oldVal != "(unset)" {
		c.Reason = fmt.Sprintf("the file set route_localnet to %s at boot", strconv.Quote(p.oldVal))
	}
	if dryRun {
		if plan != nil {
			io.WriteString(plan, atomicfile.Diff(path, []byte(p.old), []byte(p.repair.content)))
		}
		return p.f, []finding.Change{c}
	}
	if err := atomicfile.Replace(path, []byte(p.repair.content), atomicfile.Options{Perm: 0o644, DirPerm: 0o755}); err != nil {
		p.f.Status = finding.Error
		p.f.Detail += "; writing it failed: " + err.Error()
		p.f.Fix = "make " + filepath.Dir(path) + " writable for root, or set persist.sysctl: off"
		return p.f, nil
	}
	return e.observePersist().f, []finding.Change{c}
}
