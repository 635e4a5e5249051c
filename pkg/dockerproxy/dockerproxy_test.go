package dockerproxy

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ecs-remediator/ecs-remediator/pkg/envfile"
	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
	"github.com/ecs-remediator/ecs-remediator/pkg/noproxy"
)

// host is a fixture tree: docker.service.d, /etc/sysconfig/docker and a
// fake /proc (node_exporter style: comm and environ per pid).
type host struct {
	dir string
	c   Config
}

func newHost(t *testing.T, dropins map[string]string, sysconfig string) *host {
	t.Helper()
	dir := t.TempDir()
	h := &host{dir: dir, c: Config{
		DropinDir: filepath.Join(dir, "etc/systemd/system/docker.service.d"),
		Sysconfig: filepath.Join(dir, "etc/sysconfig/docker"),
		ProcRoot:  filepath.Join(dir, "proc"),
	}}
	for name, body := range dropins {
		write(t, filepath.Join(h.c.DropinDir, name), body)
	}
	if sysconfig != "" {
		write(t, h.c.Sysconfig, sysconfig)
	}
	os.MkdirAll(h.c.ProcRoot, 0o755)
	// Another process first, so the scan has to pick dockerd by name.
	h.proc(t, 1, "systemd", "PATH=/usr/bin")
	return h
}

func write(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// proc adds /proc/<pid>/comm and environ (NUL-separated).
func (h *host) proc(t *testing.T, pid int, comm string, env ...string) {
	d := filepath.Join(h.c.ProcRoot, itoa(pid))
	write(t, filepath.Join(d, "comm"), comm+"\n")
	write(t, filepath.Join(d, "environ"), strings.Join(env, "\x00")+"\x00")
}

func itoa(i int) string { return strconv.Itoa(i) }

func one(t *testing.T, fs []finding.Finding) finding.Finding {
	t.Helper()
	if len(fs) != 1 || fs[0].Item != Item {
		t.Fatalf("want one %s finding, got %+v", Item, fs)
	}
	return fs[0]
}

const awsDropin = "[Service]\nEnvironment=\"HTTP_PROXY=http://user:pw@10.0.0.1:3128\"\nEnvironment=\"NO_PROXY=localhost\"\n"

func TestDockerNoProxy(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		dropins   map[string]string
		sysconfig string
		before    finding.Status
		detail    string
		// after apply: which file holds what
		file, want string
	}{
		{"no proxy", map[string]string{"10-x.conf": "[Service]\nEnvironment=FOO=1\n"}, "OPTIONS=\"--default-ulimit nofile=1024:4096\"\n", finding.OK, "sets a proxy", "", ""},
		{"drop-in lacks entries", map[string]string{"http-proxy.conf": awsDropin}, "", finding.Drift, "lacks 169.254.169.254, 169.254.170.2",
			"etc/systemd/system/docker.service.d/http-proxy.conf", `Environment="NO_PROXY=localhost,169.254.169.254,169.254.170.2"`},
		{"drop-in without NO_PROXY", map[string]string{"http-proxy.conf": "[Service]\nEnvironment=HTTPS_PROXY=p:1\n"}, "", finding.Drift, "no drop-in sets NO_PROXY",
			"etc/systemd/system/docker.service.d/http-proxy.conf", `Environment="NO_PROXY=169.254.169.254,169.254.170.2"`},
		{"drop-in complete", map[string]string{"http-proxy.conf": "[Service]\nEnvironment=HTTP_PROXY=p:1 NO_PROXY=169.254.169.254,169.254.170.2\n"}, "", finding.OK, "exempts", "", ""},
		{"sysconfig proxy without NO_PROXY", nil, "OPTIONS=\"--selinux-enabled\"\nHTTP_PROXY=http://p:3128\n", finding.Drift, "its NO_PROXY (from nowhere: it is not set) lacks",
			"etc/sysconfig/docker", "OPTIONS=\"--selinux-enabled\"\nHTTP_PROXY=http://p:3128\nNO_PROXY=169.254.169.254,169.254.170.2\n"},
		{"sysconfig NO_PROXY rewritten in place", nil, "HTTP_PROXY=http://p:3128\nNO_PROXY=\"169.254.169.254,.corp\"\n# end\n", finding.Drift, "line 2: NO_PROXY lacks 169.254.170.2",
			"etc/sysconfig/docker", "HTTP_PROXY=http://p:3128\nNO_PROXY=169.254.169.254,.corp,169.254.170.2\n# end\n"},
		{"sysconfig overrides the drop-ins' NO_PROXY", map[string]string{"http-proxy.conf": "[Service]\nEnvironment=HTTP_PROXY=p:1 NO_PROXY=169.254.169.254,169.254.170.2\n"}, "NO_PROXY=localhost\n", finding.Drift, "line 1: NO_PROXY lacks",
			"etc/sysconfig/docker", "NO_PROXY=localhost,169.254.169.254,169.254.170.2\n"},
		{"sysconfig proxy, drop-in NO_PROXY kept", map[string]string{"no-proxy.conf": "[Service]\nEnvironment=NO_PROXY=.corp\n"}, "HTTPS_PROXY=p:1\n", finding.Drift, "from the drop-ins",
			"etc/sysconfig/docker", "HTTPS_PROXY=p:1\nNO_PROXY=.corp,169.254.169.254,169.254.170.2\n"},
		{"export lines are not read by systemd", nil, "export HTTP_PROXY=http://p:3128\n", finding.OK, "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHost(t, tc.dropins, tc.sysconfig)
			e := New(h.c)
			f := one(t, e.Check(ctx))
			if f.Status != tc.before || !strings.Contains(f.Detail, tc.detail) {
				t.Fatalf("before: %s %q, want %s containing %q", f.Status, f.Detail, tc.before, tc.detail)
			}
			if strings.Contains(f.Detail, "user:pw") {
				t.Errorf("secret in the detail: %s", f.Detail)
			}
			var plan bytes.Buffer
			_, cs := e.Apply(ctx, true, &plan)
			if (len(cs) > 0) != (tc.before == finding.Drift) || (len(cs) > 0 && plan.Len() == 0) {
				t.Errorf("dry run: %+v\n%s", cs, plan.String())
			}
			fs, cs := e.Apply(ctx, false, io.Discard)
			if f := one(t, fs); f.Status != finding.OK {
				t.Errorf("after apply: %+v", f)
			}
			for _, c := range cs {
				if c.AgentRestart || c.Item != Item || !strings.Contains(c.Reason, "restart Docker when convenient") {
					t.Errorf("change %+v: never an agent restart, and it says Docker needs one", c)
				}
			}
			if tc.file == "" {
				if len(cs) != 0 {
					t.Errorf("changes %+v", cs)
				}
				return
			}
			got, _ := os.ReadFile(filepath.Join(h.dir, tc.file))
			if !strings.Contains(string(got), tc.want) {
				t.Errorf("%s:\n%s\nwant it to hold %q", tc.file, got, tc.want)
			}
			if _, err := os.Stat(filepath.Join(h.dir, tc.file) + BackupSuffix); err != nil {
				t.Errorf("no backup: %v", err)
			}
			if strings.HasSuffix(tc.file, "sysconfig/docker") {
				// Docker's view of the file (systemd's EnvironmentFile= parse).
				v, _ := envfile.Parse(got).Lookup("NO_PROXY")
				if _, missing := noproxy.MergeWith(v.Value, noproxy.DockerRequired); len(missing) > 0 {
					t.Errorf("systemd reads NO_PROXY=%q", v.Value)
				}
			}
			if _, cs := e.Apply(ctx, false, io.Discard); len(cs) != 0 {
				t.Errorf("second apply: %+v", cs)
			}
		})
	}
}

// The running dockerd: still the old value after a repair is a warning
// (restart Docker when convenient); its new value is done.
func TestRunningDockerd(t *testing.T) {
	ctx := context.Background()
	h := newHost(t, map[string]string{"http-proxy.conf": awsDropin}, "")
	h.proc(t, 4242, "dockerd", "PATH=/usr/bin", "HTTP_PROXY=http://user:pw@10.0.0.1:3128", "NO_PROXY=localhost")
	e := New(h.c)
	fs, cs := e.Apply(ctx, false, io.Discard)
	f := one(t, fs)
	if len(cs) != 1 || f.Status != finding.Warn || !strings.Contains(f.Detail, "repaired on disk") ||
		!strings.Contains(f.Detail, "pid 4242") || !strings.Contains(f.Fix, "restart Docker when convenient") || strings.Contains(f.Detail, "user:pw") {
		t.Fatalf("after repair, Docker not restarted: %+v %+v", f, cs)
	}
	if !finding.Compliant(fs) {
		t.Error("a warning is compliant")
	}
	if f := one(t, e.Check(ctx)); f.Status != finding.Warn || !strings.Contains(f.Detail, "Docker still runs with the old value") {
		t.Errorf("check: %+v", f)
	}
	// Docker restarted by the operator with the repaired environment.
	h.proc(t, 4242, "dockerd", "HTTP_PROXY=http://user:pw@10.0.0.1:3128", "NO_PROXY=localhost,169.254.169.254,169.254.170.2")
	if f := one(t, e.Check(ctx)); f.Status != finding.OK || !strings.Contains(f.Detail, "running dockerd (pid 4242) has a proxy and NO_PROXY holds") {
		t.Errorf("after restart: %+v", f)
	}
	// Docker restarted under a new pid: the remembered pid is gone, the
	// scan finds the new one.
	os.RemoveAll(filepath.Join(h.c.ProcRoot, "4242"))
	h.proc(t, 5001, "dockerd", "HTTP_PROXY=http://10.0.0.1:3128", "NO_PROXY=localhost")
	if f := one(t, e.Check(ctx)); f.Status != finding.Warn || !strings.Contains(f.Detail, "pid 5001") {
		t.Errorf("new pid: %+v", f)
	}
	os.RemoveAll(filepath.Join(h.c.ProcRoot, "5001"))
	h.proc(t, 4242, "dockerd", "HTTP_PROXY=http://user:pw@10.0.0.1:3128", "NO_PROXY=localhost,169.254.169.254,169.254.170.2")
	// Unreadable environ (the hardened unit without CAP_SYS_PTRACE): said,
	// not guessed.
	os.Remove(filepath.Join(h.c.ProcRoot, "4242", "environ"))
	os.Mkdir(filepath.Join(h.c.ProcRoot, "4242", "environ"), 0o755)
	if f := one(t, e.Check(ctx)); f.Status != finding.OK || !strings.Contains(f.Detail, "cannot read the environment of dockerd") {
		t.Errorf("unreadable: %+v", f)
	}
}

// Without a proxy in Docker's files /proc is not read at all.
func TestNoProxyReadsNoProc(t *testing.T) {
	h := newHost(t, map[string]string{"10-x.conf": "[Service]\nEnvironment=FOO=1\n"}, "")
	h.c.ProcRoot = filepath.Join(h.dir, "no-such-proc")
	if f := one(t, New(h.c).Check(context.Background())); f.Status != finding.OK || strings.Contains(f.Detail, "dockerd") {
		t.Errorf("%+v", f)
	}
}

func TestNoDockerAtAll(t *testing.T) {
	dir := t.TempDir()
	e := New(Config{DropinDir: filepath.Join(dir, "none.d"), Sysconfig: filepath.Join(dir, "none"), ProcRoot: dir})
	if f := one(t, e.Check(context.Background())); f.Status != finding.OK {
		t.Errorf("%+v", f)
	}
}
