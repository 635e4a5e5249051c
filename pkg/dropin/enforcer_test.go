package dropin

import (
	"bytes"
	"context"
	"flag"
	"github.com/ecs-remediator/ecs-remediator/pkg/atomicfile"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
	"github.com/ecs-remediator/ecs-remediator/pkg/noproxy"
)

var update = flag.Bool("update", false, "rewrite testdata/repair/*/want from the current output")

// Golden repair tests: testdata/repair/CASE/in is the drop-in directory
// before, CASE/want the files that apply must produce (absent: no file
// changes).
func TestRepairGolden(t *testing.T) {
	for name, want := range map[string]struct {
		before  finding.Status
		changes int
		detail  string // in the drift finding
	}{
		"aws-doc-ok":            {finding.OK, 0, ""},
		"missing-entries":       {finding.Drift, 1, "NO_PROXY (DIR/http-proxy.conf:4) lacks 169.254.169.254, 169.254.170.2, /var/run/docker.sock"},
		"no-noproxy":            {finding.Drift, 1, "HTTPS_PROXY (DIR/http-proxy.conf:5) sets a proxy but no drop-in sets NO_PROXY"},
		"one-line":              {finding.Drift, 1, "NO_PROXY (DIR/proxy.conf:2) lacks"},
		"later-file-wins":       {finding.Drift, 1, "NO_PROXY (DIR/20-override.conf:2) lacks"},
		"reset":                 {finding.Drift, 1, "HTTP_PROXY (DIR/20-b.conf:4) sets a proxy but no drop-in sets NO_PROXY"},
		"lowercase":             {finding.Drift, 1, "no_proxy (DIR/http-proxy.conf:2) lacks"},
		"both-cases":            {finding.Drift, 2, "NO_PROXY (DIR/http-proxy.conf:3) lacks 169.254.170.2, /var/run/docker.sock; no_proxy (DIR/http-proxy.conf:4) lacks"},
		"nonportable-quotes":    {finding.Drift, 1, "quotes inside the word"},
		"no-trailing-newline":   {finding.Drift, 1, "no drop-in sets NO_PROXY"},
		"continuation":          {finding.Drift, 1, "NO_PROXY (DIR/http-proxy.conf:2) lacks"},
		"crlf":                  {finding.Drift, 1, "no drop-in sets NO_PROXY"},
		"no-proxy-ok":           {finding.OK, 0, ""},
		"proxy-in-unit-section": {finding.OK, 0, ""},
		"escapes":               {finding.Drift, 1, "lacks"},
	} {
		t.Run(name, func(t *testing.T) {
			src := filepath.Join("testdata", "repair", name)
			dir := t.TempDir()
			in := readTree(t, filepath.Join(src, "in"))
			writeTree(t, dir, in)
			e := New(Config{Dir: dir, Enabled: true})
			ctx := context.Background()

			f := one(t, e.Check(ctx))
			if f.Status != want.before || f.Item != Item {
				t.Fatalf("before: %+v, want status %s", f, want.before)
			}
			if d := strings.ReplaceAll(want.detail, "DIR", dir); !strings.Contains(f.Detail, d) {
				t.Errorf("detail %q lacks %q", f.Detail, d)
			}

			// Dry run: a diff, no file touched.
			var plan bytes.Buffer
			fs, cs := e.Apply(ctx, true, &plan)
			if len(cs) != want.changes || one(t, fs).Status != want.before {
				t.Errorf("dry run: %d changes, finding %+v", len(cs), fs)
			}
			if (plan.Len() > 0) != (want.changes > 0) || (want.changes > 0 && !strings.Contains(plan.String(), "+Environment") && !strings.Contains(plan.String(), "NO_PROXY=")) {
				t.Errorf("dry-run plan:\n%s", plan.String())
			}
			if got := readTree(t, dir); !equalTree(got, in) {
				t.Fatal("dry run changed files")
			}

			// Apply.
			fs, cs = e.Apply(ctx, false, io.Discard)
			if len(cs) != want.changes {
				t.Errorf("apply: %d changes, want %d: %+v", len(cs), want.changes, cs)
			}
			if f := one(t, fs); f.Status != finding.OK {
				t.Errorf("after apply: %+v", f)
			}
			for _, c := range cs {
				if !c.AgentRestart || !c.SystemdReload || c.Item != Item || !strings.HasPrefix(c.Target, dir) || c.Reason == "" || c.Action == "" {
					t.Errorf("change %+v: must name its file, ask for daemon-reload and an agent restart", c)
				}
				if _, missing := noproxy.Merge(c.New); len(missing) > 0 {
					t.Errorf("change %+v: new value lacks %v", c, missing)
				}
			}
			got := readTree(t, dir)
			wantDir := filepath.Join(src, "want")
			if *update {
				os.RemoveAll(wantDir)
				if want.changes > 0 {
					changed := map[string][]byte{}
					for n, b := range got {
						if !strings.HasSuffix(n, BackupSuffix) && !bytes.Equal(b, in[n]) {
							changed[n] = b
						}
					}
					writeTree(t, wantDir, changed)
				}
			}
			expect := map[string][]byte{}
			for n, b := range in {
				expect[n] = b
			}
			if _, err := os.Stat(wantDir); err == nil {
				for n, b := range readTree(t, wantDir) {
					expect[n] = b
					expect[n+BackupSuffix] = in[n] // the original, kept once
				}
			}
			if !equalTree(got, expect) {
				t.Errorf("files after apply:\n%s", diffTrees(got, expect))
			}

			// Idempotent: nothing more to do, backups untouched.
			if _, cs := e.Apply(ctx, false, io.Discard); len(cs) != 0 {
				t.Errorf("second apply changed %+v", cs)
			}
			if again := readTree(t, dir); !equalTree(again, got) {
				t.Error("second apply changed files")
			}
		})
	}
}

func TestDisabledAndMissingDir(t *testing.T) {
	ctx := context.Background()
	if fs := New(Config{Dir: t.TempDir(), Enabled: false}).Check(ctx); fs != nil {
		t.Errorf("disabled: %v", fs)
	}
	if fs, cs := New(Config{Dir: t.TempDir(), Enabled: false}).Apply(ctx, false, io.Discard); fs != nil || cs != nil {
		t.Errorf("disabled apply: %v %v", fs, cs)
	}
	missing := filepath.Join(t.TempDir(), "ecs.service.d")
	f := one(t, New(Config{Dir: missing, Enabled: true}).Check(ctx))
	if f.Status != finding.OK || !strings.Contains(f.Detail, "no drop-in directory") {
		t.Errorf("missing dir: %+v", f)
	}
	if _, err := os.Stat(missing); err == nil {
		t.Error("check created the directory")
	}
}

func TestWhichFilesCount(t *testing.T) {
	dir := t.TempDir()
	proxy := "[Service]\nEnvironment=HTTP_PROXY=http://p:3128\n"
	write := func(n, s string) {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(".hidden.conf", proxy)
	write("http-proxy.conf.ecs-remediator.orig", proxy)
	write("http-proxy.conf~", proxy)
	write("notes.txt", proxy)
	os.Mkdir(filepath.Join(dir, "dir.conf"), 0o755)
	os.Symlink("/dev/null", filepath.Join(dir, "masked.conf"))
	os.Symlink(filepath.Join(dir, "gone"), filepath.Join(dir, "dangling.conf"))
	e := New(Config{Dir: dir, Enabled: true})
	if f := one(t, e.Check(context.Background())); f.Status != finding.OK || !strings.Contains(f.Detail, "sets a proxy") {
		t.Errorf("only regular *.conf files that are not hidden count: %+v", f)
	}
	// A drop-in symlinked out of the directory counts, but is never
	// rewritten (the rule of ecs.config): an error naming link and target,
	// nothing changed.
	real := filepath.Join(t.TempDir(), "managed-proxy.conf")
	if err := os.WriteFile(real, []byte(proxy), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "proxy.conf")
	os.Symlink(real, link)
	if f := one(t, e.Check(context.Background())); f.Status != finding.Error ||
		!strings.Contains(f.Detail, "outside its directory") || !strings.Contains(f.Detail, real) {
		t.Fatalf("drop-in symlinked out of its directory: %+v", f)
	}
	if fs, cs := e.Apply(context.Background(), false, io.Discard); one(t, fs).Status != finding.Error || len(cs) != 0 {
		t.Fatalf("apply through a link out of the directory: %+v %+v", fs, cs)
	}
	if b, _ := os.ReadFile(real); string(b) != proxy {
		t.Errorf("the target elsewhere was rewritten:\n%s", b)
	}
	if _, err := os.Lstat(link + BackupSuffix); err == nil {
		t.Error("a backup was made for a refused file")
	}
	// A link to a regular file in the same directory: its target is
	// rewritten, the link stays.
	os.Remove(link)
	inside := filepath.Join(dir, "managed-proxy.conf.real")
	if err := os.WriteFile(inside, []byte(proxy), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Symlink("managed-proxy.conf.real", link)
	if f := one(t, e.Check(context.Background())); f.Status != finding.Drift {
		t.Fatalf("symlinked drop-in: %+v", f)
	}
	if fs, _ := e.Apply(context.Background(), false, io.Discard); one(t, fs).Status != finding.OK {
		t.Fatalf("apply: %+v", fs)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Error("the symlink was replaced instead of its target")
	}
	if b, _ := os.ReadFile(inside); !strings.Contains(string(b), `Environment="NO_PROXY=169.254.169.254,169.254.170.2,/var/run/docker.sock"`) {
		t.Errorf("target not repaired:\n%s", b)
	}
	if b, _ := os.ReadFile(link + BackupSuffix); string(b) != proxy {
		t.Errorf("backup %q, want the original content", b)
	}
}

func TestUnparsableDropinIsAnError(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "http-proxy.conf"), []byte("[Service\nEnvironment=HTTP_PROXY=http://p:3128\n"), 0o644)
	e := New(Config{Dir: dir, Enabled: true})
	f := one(t, e.Check(context.Background()))
	if f.Status != finding.Error || !strings.Contains(f.Detail, "http-proxy.conf") || !strings.Contains(f.Detail, "line 1") || f.Fix == "" {
		t.Errorf("%+v", f)
	}
	if _, cs := e.Apply(context.Background(), false, io.Discard); len(cs) != 0 {
		t.Errorf("a file systemd rejects must not be edited: %+v", cs)
	}
}

func one(t *testing.T, fs []finding.Finding) finding.Finding {
	t.Helper()
	if len(fs) != 1 {
		t.Fatalf("want one finding, got %+v", fs)
	}
	return fs[0]
}

func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = b
	}
	return out
}

func writeTree(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for n, b := range files {
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func equalTree(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for n, x := range a {
		if y, ok := b[n]; !ok || !bytes.Equal(x, y) {
			return false
		}
	}
	return true
}

func diffTrees(got, want map[string][]byte) string {
	var names []string
	for n := range got {
		names = append(names, n)
	}
	for n := range want {
		if _, ok := got[n]; !ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		if !bytes.Equal(got[n], want[n]) {
			b.WriteString(atomicfile.Diff("want/"+n, want[n], got[n]))
			if _, ok := got[n]; !ok {
				b.WriteString("missing: " + n + "\n")
			}
			if _, ok := want[n]; !ok {
				b.WriteString("unexpected: " + n + "\n")
			}
		}
	}
	return b.String()
}
