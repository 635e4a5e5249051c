package netfilter

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter/rule"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func persistConfig() Config {
	c := testConfig()
	c.BlockIMDS = true
	return c
}

// foreignLines is the file without our rules' lines: what must survive.
func foreignLines(data string, ws []rule.Want) []string {
	keys := map[string]bool{}
	for _, w := range ws {
		keys[w.Key] = true
	}
	var out []string
	for _, l := range parseSaved(data, rule.InterestOf(ws).Needles).lines {
		if l.kind == 'A' && keys[l.key] {
			continue
		}
		out = append(out, l.raw)
	}
	return out
}

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

func TestEnsureSavedGolden(t *testing.T) {
	ws := persistConfig().wants(true, false)
	ins, _ := filepath.Glob("testdata/saved/*.in")
	if len(ins) == 0 {
		t.Fatal("no testdata/saved/*.in")
	}
	for _, in := range ins {
		name := strings.TrimSuffix(filepath.Base(in), ".in")
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			f := parseSaved(string(src), rule.InterestOf(ws).Needles)
			res := ensureSaved(f, ws)
			got := f.bytes()
			golden := strings.TrimSuffix(in, ".in") + ".golden"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("ensureSaved(%s):\n%s\nwant (%s):\n%s", in, got, golden, want)
			}
			// Every foreign line survives, in order; the only other lines
			// added are section and chain declarations for our rules.
			checkForeignKept(t, foreignLines(string(src), ws), foreignLines(string(got), ws))
			again := parseSaved(string(got), rule.InterestOf(ws).Needles)
			for _, w := range ws {
				if n := len(again.copiesOf(w.Table, w.Chain, w.Key)); n != 1 {
					t.Errorf("%d copies of %s %s after ensureSaved, want 1", n, w.Chain, w.Spell())
				}
			}
			// Idempotent: a second pass changes nothing.
			res2 := ensureSaved(again, ws)
			if !bytes.Equal(again.bytes(), got) || len(res2.notes) != 0 {
				t.Errorf("second pass changed the file: %v", res2.notes)
			}
			if name == "docker-snapshot" && len(res.docker) == 0 {
				t.Error("Docker chains not reported")
			}
			if name != "docker-snapshot" && len(res.docker) != 0 {
				t.Errorf("Docker content reported in %s: lines %v", name, res.docker)
			}
		})
	}
}

func TestNewSavedFileGolden(t *testing.T) {
	ws := persistConfig().wants(true, false)
	f := newSavedFile(Target{Path: "/etc/sysconfig/iptables", Service: "iptables.service"})
	ensureSaved(f, ws)
	got := f.bytes()
	golden := "testdata/saved/new-file.golden"
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("new file:\n%s\nwant:\n%s", got, want)
	}
}
