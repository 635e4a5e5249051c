package logging

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

const catalogPath = "../../systemd/ecs-remediator.catalog"

type catalogEntry struct {
	id      string
	line    int
	headers map[string]string
	body    string
}

// parseCatalog reads the journald catalog format: "-- ID" starts an entry,
// "Key: value" header lines follow up to a blank line, then the body up to
// the next "-- " line. Lines starting with # outside entries are comments.
func parseCatalog(t *testing.T, path string) []catalogEntry {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []catalogEntry
	var cur *catalogEntry
	inHeader := false
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, "-- "):
			out = append(out, catalogEntry{id: strings.TrimPrefix(l, "-- "), line: n, headers: map[string]string{}})
			cur = &out[len(out)-1]
			inHeader = true
		case cur == nil:
			if l != "" && !strings.HasPrefix(l, "#") {
				t.Errorf("%s:%d: text outside an entry: %q", path, n, l)
			}
		case inHeader && l == "":
			inHeader = false
		case inHeader:
			k, v, ok := strings.Cut(l, ": ")
			if !ok {
				t.Errorf("%s:%d: header line without \": \": %q", path, n, l)
				continue
			}
			if _, dup := cur.headers[k]; dup && k != "Documentation" {
				t.Errorf("%s:%d: header %s twice", path, n, k)
			}
			cur.headers[k] = v
		default:
			cur.body += l + "\n"
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

var idRE = regexp.MustCompile(`^[0-9a-f]{32}$`)
var substRE = regexp.MustCompile(`@([^@\s]*)@`)

func TestCatalogCoversEveryMessageID(t *testing.T) {
	entries := parseCatalog(t, catalogPath)
	byID := map[string]catalogEntry{}
	for _, e := range entries {
		if !idRE.MatchString(e.id) {
			t.Errorf("line %d: id %q is not 32 lower-case hex digits", e.line, e.id)
		}
		if _, dup := byID[e.id]; dup {
			t.Errorf("line %d: id %s has two entries", e.line, e.id)
		}
		byID[e.id] = e
		for _, h := range []string{"Subject", "Defined-By", "Support"} {
			if e.headers[h] == "" {
				t.Errorf("line %d (%s): no %s header", e.line, e.id, h)
			}
		}
		if strings.TrimSpace(e.body) == "" {
			t.Errorf("line %d (%s): empty body: say what happened and what to do", e.line, e.id)
		}
		for _, m := range substRE.FindAllStringSubmatch(e.headers["Subject"]+e.body, -1) {
			if !validJournalField(m[1]) {
				t.Errorf("line %d (%s): substitution @%s@ is not a journald field name", e.line, e.id, m[1])
			}
		}
	}
	known := map[string]bool{}
	for name, id := range MessageIDs {
		known[id] = true
		if _, ok := byID[id]; !ok {
			t.Errorf("logging.%s (%s) has no catalog entry", name, id)
		}
	}
	for id, e := range byID {
		if !known[id] {
			t.Errorf("line %d: catalog entry %s is not a logging constant (stray id)", e.line, id)
		}
	}
	if len(MessageIDs) != 9 {
		t.Errorf("MessageIDs lists %d ids; add every new constant to it", len(MessageIDs))
	}
}

// journalctl itself must accept the catalog: --update-catalog into a
// private root (nothing on this machine changes), then dump every entry.
func TestCatalogAcceptedByJournalctl(t *testing.T) {
	jc, err := exec.LookPath("journalctl")
	if err != nil {
		if os.Getenv("ECS_REMEDIATOR_REQUIRE_NS") == "1" {
			t.Fatal("needs journalctl (apt-get install -y systemd)")
		}
		t.Skip("needs journalctl (apt-get install -y systemd)")
	}
	root := t.TempDir()
	dir := filepath.Join(root, "usr/lib/systemd/catalog")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(catalogPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ecs-remediator.catalog"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(jc, "--root="+root, "--update-catalog").CombinedOutput(); err != nil || len(out) != 0 {
		t.Fatalf("journalctl --update-catalog: %v\n%s", err, out)
	}
	out, err := exec.Command(jc, "--root="+root, "--list-catalog").CombinedOutput()
	if err != nil {
		t.Fatalf("journalctl --list-catalog: %v\n%s", err, out)
	}
	var listed []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		id, rest, _ := strings.Cut(l, " ")
		listed = append(listed, id)
		if !strings.HasPrefix(rest, "ecs-remediator: ") {
			t.Errorf("listed %q: want Defined-By ecs-remediator", l)
		}
	}
	var want []string
	for _, id := range MessageIDs {
		want = append(want, id)
	}
	sort.Strings(want)
	sort.Strings(listed)
	if strings.Join(listed, ",") != strings.Join(want, ",") {
		t.Errorf("journalctl lists %v, want %v", listed, want)
	}
	dump, err := exec.Command(jc, "--root="+root, "--dump-catalog", AgentRestarted).CombinedOutput()
	if err != nil || !strings.Contains(string(dump), "try-restart") {
		t.Errorf("journalctl --dump-catalog %s: %v\n%s", AgentRestarted, err, dump)
	}
}
