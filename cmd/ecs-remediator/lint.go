package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
	"github.com/ecs-remediator/ecs-remediator/pkg/safefile"
	"github.com/ecs-remediator/ecs-remediator/pkg/trustpolicy"
)

// lintReport is the JSON shape of lint-trust-policy --json.
type lintReport struct {
	OK       bool             `json:"ok"`
	Findings []finding.Result `json:"findings"`
}

func runLintTrustPolicy(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("lint-trust-policy", " FILE", `Lint an IAM role trust policy (the role's AssumeRolePolicyDocument) for what
it is for: a task role must let ecs-tasks.amazonaws.com sts:AssumeRole, a
container instance role must let ec2.amazonaws.com, and a role that a task
role assumes across accounts must name --source-role as an AWS principal.
FILE is the policy JSON, the output of "aws iam get-role", or "-" for stdin.
Malformed JSON is reported with line and column. Calls no AWS API.

Exit status: 0 the policy does its job, 1 it does not, 2 error (bad flag,
unreadable file, not a policy).`, `aws iam get-role --role-name my-task-role > role.json
ecs-remediator lint-trust-policy role.json --for task
ecs-remediator lint-trust-policy target.json --for cross-account --source-role arn:aws:iam::111122223333:role/my-task-role`, stdout, stderr)
	purpose := fs.String("for", "", "what the role is for: `task|instance|cross-account` (required)")
	source := fs.String("source-role", "", "with --for cross-account: the `ARN` of the role that assumes this one")
	asJSON := fs.Bool("json", false, `print one JSON object {"ok": bool, "findings": [...]}`)
	fs.wideFlag()
	if code, ok := fs.parse(args, 1); !ok {
		return code
	}
	switch trustpolicy.Purpose(*purpose) {
	case trustpolicy.Task, trustpolicy.Instance, trustpolicy.CrossAccount:
	case "":
		return fs.usageError("--for is required: task, instance or cross-account")
	default:
		return fs.usageError("--for %q: give task, instance or cross-account", *purpose)
	}
	if *source != "" && trustpolicy.Purpose(*purpose) != trustpolicy.CrossAccount {
		return fs.usageError("--source-role only applies to --for cross-account")
	}
	file := fs.positional[0]
	var data []byte
	var err error
	if file == "-" {
		file = "<stdin>"
		data, err = safefile.ReadLimited(os.Stdin, "the trust policy on standard input", maxTrustPolicy)
		if err != nil {
			err = fmt.Errorf("%w; a trust policy is at most a few KiB", err)
		}
	} else {
		data, err = readPolicyFile(file)
	}
	if err != nil {
		fmt.Fprintf(stderr, "ecs-remediator lint-trust-policy: %v\n", err)
		return exitError
	}
	rs, err := trustpolicy.Lint(data, file, trustpolicy.Purpose(*purpose), *source)
	if err != nil {
		fmt.Fprintf(stderr, "ecs-remediator lint-trust-policy: %v\n", err)
		return exitError
	}
	if *asJSON {
		if err := writeJSON(stdout, lintReport{OK: !finding.Failed(rs), Findings: rs}); err != nil {
			fmt.Fprintf(stderr, "ecs-remediator lint-trust-policy: %v\n", err)
			return exitError
		}
	} else {
		writeResults(stdout, rs, "the trust policy does its job", "the trust policy does NOT do its job")
	}
	if finding.Failed(rs) {
		return exitDrift
	}
	return exitOK
}

// maxTrustPolicy caps a trust policy read (file or stdin); IAM's own
// limit is a few KiB.
const maxTrustPolicy = 1 << 20

// readPolicyFile reads a trust policy file, refusing what cannot be one:
// a directory, a FIFO or device (which could block), or more than
// maxTrustPolicy bytes.
func readPolicyFile(path string) ([]byte, error) {
	f, err := safefile.Read(path, safefile.Options{Max: maxTrustPolicy})
	switch {
	case errors.Is(err, safefile.ErrNotRegular):
		return nil, fmt.Errorf("%v; give the trust policy JSON file (or - for stdin)", err)
	case errors.Is(err, safefile.ErrTooLarge):
		return nil, fmt.Errorf("%v; a trust policy is at most a few KiB", err)
	case err != nil:
		return nil, err
	}
	return f.Data, nil
}
