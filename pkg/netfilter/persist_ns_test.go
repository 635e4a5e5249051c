package netfilter

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter/rule"
	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter/saved"
	"github.com/ecs-remediator/ecs-remediator/test/nstest"
)

// The saved file must load with the backend's real restore: it is written
// in one namespace and restored into a fresh one.

func persistNSConfig(t *testing.T, b nstest.Backend, path string) Config {
	c := nsConfig(t, b, true)
	c.ProcRoot = t.TempDir() // IPv4 only: the saved file is rules.v4
	c.ProcSys = c.ProcRoot   // no net/ipv6 there: IPv4 only
	c.BlockIMDS = true
	c.Persist = &saved.Target{Path: path, Service: "iptables.service", Chosen: "test"}
	c.SystemdDir = t.TempDir()
	return c
}

// restoreFresh loads path with `<backend>-restore` into a fresh namespace
// and checks our rules are there exactly once.
func restoreFresh(t *testing.T, b nstest.Backend, c Config, path string, also ...string) {
	t.Helper()
	nstest.Run(t, func() {
		nstest.Sh(t, b.Restore+" < "+path)
		c.Persist = nil
		e := newNS(t, c)
		requireOnce(t, e, c.wants(true, false))
		for _, f := range e.Check(ctx(t)) {
			if !finding.Compliant([]finding.Finding{f}) {
				t.Errorf("after restoring %s: %s %s: %s", path, f.Item, f.Status, f.Detail)
			}
		}
		save := nstest.Sh(t, b.Save)
		for _, a := range also {
			if !strings.Contains(save, a) {
				t.Errorf("after restoring %s: %q missing from\n%s", path, a, save)
			}
		}
	})
}

func TestSavedFileCreatedLoads(t *testing.T) {
	forBackends(t, func(t *testing.T, b nstest.Backend) {
		path := filepath.Join(t.TempDir(), "sysconfig", "iptables")
		c := persistNSConfig(t, b, path)
		nstest.Run(t, func() {
			e := newNS(t, c)
			fs, cs := e.Apply(ctx(t), false, nil)
			if f := findingOf(fs, ItemPersistIptables); f.Status != finding.OK || !strings.Contains(f.Detail, "created") {
				t.Errorf("persist: %+v", f)
			}
			if cs[len(cs)-1].Action != "created saved ruleset" {
				t.Errorf("last change %+v", cs[len(cs)-1])
			}
		})
		restoreFresh(t, b, c, path)
	})
}

// TestSavedFileForeignAndDuplicate starts from the persistence trap of docs/ecs-init.md: a saved
// ruleset with a duplicate of ours next to the operator's own rules.
func TestSavedFileForeignAndDuplicate(t *testing.T) {
	forBackends(t, func(t *testing.T, b nstest.Backend) {
		path := filepath.Join(t.TempDir(), "iptables")
		src, err := os.ReadFile("saved/testdata/rhel-duplicate.in")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, src, 0o600); err != nil {
			t.Fatal(err)
		}
		c := persistNSConfig(t, b, path)
		nstest.Run(t, func() {
			e := newNS(t, c)
			fs, _ := e.Apply(ctx(t), false, nil)
			if f := findingOf(fs, ItemPersistIptables); f.Status != finding.OK || !strings.Contains(f.Detail, "2 copies") {
				t.Errorf("persist: %+v", f)
			}
		})
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		ws := c.wants(true, false)
		checkForeignKept(t, foreignLines(string(src), ws), foreignLines(string(got), ws))
		restoreFresh(t, b, c, path,
			`-A INPUT -p tcp -m tcp --dport 22 -m comment --comment "ssh from \"admins\"" -j ACCEPT`,
			"-A PREROUTING -d 10.9.9.9/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.0.0.5:8080",
			":INPUT DROP", "-A LOGDROP -j LOG --log-prefix \"drop: \"")
	})
}

// foreignLines is the file without our rules' lines ("-A chain spec" whose
// key is one of ws's): what must survive.
func foreignLines(data string, ws []rule.Want) []string {
	keys := map[string]bool{}
	for _, w := range ws {
		keys[w.Key] = true
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSuffix(data, "\n"), "\n") {
		l = strings.TrimSuffix(l, "\r")
		if s := strings.TrimSpace(l); strings.HasPrefix(s, "-A ") {
			if _, spec, ok := strings.Cut(s[3:], " "); ok {
				if k, _, err := rule.Key(spec, false); err == nil && keys[k] {
					continue
				}
			}
		}
		out = append(out, l)
	}
	return out
}

// checkForeignKept: every line of before is in after, in order; the only
// other lines are section and chain declarations for our rules.
func checkForeignKept(t *testing.T, before, after []string) {
	t.Helper()
	added := map[string]bool{":DOCKER-USER - [0:0]": true, "*nat": true, "*filter": true, "*raw": true, "COMMIT": true}
	i := 0
	for _, l := range after {
		if i < len(before) && l == before[i] {
			i++
			continue
		}
		if !added[l] {
			t.Errorf("unexpected line %q in the result", l)
		}
	}
	if i != len(before) {
		t.Errorf("foreign line %q lost or reordered:\nbefore %q\nafter  %q", before[i], before, after)
	}
}
