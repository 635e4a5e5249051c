package saved

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

// wants is what pkg/netfilter asks for with the credential rules, the
// introspection pair (docker0 exists), the localhost guard and the IMDS
// block: the rules the golden files hold. pkg/netfilter's
// TestPersistNewFile checks that its wants give new-file.golden too.
func wants(t *testing.T) []rule.Want {
	t.Helper()
	ws := []rule.Want{
		{Item: "network.credentials_dnat", Table: "nat", Chain: "PREROUTING", Required: true, Place: rule.Append, Needle: "169.254.170.2",
			Args: strings.Fields("-p tcp -d 169.254.170.2 --dport 80 -j DNAT --to-destination 127.0.0.1:51679")},
		{Item: "network.credentials_redirect", Table: "nat", Chain: "OUTPUT", Required: true, Place: rule.Append, Needle: "169.254.170.2",
			Args: strings.Fields("-p tcp -d 169.254.170.2 --dport 80 -j REDIRECT --to-ports 51679")},
		{Item: "network.introspection_block", Table: "filter", Chain: "INPUT", Place: rule.Top, Order: 0, Required: true, Needle: "51678",
			Args: strings.Fields("-p tcp --dport 51678 -i docker0 -j ACCEPT")},
		{Item: "network.introspection_block", Table: "filter", Chain: "INPUT", Place: rule.Top, Order: 1, Required: true, Needle: "51678",
			Args: strings.Fields("-p tcp --dport 51678 ! -i lo -j DROP")},
		{Item: "network.localhost_guard", Table: "filter", Chain: "INPUT", Place: rule.Top, Order: 2, Required: true, Needle: "127.",
			Args: []string{"--dst", "127.0.0.0/8", "!", "--src", "127.0.0.0/8", "-m", "conntrack", "!", "--ctstate", "RELATED,ESTABLISHED,DNAT", "-j", "DROP"}},
		{Item: "network.localhost_guard", Table: "raw", Chain: "PREROUTING", Place: rule.Top, Order: 0, Required: true, Needle: "127.",
			Args: strings.Fields("! -i lo -d 127.0.0.0/8 -j DROP")},
		{Item: "network.imds_block", Table: "filter", Chain: "DOCKER-USER", Place: rule.Top, Order: 0, Required: true, Needle: "169.254.169.254", NewChain: true,
			Args: strings.Fields("-i docker+ -d 169.254.169.254/32 -j DROP")},
	}
	for i := range ws {
		k, _, err := rule.Key(rule.Quote(ws[i].Args), false)
		if err != nil {
			t.Fatal(err)
		}
		ws[i].Key = k
	}
	ws[2].Before = ws[3].Key
	return ws
}

// foreignLines is the file without our rules' lines: what must survive.
func foreignLines(data string, ws []rule.Want) []string {
	keys := map[string]bool{}
	for _, w := range ws {
		keys[w.Key] = true
	}
	var out []string
	for _, l := range Parse(data, rule.InterestOf(ws).Needles).lines {
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
	ws := wants(t)
	ins, _ := filepath.Glob("testdata/*.in")
	if len(ins) == 0 {
		t.Fatal("no testdata/*.in")
	}
	for _, in := range ins {
		name := strings.TrimSuffix(filepath.Base(in), ".in")
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			f := Parse(string(src), rule.InterestOf(ws).Needles)
			res := f.Ensure(ws)
			got := f.Bytes()
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
				t.Errorf("Ensure(%s):\n%s\nwant (%s):\n%s", in, got, golden, want)
			}
			// Every foreign line survives, in order; the only other lines
			// added are section and chain declarations for our rules.
			checkForeignKept(t, foreignLines(string(src), ws), foreignLines(string(got), ws))
			again := Parse(string(got), rule.InterestOf(ws).Needles)
			for _, w := range ws {
				if n := len(again.copiesOf(w.Table, w.Chain, w.Key)); n != 1 {
					t.Errorf("%d copies of %s %s after Ensure, want 1", n, w.Chain, w.Spell())
				}
			}
			// Idempotent: a second pass changes nothing.
			res2 := again.Ensure(ws)
			if !bytes.Equal(again.Bytes(), got) || len(res2.Notes) != 0 {
				t.Errorf("second pass changed the file: %v", res2.Notes)
			}
			if name == "docker-snapshot" && len(res.Docker) == 0 {
				t.Error("Docker chains not reported")
			}
			if name != "docker-snapshot" && len(res.Docker) != 0 {
				t.Errorf("Docker content reported in %s: lines %v", name, res.Docker)
			}
		})
	}
}

func TestNewSavedFileGolden(t *testing.T) {
	ws := wants(t)
	f := New(Target{Path: "/etc/sysconfig/iptables", Service: "iptables.service"})
	f.Ensure(ws)
	got := f.Bytes()
	golden := "testdata/new-file.golden"
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
