package ecsconfig

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ecs-remediator/ecs-remediator/pkg/envfile"
	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
	"github.com/ecs-remediator/ecs-remediator/pkg/noproxy"
	"github.com/ecs-remediator/ecs-remediator/test/ecsinit"
)

// HTTP_PROXY="" is a broken proxy for the agent (ecs-init keeps the
// quotes): drift, and apply removes the line, keeping a backup.
func TestOnlyQuotesProxyIsBroken(t *testing.T) {
	for _, tc := range []struct {
		name, main, base, item string
		after                  string // the main file after apply
		action                 string
	}{
		{"HTTP_PROXY double quotes", both + "HTTP_PROXY=\"\"\n", "", "ecs_config.HTTP_PROXY", both, "removed line 3"},
		{"HTTP_PROXY single quotes", both + "HTTP_PROXY=''\n# end\n", "", "ecs_config.HTTP_PROXY", both + "# end\n", "removed line 3"},
		{"https_proxy", "https_proxy=\"\"\n" + both, "", "ecs_config.https_proxy", both, "removed line 1"},
		{"HTTPS_PROXY spaced quotes, twice", "HTTPS_PROXY=\" \"\n" + both + "HTTPS_PROXY=\"\"\n", "", "ecs_config.HTTPS_PROXY", both, "removed line 1, 4"},
		{"ALL_PROXY", both + "ALL_PROXY=\"\"\n", "", "ecs_config.ALL_PROXY", both, "removed line 3"},
		// Removing the line would let the base file's proxy through: the
		// line becomes the empty value, "no proxy" for every reader.
		{"over a base proxy", both + "HTTP_PROXY=\"\"\n", "HTTP_PROXY=http://p:3128\n", "ecs_config.HTTP_PROXY", both + "HTTP_PROXY=\n", "rewrote line 3"},
		{"in the base file", both, "HTTP_PROXY=\"\"\n", "ecs_config.HTTP_PROXY", both + "HTTP_PROXY=\n", "appended line 3"},
		// A removal and a rewrite by line number in one pass: the rewrite
		// must hit its own line (found by the real-systemd e2e test).
		{"removal before a near-miss NO_PROXY", "ECS_ENABLE_TASK_IAM_ROLE=true\nHTTPS_PROXY=\"\"\nHTTP_PROXY=http://p:3128\nNO_PROXY = a,b\n", "", "ecs_config.HTTPS_PROXY",
			"ECS_ENABLE_TASK_IAM_ROLE=true\nHTTP_PROXY=http://p:3128\nNO_PROXY=a,b,169.254.169.254,169.254.170.2,/var/run/docker.sock\nECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST=true\n", "removed line 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := setup(t, tc.main, tc.base)
			e := New(c)
			fs := e.Check(context.Background())
			f := status(fs, tc.item)
			if f.Status != finding.Drift || !strings.Contains(f.Detail, "broken proxy") || f.Fix == "" {
				t.Fatalf("%s: %+v", tc.item, f)
			}
			if np := status(fs, ItemPrefix+KeyNoProxy); strings.Contains(np.Detail, "no proxy configured") {
				t.Errorf("NO_PROXY must not call this \"no proxy configured\": %+v", np)
			}
			fs, cs := e.Apply(context.Background(), false, io.Discard)
			if !finding.Compliant(fs) {
				t.Fatalf("not compliant after apply: %+v", fs)
			}
			got, _ := os.ReadFile(c.Path)
			if string(got) != tc.after {
				t.Errorf("after apply:\n%q\nwant\n%q", got, tc.after)
			}
			if b, _ := os.ReadFile(c.BackupPath); string(b) != tc.main {
				t.Errorf("backup %q, want the original", b)
			}
			var ch *finding.Change
			for i := range cs {
				if cs[i].Item == tc.item {
					ch = &cs[i]
				}
			}
			if ch == nil || ch.Action != tc.action || !ch.AgentRestart {
				t.Errorf("change %+v, want %q with an agent restart", ch, tc.action)
			}
			// Both readers: the agent gets no broken proxy, and neither
			// does ecs-init's own process.
			if v := ecsinit.AgentEnv(got)[strings.TrimPrefix(tc.item, ItemPrefix)]; onlyQuotes(v) {
				t.Errorf("agent still gets %q", v)
			}
		})
	}
}

// A quoted proxy URL cannot be parsed by the agent: the quotes are removed;
// the value never appears in a finding or a change.
func TestQuotedProxyURL(t *testing.T) {
	c, _ := setup(t, both+"HTTP_PROXY=\"http://user:s3cret@10.0.0.1:3128\"\nNO_PROXY=169.254.169.254,169.254.170.2,/var/run/docker.sock\n", "")
	e := New(c)
	f := status(e.Check(context.Background()), "ecs_config.HTTP_PROXY")
	if f.Status != finding.Drift || !strings.Contains(f.Detail, "quoted") {
		t.Fatalf("%+v", f)
	}
	fs, cs := e.Apply(context.Background(), false, io.Discard)
	for _, s := range append(findingText(fs), changeText(cs)...) {
		if strings.Contains(s, "s3cret") {
			t.Errorf("secret shown: %s", s)
		}
	}
	got, _ := os.ReadFile(c.Path)
	if ecsinit.AgentEnv(got)["HTTP_PROXY"] != "http://user:s3cret@10.0.0.1:3128" || !finding.Compliant(fs) {
		t.Errorf("after apply %q %+v", got, fs)
	}
}

func TestValidProxyIsOK(t *testing.T) {
	c, _ := setup(t, both+"HTTP_PROXY=http://user:s3cret@p:3128\nNO_PROXY=169.254.169.254,169.254.170.2,/var/run/docker.sock\nFTP_PROXY=x\n", "")
	fs := New(c).Check(context.Background())
	if f := status(fs, "ecs_config.HTTP_PROXY"); f.Status != finding.OK || strings.Contains(f.Detail, "s3cret") {
		t.Errorf("%+v", f)
	}
	if f := status(fs, "ecs_config.FTP_PROXY"); f.Status != "missing" {
		t.Errorf("a working proxy the agent does not read is not reported: %+v", f)
	}
	if f := status(fs, "ecs_config.https_proxy"); f.Status != "missing" {
		t.Errorf("an unset proxy is not reported: %+v", f)
	}
}

// One byte of invalid UTF-8 in an assignment makes systemd skip the whole
// file for ecs-init's own process: a warning naming the line; the bytes stay.
func TestInvalidUTF8Warns(t *testing.T) {
	in := both + "HTTP_PROXY=http://p:3128\nNO_PROXY=169.254.169.254,169.254.170.2,/var/run/docker.sock\nECS_CLUSTER=caf\xe9\n"
	c, _ := setup(t, in, "")
	e := New(c)
	f := status(e.Check(context.Background()), "ecs_config.environment_file")
	if f.Status != finding.Warn || !strings.Contains(f.Detail, "line 5") || !strings.Contains(f.Detail, "HTTP_PROXY, NO_PROXY") ||
		!strings.Contains(f.Detail, "not affected") || f.Fix == "" {
		t.Fatalf("%+v", f)
	}
	fs, cs := e.Apply(context.Background(), false, io.Discard)
	if len(cs) != 0 || !finding.Compliant(fs) {
		t.Errorf("a warning is compliant and repairs nothing: %+v %+v", fs, cs)
	}
	if got, _ := os.ReadFile(c.Path); string(got) != in {
		t.Errorf("bytes changed: %q", got)
	}
	// In a comment the byte is harmless to systemd.
	c2, _ := setup(t, both+"# caf\xe9\n", "")
	if f := status(New(c2).Check(context.Background()), "ecs_config.environment_file"); f.Status != "missing" {
		t.Errorf("comment: %+v", f)
	}
	// A repair elsewhere keeps the bytes.
	c3, _ := setup(t, "ECS_CLUSTER=caf\xe9\n", "")
	New(c3).Apply(context.Background(), false, io.Discard)
	if got, _ := os.ReadFile(c3.Path); !strings.HasPrefix(string(got), "ECS_CLUSTER=caf\xe9\n") {
		t.Errorf("repair lost bytes: %q", got)
	}
}

// Rewriting a near-miss NO_PROXY keeps every entry for both readers.
func TestNearMissNoProxyKeepsEntriesForBothReaders(t *testing.T) {
	for _, tc := range []struct{ name, main string }{
		{"spaces around =", both + "HTTP_PROXY=http://p:3128\nNO_PROXY = a,b\n"},
		{"later near miss overrides for systemd", both + "HTTP_PROXY=http://p:3128\nNO_PROXY=c\nNO_PROXY = a,b\n"},
		{"quoted", both + "HTTP_PROXY=http://p:3128\nNO_PROXY=\"a,b\"\n"},
		{"lower-case no_proxy and a near miss", both + "https_proxy=p:1\nno_proxy=c\nNO_PROXY = a,b\n"},
		// systemd skips this file (the Latin-1 byte) today; once the byte
		// is fixed it reads the rewritten line, which must still hold a, b.
		{"file systemd skips", "ECS_CLUSTER=caf\xe9\n" + both + "HTTP_PROXY=http://p:3128\nNO_PROXY = a,b\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := setup(t, tc.main, "")
			before := map[string]bool{}
			for _, e := range noproxy.Split(strings.Trim(ecsinit.AgentEnv([]byte(tc.main))["NO_PROXY"], `"`)) {
				before[e] = true
			}
			sysBefore, _ := envfile.Parse([]byte(tc.main)).LookupAnyway("NO_PROXY")
			for _, e := range noproxy.Split(sysBefore.Value) {
				before[e] = true
			}
			fs, _ := New(c).Apply(context.Background(), false, io.Discard)
			if !finding.Compliant(fs) {
				t.Fatalf("%+v", fs)
			}
			got, _ := os.ReadFile(c.Path)
			agent := noproxy.Split(ecsinit.AgentEnv(got)["NO_PROXY"])
			sv, ok := envfile.Parse(got).LookupAnyway("NO_PROXY")
			if !ok {
				t.Fatalf("systemd sees no NO_PROXY in %q", got)
			}
			for name, entries := range map[string][]string{"agent (ecs-init's loop)": agent, "ecs-init's process (systemd)": noproxy.Split(sv.Value)} {
				have := map[string]bool{}
				for _, e := range entries {
					have[e] = true
				}
				for e := range before {
					if !have[e] {
						t.Errorf("%s lost %q: %q", name, e, got)
					}
				}
				for _, r := range noproxy.Required {
					if !have[r] {
						t.Errorf("%s lacks %s: %q", name, r, got)
					}
				}
			}
		})
	}
}

// What decides a flag ecs.config does not set validly: ecs.config.json,
// then user data; and whether the agent must be restarted.
func TestFlagDecidedByAgentJSON(t *testing.T) {
	role, host := ItemPrefix+KeyTaskIAMRole, ItemPrefix+KeyTaskIAMRoleNetworkHost
	for _, tc := range []struct {
		name, main, json string
		item             string
		detail           string
		restart          bool
	}{
		{"unset is ecs-init's default", "ECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST=true\n", "", role, "unset (true by ecs-init's default); pinning", false},
		{"unset beats a JSON false", "ECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST=true\n", `{"TaskIAMRoleEnabled":false}`, role, "unset (true by ecs-init's default)", false},
		{"quoted, no JSON file", "ECS_ENABLE_TASK_IAM_ROLE=\"true\"\n" + hostLine, "\x00none", role, "does not exist: EC2 user data", true},
		{"quoted, JSON true", "ECS_ENABLE_TASK_IAM_ROLE=\"true\"\n" + hostLine, `{"TaskIAMRoleEnabled": true}`, role, "decides: TaskIAMRoleEnabled is true there", false},
		{"quoted, JSON 1 (ParseBool)", "ECS_ENABLE_TASK_IAM_ROLE=yes\n" + hostLine, `{"taskiamroleenabled": 1}`, role, "TaskIAMRoleEnabled is 1 there", false},
		{"quoted, JSON false", "ECS_ENABLE_TASK_IAM_ROLE=\"true\"\n" + hostLine, `{"TaskIAMRoleEnabled": false}`, role, "TaskIAMRoleEnabled is false there", true},
		{"quoted, JSON without the field", "ECS_ENABLE_TASK_IAM_ROLE=\"true\"\n" + hostLine, `{"Cluster": "x"}`, role, "does not set TaskIAMRoleEnabled: EC2 user data", true},
		{"JSON broken", "ECS_ENABLE_TASK_IAM_ROLE=\"true\"\n" + hostLine, `{"TaskIAMRoleEnabled": "true"}`, role, "does not start", true},
		{"explicit false wins over JSON", "ECS_ENABLE_TASK_IAM_ROLE=false\n" + hostLine, `{"TaskIAMRoleEnabled": true}`, role, "reads it as false", true},
		{"host false is the zero value", roleLine + "ECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST=false\n", `{"TaskIAMRoleEnabledForNetworkHost": true}`, host, "counts as not set, so the agent's JSON file", false},
		{"host JSON string is an error", roleLine + "ECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST=on\n", `{"TaskIAMRoleEnabledForNetworkHost": "true"}`, host, "not a JSON boolean", true},
		{"ECS_AGENT_CONFIG_FILE_PATH elsewhere", "ECS_AGENT_CONFIG_FILE_PATH=/etc/ecs/other.json\nECS_ENABLE_TASK_IAM_ROLE=\"\"\n" + hostLine, "other.json:" + `{"TaskIAMRoleEnabled": true}`, role, "ECS_AGENT_CONFIG_FILE_PATH=/etc/ecs/other.json", false},
		{"ECS_AGENT_CONFIG_FILE_PATH outside /etc/ecs", "ECS_AGENT_CONFIG_FILE_PATH=/data/x.json\nECS_ENABLE_TASK_IAM_ROLE=\"\"\n" + hostLine, "", role, "not checked", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, dir := setup(t, tc.main, "")
			c.AgentJSONPath = filepath.Join(dir, "etc/ecs/ecs.config.json")
			if tc.json != "\x00none" && tc.json != "" {
				name, body := "ecs.config.json", tc.json
				if n, b, ok := strings.Cut(tc.json, ":"); ok && strings.HasSuffix(n, ".json") {
					name, body = n, b
				}
				os.WriteFile(filepath.Join(dir, "etc/ecs", name), []byte(body), 0o644)
			}
			e := New(c)
			f := status(e.Check(context.Background()), tc.item)
			if f.Status != finding.Drift || !strings.Contains(f.Detail, tc.detail) {
				t.Fatalf("%s %q, want drift containing %q", f.Status, f.Detail, tc.detail)
			}
			_, cs := e.Apply(context.Background(), false, io.Discard)
			if len(cs) != 1 || cs[0].Item != tc.item || cs[0].AgentRestart != tc.restart {
				t.Errorf("changes %+v, want one for %s with AgentRestart %v", cs, tc.item, tc.restart)
			}
		})
	}
}

const (
	roleLine = "ECS_ENABLE_TASK_IAM_ROLE=true\n"
	hostLine = "ECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST=true\n"
)

func findingText(fs []finding.Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Detail, f.Fix)
	}
	return out
}

func changeText(cs []finding.Change) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Action, c.Old, c.New, c.Reason)
	}
	return out
}
