package netfilter

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter/kernel"
	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter/rule"
	"github.com/ecs-remediator/ecs-remediator/test/nstest"
)

// Namespace tests: every kernel change happens inside nstest.Run, on a
// fresh network namespace, with the real binaries of both backends.

// nsConfig is a full configuration for backend b. ProcRoot is
// /proc/thread-self so if_inet6 and ip_tables_names are the namespace's
// (/proc/net follows the process's main thread, not the test's thread).
// docker0 is a fixture directory.
func nsConfig(t testing.TB, b nstest.Backend, docker0 bool) Config {
	sys := t.TempDir()
	if docker0 {
		if err := os.Mkdir(filepath.Join(sys, "docker0"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return Config{
		Iptables: b.Iptables, AgentPort: 51679, IntrospectionPort: 51678,
		Credentials: true, LocalhostGuard: true, BlockIntrospection: true,
		ProcRoot: "/proc/thread-self", SysClassNet: sys,
	}
}

// textReader is newEnforcer's choice of readers for a runner that stands
// in for the binaries: every family is read with them, by the production
// text reader.
func textReader(e *Enforcer, t tools, v6 bool) (kernel.Reader, *kernel.NFT) {
	return e.textReader(t, v6), nil
}

func newNS(t testing.TB, c Config) *Enforcer {
	t.Helper()
	e, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func forBackends(t *testing.T, fn func(t *testing.T, b nstest.Backend)) {
	for _, b := range nstest.Backends {
		t.Run(b.Name, func(t *testing.T) {
			nstest.Require(t, b.Iptables, b.Save, b.Restore, "ip")
			fn(t, b)
		})
	}
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// countOurs counts each wanted rule in the live ruleset by meaning.
func countOurs(t testing.TB, e *Enforcer, ws []rule.Want) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, fam := range []bool{false, true} {
		var sub []rule.Want
		for _, w := range ws {
			if w.V6 == fam {
				sub = append(sub, w)
			}
		}
		if len(sub) == 0 {
			continue
		}
		rs, err := e.reader(fam).Read(ctx(t), rule.InterestOf(sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range sub {
			for _, r := range rs.Chain(w.Table, w.Chain).Rules {
				if r.Key == w.Key {
					out[w.Family()+" "+w.Chain+" "+w.Spell()]++
				}
			}
		}
	}
	return out
}

func requireOnce(t testing.TB, e *Enforcer, ws []rule.Want) {
	t.Helper()
	got := countOurs(t, e, ws)
	for _, w := range ws {
		if !w.Required {
			continue
		}
		k := w.Family() + " " + w.Chain + " " + w.Spell()
		if got[k] != 1 {
			t.Errorf("%d copies of %s, want 1", got[k], k)
		}
	}
}

func requireCompliant(t testing.TB, fs []finding.Finding) {
	t.Helper()
	for _, f := range fs {
		if f.Status != finding.OK {
			t.Errorf("%s: %s: %s (fix: %s)", f.Item, f.Status, f.Detail, f.Fix)
		}
	}
}

func findingOf(fs []finding.Finding, item string) finding.Finding {
	for _, f := range fs {
		if f.Item == item {
			return f
		}
	}
	return finding.Finding{Item: item, Status: "absent"}
}

// saveAll is `<backend>-save` of the namespace without the timestamp
// comments; counters is -c.
func saveAll(t testing.TB, save, family string, counters bool) string {
	t.Helper()
	bin := save
	if family == "ip6tables" {
		bin = strings.Replace(save, "iptables", "ip6tables", 1)
	}
	args := ""
	if counters {
		args = " -c"
	}
	out := nstest.Sh(t, bin+args)
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		if !strings.HasPrefix(l, "#") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// withoutOurs drops our rules (by meaning) from a save output.
func withoutOurs(save string, ws []rule.Want) string {
	keys := map[string]bool{}
	for _, w := range ws {
		keys[w.Table+" "+w.Chain+" "+w.Key] = true
	}
	var keep []string
	table := ""
	for _, l := range strings.Split(save, "\n") {
		s := l
		if strings.HasPrefix(s, "*") {
			table = s[1:]
		}
		if strings.HasPrefix(s, "[") {
			s = strings.TrimSpace(s[strings.IndexByte(s, ']')+1:])
		}
		if strings.HasPrefix(s, "-A ") {
			ch, text, _ := strings.Cut(s[3:], " ")
			if k, _, err := rule.Key(text, false); err == nil && keys[table+" "+ch+" "+k] {
				continue
			}
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n")
}

// withoutEmptyTables drops table sections of a save output that hold no
// rule (the raw table a repair created for our guard alone, once our
// rules are taken out).
func withoutEmptyTables(save string) string {
	lines := strings.Split(save, "\n")
	var keep []string
	for i := 0; i < len(lines); i++ {
		if strings.HasPrefix(lines[i], "*") {
			j := i + 1
			for j < len(lines) && strings.HasPrefix(lines[j], ":") {
				j++
			}
			if j < len(lines) && lines[j] == "COMMIT" {
				i = j
				continue
			}
		}
		keep = append(keep, lines[i])
	}
	return strings.Join(keep, "\n")
}

// ecsInitsOnly are the wants ecs-init also adds (and deletes at stop):
// not the raw guard nor our credential-path accepts.
func ecsInitsOnly(ws []rule.Want) []rule.Want {
	var out []rule.Want
	for _, w := range ws {
		if w.Table != "raw" && w.Item != ItemCredentialsInput {
			out = append(out, w)
		}
	}
	return out
}
