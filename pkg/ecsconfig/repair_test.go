package ecsconfig

import (
	"bytes"
	"context"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// Each testdata/*.config is repaired with the default policy; the result
// must be byte-identical to testdata/*.config.repaired and the dry-run plan
// to testdata/*.config.diff (review them by eye after -update).
func TestRepairGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.config")
	for _, in := range files {
		t.Run(filepath.Base(in), func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			c, _ := setup(t, string(data), "")
			var plan strings.Builder
			if _, cs := New(c).Apply(context.Background(), true, &plan); len(cs) > 0 && plan.Len() == 0 {
				t.Fatal("changes without a plan")
			}
			diff := strings.ReplaceAll(plan.String(), strings.TrimPrefix(c.Path, "/"), "etc/ecs/ecs.config")
			fs, _ := New(c).Apply(context.Background(), false, io.Discard)
			if !finding.Compliant(fs) {
				t.Fatalf("not compliant after apply: %+v", fs)
			}
			got, _ := os.ReadFile(c.Path)
			golden(t, in+".repaired", got)
			golden(t, in+".diff", []byte(diff))
			checkUntouched(t, data, got)
		})
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs:\ngot  %q\nwant %q", path, got, want)
	}
}

// checkUntouched asserts that every line of before that is not an
// assignment we manage survives byte for byte, in order.
func checkUntouched(t *testing.T, before, after []byte) {
	t.Helper()
	managed := func(text []byte) bool {
		k, _, ok := KV(text)
		if !ok {
			return false
		}
		k = normalizeKey(k)
		return k == KeyTaskIAMRole || k == KeyTaskIAMRoleNetworkHost || k == KeyNoProxy
	}
	var kept [][]byte
	for _, l := range Parse(after).Lines {
		kept = append(kept, append(append([]byte{}, l.Text...), l.EOL...))
	}
	i := 0
	for n, l := range Parse(before).Lines {
		if managed(l.Text) {
			continue
		}
		full := append(append([]byte{}, l.Text...), l.EOL...)
		for i < len(kept) && !bytes.HasPrefix(kept[i], full) {
			i++
		}
		if i == len(kept) {
			t.Errorf("line %d %q lost", n+1, full)
			return
		}
		i++
	}
}

func TestApplyExactBytes(t *testing.T) {
	for _, tc := range []struct {
		name, main, base, want string
		extra                  map[string]string
	}{
		{
			name: "CRLF and no final newline: append in the file's style",
			main: "ECS_CLUSTER=a\r\nECS_ENABLE_TASK_IAM_ROLE=true",
			want: "ECS_CLUSTER=a\r\nECS_ENABLE_TASK_IAM_ROLE=true\r\nECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST=true\r\n",
		},
		{
			name: "non-UTF-8 bytes and a lone CR are kept",
			main: "A=caf\xe9\nB=x\ry\nECS_ENABLE_TASK_IAM_ROLE=\xff\n" + "ECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST=1\n",
			want: "A=caf\xe9\nB=x\ry\nECS_ENABLE_TASK_IAM_ROLE=true\n" + "ECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST=1\n",
		},
		{
			name: "a value set only in the base file is overridden in the main file",
			main: "ECS_CLUSTER=a\n",
			base: "ECS_ENABLE_TASK_IAM_ROLE=false\nECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST=true\n",
			want: "ECS_CLUSTER=a\nECS_ENABLE_TASK_IAM_ROLE=true\n",
		},
		{
			name: "near misses are rewritten in place, comments are not",
			main: "#ECS_ENABLE_TASK_IAM_ROLE=true\nECS_ENABLE_TASK_IAM_ROLE = true\n  export ECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST=1\nZ=1\n",
			want: "#ECS_ENABLE_TASK_IAM_ROLE=true\nECS_ENABLE_TASK_IAM_ROLE=true\nECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST=true\nZ=1\n",
		},
		{
			name: "the deciding (last) duplicate is fixed, earlier ones stay",
			main: both + "ECS_ENABLE_TASK_IAM_ROLE=false\nX=1\n",
			want: both + "ECS_ENABLE_TASK_IAM_ROLE=true\nX=1\n",
		},
		{
			name: "NO_PROXY starts from no_proxy when absent",
			main: both + "HTTPS_PROXY=p:3128\nno_proxy=\"localhost, .internal\"\n",
			want: both + "HTTPS_PROXY=p:3128\nno_proxy=\"localhost, .internal\"\nNO_PROXY=localhost,.internal,169.254.169.254,169.254.170.2,/var/run/docker.sock\n",
		},
		{
			name: "quoted complete NO_PROXY is unquoted, entries kept as written",
			main: both + "HTTP_PROXY=p:3128\nNO_PROXY=\"/var/run/docker.sock, 169.254.170.2,169.254.169.254\"\n",
			want: both + "HTTP_PROXY=p:3128\nNO_PROXY=/var/run/docker.sock, 169.254.170.2,169.254.169.254\n",
		},
		{
			name: "proxy in the base file counts",
			main: both,
			base: "HTTP_PROXY=p:3128\n",
			want: both + "NO_PROXY=169.254.169.254,169.254.170.2,/var/run/docker.sock\n",
		},
		{
			name:  "extra settings: exact value, quotes are part of it",
			main:  both + "ECS_CLUSTER=\"prod\"\nECS_LOGLEVEL=info\n",
			extra: map[string]string{"ECS_CLUSTER": "prod", "ECS_LOGLEVEL": "info", "ECS_AWSVPC_BLOCK_IMDS": "true"},
			want:  both + "ECS_CLUSTER=prod\nECS_LOGLEVEL=info\nECS_AWSVPC_BLOCK_IMDS=true\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := setup(t, tc.main, tc.base)
			c.Extra = tc.extra
			fs, _ := New(c).Apply(context.Background(), false, io.Discard)
			if !finding.Compliant(fs) {
				t.Fatalf("not compliant: %+v", fs)
			}
			if got, _ := os.ReadFile(c.Path); string(got) != tc.want {
				t.Fatalf("got\n%q\nwant\n%q", got, tc.want)
			}
			if tc.base != "" {
				if got, _ := os.ReadFile(c.BasePath); string(got) != tc.base {
					t.Fatalf("base file written: %q", got)
				}
			}
		})
	}
}

// Items come in their stable order, only for what the policy enforces.
func TestItemOrder(t *testing.T) {
	c, _ := setup(t, both, "")
	c.Extra = map[string]string{"ECS_Z": "1", "ECS_A": "2", "ECS_M": "3"}
	var got []string
	for _, f := range New(c).Check(context.Background()) {
		got = append(got, f.Item)
	}
	want := "ecs_config.ECS_ENABLE_TASK_IAM_ROLE ecs_config.ECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST ecs_config.NO_PROXY ecs_config.ECS_A ecs_config.ECS_M ecs_config.ECS_Z"
	if strings.Join(got, " ") != want {
		t.Errorf("items %v", got)
	}
	c.TaskIAMRole, c.NoProxy = false, false
	c.Extra = nil
	got = nil
	for _, f := range New(c).Check(context.Background()) {
		got = append(got, f.Item)
	}
	if strings.Join(got, " ") != "ecs_config.ECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST" {
		t.Errorf("items %v", got)
	}
}

// The Change tells the operator what happened, with the effective values.
func TestChangeFields(t *testing.T) {
	c, _ := setup(t, "ECS_ENABLE_TASK_IAM_ROLE=\"true\"\n", "")
	_, cs := New(c).Apply(context.Background(), false, io.Discard)
	if len(cs) != 2 {
		t.Fatalf("%+v", cs)
	}
	want := []finding.Change{
		{Item: "ecs_config.ECS_ENABLE_TASK_IAM_ROLE", Action: "rewrote line 1", Target: c.Path, Old: `"true"`, New: "true",
			Reason: `value "true" (quoted) is not a boolean to the agent`, AgentRestart: true},
		{Item: "ecs_config.ECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST", Action: "appended line 2", Target: c.Path, Old: "(unset)", New: "true",
			Reason: "unset (true by ecs-init's default); pinned to true, no agent restart needed", AgentRestart: false},
	}
	for i := range want {
		if cs[i] != want[i] {
			t.Errorf("change %d:\ngot  %+v\nwant %+v", i, cs[i], want[i])
		}
	}
}

// A compliant file is not rewritten: same inode, no backup.
func TestApplyCompliantWritesNothing(t *testing.T) {
	c, _ := setup(t, both, "")
	before, _ := os.Stat(c.Path)
	fs, cs := New(c).Apply(context.Background(), false, io.Discard)
	after, _ := os.Stat(c.Path)
	if !finding.Compliant(fs) || len(cs) != 0 || !os.SameFile(before, after) {
		t.Fatalf("%+v %+v same=%v", fs, cs, os.SameFile(before, after))
	}
	if _, err := os.Stat(c.BackupPath); err == nil {
		t.Fatal("backup made without a change")
	}
}

// An invalid UTF-8 value is shown escaped in details.
func TestDetailEscapesInvalidUTF8(t *testing.T) {
	c, _ := setup(t, "ECS_ENABLE_TASK_IAM_ROLE=tr\xffue\n", "")
	f := New(c).Check(context.Background())[0]
	if f.Status != finding.Drift || !strings.Contains(f.Detail, `"tr\xffue"`) || strings.Contains(f.Detail, "\xff") {
		t.Fatalf("%q", f.Detail)
	}
}

// The file changed between the read and the write: the stale repair is
// not written over it.
func TestWriteRefusesStaleObservation(t *testing.T) {
	c, _ := setup(t, "ECS_ENABLE_TASK_IAM_ROLE=false\n", "")
	e := New(c)
	o := e.observe()
	data, _ := e.edit(o)
	os.WriteFile(c.Path, []byte("ECS_ENABLE_TASK_IAM_ROLE=0\nOPERATOR=edit\n"), 0o644)
	if err := e.write(o, data); err != errChanged {
		t.Fatalf("write = %v, want errChanged", err)
	}
	if b, _ := os.ReadFile(c.Path); string(b) != "ECS_ENABLE_TASK_IAM_ROLE=0\nOPERATOR=edit\n" {
		t.Fatalf("operator's edit lost: %q", b)
	}
	// A fresh Apply repairs the new content and keeps the operator's line.
	fs, _ := e.Apply(context.Background(), false, io.Discard)
	if b, _ := os.ReadFile(c.Path); !finding.Compliant(fs) || !strings.Contains(string(b), "OPERATOR=edit\n") {
		t.Fatalf("%+v %q", fs, b)
	}
}

func TestExtraSettingsThatCannotBeWritten(t *testing.T) {
	c, _ := setup(t, both, "")
	c.Extra = map[string]string{"ECS_A": "x ", "ECS_B": "a\nb", "bad-key": "1", "NO_PROXY": "x"}
	fs, cs := New(c).Apply(context.Background(), false, io.Discard)
	if len(cs) != 0 {
		t.Fatalf("changes: %+v", cs)
	}
	for _, f := range fs[3:] {
		if f.Status != finding.Error || f.Fix == "" {
			t.Errorf("%+v", f)
		}
	}
	if b, _ := os.ReadFile(c.Path); string(b) != both {
		t.Fatalf("file changed: %q", b)
	}
}
