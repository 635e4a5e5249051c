package doctor

import "github.com/ecs-remediator/ecs-remediator/pkg/finding"

// Status and Result are the findings vocabulary of pkg/finding: doctor's
// four statuses (ok, warn, fail, skip) are a contract of `doctor --json`.
type (
	Status = finding.Status
	Result = finding.Result
)

const (
	OK   = finding.OK   // works
	Warn = finding.Warn // works, but something is risky or incomplete
	Fail = finding.Fail // broken: tasks or the agent will not get credentials
	Skip = finding.Skip // could not be checked here; Detail says why
)

// Failed reports whether any result is a failure. Warnings and skips are
// not failures.
func Failed(rs []Result) bool { return finding.Failed(rs) }

// Item ids. They are documented in the package comment and must not change.
const (
	ItemAgentUnit              = "agent.unit"
	ItemAgentIntrospection     = "agent.introspection"
	ItemCredentialsEndpoint    = "credentials.endpoint"
	ItemCredentialsBridgePath  = "credentials.bridge_path"
	ItemIMDSReachable          = "imds.reachable"
	ItemIMDSv2                 = "imds.v2"
	ItemIMDSInstanceProfile    = "imds.instance_profile"
	ItemIMDSInstanceProfileInf = "imds.instance_profile_info"
	ItemIMDSRoleCredentials    = "imds.role_credentials"
	ItemTasksCredentialsEnv    = "tasks.credentials_env"
)
