package doctor

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"
)

// runIMDS runs the imds.* checks against endpoint, as Run would.
func runIMDS(t *testing.T, endpoint, sysRoot string) map[string]Result {
	t.Helper()
	c := Config{IMDSEndpoint: endpoint, SysRoot: sysRoot, Timeout: 2 * time.Second}.withDefaults()
	ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
	defer cancel()
	rs := checkIMDS(ctx, c)
	if len(rs) != len(imdsItems) {
		t.Fatalf("got %d results, want %d: %+v", len(rs), len(imdsItems), rs)
	}
	out := map[string]Result{}
	for i, r := range rs {
		if r.Item != imdsItems[i] {
			t.Fatalf("result %d is %s, want %s (stable order)", i, r.Item, imdsItems[i])
		}
		if r.Detail == "" {
			t.Fatalf("%s has no detail", r.Item)
		}
		if (r.Fix == "") != (r.Status == OK || r.Status == Skip) {
			t.Fatalf("%s: status %s with fix %q", r.Item, r.Status, r.Fix)
		}
		out[r.Item] = r
	}
	return out
}

type want struct {
	status Status
	has    string // in Detail or Fix
}

func expect(t *testing.T, got map[string]Result, wants map[string]want) {
	t.Helper()
	for item, w := range wants {
		r := got[item]
		if r.Status != w.status || !strings.Contains(r.Detail+" | "+r.Fix, w.has) {
			t.Errorf("%s = %s %q (fix %q), want %s with %q", item, r.Status, r.Detail, r.Fix, w.status, w.has)
		}
	}
}

// The mock's defaults: instance i-1234567890abcdef0, profile baskinc-role,
// credentials Code Success.
func TestIMDSHealthy(t *testing.T) {
	got := runIMDS(t, startAEMM(t, ""), "")
	expect(t, got, map[string]want{
		ItemIMDSReachable:          {OK, "instance i-"},
		ItemIMDSv2:                 {OK, "IMDSv1 also answers"},
		ItemIMDSInstanceProfile:    {OK, "security-credentials"},
		ItemIMDSInstanceProfileInf: {OK, "instance-profile/baskinc-role"},
		ItemIMDSRoleCredentials:    {OK, "role baskinc-role: temporary credentials issued"},
	})
	for _, r := range got {
		if strings.Contains(r.Detail, "v/12345678901") || strings.Contains(r.Detail, "TEST92test48") {
			t.Fatalf("%s leaks a secret: %s", r.Item, r.Detail)
		}
	}
}

func TestIMDSv2Required(t *testing.T) {
	got := runIMDS(t, startAEMM(t, "", "-I"), "")
	expect(t, got, map[string]want{
		ItemIMDSReachable:       {OK, "instance i-"},
		ItemIMDSv2:              {OK, "IMDSv1 is refused"},
		ItemIMDSRoleCredentials: {OK, "temporary credentials issued"},
	})
}

// TestIMDSv1Only: the mock always hands out tokens, so a reverse proxy in
// front of it refuses the token PUT with 403 (what IMDS does when a proxy
// adds X-Forwarded-For) and passes everything else through to the real
// mock.
func TestIMDSv1Only(t *testing.T) {
	target, err := url.Parse(startAEMM(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && r.URL.Path == "/latest/api/token" {
			http.Error(w, "Forbidden", http.StatusForbidden)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	got := runIMDS(t, srv.URL, "")
	expect(t, got, map[string]want{
		ItemIMDSReachable:       {OK, "instance i-"},
		ItemIMDSv2:              {Warn, "only IMDSv1 answers"},
		ItemIMDSInstanceProfile: {OK, "info"},
		ItemIMDSRoleCredentials: {OK, "temporary credentials issued"},
	})
}

// No instance profile: the mock answers 404 for paths set to "".
func TestIMDSNoInstanceProfile(t *testing.T) {
	cfg := `{"metadata":{"paths":{"iam-info":"","iam-security-credentials-role":"","iam-security-credentials":""}}}`
	got := runIMDS(t, startAEMM(t, cfg), "")
	expect(t, got, map[string]want{
		ItemIMDSReachable:          {OK, "instance i-"},
		ItemIMDSInstanceProfile:    {Fail, "no instance profile is attached"},
		ItemIMDSInstanceProfileInf: {Skip, "no instance profile"},
		ItemIMDSRoleCredentials:    {Skip, "no instance profile"},
	})
	if fix := got[ItemIMDSInstanceProfile].Fix; !strings.Contains(fix, "associate-iam-instance-profile") || !strings.Contains(fix, "AmazonEC2ContainerServiceforEC2Role") {
		t.Fatalf("fix does not say how: %q", fix)
	}
}

func TestIMDSInstanceProfileNotFound(t *testing.T) {
	cfg := `{"metadata":{"values":{"iam-info":{"Code":"InstanceProfileNotFound","InstanceProfileArn":"arn:aws:iam::123456789012:instance-profile/ecsInstanceRole","InstanceProfileId":"AIPAOLDPROFILEID","LastUpdated":"2024-01-01T00:00:00Z"}}}}`
	got := runIMDS(t, startAEMM(t, cfg), "")
	expect(t, got, map[string]want{
		ItemIMDSInstanceProfile:    {OK, "info"},
		ItemIMDSInstanceProfileInf: {Fail, "InstanceProfileNotFound"},
	})
	r := got[ItemIMDSInstanceProfileInf]
	for _, s := range []string{"AIPAOLDPROFILEID", "describe-instances", "get-instance-profile --instance-profile-name ecsInstanceRole", "deleted and re-created"} {
		if !strings.Contains(r.Detail+r.Fix, s) {
			t.Errorf("imds.instance_profile_info lacks %q: %+v", s, r)
		}
	}
}

func TestIMDSAssumeRoleUnauthorizedAccess(t *testing.T) {
	cfg := `{"metadata":{"values":{"iam-security-credentials":{"Code":"AssumeRoleUnauthorizedAccess","LastUpdated":"2024-01-01T00:00:00Z","Type":"","AccessKeyId":"","SecretAccessKey":"","Token":"","Expiration":""}}}}`
	got := runIMDS(t, startAEMM(t, cfg), "")
	expect(t, got, map[string]want{
		ItemIMDSInstanceProfileInf: {OK, "baskinc-role"},
		ItemIMDSRoleCredentials:    {Fail, "AssumeRoleUnauthorizedAccess"},
	})
	fix := got[ItemIMDSRoleCredentials].Fix
	for _, s := range []string{"ec2.amazonaws.com", "lint-trust-policy", "--for instance", "AmazonEC2ContainerServiceforEC2Role", "--role-name baskinc-role"} {
		if !strings.Contains(fix, s) {
			t.Errorf("fix lacks %q: %s", s, fix)
		}
	}
}

// Unreachable: nothing listens. On an EC2 instance that is a failure; on a
// machine sysfs says is something else it is a skip; when sysfs cannot
// tell, a failure that says so.
func TestIMDSUnreachable(t *testing.T) {
	for _, tc := range []struct {
		name   string
		sys    map[string]string
		status Status
		has    string
	}{
		{"on EC2", map[string]string{"class/dmi/id/sys_vendor": "Amazon EC2"}, Fail, "this is an EC2 instance"},
		{"not EC2", map[string]string{"class/dmi/id/sys_vendor": "QEMU"}, Skip, "not an EC2 instance (sys_vendor=QEMU)"},
		{"cannot tell", map[string]string{}, Fail, "could not tell"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := runIMDS(t, closedURL(t, ""), writeSys(t, tc.sys))
			expect(t, got, map[string]want{
				ItemIMDSReachable:          {tc.status, tc.has},
				ItemIMDSv2:                 {Skip, "IMDS did not answer"},
				ItemIMDSRoleCredentials:    {Skip, "IMDS did not answer"},
				ItemIMDSInstanceProfileInf: {Skip, "IMDS did not answer"},
			})
			if tc.status == Fail && !strings.Contains(got[ItemIMDSReachable].Fix, "169.254.169.254") {
				t.Fatalf("fix does not name the address: %q", got[ItemIMDSReachable].Fix)
			}
		})
	}
}

func TestIMDSSkipped(t *testing.T) {
	rs := checkIMDS(context.Background(), Config{SkipIMDS: true}.withDefaults())
	if len(rs) != len(imdsItems) {
		t.Fatalf("got %+v", rs)
	}
	for _, r := range rs {
		if r.Status != Skip {
			t.Fatalf("%s = %s, want skip", r.Item, r.Status)
		}
	}
}
