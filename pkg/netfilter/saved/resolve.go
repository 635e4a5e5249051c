package saved

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Target is a saved ruleset and the unit that restores it at boot.
type Target struct {
	Path    string // /etc/sysconfig/iptables, /etc/iptables/rules.v4, ...
	Service string // iptables.service, netfilter-persistent.service ("" unknown)
	// Chosen says how Resolve picked it; shown in the finding.
	Chosen string
}

// Resolve turns the persist.iptables setting into a target. setting is
// "auto", "" (off: the policy resolves "off" to "") or an absolute path. "auto" picks the first
// candidate whose directory exists (/etc/sysconfig, /etc/iptables), else
// the first whose restore unit exists in one of unitDirs, else fails with
// what to install. A path that is one of the candidates gets its service;
// another path gets none. "" returns the zero Target (Path "").
func Resolve(setting string, candidates []Target, unitDirs []string) (Target, error) {
	switch setting {
	case "":
		return Target{}, nil
	case "auto":
		for _, c := range candidates {
			dir := filepath.Dir(c.Path)
			if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
				c.Chosen = "auto: " + dir + " exists"
				return c, nil
			}
		}
		for _, c := range candidates {
			if c.Service == "" {
				continue
			}
			for _, d := range unitDirs {
				u := filepath.Join(d, c.Service)
				if _, err := os.Stat(u); err == nil {
					c.Chosen = "auto: unit " + u + " exists"
					return c, nil
				}
			}
		}
		var paths, units []string
		for _, c := range candidates {
			paths = append(paths, filepath.Dir(c.Path))
			units = append(units, c.Service)
		}
		return Target{}, fmt.Errorf("persist.iptables auto: none of the directories %s exists and no restore unit (%s) was found in %s; install iptables-services (Amazon Linux, RHEL: dnf install -y iptables-services) or iptables-persistent (Debian, Ubuntu: apt-get install -y iptables-persistent), or set persist.iptables to a file path or off",
			strings.Join(paths, ", "), strings.Join(units, ", "), strings.Join(unitDirs, ", "))
	}
	if !filepath.IsAbs(setting) {
		return Target{}, fmt.Errorf("persist.iptables %q: want auto, off or an absolute path", setting)
	}
	p := filepath.Clean(setting)
	for _, c := range candidates {
		if filepath.Clean(c.Path) == p {
			c.Path, c.Chosen = p, "set in the policy"
			return c, nil
		}
	}
	return Target{Path: p, Chosen: "set in the policy"}, nil
}

// EnabledLink is the link that enables service at boot: one named after
// it in a *.wants/ directory under systemdDir (what `systemctl enable`
// creates; a vendor preset alone enables nothing). It is "" when there is
// none or systemdDir is "".
func EnabledLink(systemdDir, service string) string {
	if systemdDir == "" || service == "" {
		return ""
	}
	links, _ := filepath.Glob(filepath.Join(systemdDir, "*.wants", service))
	for _, l := range links {
		if _, err := os.Lstat(l); err == nil {
			return l
		}
	}
	return ""
}
