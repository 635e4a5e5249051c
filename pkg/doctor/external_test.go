package doctor

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// anywhere is a fixture tree of an ECS Anywhere host: the SSM agent's
// registration, root's shared credentials file and a fake /proc.
func anywhere(t *testing.T, registration, credentials string, age time.Duration, ssmEnv string) Config {
	t.Helper()
	dir := t.TempDir()
	c := Config{
		ProcRoot: filepath.Join(dir, "proc"),
		External: &External{
			Why:   "/etc/ecs/ecs.config line 2",
			Value: "true", Agent: true, ECSInit: true,
			CredentialsFile: filepath.Join(dir, "root/.aws/credentials"),
			Profile:         "default",
			SSMRegistration: filepath.Join(dir, "var/lib/amazon/ssm/registration"),
		},
	}
	put := func(p, s string) {
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if registration != "" {
		put(c.External.SSMRegistration, registration)
	}
	if credentials != "" {
		put(c.External.CredentialsFile, credentials)
		mt := time.Now().Add(-age)
		os.Chtimes(c.External.CredentialsFile, mt, mt)
	}
	os.MkdirAll(c.ProcRoot, 0o755)
	if ssmEnv != "\x00none" {
		put(filepath.Join(c.ProcRoot, "812", "comm"), "amazon-ssm-agen\n")
		put(filepath.Join(c.ProcRoot, "812", "environ"), ssmEnv+"\x00")
	}
	return c
}

const (
	reg   = `{"ManagedInstanceID":"mi-0123456789abcdef0","Region":"eu-west-1"}`
	creds = "[default]\naws_access_key_id = ASIAEXAMPLE\naws_secret_access_key = s3cr3t\naws_session_token = tok\n"
)

func TestExternalInstance(t *testing.T) {
	for _, tc := range []struct {
		name                string
		registration, creds string
		age                 time.Duration
		profile, ssmEnv     string
		regStatus, crStatus Status
		detail              string // in external.credentials
	}{
		{"healthy", reg, creds, 10 * time.Minute, "default", "PATH=/usr/bin", OK, OK, "written 10m0s ago"},
		{"not registered", "", "", 0, "default", "\x00none", Fail, Fail, "does not exist"},
		{"stale credentials", reg, creds, 3 * time.Hour, "default", "PATH=/usr/bin", OK, Fail, "no longer refreshes it"},
		{"other profile", reg, creds, time.Minute, "ecs", "PATH=/usr/bin", OK, Fail, "no [ecs] profile"},
		{"SSM agent writes elsewhere", reg, creds, time.Minute, "default", "AWS_SHARED_CREDENTIALS_FILE=/opt/creds", OK, Fail, "AWS_SHARED_CREDENTIALS_FILE=/opt/creds"},
		{"empty keys", reg, "[default]\naws_access_key_id =\n", time.Minute, "default", "PATH=/usr/bin", OK, Fail, "lacks aws_access_key_id"},
		{"bad registration", "{}", creds, time.Minute, "default", "PATH=/usr/bin", Fail, OK, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := anywhere(t, tc.registration, tc.creds, tc.age, tc.ssmEnv)
			c.External.Profile = tc.profile
			rs := checkExternal(c, time.Now())
			if rs[0].Item != ItemExternalSSMRegistration || rs[0].Status != tc.regStatus {
				t.Errorf("registration: %+v", rs[0])
			}
			r := rs[1]
			if r.Item != ItemExternalCredentials || r.Status != tc.crStatus || !strings.Contains(r.Detail, tc.detail) {
				t.Fatalf("credentials: %+v, want %s containing %q", r, tc.crStatus, tc.detail)
			}
			if r.Status == Fail && !strings.Contains(r.Fix, "Systems Manager") {
				t.Errorf("a failure must say the role needs the Systems Manager permissions: %q", r.Fix)
			}
			for _, s := range []string{r.Detail, r.Fix, rs[0].Detail} {
				if strings.Contains(s, "s3cr3t") || strings.Contains(s, "ASIAEXAMPLE") {
					t.Errorf("secret shown: %s", s)
				}
			}
			if tc.regStatus == OK && !strings.Contains(rs[0].Detail, "mi-0123456789abcdef0") {
				t.Errorf("registration detail: %q", rs[0].Detail)
			}
		})
	}
}

// The daemon's sandbox hides /root: a file it cannot see is a skip.
func TestExternalSandboxed(t *testing.T) {
	c := anywhere(t, reg, "", 0, "PATH=/usr/bin")
	c.External.Sandboxed = true
	if r := checkExternal(c, time.Now())[1]; r.Status != Skip || !strings.Contains(r.Detail, "ProtectHome") {
		t.Errorf("%+v", r)
	}
}

// ECS_EXTERNAL read differently by ecs-init and the agent.
func TestExternalMismatch(t *testing.T) {
	for _, tc := range []struct {
		value          string
		agent, ecsInit bool
		detail         string
	}{
		{"1", true, false, "only for exactly ECS_EXTERNAL=true"},
		{`"true"`, false, true, "not a boolean to the agent"},
	} {
		c := anywhere(t, reg, creds, time.Minute, "PATH=/usr/bin")
		c.External.Value, c.External.Agent, c.External.ECSInit = tc.value, tc.agent, tc.ecsInit
		r := checkExternal(c, time.Now())[1]
		if r.Status != Fail || !strings.Contains(r.Detail, tc.detail) || !strings.Contains(r.Fix, "ECS_EXTERNAL=true") {
			t.Errorf("%s: %+v", tc.value, r)
		}
	}
}

// On an external instance Run never calls IMDS: every imds.* item is a
// skip with the reason, followed by the external items.
func TestRunExternalSkipsIMDS(t *testing.T) {
	c := anywhere(t, reg, creds, time.Minute, "PATH=/usr/bin")
	c.IMDSEndpoint = "http://127.0.0.1:1" // would fail, were it asked
	c.IntrospectionURL, c.CredentialsURL = "http://127.0.0.1:1/", "http://127.0.0.1:1/"
	c.SkipBridgePath = true
	c.Timeout = 200 * time.Millisecond
	st := map[string]Result{}
	var order []string
	for _, r := range Run(context.Background(), c) {
		st[r.Item] = r
		order = append(order, r.Item)
	}
	for _, item := range imdsItems {
		if r := st[item]; r.Status != Skip || !strings.Contains(r.Detail, "ECS Anywhere") || !strings.Contains(r.Detail, "line 2") {
			t.Errorf("%s: %+v", item, r)
		}
	}
	if st[ItemExternalCredentials].Status != OK || st[ItemExternalSSMRegistration].Status != OK {
		t.Errorf("external items: %+v %+v", st[ItemExternalSSMRegistration], st[ItemExternalCredentials])
	}
	if strings.Join(order, " ") == "" || !strings.Contains(strings.Join(order, " "), "imds.role_credentials external.ssm_registration external.credentials") {
		t.Errorf("order %v", order)
	}
}
