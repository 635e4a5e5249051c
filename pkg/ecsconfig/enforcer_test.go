package ecsconfig

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
	"github.com/ecs-remediator/ecs-remediator/pkg/reconcile"
)

var _ reconcile.Enforcer = (*Enforcer)(nil)

func setup(t testing.TB, main, base string) (Config, string) {
	t.Helper()
	dir := t.TempDir()
	c := Config{
		Path: filepath.Join(dir, "etc/ecs/ecs.config"), BasePath: filepath.Join(dir, "var/lib/ecs/ecs.config"),
		BackupPath:  filepath.Join(dir, "etc/ecs/ecs.config.ecs-remediator.orig"),
		TaskIAMRole: true, TaskIAMRoleNetworkHost: true, NoProxy: true,
	}
	if main != "\x00none" {
		os.MkdirAll(filepath.Dir(c.Path), 0o755)
		os.WriteFile(c.Path, []byte(main), 0o644)
	}
	if base != "" {
		os.MkdirAll(filepath.Dir(c.BasePath), 0o755)
		os.WriteFile(c.BasePath, []byte(base), 0o644)
	}
	return c, dir
}

func status(fs []finding.Finding, item string) finding.Finding {
	for _, f := range fs {
		if f.Item == item {
			return f
		}
	}
	return finding.Finding{Status: "missing"}
}

const both = "ECS_ENABLE_TASK_IAM_ROLE=true\nECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST=true\n"

// Every trap of docs/ecs-config.md, judged as ecs-init and the agent do.
func TestCheckTraps(t *testing.T) {
	role := ItemPrefix + KeyTaskIAMRole
	host := ItemPrefix + KeyTaskIAMRoleNetworkHost
	np := ItemPrefix + KeyNoProxy
	for _, tc := range []struct {
		name, main, base, item string
		want                   finding.Status
		detail                 string
	}{
		{"all good", both, "", role, finding.OK, "line 1"},
		{"1 is true", "ECS_ENABLE_TASK_IAM_ROLE=1\n", "", role, finding.OK, ""},
		{"TRUE is true", "ECS_ENABLE_TASK_IAM_ROLE=TRUE\n", "", role, finding.OK, ""},
		{"value spaces trimmed", "ECS_ENABLE_TASK_IAM_ROLE= true \n", "", role, finding.OK, ""},
		{"quoted", `ECS_ENABLE_TASK_IAM_ROLE="true"` + "\n", "", role, finding.Drift, "quotes are kept by ecs-init"},
		{"single quoted", "ECS_ENABLE_TASK_IAM_ROLE='true'\n", "", role, finding.Drift, "quotes are kept by ecs-init"},
		{"yes", "ECS_ENABLE_TASK_IAM_ROLE=yes\n", "", role, finding.Drift, "not a boolean"},
		{"on", "ECS_ENABLE_TASK_IAM_ROLE=on\n", "", role, finding.Drift, "not a boolean"},
		{"tRUE", "ECS_ENABLE_TASK_IAM_ROLE=tRUE\n", "", role, finding.Drift, "not a boolean"},
		{"spaced key", "ECS_ENABLE_TASK_IAM_ROLE = true\n", "", role, finding.Drift, `variable named "ECS_ENABLE_TASK_IAM_ROLE "`},
		{"export", "export ECS_ENABLE_TASK_IAM_ROLE=true\n", "", role, finding.Drift, `"export ECS_ENABLE_TASK_IAM_ROLE"`},
		{"later false wins", both + "ECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST=false\n", "", host, finding.Drift, "last line wins"},
		{"commented true does not count", "#ECS_ENABLE_TASK_IAM_ROLE=true\n", "", role, finding.Drift, "unset (true by ecs-init's default); pinning"},
		{"CRLF", "ECS_ENABLE_TASK_IAM_ROLE=true\r\n", "", role, finding.OK, ""},
		{"missing file", "\x00none", "", role, finding.Drift, "does not exist"},
		{"base sets false", "", "ECS_ENABLE_TASK_IAM_ROLE=false\n", role, finding.Drift, "does not override"},
		{"base true counts", "", "ECS_ENABLE_TASK_IAM_ROLE=true\n", role, finding.OK, "var/lib"},
		{"main overrides base", "ECS_ENABLE_TASK_IAM_ROLE=true\n", "ECS_ENABLE_TASK_IAM_ROLE=false\n", role, finding.OK, ""},
		{"no proxy no need", both, "", np, finding.OK, "no proxy"},
		{"proxy without NO_PROXY", both + "HTTP_PROXY=10.0.0.1:3128\n", "", np, finding.Drift, "not set"},
		{"https proxy lower", both + "https_proxy=10.0.0.1:3128\n", "", np, finding.Drift, "not set"},
		{"NO_PROXY partial", both + "HTTPS_PROXY=p:1\nNO_PROXY=169.254.169.254\n", "", np, finding.Drift, "lacks 169.254.170.2, /var/run/docker.sock"},
		{"NO_PROXY quoted", both + "HTTP_PROXY=p:1\nNO_PROXY=\"169.254.169.254,169.254.170.2,/var/run/docker.sock\"\n", "", np, finding.Drift, "quoted"},
		{"NO_PROXY complete", both + "HTTP_PROXY=p:1\nNO_PROXY=localhost,169.254.169.254,169.254.170.2,/var/run/docker.sock\n", "", np, finding.OK, ""},
		{"empty proxy is no proxy", both + "HTTP_PROXY=\n", "", np, finding.OK, "no proxy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := setup(t, tc.main, tc.base)
			f := status(New(c).Check(context.Background()), tc.item)
			if f.Status != tc.want || !strings.Contains(f.Detail, tc.detail) {
				t.Errorf("%s: %s %q; want %s containing %q", tc.item, f.Status, f.Detail, tc.want, tc.detail)
			}
			if f.Status != finding.OK && f.Fix == "" {
				t.Errorf("drift without a fix")
			}
		})
	}
}

func TestExtraSettings(t *testing.T) {
	c, _ := setup(t, both+"ECS_AWSVPC_BLOCK_IMDS=false\n", "")
	c.Extra = map[string]string{"ECS_AWSVPC_BLOCK_IMDS": "true", "ECS_CLUSTER": "prod"}
	e := New(c)
	fs := e.Check(context.Background())
	if status(fs, "ecs_config.ECS_AWSVPC_BLOCK_IMDS").Status != finding.Drift || status(fs, "ecs_config.ECS_CLUSTER").Status != finding.Drift {
		t.Fatalf("extras not drift: %+v", fs)
	}
	fs, cs := e.Apply(context.Background(), false, io.Discard)
	if !finding.Compliant(fs) || len(cs) != 2 {
		t.Fatalf("after apply: %+v %+v", fs, cs)
	}
	b, _ := os.ReadFile(c.Path)
	if string(b) != both+"ECS_AWSVPC_BLOCK_IMDS=true\nECS_CLUSTER=prod\n" {
		t.Fatalf("file: %q", b)
	}
}

func TestApplyRepairsMinimally(t *testing.T) {
	in := "# keep me\nECS_CLUSTER=prod\nECS_ENABLE_TASK_IAM_ROLE=true\nUNKNOWN=x\nECS_ENABLE_TASK_IAM_ROLE=\"true\"\nHTTP_PROXY=10.0.0.1:3128\nNO_PROXY=localhost\n# end"
	c, _ := setup(t, in, "")
	os.Chown(c.Path, 1234, 4321)
	os.Chmod(c.Path, 0o600)
	fs, cs := New(c).Apply(context.Background(), false, io.Discard)
	if !finding.Compliant(fs) {
		t.Fatalf("not compliant after apply: %+v", fs)
	}
	want := "# keep me\nECS_CLUSTER=prod\nECS_ENABLE_TASK_IAM_ROLE=true\nUNKNOWN=x\nECS_ENABLE_TASK_IAM_ROLE=true\nHTTP_PROXY=10.0.0.1:3128\nNO_PROXY=localhost,169.254.169.254,169.254.170.2,/var/run/docker.sock\n# end\nECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST=true\n"
	if b, _ := os.ReadFile(c.Path); string(b) != want {
		t.Fatalf("got\n%q\nwant\n%q", b, want)
	}
	fi, _ := os.Stat(c.Path)
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode().Perm() != 0o600 || st.Uid != 1234 || st.Gid != 4321 {
		t.Errorf("mode/owner not kept: %v %d:%d", fi.Mode(), st.Uid, st.Gid)
	}
	if b, _ := os.ReadFile(c.BackupPath); string(b) != in {
		t.Errorf("backup: %q", b)
	}
	if len(cs) != 3 {
		t.Fatalf("changes: %+v", cs)
	}
	for _, ch := range cs {
		// An unset flag is true by ecs-init's default: pinning it needs no
		// agent restart; the other repairs change what the agent runs with.
		unset := ch.Item == ItemPrefix+KeyTaskIAMRoleNetworkHost
		if ch.AgentRestart == unset || ch.Target != c.Path || ch.Reason == "" || ch.Action == "" {
			t.Errorf("change lacks fields: %+v", ch)
		}
	}
	if cs[0].Action != "rewrote line 5" || cs[0].Old != `"true"` && cs[0].Old != `"\"true\""` {
		t.Errorf("first change: %+v", cs[0])
	}
	// Idempotent: nothing more to do, and the backup is never overwritten.
	os.WriteFile(c.Path, []byte("ECS_ENABLE_TASK_IAM_ROLE=0\n"), 0o600)
	New(c).Apply(context.Background(), false, io.Discard)
	if b, _ := os.ReadFile(c.BackupPath); string(b) != in {
		t.Errorf("backup overwritten: %q", b)
	}
	if _, cs := New(c).Apply(context.Background(), false, io.Discard); len(cs) != 0 {
		t.Errorf("second apply changed again: %+v", cs)
	}
}

func TestApplyCreatesFileAndDir(t *testing.T) {
	c, _ := setup(t, "\x00none", "")
	fs, _ := New(c).Apply(context.Background(), false, io.Discard)
	if !finding.Compliant(fs) {
		t.Fatalf("%+v", fs)
	}
	fi, err := os.Stat(c.Path)
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("%v %v", err, fi)
	}
	if _, err := os.Stat(c.BackupPath); err == nil {
		t.Error("backup of a file that did not exist")
	}
}

func TestDryRun(t *testing.T) {
	in := "ECS_ENABLE_TASK_IAM_ROLE=yes\n"
	c, _ := setup(t, in, "")
	var plan strings.Builder
	_, cs := New(c).Apply(context.Background(), true, &plan)
	if len(cs) != 2 || !strings.Contains(plan.String(), "-ECS_ENABLE_TASK_IAM_ROLE=yes") || !strings.Contains(plan.String(), "+ECS_ENABLE_TASK_IAM_ROLE=true") || !strings.Contains(plan.String(), "+++ b"+c.Path) {
		t.Fatalf("plan:\n%s\n%+v", plan.String(), cs)
	}
	if b, _ := os.ReadFile(c.Path); string(b) != in {
		t.Fatal("dry-run wrote the file")
	}
	if _, err := os.Stat(c.BackupPath); err == nil {
		t.Fatal("dry-run made a backup")
	}
}

// Refusals: a clear error, every item error, nothing changed.
func TestRefusals(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		make       func(t *testing.T, path, dir string)
	}{
		{"directory", "a directory", func(t *testing.T, p, _ string) { os.Remove(p); os.Mkdir(p, 0o755) }},
		{"fifo", "a FIFO", func(t *testing.T, p, _ string) { os.Remove(p); syscall.Mkfifo(p, 0o644) }},
		{"socket", "a socket", func(t *testing.T, p, _ string) {
			os.Remove(p)
			l, err := net.Listen("unix", p)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
		}},
		{"device via symlink", "a character device", func(t *testing.T, p, _ string) { os.Remove(p); os.Symlink("/dev/null", p) }},
		{"NUL", "NUL byte at offset 4", func(t *testing.T, p, _ string) { os.WriteFile(p, []byte("ECS_\x00=1\n"), 0o644) }},
		{"too big", "larger than", func(t *testing.T, p, _ string) { os.WriteFile(p, make([]byte, MaxSize+1), 0o644) }},
		{"parent is a file", "parent", func(t *testing.T, p, _ string) {
			os.RemoveAll(filepath.Dir(p))
			os.WriteFile(filepath.Dir(p), []byte("x"), 0o644)
		}},
		{"symlink outside", "outside its directory", func(t *testing.T, p, dir string) {
			other := filepath.Join(dir, "elsewhere.config")
			os.WriteFile(other, []byte("ECS_ENABLE_TASK_IAM_ROLE=false\n"), 0o644)
			os.Remove(p)
			os.Symlink(other, p)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, dir := setup(t, "ECS_ENABLE_TASK_IAM_ROLE=false\n", "")
			tc.make(t, c.Path, dir)
			before := snapshot(t, dir)
			fs, cs := New(c).Apply(context.Background(), false, io.Discard)
			if len(cs) != 0 {
				t.Errorf("changes made: %+v", cs)
			}
			for _, f := range fs {
				if f.Status != finding.Error || !strings.Contains(f.Detail, tc.want) || !strings.Contains(f.Detail, c.Path) {
					t.Errorf("%s: %s %q, want error naming the file and %q", f.Item, f.Status, f.Detail, tc.want)
				}
			}
			if after := snapshot(t, dir); after != before {
				t.Errorf("files changed:\n%s\n---\n%s", before, after)
			}
		})
	}
}

func TestSymlinkInsideDirIsFollowed(t *testing.T) {
	c, dir := setup(t, "", "")
	real := filepath.Join(filepath.Dir(c.Path), "ecs.config.real")
	os.WriteFile(real, []byte("ECS_ENABLE_TASK_IAM_ROLE=false\n"), 0o644)
	os.Remove(c.Path)
	os.Symlink("ecs.config.real", c.Path)
	fs, _ := New(c).Apply(context.Background(), false, io.Discard)
	if !finding.Compliant(fs) {
		t.Fatalf("%+v", fs)
	}
	if fi, _ := os.Lstat(c.Path); fi.Mode()&os.ModeSymlink == 0 {
		t.Fatal("the link was replaced")
	}
	if b, _ := os.ReadFile(real); !strings.Contains(string(b), "ECS_ENABLE_TASK_IAM_ROLE=true") {
		t.Fatalf("target not repaired: %q", b)
	}
	_ = dir
}

// A missing file whose directory cannot be created (a parent is a file):
// an error, nothing created.
func TestCreateBlockedByFile(t *testing.T) {
	c, dir := setup(t, "\x00none", "")
	blocker := filepath.Join(dir, "etc")
	os.RemoveAll(blocker)
	os.WriteFile(blocker, nil, 0o644)
	fs, cs := New(c).Apply(context.Background(), false, io.Discard)
	if len(cs) != 0 || len(fs) != 3 {
		t.Fatalf("%+v %+v", fs, cs)
	}
	for _, f := range fs {
		if f.Status != finding.Error || !strings.Contains(f.Detail, "parent") {
			t.Errorf("%+v", f)
		}
	}
}

func snapshot(t *testing.T, dir string) string {
	var b strings.Builder
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return nil
		}
		b.WriteString(p + " " + fi.Mode().String())
		if fi.Mode().IsRegular() {
			data, _ := os.ReadFile(p)
			b.WriteString(" " + string(data))
		}
		b.WriteString("\n")
		return nil
	})
	return b.String()
}
