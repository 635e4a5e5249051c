package testbin

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ecs-remediator/ecs-remediator/pkg/policy"
)

// hostState is what the product would change on the machine itself if a
// test forgot to point a policy path at its temporary directory or to run
// in a namespace: every file the built-in policy writes, and the host's
// route_localnet. Tests never change the machine they run on; Main fails
// the suite when this differs after the tests.
func hostState() map[string]string {
	d := policy.Default()
	paths := []string{d.ECSConfig, d.BackupPath(), d.Persist.Sysctl, d.Agent.ProxyDropinDir, d.Docker.DropinDir, d.Docker.Sysconfig, policy.DefaultTextfile}
	for _, c := range d.Persist.AutoCandidates {
		paths = append(paths, c.Path)
	}
	st := map[string]string{}
	for _, p := range paths {
		if p == "" || p == policy.Off {
			continue
		}
		st[p] = describe(p)
		if fis, err := os.ReadDir(p); err == nil {
			for _, fi := range fis {
				q := filepath.Join(p, fi.Name())
				st[q] = describe(q)
			}
		}
	}
	rl := filepath.Join(d.Network.ProcSys, "net/ipv4/conf/all/route_localnet")
	v, _ := os.ReadFile(rl)
	st[rl] = strings.TrimSpace(string(v))
	return st
}

func describe(path string) string {
	fi, err := os.Lstat(path)
	if err != nil {
		return "absent"
	}
	return fmt.Sprintf("%v %d bytes, modified %s", fi.Mode(), fi.Size(), fi.ModTime().Format("15:04:05.000000"))
}

// hostChanges lists what differs between two hostStates.
func hostChanges(before, after map[string]string) []string {
	var out []string
	for p, a := range after {
		if b, ok := before[p]; !ok && a != "absent" || ok && b != a {
			if !ok {
				b = "absent"
			}
			out = append(out, fmt.Sprintf("%s: %s -> %s", p, b, a))
		}
	}
	for p, b := range before {
		if _, ok := after[p]; !ok && b != "absent" {
			out = append(out, fmt.Sprintf("%s: %s -> absent", p, b))
		}
	}
	sort.Strings(out)
	return out
}
