package doctor

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// imdsIAMAnswer is the JSON of meta-data/iam/info and
// meta-data/iam/security-credentials/<role>. Only the fields doctor may
// show are decoded: never the keys or the token.
type imdsIAMAnswer struct {
	Code               string `json:"Code"`
	Message            string `json:"Message"`
	LastUpdated        string `json:"LastUpdated"`
	InstanceProfileArn string `json:"InstanceProfileArn"`
	InstanceProfileId  string `json:"InstanceProfileId"`
	Type               string `json:"Type"`
	Expiration         string `json:"Expiration"`
}

// noRoleMarker is how IMDS words an instance profile whose role was
// removed (RemoveRoleFromInstanceProfile).
const noRoleMarker = "does not contain a role"

// profileNameOf returns the name part of an instance profile ARN.
func profileNameOf(arn string) string {
	if i := strings.LastIndex(arn, "/"); i >= 0 && i+1 < len(arn) {
		return arn[i+1:]
	}
	return "PROFILE_NAME"
}

// judgeIAMInfo turns the answer of meta-data/iam/info into
// imds.instance_profile_info.
func judgeIAMInfo(status int, body []byte, instanceID string) Result {
	r := Result{Item: ItemIMDSInstanceProfileInf, Status: Fail}
	addRole := "add a role to the profile: `aws iam add-role-to-instance-profile --instance-profile-name PROFILE_NAME --role-name ecsInstanceRole` " +
		"(the role needs AmazonEC2ContainerServiceforEC2Role and a trust policy for ec2.amazonaws.com); credentials can take a few minutes to appear"
	if status != http.StatusOK {
		r.Detail = fmt.Sprintf("meta-data/iam/info answered HTTP %d", status)
		if strings.Contains(strings.ToLower(string(body)), noRoleMarker) {
			r.Detail += ": the instance profile " + noRoleMarker
			r.Fix = addRole
			return r
		}
		r.Fix = "check the instance profile association: `aws ec2 describe-iam-instance-profile-associations --filters Name=instance-id,Values=" + instanceID + "`"
		return r
	}
	var a imdsIAMAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		if strings.Contains(strings.ToLower(string(body)), noRoleMarker) {
			r.Detail = "meta-data/iam/info: the instance profile " + noRoleMarker
			r.Fix = addRole
			return r
		}
		r.Detail = fmt.Sprintf("meta-data/iam/info is not JSON (%v): %s", err, snippet(body))
		r.Fix = "retry; if it persists, re-associate the instance profile"
		return r
	}
	name := profileNameOf(a.InstanceProfileArn)
	switch {
	case strings.Contains(strings.ToLower(a.Message+" "+a.Code), noRoleMarker):
		r.Detail = fmt.Sprintf("instance profile %s %s (Code %q: %s)", orUnknown(a.InstanceProfileArn), noRoleMarker, a.Code, a.Message)
		r.Fix = strings.Replace(addRole, "PROFILE_NAME", name, 1)
	case strings.EqualFold(a.Code, "Success"):
		r.Status = OK
		r.Detail = fmt.Sprintf("instance profile %s (id %s)", a.InstanceProfileArn, a.InstanceProfileId)
	case strings.EqualFold(a.Code, "InstanceProfileNotFound"):
		r.Detail = fmt.Sprintf("Code InstanceProfileNotFound for instance profile %s (id %s)%s", orUnknown(a.InstanceProfileArn), orUnknown(a.InstanceProfileId), withMessage(a.Message))
		r.Fix = "the instance profile was deleted, or deleted and re-created under the same name (a new InstanceProfileId). Compare the id above with " +
			"`aws ec2 describe-instances --instance-ids " + instanceID + " --query 'Reservations[].Instances[].IamInstanceProfile'` and " +
			"`aws iam get-instance-profile --instance-profile-name " + name + " --query InstanceProfile.InstanceProfileId`; " +
			"then re-associate it: `aws ec2 replace-iam-instance-profile-association --association-id ASSOCIATION_ID --iam-instance-profile Name=" + name + "`"
	default:
		r.Detail = fmt.Sprintf("Code %q for instance profile %s%s", a.Code, orUnknown(a.InstanceProfileArn), withMessage(a.Message))
		r.Fix = "check the profile and its role: `aws iam get-instance-profile --instance-profile-name " + name + "`"
	}
	return r
}

// judgeRoleCredentials turns the answers of
// meta-data/iam/security-credentials/ (role == "" when it listed no role)
// and .../<role> into imds.role_credentials.
func judgeRoleCredentials(role string, status int, body []byte) Result {
	r := Result{Item: ItemIMDSRoleCredentials, Status: Fail}
	if role == "" {
		r.Detail = fmt.Sprintf("meta-data/iam/security-credentials/ lists no role (HTTP %d): the instance profile contains no role", status)
		r.Fix = "`aws iam add-role-to-instance-profile --instance-profile-name PROFILE_NAME --role-name ecsInstanceRole`; the role needs the AmazonEC2ContainerServiceforEC2Role managed policy and a trust policy for ec2.amazonaws.com"
		return r
	}
	if status != http.StatusOK {
		r.Detail = fmt.Sprintf("meta-data/iam/security-credentials/%s answered HTTP %d", role, status)
		r.Fix = "retry; if it persists, re-associate the instance profile"
		return r
	}
	var a imdsIAMAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		// Do not quote the body: it may hold credentials.
		r.Detail = fmt.Sprintf("meta-data/iam/security-credentials/%s is not JSON: %v", role, err)
		r.Fix = "retry; if it persists, re-associate the instance profile"
		return r
	}
	switch {
	case strings.EqualFold(a.Code, "Success"):
		r.Status = OK
		r.Detail = fmt.Sprintf("role %s: temporary credentials issued (type %s, expire %s)", role, orUnknown(a.Type), orUnknown(a.Expiration))
	case strings.EqualFold(a.Code, "AssumeRoleUnauthorizedAccess"):
		r.Detail = fmt.Sprintf("role %s: Code AssumeRoleUnauthorizedAccess%s: EC2 may not assume the role", role, withMessage(a.Message))
		r.Fix = "the role's trust policy must allow ec2.amazonaws.com to sts:AssumeRole: `aws iam get-role --role-name " + role +
			" --query Role.AssumeRolePolicyDocument > trust.json && ecs-remediator lint-trust-policy trust.json --for instance`, then `aws iam update-assume-role-policy --role-name " + role +
			" --policy-document file://trust.json`. The container instance role also needs the AmazonEC2ContainerServiceforEC2Role managed policy"
	default:
		r.Detail = fmt.Sprintf("role %s: Code %q%s", role, a.Code, withMessage(a.Message))
		r.Fix = "check the role exists and its trust policy allows ec2.amazonaws.com: `aws iam get-role --role-name " + role + "`"
	}
	return r
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown)"
	}
	return s
}

func withMessage(m string) string {
	if m == "" {
		return ""
	}
	return ": " + m
}
