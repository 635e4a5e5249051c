// Package trustpolicy lints an IAM role trust policy (the role's
// AssumeRolePolicyDocument) for one purpose: a task role
// (ecs-tasks.amazonaws.com), a container instance role (ec2.amazonaws.com)
// or the target of cross-account access from a task role (an AWS
// principal). It backs `ecs-remediator lint-trust-policy`.
//
// It is pure: it reads the bytes it is given and calls nothing — no AWS
// API, no file system. It accepts what IAM accepts (Statement as object or
// list, Principal "*" or an object of strings or lists, Action as string
// or list with wildcards, case-insensitive action names) and also the
// output of `aws iam get-role` and URL-encoded documents.
//
// Result item ids are a stable contract:
//
//	trust.assume_role          some Allow statement lets the purpose's principal sts:AssumeRole, and no Deny blocks it
//	trust.wildcard_principal   no Allow statement lets any principal ("*") assume the role
//	trust.conditions           the Condition blocks of the granting statements (informational)
//	trust.account_principal    cross-account only: the source is trusted by role ARN, not by whole account
//	trust.not_principal        only when an Allow uses NotPrincipal (never counted as granting)
//	trust.not_action           only when an Allow uses NotAction (never counted as granting)
//	trust.resource             only when a statement has Resource/NotResource (IAM refuses them in trust policies)
package trustpolicy
