package trustpolicy

import (
	"fmt"
	"regexp"
	"strings"
)

// actionMatches reports whether an IAM action pattern (case-insensitive,
// with * for any run of characters and ? for one) matches action.
func actionMatches(pattern, action string) bool {
	return globMatch(strings.ToLower(pattern), strings.ToLower(action))
}

// globMatch matches with * and ?, iteratively (no exponential backtracking).
func globMatch(p, s string) bool {
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == s[si]):
			pi++
			si++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// anyAction reports whether some pattern in list matches action.
func anyAction(list []string, action string) bool {
	for _, p := range list {
		if actionMatches(p, action) {
			return true
		}
	}
	return false
}

// grantKind is how a principal element covers the purpose's principal.
type grantKind int

const (
	noMatch  grantKind = iota
	exact              // the service, or the source role's ARN
	account            // the source role's account (root ARN or bare id): every principal in it
	wildcard           // "*": anyone
)

// target is who must be able to assume the role.
type target struct {
	purpose   Purpose
	services  []string // task / instance
	roleARN   string   // cross-account
	accountID string
	partition string
}

func (t target) String() string {
	if t.roleARN != "" {
		return t.roleARN
	}
	return t.services[0]
}

var roleARNRe = regexp.MustCompile(`^arn:(aws|aws-cn|aws-us-gov|aws-iso|aws-iso-b|aws-iso-e|aws-iso-f|aws-eusc):iam::([0-9]{12}):role/(.+)$`)

func newTarget(p Purpose, sourceRole string) (target, error) {
	switch p {
	case Task:
		return target{purpose: p, services: []string{"ecs-tasks.amazonaws.com"}}, nil
	case Instance:
		// China regions historically used the .cn service name.
		return target{purpose: p, services: []string{"ec2.amazonaws.com", "ec2.amazonaws.com.cn"}}, nil
	case CrossAccount:
		if sourceRole == "" {
			return target{}, fmt.Errorf("--for cross-account needs --source-role ARN: the task role that will assume this role, e.g. arn:aws:iam::111122223333:role/my-task-role")
		}
		m := roleARNRe.FindStringSubmatch(sourceRole)
		if m == nil {
			hint := ""
			if strings.Contains(sourceRole, ":assumed-role/") {
				hint = ": give the role's ARN (arn:aws:iam::ACCOUNT:role/NAME), not an assumed-role session ARN"
			}
			return target{}, fmt.Errorf("--source-role %q is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)%s", sourceRole, hint)
		}
		return target{purpose: p, roleARN: sourceRole, partition: m[1], accountID: m[2]}, nil
	}
	return target{}, fmt.Errorf("unknown purpose %q: use task, instance or cross-account", p)
}

// covers tells how principal element pr covers the target.
func (t target) covers(pr *principal) grantKind {
	if pr == nil {
		return noMatch
	}
	best := noMatch
	if t.roleARN == "" {
		for _, s := range pr.service {
			for _, want := range t.services {
				if strings.EqualFold(s, want) {
					return exact
				}
			}
		}
	} else {
		root := "arn:" + t.partition + ":iam::" + t.accountID + ":root"
		for _, a := range pr.aws {
			switch {
			case strings.EqualFold(a, t.roleARN):
				return exact
			case a == t.accountID || strings.EqualFold(a, root):
				best = account
			}
		}
	}
	if best == noMatch && pr.wildcard {
		best = wildcard
	}
	return best
}

// uniqueRoleIDRe matches a role's unique id: IAM shows one in place of
// the ARN when the trusted role was deleted.
var uniqueRoleIDRe = regexp.MustCompile(`^AROA[A-Z0-9]{12,}$`)
