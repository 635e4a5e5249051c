// Package finding holds the vocabulary every enforcer speaks: a Finding is
// what check reports about one item, a Change is one repair that apply made
// (or, in dry-run, would make). It has no side effects and imports nothing
// of the project, so every other package may use it.
package finding

// Status is the state of one item. check's values (ok, warn, drift,
// error) are a contract of `check --json`; doctor's (ok, warn, fail, skip)
// of `doctor --json` and `lint-trust-policy --json`.
type Status string

const (
	OK    Status = "ok"    // the item is as the policy wants it
	Warn  Status = "warn"  // compliant with the policy, but risky or undecidable: says why
	Drift Status = "drift" // the item differs and apply can repair it
	Error Status = "error" // the item could not be observed or repaired

	// A diagnosis (doctor, lint-trust-policy) cannot repair, so it says
	// fail and skip instead of drift and error.
	Fail Status = "fail" // broken: tasks or the agent will not get credentials
	Skip Status = "skip" // could not be checked here; Detail says why
)

// Result is one line of a diagnosis (doctor, lint-trust-policy): ok, warn,
// fail or skip.
type Result struct {
	Item   string `json:"item"`   // stable id
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

// Finding is one line of check's report. Item ids are stable and documented
// in README.md ("Findings").
type Finding struct {
	Item   string `json:"item"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	Fix    string `json:"fix"`
}

// Warn marks an ok finding as a warning: compliant with the policy but
// risky (for example the localhost guard turned off by policy). A warning
// never makes a host non-compliant; a drift or error stays what it is.
func (f *Finding) Warn() {
	if f.Status == OK {
		f.Status = Warn
	}
}

// Warned reports whether the finding is a warning.
func (f Finding) Warned() bool { return f.Status == Warn }

// Change is one repair: what drifted, what was done and why. The reconciler
// logs one line per Change and the daemon uses the flags to decide whether
// the ECS agent must be restarted.
type Change struct {
	Item   string // stable item id, as in Finding
	Action string // short verb phrase: "rewrote line 4", "appended", "inserted rule", "deleted duplicate", "wrote file"
	Target string // file path, "iptables nat OUTPUT", "/proc/sys/net/ipv4/conf/all/route_localnet"
	Old    string // effective value before ("" when absent)
	New    string // effective value after
	Reason string // why: what the drift was, in words an operator understands
	// AgentRestart is true when the ECS agent reads the target only at start
	// (ecs.config, the ecs unit's drop-ins): the agent must be restarted.
	AgentRestart bool
	// SystemdReload is true when the target is a unit file or drop-in.
	SystemdReload bool
	// Duplicate is true when the repair only removed extra copies of
	// something that was present (ecs-init adds its rules without
	// checking): nothing of ours had been undone, so it is never a fight.
	Duplicate bool
}

// Compliant reports whether no finding is drift or error.
func Compliant(fs []Finding) bool {
	for _, f := range fs {
		if f.Status != OK && f.Status != Warn {
			return false
		}
	}
	return true
}
