package rule

// CredentialsAddr is the ECS credentials endpoint, the destination our
// nat rules send to the agent. A reader marks a nat rule whose destination
// provably excludes it (Rule.NotOurDst): such a rule can neither be ours
// nor decide before ours.
const CredentialsAddr = "169.254.170.2"

// Placement says where a missing rule goes.
type Placement int

const (
	// Append: at the end of the chain (ecs-init's -A for the NAT rules).
	Append Placement = iota
	// Top: at the top of the chain, in group order relative to our other
	// rules of the chain (ecs-init's -I for the INPUT rules).
	Top
)

// Want is one rule the enforcer owns: how ecs-init spells it, its
// canonical key, and where it goes when missing. What the configuration
// asks for is decided by the enforcer (pkg/netfilter); this is the shape.
type Want struct {
	Item   string // the finding item the rule belongs to
	V6     bool
	Table  string
	Chain  string
	Args   []string // ecs-init's spelling
	Key    string   // the canonical key of Args (see Key)
	Needle string   // a literal every spelling of the rule contains
	Place  Placement
	Order  int // order within the chain's group (top placement)
	// Required: the rule must exist. A known but not required rule (the
	// docker0 ACCEPT while no docker0 exists) is deduplicated and kept in
	// order, never added or removed.
	Required bool
	// Before: the key of a rule of the same chain this one must precede.
	Before string
	// NewChain: the chain is a user chain that is created when missing.
	NewChain bool
	// Satisfies: when this (known, not required) rule is present, the
	// rules with these keys are not added (ecs-init's older spelling of
	// the same protection).
	Satisfies []string
	What      string // for details: what the rule does
}

// Spell is the rule as ecs-init types it, quoted for a command line.
func (w *Want) Spell() string { return Quote(w.Args) }

// Family names the command family of the rule for targets and plans.
func (w *Want) Family() string {
	if w.V6 {
		return "ip6tables"
	}
	return "iptables"
}
