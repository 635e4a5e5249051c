package netfilter

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter/saved"
)

func persistConfig() Config {
	c := testConfig()
	c.BlockIMDS = true
	return c
}

// TestPersistApply drives the saved-file half of Apply on a temp dir:
// create, leave alone when right, dry-run diff, Docker warning, service.
func TestPersistApply(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sysconfig", "iptables")
	sd := filepath.Join(dir, "systemd")
	c := persistConfig()
	c.Persist = &saved.Target{Path: path, Service: "iptables.service", Chosen: "test"}
	c.SystemdDir = sd
	e := &Enforcer{c: c}
	ws := c.wants(false, false)

	var plan bytes.Buffer
	fs, cs := e.persist(ws, modeDryRun, &plan)
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("dry-run created %s", path)
	}
	if fs[0].Status != finding.Drift || len(cs) != 1 || !strings.Contains(plan.String(), "+-A PREROUTING -p tcp -d 169.254.170.2") {
		t.Errorf("dry-run: %+v %+v\n%s", fs, cs, plan.String())
	}

	fs, cs = e.persist(ws, modeRepair, nil)
	if fs[0].Status != finding.OK || len(cs) != 1 || cs[0].Action != "created saved ruleset" || cs[0].Target != path || cs[0].AgentRestart {
		t.Errorf("create: %+v %+v", fs, cs)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("created file: %v %v", fi, err)
	}
	// restore service not enabled -> warning; enabled -> ok
	if fs[1].Item != ItemPersistService || !fs[1].Warned() || fs[1].Fix != "systemctl enable iptables.service" {
		t.Errorf("service not enabled: %+v", fs[1])
	}
	if err := os.MkdirAll(filepath.Join(sd, "basic.target.wants"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/usr/lib/systemd/system/iptables.service", filepath.Join(sd, "basic.target.wants", "iptables.service")); err != nil {
		t.Fatal(err)
	}

	before, _ := os.ReadFile(path)
	st1, _ := os.Stat(path)
	fs, cs = e.persist(ws, modeRepair, nil)
	if len(cs) != 0 || fs[0].Status != finding.OK || fs[1].Warned() {
		t.Errorf("second apply: %+v %+v", fs, cs)
	}
	after, _ := os.ReadFile(path)
	st2, _ := os.Stat(path)
	if !bytes.Equal(before, after) || !os.SameFile(st1, st2) {
		t.Error("second apply rewrote an unchanged file")
	}

	// Docker content: warning with the line numbers, nothing Docker added
	src, _ := os.ReadFile("saved/testdata/docker-snapshot.in")
	if err := os.WriteFile(path, src, 0o600); err != nil {
		t.Fatal(err)
	}
	fs, _ = e.persist(ws, modeRepair, nil)
	if !fs[0].Warned() || !strings.Contains(fs[0].Detail, "Docker-managed") || !strings.Contains(fs[0].Fix, "delete those lines") {
		t.Errorf("docker file: %+v", fs[0])
	}

	// auto could not choose: a warning, not an error (the daemon restores
	// the rules itself at boot)
	e.c.PersistErr = errors.New("persist.iptables auto: nothing found")
	fs, _ = e.persist(ws, modeRepair, nil)
	if len(fs) != 1 || fs[0].Status != finding.Warn || !strings.Contains(fs[0].Fix, "iptables-services") {
		t.Errorf("PersistErr: %+v", fs)
	}
}

// TestPersistNewFile: the file the Enforcer creates for the configuration's
// wants is saved/testdata/new-file.golden, the file package saved's
// golden tests build from their copy of those wants.
func TestPersistNewFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "iptables")
	c := persistConfig()
	c.Persist = &saved.Target{Path: path, Service: "iptables.service"}
	e := &Enforcer{c: c}
	if _, cs := e.persist(c.wants(true, false), modeRepair, nil); len(cs) != 1 {
		t.Fatalf("changes %+v, want the file created", cs)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("saved/testdata/new-file.golden")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("created:\n%s\nwant (saved/testdata/new-file.golden):\n%s", got, want)
	}
}
