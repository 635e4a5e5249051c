package trustpolicy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
)

const srcRole = "arn:aws:iam::111122223333:role/my-task-role"

func lintFile(t *testing.T, name string, p Purpose, source string) ([]Result, error) {
	t.Helper()
	path := filepath.Join("testdata", name)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return Lint(data, path, p, source)
}

func byItem(rs []Result) map[string]Result {
	m := map[string]Result{}
	for _, r := range rs {
		m[r.Item] = r
	}
	return m
}

type expectation struct {
	status finding.Status
	has    []string // substrings of Detail + " | " + Fix
}

func TestLint(t *testing.T) {
	ok, warn, fail, skip := finding.OK, finding.Warn, finding.Fail, finding.Skip
	for _, tc := range []struct {
		file    string
		purpose Purpose
		source  string
		want    map[string]expectation
		absent  []string // items that must not be reported
	}{
		{"task-good.json", Task, "", map[string]expectation{
			ItemAssumeRole:        {ok, []string{"Statement[0] allows ecs-tasks.amazonaws.com to sts:AssumeRole"}},
			ItemWildcardPrincipal: {ok, nil},
			ItemConditions:        {ok, []string{"no Condition", "aws:SourceAccount"}},
		}, []string{ItemAccountPrincipal, ItemNotAction, ItemNotPrincipal, ItemResource}},
		{"task-good-conditions.json", Task, "", map[string]expectation{
			ItemAssumeRole: {ok, nil},
			ItemConditions: {ok, []string{"ArnLike aws:SourceArn", "StringEquals aws:SourceAccount", "recommended"}},
		}, nil},
		{"lowercase-action-wildcard.json", Task, "", map[string]expectation{ItemAssumeRole: {ok, nil}}, nil},
		{"get-role.json", Task, "", map[string]expectation{ItemAssumeRole: {ok, []string{"Role.AssumeRolePolicyDocument"}}}, nil},
		{"instance-good.json", Instance, "", map[string]expectation{ItemAssumeRole: {ok, []string{"ec2.amazonaws.com"}}}, nil},
		{"instance-urlencoded.txt", Instance, "", map[string]expectation{ItemAssumeRole: {ok, []string{"URL-decoded"}}}, nil},
		{"cross-account-good.json", CrossAccount, srcRole, map[string]expectation{
			ItemAssumeRole:       {ok, []string{srcRole, "credential_source = EcsContainer"}},
			ItemAccountPrincipal: {ok, nil},
		}, nil},
		{"cross-account-root.json", CrossAccount, srcRole, map[string]expectation{
			ItemAssumeRole:       {ok, []string{"account 111122223333 as a whole"}},
			ItemAccountPrincipal: {warn, []string{"every principal of that account", `{"AWS": "` + srcRole + `"}`}},
			ItemConditions:       {ok, []string{"sts:ExternalId", "external_id"}},
		}, nil},
		{"cross-account-bare-id.json", CrossAccount, srcRole, map[string]expectation{
			ItemAssumeRole:       {ok, nil},
			ItemAccountPrincipal: {warn, nil},
		}, nil},
		{"cross-account-good.json", CrossAccount, "arn:aws:iam::444455556666:role/other", map[string]expectation{
			ItemAssumeRole:       {fail, []string{"arn:aws:iam::444455556666:role/other", srcRole + " is allowed to sts:AssumeRole"}},
			ItemAccountPrincipal: {skip, nil},
		}, nil},
		{"deleted-role.json", CrossAccount, srcRole, map[string]expectation{
			ItemAssumeRole: {fail, []string{"AROA3XFRBF535PLBIFPI4 is a role's unique id", "deleted"}},
		}, nil},
		{"wrong-service.json", Task, "", map[string]expectation{
			ItemAssumeRole: {fail, []string{"ec2.amazonaws.com is allowed to sts:AssumeRole", "container instance role", `{"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}`}},
			ItemConditions: {ok, []string{"no Condition applies"}},
		}, nil},
		{"task-good.json", Instance, "", map[string]expectation{
			ItemAssumeRole: {fail, []string{"task role's trust policy", `{"Service": "ec2.amazonaws.com"}`}},
		}, nil},
		{"ecs-service.json", Task, "", map[string]expectation{ItemAssumeRole: {fail, []string{"ECS service itself"}}}, nil},
		{"deny.json", Task, "", map[string]expectation{
			ItemAssumeRole: {fail, []string{`Statement[1] (Sid "NoTasks") denies`, "explicit Deny"}},
		}, nil},
		{"deny-conditional.json", Task, "", map[string]expectation{
			ItemAssumeRole: {warn, []string{"OtherAccounts", "StringNotEquals aws:SourceAccount"}},
		}, nil},
		{"deny-notprincipal.json", Task, "", map[string]expectation{ItemAssumeRole: {fail, []string{"OnlyEC2"}}}, nil},
		{"deny-notprincipal.json", Instance, "", map[string]expectation{ItemAssumeRole: {fail, []string{"no Allow statement"}}}, nil},
		{"missing-assume-role.json", Task, "", map[string]expectation{
			ItemAssumeRole: {fail, []string{"allowed only sts:TagSession", `"Action": "sts:AssumeRole"`}},
		}, nil},
		{"web-identity-only.json", Task, "", map[string]expectation{
			ItemAssumeRole: {fail, []string{"allowed only sts:AssumeRoleWithWebIdentity"}},
		}, nil},
		// "*" without a Condition is a public trust policy: a fail
		// whatever --for says.
		{"wildcard-principal.json", Task, "", map[string]expectation{
			ItemAssumeRole:        {ok, []string{`only through Principal "*"`}},
			ItemWildcardPrincipal: {fail, []string{"any principal", "without a Condition", "public", "ecs-tasks.amazonaws.com"}},
		}, nil},
		{"wildcard-principal.json", Instance, "", map[string]expectation{
			ItemWildcardPrincipal: {fail, []string{"public"}},
		}, nil},
		{"wildcard-principal.json", CrossAccount, srcRole, map[string]expectation{
			ItemWildcardPrincipal: {fail, nil},
			ItemAccountPrincipal:  {skip, nil},
		}, nil},
		{"wildcard-aws-principal.json", Task, "", map[string]expectation{
			ItemWildcardPrincipal: {fail, []string{"public"}},
		}, nil},
		// With a Condition it is still risky, not public.
		{"wildcard-conditional.json", Task, "", map[string]expectation{
			ItemWildcardPrincipal: {warn, []string{"unless its Condition stops them", "aws:PrincipalOrgID"}},
		}, nil},
		{"not-action.json", Task, "", map[string]expectation{
			ItemAssumeRole: {fail, []string{"NotPrincipal/NotAction are not counted"}},
			ItemNotAction:  {warn, []string{"Statement[0]"}},
		}, nil},
		{"not-principal.json", Instance, "", map[string]expectation{
			ItemAssumeRole:   {fail, nil},
			ItemNotPrincipal: {warn, []string{"NotPrincipal"}},
		}, nil},
		{"resource.json", Task, "", map[string]expectation{
			ItemAssumeRole: {ok, nil},
			ItemResource:   {warn, []string{"Has prohibited field Resource"}},
		}, nil},
	} {
		t.Run(string(tc.purpose)+"/"+tc.file, func(t *testing.T) {
			rs, err := lintFile(t, tc.file, tc.purpose, tc.source)
			if err != nil {
				t.Fatal(err)
			}
			got := byItem(rs)
			if rs[0].Item != ItemAssumeRole || rs[1].Item != ItemWildcardPrincipal || rs[2].Item != ItemConditions {
				t.Fatalf("unstable order: %+v", rs)
			}
			for item, w := range tc.want {
				r, ok := got[item]
				if !ok {
					t.Fatalf("no %s in %+v", item, rs)
				}
				if r.Status != w.status {
					t.Errorf("%s = %s (%s | %s), want %s", item, r.Status, r.Detail, r.Fix, w.status)
				}
				for _, s := range w.has {
					if !strings.Contains(r.Detail+" | "+r.Fix, s) {
						t.Errorf("%s lacks %q: %s | %s", item, s, r.Detail, r.Fix)
					}
				}
			}
			for _, item := range tc.absent {
				if _, ok := got[item]; ok {
					t.Errorf("unexpected %s: %+v", item, got[item])
				}
			}
			for _, r := range rs {
				if r.Detail == "" || (r.Fix == "") != (r.Status == finding.OK || r.Status == finding.Skip) {
					t.Errorf("%s: status %s, detail %q, fix %q", r.Item, r.Status, r.Detail, r.Fix)
				}
			}
		})
	}
}

func TestLintErrors(t *testing.T) {
	for _, tc := range []struct {
		file    string
		purpose Purpose
		source  string
		want    string
	}{
		{"malformed-comma.json", Task, "", "testdata/malformed-comma.json:8:5: invalid JSON"},
		{"malformed-truncated.json", Task, "", "testdata/malformed-truncated.json:6:1: invalid JSON"},
		{"malformed-action-type.json", Task, "", `testdata/malformed-action-type.json:7:17: Statement[0].Action must be a string or a list of strings, not a number`},
		{"malformed-principal-typo.json", Task, "", `testdata/malformed-principal-typo.json:6:7: Statement[0]: unknown element "Principals"`},
		{"task-good.json", CrossAccount, "", "needs --source-role"},
		{"task-good.json", CrossAccount, "arn:aws:sts::111122223333:assumed-role/my-task-role/abc", "not an assumed-role session ARN"},
		{"task-good.json", "lambda", "", `unknown purpose "lambda"`},
	} {
		t.Run(tc.file+"/"+tc.want, func(t *testing.T) {
			_, err := lintFile(t, tc.file, tc.purpose, tc.source)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// TestLintInlineErrors covers structural errors with exact positions.
func TestLintInlineErrors(t *testing.T) {
	for _, tc := range []struct{ doc, want string }{
		{`[]`, "p.json:1:1: a policy document is a JSON object, not a list"},
		{`{"Version":"2012-10-17"}`, "p.json:1:1: the policy has no Statement"},
		{`{"Statement":"x"}`, "p.json:1:14: Statement must be an object or a list of objects, not a string"},
		{`{"Statement":[{"Effect":"allow","Principal":"*","Action":"sts:AssumeRole"}]}`, `p.json:1:25: Statement[0].Effect is "allow": it must be "Allow" or "Deny"`},
		{"{\"Statement\":[\n  {\"Effect\":\"Allow\",\"Action\":\"sts:AssumeRole\"}]}", "p.json:2:3: Statement[0] has no Principal"},
		{`{"Statement":[{"Effect":"Allow","Principal":"ecs-tasks.amazonaws.com","Action":"sts:AssumeRole"}]}`, `only "*" may be a bare string`},
		{`{"Statement":[{"Effect":"Allow","Principal":{"service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}`, `p.json:1:46: Statement[0].Principal: unknown principal type "service": write "Service"`},
		{`{"Statement":[{"Effect":"Allow","Principal":"*","Action":["sts:AssumeRole",7]}]}`, `p.json:1:76: Statement[0].Action[1] must be a string, not a number`},
		{`{"Version":"2020-01-01","Statement":[]}`, `Version "2020-01-01" is not a policy language version`},
		{`{"Statement":[{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole","Condition":{"StringEquals":"x"}}]}`, `Condition.StringEquals must be an object of condition keys`},
		{"{\n\t\"Statement\": [\n\t\t{\"Effect\": \"Allow\", \"Principal\": {\"Service\": \"é\"}, \"Action\": 1}]}", "p.json:3:64: Statement[0].Action must be"},
		{`{"Role":{"AssumeRolePolicyDocument":"%7B%22Statement%22%3A5%7D"}}`, "p.json:1:14 (in Role.AssumeRolePolicyDocument): Statement must be"},
		{`%7B%22Statement%22%3A%5B%5D`, "(in the URL-decoded document)"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			_, err := Lint([]byte(tc.doc), "p.json", Task, "")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Lint(%s) error %v, want %q", tc.doc, err, tc.want)
			}
		})
	}
}

func TestActionMatches(t *testing.T) {
	for _, tc := range []struct {
		pattern string
		want    bool
	}{
		{"sts:AssumeRole", true},
		{"STS:ASSUMEROLE", true},
		{"sts:*", true},
		{"*", true},
		{"sts:Assume*", true},
		{"sts:Assume?ole", true},
		{"*:AssumeRole", true},
		{"sts:AssumeRoleWithWebIdentity", false},
		{"sts:AssumeRoleWith*", false},
		{"sts:AssumeRole?", false},
		{"iam:*", false},
		{"", false},
	} {
		if got := actionMatches(tc.pattern, "sts:AssumeRole"); got != tc.want {
			t.Errorf("actionMatches(%q) = %v, want %v", tc.pattern, got, tc.want)
		}
	}
}

func TestLineCol(t *testing.T) {
	data := []byte("ab\ncé\nx")
	for _, tc := range []struct{ off, line, col int }{
		{0, 1, 1}, {2, 1, 3}, {3, 2, 1}, {4, 2, 2}, {6, 2, 3}, {7, 3, 1}, {99, 3, 2},
	} {
		if l, c := lineCol(data, tc.off); l != tc.line || c != tc.col {
			t.Errorf("lineCol(%d) = %d:%d, want %d:%d", tc.off, l, c, tc.line, tc.col)
		}
	}
}
