package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ecs-remediator/ecs-remediator/pkg/doctor"
	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
	"github.com/ecs-remediator/ecs-remediator/pkg/logging"
	"github.com/ecs-remediator/ecs-remediator/pkg/policy"
	"github.com/ecs-remediator/ecs-remediator/test/aemm"
)

type doctorJSON struct {
	Compliant *bool `json:"compliant"`
	Healthy   *bool `json:"healthy"`
	Findings  []struct {
		Item, Status, Detail, Fix string
	} `json:"findings"`
}

func decodeDoctor(t *testing.T, s string) (doctorJSON, map[string]string) {
	t.Helper()
	var d doctorJSON
	if err := json.Unmarshal([]byte(s), &d); err != nil || d.Compliant == nil || d.Healthy == nil {
		t.Fatalf("doctor --json printed %v / missing keys:\n%s", err, s)
	}
	st := map[string]string{}
	for _, f := range d.Findings {
		switch f.Status {
		case "ok", "warn", "fail", "skip":
		default:
			t.Errorf("%s has status %q", f.Item, f.Status)
		}
		if (f.Status == "fail" || f.Status == "warn") && f.Fix == "" {
			t.Errorf("%s is %s without a fix: %s", f.Item, f.Status, f.Detail)
		}
		st[f.Item] = f.Status
	}
	return d, st
}

// agentPeers starts an introspection server and a credentials endpoint
// that answer as the ECS agent does.
func agentPeers(t *testing.T) (introspection, credentials string) {
	t.Helper()
	intro := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"Cluster":"prod","ContainerInstanceArn":"arn:aws:ecs:us-east-1:123456789012:container-instance/prod/0f1e2d","Version":"Amazon ECS Agent - v1.89.0"}`)
	}))
	creds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"code":"NoIdInRequest","message":"CredentialsV2Request: No ID in the request"}`)
	}))
	t.Cleanup(intro.Close)
	t.Cleanup(creds.Close)
	return intro.URL + "/v1/metadata", creds.URL + "/v2/credentials/"
}

func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// TestDoctor runs the real binary against the IMDS simulator and servers
// that answer as the agent does.
func TestDoctor(t *testing.T) {
	imds := aemm.Start(t, "")
	intro, creds := agentPeers(t)
	peers := func(p *policy.Policy) {
		p.Agent.IntrospectionURL, p.Doctor.IMDSEndpoint, p.Doctor.CredentialsURL = intro, imds, creds
	}

	h := newHost(t, good, peers)
	r := run(t, "doctor", "--config", h.policy, "--json")
	d, st := decodeDoctor(t, r.stdout)
	if r.code != 0 || !*d.Healthy || !*d.Compliant {
		t.Fatalf("healthy host: exit %d, healthy %v, compliant %v\n%s%s", r.code, *d.Healthy, *d.Compliant, r.stdout, r.stderr)
	}
	for item, want := range map[string]string{
		"ecs_config.ECS_ENABLE_TASK_IAM_ROLE": "ok",
		"agent.introspection":                 "ok",
		"credentials.endpoint":                "ok",
		"imds.reachable":                      "ok",
		"imds.v2":                             "ok",
		"imds.role_credentials":               "ok",
		"tasks.credentials_env":               "ok",
	} {
		if st[item] != want {
			t.Errorf("%s = %q, want %s", item, st[item], want)
		}
	}
	if _, ok := st["agent.unit"]; !ok {
		t.Error("no agent.unit finding")
	}

	// IMDS unreachable (flag overrides the policy) and the flag the agent
	// reads as false: both fail, exit 1, the table says what to do.
	bad := newHost(t, "ECS_ENABLE_TASK_IAM_ROLE=\"true\"\nECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST=true\n", peers)
	r = run(t, "doctor", "--config", bad.policy, "--json", "--imds-endpoint", closedPort(t), "--timeout", "500ms")
	d, st = decodeDoctor(t, r.stdout)
	if r.code != 1 || *d.Healthy || *d.Compliant {
		t.Fatalf("broken host: exit %d, healthy %v, compliant %v\n%s%s", r.code, *d.Healthy, *d.Compliant, r.stdout, r.stderr)
	}
	if st["imds.reachable"] != "fail" || st["imds.role_credentials"] != "skip" || st["ecs_config.ECS_ENABLE_TASK_IAM_ROLE"] != "fail" {
		t.Errorf("broken host statuses: %v", st)
	}
	r = run(t, "doctor", "--config", bad.policy, "--imds-endpoint", closedPort(t), "--timeout", "500ms")
	if r.code != 1 || !strings.Contains(r.stdout, "fix:") || !strings.Contains(r.stdout, "NOT healthy") {
		t.Errorf("table: exit %d\n%s", r.code, r.stdout)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--imds-endpoint", "ftp://x"}, "--imds-endpoint"},
		{[]string{"--imds-endpoint", "169.254.169.254"}, "--imds-endpoint"},
		{[]string{"--timeout", "-1s"}, "--timeout"},
		{[]string{"--timeout", "soon"}, "timeout"},
		{[]string{"extra"}, "unexpected argument"},
		{[]string{"--config", filepath.Join(h.dir, "missing.yaml")}, "missing.yaml"},
	} {
		r := run(t, append([]string{"doctor"}, tc.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("doctor %v: exit %d, stderr %q, want 2 and %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
}

const taskTrust = `{
  "Version": "2012-10-17",
  "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}
  ]
}
`

func TestLintTrustPolicy(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	task := write("task.json", taskTrust)
	ec2 := write("ec2.json", strings.Replace(taskTrust, "ecs-tasks", "ec2", 1))
	broken := write("broken.json", "{\n  \"Statement\": [\n    {\"Effect\": \"Allow\",, }\n  ]\n}\n")
	src := "arn:aws:iam::111122223333:role/my-task-role"
	cross := write("cross.json", `{"Statement":{"Effect":"Allow","Principal":{"AWS":["`+src+`"]},"Action":["sts:AssumeRole","sts:TagSession"]}}`)

	for _, tc := range []struct {
		args []string
		code int
		out  string // in stdout (exit 0/1) or stderr (exit 2)
	}{
		{[]string{task, "--for", "task"}, 0, "trust.assume_role"},
		{[]string{"--for", "instance", ec2}, 0, "ec2.amazonaws.com"},
		{[]string{task, "--for", "instance"}, 1, "fix:"},
		{[]string{ec2, "--for", "task"}, 1, "does NOT do its job"},
		{[]string{cross, "--for", "cross-account", "--source-role", src}, 0, "trust.assume_role"},
		{[]string{cross, "--for", "cross-account", "--source-role", "arn:aws:iam::444455556666:role/other"}, 1, "fail"},
		{[]string{broken, "--for", "task"}, 2, "broken.json:3:24"},
		{[]string{task}, 2, "--for is required"},
		{[]string{task, "--for", "lambda"}, 2, "--for"},
		{[]string{cross, "--for", "cross-account"}, 2, "--source-role"},
		{[]string{task, "--for", "task", "--source-role", src}, 2, "--source-role"},
		{[]string{filepath.Join(dir, "nope.json"), "--for", "task"}, 2, "nope.json"},
		{[]string{dir, "--for", "task"}, 2, "not a regular file"},
		{[]string{"--for", "task"}, 2, "expected 1 argument"},
	} {
		r := run(t, append([]string{"lint-trust-policy"}, tc.args...)...)
		out := r.stdout
		if tc.code == 2 {
			out = r.stderr
		}
		if r.code != tc.code || !strings.Contains(out, tc.out) {
			t.Errorf("lint-trust-policy %v: exit %d, want %d with %q\nstdout: %s\nstderr: %s", tc.args, r.code, tc.code, tc.out, r.stdout, r.stderr)
		}
	}

	// --json and stdin.
	cmd := exec.Command(bin, "lint-trust-policy", "-", "--for", "instance", "--json")
	cmd.Stdin = strings.NewReader(taskTrust)
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("stdin lint: %v\n%s", err, out)
	}
	var rep struct {
		OK       *bool `json:"ok"`
		Findings []struct{ Item, Status string }
	}
	if err := json.Unmarshal(out, &rep); err != nil || rep.OK == nil || *rep.OK {
		t.Fatalf("lint --json: %v\n%s", err, out)
	}
	found := false
	for _, f := range rep.Findings {
		found = found || (f.Item == "trust.assume_role" && f.Status == "fail")
	}
	if !found {
		t.Errorf("no failing trust.assume_role in %s", out)
	}
}

// The daemon runs the local diagnosis periodically and logs a new failure
// once, however long it lasts, and its recovery once. The runs are counted
// at the credentials endpoint (each run asks it once, and runs one at a
// time), so a loaded machine makes the test wait longer, never pass on
// fewer runs; the timeout is generous so a slow answer is no failure (the
// closed ports refuse at once).
func TestDaemonDiagnosisLogsOnce(t *testing.T) {
	intro := closedPort(t)
	var asked atomic.Int64
	creds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"code":"NoIdInRequest","message":"CredentialsV2Request: No ID in the request"}`)
	}))
	defer creds.Close()
	imds := closedPort(t)
	h := newHost(t, good, func(p *policy.Policy) {
		p.Agent.IntrospectionURL = intro + "/v1/metadata"
		p.Doctor.Interval, p.Doctor.Timeout = time.Second, 10*time.Second
		p.Doctor.IMDSEndpoint, p.Doctor.CredentialsURL = imds, creds.URL+"/v2/credentials/"
	})
	logs := &syncBuffer{}
	cmd := exec.Command(bin, "run", "--config", h.policy)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	// moreRuns waits until n more runs have finished: the (n+1)th has
	// asked the endpoint.
	moreRuns := func(n int64) {
		t.Helper()
		n0 := asked.Load()
		eventually(t, fmt.Sprintf("%d more diagnosis runs", n), logs, func() bool { return asked.Load() > n0+n })
	}
	failed := func() int { return strings.Count(logs.String(), `"action": "diagnosis-failed", "detail": "GET `+intro) }
	eventually(t, "introspection failure logged", logs, func() bool { return failed() == 1 })
	moreRuns(3)
	if n := failed(); n != 1 {
		t.Fatalf("the same failure logged %d times:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), logging.DoctorFailure) {
		t.Errorf("no MESSAGE_ID %s in the failure line:\n%s", logging.DoctorFailure, logs.String())
	}

	// The agent comes up on that address: one recovery line.
	ln, err := net.Listen("tcp", strings.TrimPrefix(intro, "http://"))
	if err != nil {
		t.Skipf("the port was taken meanwhile: %v", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"Cluster":"prod","ContainerInstanceArn":"arn:aws:ecs:us-east-1:123456789012:container-instance/prod/1","Version":"Amazon ECS Agent - v1.89.0"}`)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	recovered := func() int { return strings.Count(logs.String(), `agent.introspection: passes again`) }
	eventually(t, "recovery logged", logs, func() bool { return recovered() == 1 })
	moreRuns(2)
	if n := recovered(); n != 1 || failed() != 1 {
		t.Fatalf("recovery logged %d times, failure %d times:\n%s", n, failed(), logs.String())
	}
}

func TestCrossCheckBridgePath(t *testing.T) {
	probe := func(st doctor.Status) []doctor.Result {
		return []doctor.Result{{Item: doctor.ItemCredentialsEndpoint, Status: doctor.OK, Detail: "endpoint"},
			{Item: doctor.ItemCredentialsBridgePath, Status: st, Detail: "probe said so", Fix: map[bool]string{true: "do x"}[st == doctor.Fail]}}
	}
	static := func(st finding.Status) []finding.Finding {
		return []finding.Finding{{Item: "network.credentials_dnat", Status: finding.OK}, {Item: itemCredentialsInput, Status: st, Detail: "filter INPUT policy DROP"}}
	}
	cases := []struct {
		name      string
		fs        []finding.Finding
		probe     doctor.Status
		want      doctor.Status
		detailHas string
		unchanged bool
	}{
		{"agree open", static(finding.OK), doctor.OK, doctor.OK, "", true},
		{"agree blocked", static(finding.Drift), doctor.Fail, doctor.Fail, "", true},
		{"check ok, probe failed", static(finding.OK), doctor.Fail, doctor.Fail, "check says ok (network.credentials_input: filter INPUT policy DROP) but the probe failed: probe said so", false},
		{"check drift, probe ok", static(finding.Drift), doctor.OK, doctor.Warn, "check says the path is blocked (network.credentials_input: filter INPUT policy DROP) but the probe got through: probe said so", false},
		{"probe skipped", static(finding.Drift), doctor.Skip, doctor.Skip, "", true},
		{"undecidable statically", static(finding.Warn), doctor.Fail, doctor.Fail, "", true},
		{"no static item", []finding.Finding{{Item: "network.credentials_dnat", Status: finding.OK}}, doctor.Fail, doctor.Fail, "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rs := probe(tc.probe)
			crossCheckBridgePath(tc.fs, rs)
			r := rs[1]
			if r.Status != tc.want {
				t.Fatalf("status %s, want %s (%s)", r.Status, tc.want, r.Detail)
			}
			if tc.unchanged && r.Detail != "probe said so" {
				t.Fatalf("detail changed: %q", r.Detail)
			}
			if !tc.unchanged && (!strings.Contains(r.Detail, tc.detailHas) || r.Fix == "") {
				t.Fatalf("detail %q (fix %q), want %q and a fix", r.Detail, r.Fix, tc.detailHas)
			}
			if rs[0].Detail != "endpoint" {
				t.Fatal("another item changed")
			}
		})
	}
}

// The probe looks at the bridges the static evaluation judges.
func TestDoctorTaskBridges(t *testing.T) {
	p := policy.Default()
	if got := doctorTaskBridges(p); len(got) != 1 || got[0] != "docker0" {
		t.Fatalf("default policy: %q, want [docker0]", got)
	}
	p.Network.TaskBridges = []string{"br-tasks", "cni+"}
	if got := doctorConfig(p, nil).TaskBridges; len(got) != 2 || got[0] != "br-tasks" || got[1] != "cni+" {
		t.Fatalf("configured: %q", got)
	}
}
