package doctor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "imds", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The mock cannot return a Message field, so the answers it cannot produce
// (the "does not contain a role" wording) are judged here from fixtures in
// the shape IMDS documents.
func TestJudgeIAMInfo(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		status     int
		body       string
		want       Status
		has        []string
	}{
		{"success", "info-success.json", 200, "", OK, []string{"AIPA2S6TZNPQ67BDPYHXF"}},
		{"profile not found", "info-not-found.json", 200, "", Fail, []string{"InstanceProfileNotFound", "deleted and re-created", "--instance-profile-name ecsInstanceRole", "describe-instances --instance-ids i-0abc"}},
		{"profile without role", "info-no-role.json", 200, "", Fail, []string{"does not contain a role", "add-role-to-instance-profile --instance-profile-name ecsInstanceRole"}},
		{"no role as plain text", "", 404, "Instance profile does not contain a role", Fail, []string{"does not contain a role", "add-role-to-instance-profile"}},
		{"not json", "", 200, "<html>", Fail, []string{"not JSON"}},
		{"other code", "", 200, `{"Code":"Throttled"}`, Fail, []string{`"Throttled"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := []byte(tc.body)
			if tc.file != "" {
				body = fixture(t, tc.file)
			}
			r := judgeIAMInfo(tc.status, body, "i-0abc")
			if r.Item != ItemIMDSInstanceProfileInf || r.Status != tc.want {
				t.Fatalf("got %+v, want %s", r, tc.want)
			}
			for _, s := range tc.has {
				if !strings.Contains(r.Detail+" | "+r.Fix, s) {
					t.Errorf("lacks %q: %+v", s, r)
				}
			}
		})
	}
}

func TestJudgeRoleCredentials(t *testing.T) {
	for _, tc := range []struct {
		name, role, file string
		status           int
		want             Status
		has              []string
	}{
		{"success", "ecsInstanceRole", "creds-success.json", 200, OK, []string{"expire 2024-05-16T23:00:20Z"}},
		{"unauthorized", "ecsInstanceRole", "creds-unauthorized.json", 200, Fail, []string{"EC2 cannot assume the role", "lint-trust-policy", "AmazonEC2ContainerServiceforEC2Role"}},
		{"no role listed", "", "", 404, Fail, []string{"contains no role", "add-role-to-instance-profile"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body []byte
			if tc.file != "" {
				body = fixture(t, tc.file)
			}
			r := judgeRoleCredentials(tc.role, tc.status, body)
			if r.Item != ItemIMDSRoleCredentials || r.Status != tc.want {
				t.Fatalf("got %+v, want %s", r, tc.want)
			}
			for _, s := range tc.has {
				if !strings.Contains(r.Detail+" | "+r.Fix, s) {
					t.Errorf("lacks %q: %+v", s, r)
				}
			}
			for _, secret := range []string{"ASIAEXAMPLEKEYID0000", "SECRETSECRET", "TOKENTOKEN"} {
				if strings.Contains(r.Detail+r.Fix, secret) {
					t.Fatalf("leaks %q: %+v", secret, r)
				}
			}
		})
	}
}
