package doctor

// Status is the verdict on one item. The four values are a contract of
// `doctor --json`.
type Status string

const (
	OK   Status = "ok"   // works
	Warn Status = "warn" // works, but something is risky or incomplete
	Fail Status = "fail" // broken: tasks or the agent will not get credentials
	Skip Status = "skip" // could not be checked here; Detail says why
)

// Result is one line of doctor's report.
type Result struct {
	Item   string `json:"item"`   // stable id, see the package documentation
	Status Status `json:"status"` // ok, warn, fail or skip
	Detail string `json:"detail"` // what was seen
	Fix    string `json:"fix"`    // what to do ("" when ok)
}

// Failed reports whether any result is a failure. Warnings and skips are
// not failures.
func Failed(rs []Result) bool {
	for _, r := range rs {
		if r.Status == Fail {
			return true
		}
	}
	return false
}

// Item ids. They are documented in the package comment and must not change.
const (
	ItemAgentUnit              = "agent.unit"
	ItemAgentIntrospection     = "agent.introspection"
	ItemCredentialsEndpoint    = "credentials.endpoint"
	ItemIMDSReachable          = "imds.reachable"
	ItemIMDSv2                 = "imds.v2"
	ItemIMDSInstanceProfile    = "imds.instance_profile"
	ItemIMDSInstanceProfileInf = "imds.instance_profile_info"
	ItemIMDSRoleCredentials    = "imds.role_credentials"
	ItemTasksCredentialsEnv    = "tasks.credentials_env"
)
