package trustpolicy

import (
	"fmt"
	"sort"
	"strings"

	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
)

// Purpose is what the role is for.
type Purpose string

const (
	Task         Purpose = "task"          // an ECS task role: ecs-tasks.amazonaws.com
	Instance     Purpose = "instance"      // a container instance role: ec2.amazonaws.com
	CrossAccount Purpose = "cross-account" // a role a task role assumes: the source role ARN as AWS principal
)

// Result and Status are the diagnosis vocabulary of pkg/finding (as doctor
// speaks it), so the CLI prints lint results like doctor results.
type (
	Result = finding.Result
	Status = finding.Status
)

// Result item ids, documented in the package comment.
const (
	ItemAssumeRole        = "trust.assume_role"
	ItemWildcardPrincipal = "trust.wildcard_principal"
	ItemConditions        = "trust.conditions"
	ItemAccountPrincipal  = "trust.account_principal"
	ItemNotPrincipal      = "trust.not_principal"
	ItemNotAction         = "trust.not_action"
	ItemResource          = "trust.resource"
)

const assumeRole = "sts:AssumeRole"

// Lint checks a trust policy for purpose p. sourceRole (an IAM role ARN)
// is required for CrossAccount and ignored otherwise. file names the input
// in error messages. The error is for input that is not a policy at all
// (invalid JSON, wrong types, unknown elements: "file:line:col: what") or
// a bad purpose/source role; everything else is a Result.
func Lint(data []byte, file string, p Purpose, sourceRole string) ([]Result, error) {
	t, err := newTarget(p, sourceRole)
	if err != nil {
		return nil, err
	}
	pol, err := parse(data, file)
	if err != nil {
		return nil, err
	}
	return judge(pol, t), nil
}

type grant struct {
	s    statement
	kind grantKind
}

// findings is what judge collects from the statements.
type findings struct {
	grants          []grant
	denies          []statement
	wildcardAllows  []statement
	notPrincipal    []statement
	notAction       []statement
	resource        []statement
	otherActions    []string // actions allowed to the target that are not sts:AssumeRole
	otherPrincipals []string // principals that are allowed sts:AssumeRole
	uniqueIDs       []string
}

func collect(pol *policy, t target) findings {
	var f findings
	for _, s := range pol.statements {
		if s.hasResource {
			f.resource = append(f.resource, s)
		}
		switch s.effect {
		case "Allow":
			if s.notPrincipal != nil {
				f.notPrincipal = append(f.notPrincipal, s)
				continue
			}
			if s.notAction != nil {
				f.notAction = append(f.notAction, s)
				continue
			}
			k := t.covers(s.principal)
			grantsAR := anyAction(s.action, assumeRole)
			switch {
			case k != noMatch && grantsAR:
				f.grants = append(f.grants, grant{s, k})
			case k == exact || k == account:
				f.otherActions = append(f.otherActions, s.action...)
			}
			if grantsAR {
				if s.principal.wildcard {
					f.wildcardAllows = append(f.wildcardAllows, s)
				}
				f.otherPrincipals = append(f.otherPrincipals, s.principal.service...)
				for _, a := range s.principal.aws {
					if a != "*" {
						f.otherPrincipals = append(f.otherPrincipals, a)
					}
				}
				f.otherPrincipals = append(f.otherPrincipals, s.principal.federated...)
			}
			for _, a := range s.principal.aws {
				if uniqueRoleIDRe.MatchString(a) {
					f.uniqueIDs = append(f.uniqueIDs, a)
				}
			}
		case "Deny":
			principalHit := (s.principal != nil && t.covers(s.principal) != noMatch) ||
				(s.notPrincipal != nil && t.covers(s.notPrincipal) == noMatch)
			actionHit := (s.action != nil && anyAction(s.action, assumeRole)) ||
				(s.notAction != nil && !anyAction(s.notAction, assumeRole))
			if principalHit && actionHit {
				f.denies = append(f.denies, s)
			}
		}
	}
	sort.SliceStable(f.grants, func(i, j int) bool { return f.grants[i].kind < f.grants[j].kind })
	f.otherPrincipals = uniq(f.otherPrincipals)
	f.otherActions = uniq(f.otherActions)
	f.uniqueIDs = uniq(f.uniqueIDs)
	return f
}

func judge(pol *policy, t target) []Result {
	f := collect(pol, t)
	rs := []Result{assumeRoleResult(pol, t, f), wildcardResult(t, f), conditionsResult(t, f)}
	if t.purpose == CrossAccount {
		rs = append(rs, accountResult(t, f))
	}
	if len(f.notPrincipal) > 0 {
		rs = append(rs, Result{Item: ItemNotPrincipal, Status: finding.Warn,
			Detail: names(f.notPrincipal) + " allow(s) with NotPrincipal: not counted as granting (IAM discourages NotPrincipal with Allow)",
			Fix:    "name who may assume the role with Principal instead, e.g. " + statementJSON(t)})
	}
	if len(f.notAction) > 0 {
		rs = append(rs, Result{Item: ItemNotAction, Status: finding.Warn,
			Detail: names(f.notAction) + " allow(s) with NotAction, i.e. every action but those listed: not counted as granting",
			Fix:    "list the action instead: \"Action\": \"sts:AssumeRole\""})
	}
	if len(f.resource) > 0 {
		rs = append(rs, Result{Item: ItemResource, Status: finding.Warn,
			Detail: names(f.resource) + " has Resource or NotResource: IAM refuses them in a trust policy (MalformedPolicyDocument: Has prohibited field Resource)",
			Fix:    "remove Resource/NotResource from the trust policy; the role itself is the resource"})
	}
	return rs
}

// statementJSON is the statement to add for t.
func statementJSON(t target) string {
	var pr string
	if t.roleARN != "" {
		pr = fmt.Sprintf(`{"AWS": %q}`, t.roleARN)
	} else {
		pr = fmt.Sprintf(`{"Service": %q}`, t.services[0])
	}
	return fmt.Sprintf(`{"Effect": "Allow", "Principal": %s, "Action": "sts:AssumeRole"}`, pr)
}

func addFix(t target) string {
	return "add this statement to the Statement list: " + statementJSON(t) +
		", then `aws iam update-assume-role-policy --role-name ROLE_NAME --policy-document file://FILE`"
}

func assumeRoleResult(pol *policy, t target, f findings) Result {
	r := Result{Item: ItemAssumeRole}
	from := ""
	if pol.source != "" {
		from = " (read from " + pol.source + ")"
	}
	var hardDeny, softDeny []statement
	for _, s := range f.denies {
		if len(s.conditions) > 0 {
			softDeny = append(softDeny, s)
		} else {
			hardDeny = append(hardDeny, s)
		}
	}
	switch {
	case len(hardDeny) > 0:
		r.Status = finding.Fail
		r.Detail = fmt.Sprintf("%s denies %s to %s%s; an explicit Deny wins over any Allow", names(hardDeny), assumeRole, t, from)
		r.Fix = fmt.Sprintf("remove %s from %s (or narrow that Deny so it does not match %s)", assumeRole, names(hardDeny), t)
		return r
	case len(f.grants) == 0:
		r.Status = finding.Fail
		r.Detail = fmt.Sprintf("no Allow statement lets %s perform %s%s", t, assumeRole, from)
		if hints := failHints(t, f); hints != "" {
			r.Detail += ": " + hints
		}
		r.Fix = addFix(t)
		return r
	}
	g := f.grants[0]
	how := ""
	switch g.kind {
	case account:
		how = fmt.Sprintf(" through account %s as a whole", t.accountID)
	case wildcard:
		how = ` only through Principal "*"`
	}
	r.Detail = fmt.Sprintf("%s allows %s to %s%s%s", g.s.name(), t, assumeRole, how, from)
	if len(softDeny) > 0 {
		r.Status = finding.Warn
		r.Detail += fmt.Sprintf("; but %s denies it when its Condition holds (%s)", names(softDeny), strings.Join(softDeny[0].conditions, ", "))
		r.Fix = "check that the Deny's conditions never hold for " + t.String() + ", or remove it"
		return r
	}
	r.Status = finding.OK
	if t.purpose == CrossAccount {
		r.Detail += "; also needed: the source role's permissions allow sts:AssumeRole on this role's ARN, and inside the task a profile with role_arn = THIS_ROLE_ARN and credential_source = EcsContainer"
	}
	return r
}

// failHints explains a missing grant from what the policy does say.
func failHints(t target, f findings) string {
	var hints []string
	if len(f.otherActions) > 0 {
		hints = append(hints, fmt.Sprintf("%s is allowed only %s", t, strings.Join(f.otherActions, ", ")))
	}
	if len(f.otherPrincipals) > 0 {
		h := fmt.Sprintf("%s is allowed to %s", strings.Join(f.otherPrincipals, ", "), assumeRole)
		has := func(p string) bool {
			for _, o := range f.otherPrincipals {
				if strings.EqualFold(o, p) {
					return true
				}
			}
			return false
		}
		switch {
		case t.purpose == Task && has("ec2.amazonaws.com"):
			h += " (that is a container instance role's trust policy; a task role trusts ecs-tasks.amazonaws.com)"
		case t.purpose == Instance && has("ecs-tasks.amazonaws.com"):
			h += " (that is a task role's trust policy; the container instance role trusts ec2.amazonaws.com)"
		case has("ecs.amazonaws.com"):
			h += " (ecs.amazonaws.com is the ECS service itself, not tasks or instances)"
		}
		hints = append(hints, h)
	}
	for _, id := range f.uniqueIDs {
		hints = append(hints, fmt.Sprintf("principal %s is a role's unique id: IAM shows one when the trusted role was deleted, and re-creating the role does not restore the trust; replace it with the role ARN", id))
	}
	if len(f.notPrincipal)+len(f.notAction) > 0 {
		hints = append(hints, "Allow statements with NotPrincipal/NotAction are not counted")
	}
	return strings.Join(hints, "; ")
}

func wildcardResult(t target, f findings) Result {
	r := Result{Item: ItemWildcardPrincipal}
	if len(f.wildcardAllows) == 0 {
		r.Status = finding.OK
		r.Detail = `no Allow statement lets any principal ("*") assume the role`
		return r
	}
	r.Status = finding.Warn
	r.Detail = fmt.Sprintf(`%s lets any principal ("*") %s: anyone who can reach STS may assume the role`, names(f.wildcardAllows), assumeRole)
	var conds []string
	var public []statement
	for _, s := range f.wildcardAllows {
		conds = append(conds, s.conditions...)
		if len(s.conditions) == 0 {
			public = append(public, s)
		}
	}
	if len(public) > 0 {
		// A public trust policy: a fail whatever the role is for.
		r.Status = finding.Fail
		r.Detail = fmt.Sprintf(`%s lets any principal ("*") %s without a Condition: the trust policy is public, anyone with AWS credentials in any account may assume the role`, names(public), assumeRole)
	} else if len(conds) > 0 {
		r.Detail += " unless its Condition stops them (" + strings.Join(uniq(conds), ", ") + ")"
	}
	r.Fix = "name the principal instead of \"*\": " + statementJSON(t)
	return r
}

func conditionsResult(t target, f findings) Result {
	r := Result{Item: ItemConditions, Status: finding.OK}
	if len(f.grants) == 0 {
		r.Detail = "no statement grants " + assumeRole + " to " + t.String() + ", so no Condition applies"
		return r
	}
	var parts, all []string
	for _, g := range f.grants {
		if len(g.s.conditions) == 0 {
			parts = append(parts, g.s.name()+": no Condition")
			continue
		}
		parts = append(parts, g.s.name()+" only when "+strings.Join(g.s.conditions, ", ")+" hold")
		all = append(all, g.s.conditions...)
	}
	r.Detail = strings.Join(parts, "; ")
	hasKey := func(key string) bool {
		for _, c := range all {
			if strings.HasSuffix(strings.ToLower(c), " "+strings.ToLower(key)) {
				return true
			}
		}
		return false
	}
	switch {
	case t.purpose == Task && (hasKey("aws:SourceAccount") || hasKey("aws:SourceArn")):
		r.Detail += " (aws:SourceAccount / aws:SourceArn are AWS's recommended confused-deputy protection for ecs-tasks.amazonaws.com)"
	case t.purpose == Task:
		r.Detail += `; AWS recommends limiting ecs-tasks.amazonaws.com with aws:SourceAccount (and aws:SourceArn), e.g. "Condition": {"StringEquals": {"aws:SourceAccount": "ACCOUNT_ID"}}`
	case len(all) > 0:
		r.Detail += "; make sure " + t.String() + " satisfies them when it assumes the role"
	}
	if hasKey("sts:ExternalId") {
		r.Detail += "; sts:ExternalId means callers must pass the external id (CLI profile: external_id = ...)"
	}
	return r
}

func accountResult(t target, f findings) Result {
	r := Result{Item: ItemAccountPrincipal}
	if len(f.grants) == 0 || f.grants[0].kind == wildcard {
		r.Status = finding.Skip
		r.Detail = "no statement names the source role or its account"
		return r
	}
	if f.grants[0].kind == exact {
		r.Status = finding.OK
		r.Detail = "the source role is named by its ARN " + t.roleARN
		return r
	}
	r.Status = finding.Warn
	r.Detail = fmt.Sprintf("the policy trusts account %s as a whole (arn:%s:iam::%s:root or the bare account id): every principal of that account whose own permissions allow sts:AssumeRole on this role can assume it", t.accountID, t.partition, t.accountID)
	r.Fix = "trust only the task role: " + statementJSON(t)
	return r
}

func names(ss []statement) string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.name()
	}
	return strings.Join(out, ", ")
}

func uniq(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
