package saved

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	root := t.TempDir()
	mk := func(p string) string {
		p = filepath.Join(root, p)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sysconfig := filepath.Join(root, "a/sysconfig")
	iptdir := filepath.Join(root, "b/iptables")
	units := filepath.Join(root, "units")
	cands := []Target{
		{Path: filepath.Join(sysconfig, "iptables"), Service: "iptables.service"},
		{Path: filepath.Join(iptdir, "rules.v4"), Service: "netfilter-persistent.service"},
	}
	// nothing exists: error naming what to install
	if _, err := Resolve("auto", cands, []string{units}); err == nil || !strings.Contains(err.Error(), "iptables-persistent") {
		t.Errorf("nothing exists: err %v, want one naming iptables-services / iptables-persistent", err)
	}
	// a restore unit exists: choose by it
	mk("units")
	if err := os.WriteFile(filepath.Join(units, "netfilter-persistent.service"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := Resolve("auto", cands, []string{units})
	if err != nil || got.Path != cands[1].Path || !strings.Contains(got.Chosen, "unit") {
		t.Errorf("by unit: %+v, %v", got, err)
	}
	// a directory exists: it wins, first candidate first
	mk("b/iptables")
	if got, _ := Resolve("auto", cands, []string{units}); got.Path != cands[1].Path {
		t.Errorf("by dir: %+v", got)
	}
	mk("a/sysconfig")
	if got, _ := Resolve("auto", cands, []string{units}); got.Path != cands[0].Path || got.Service != "iptables.service" || !strings.Contains(got.Chosen, sysconfig) {
		t.Errorf("first dir: %+v", got)
	}
	// explicit paths
	if got, _ := Resolve(cands[1].Path, cands, nil); got.Service != "netfilter-persistent.service" {
		t.Errorf("known path: %+v", got)
	}
	if got, _ := Resolve("/srv/rules", cands, nil); got.Path != "/srv/rules" || got.Service != "" {
		t.Errorf("custom path: %+v", got)
	}
	if got, err := Resolve("", cands, nil); err != nil || got.Path != "" {
		t.Errorf("off: %+v, %v", got, err)
	}
	if _, err := Resolve("rules.v4", cands, nil); err == nil {
		t.Error("relative path: want an error")
	}
}
