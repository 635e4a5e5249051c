package logging

import "go.uber.org/zap"

// MESSAGE_IDs of the entries an operator may want to find or alert on.
// Each has an entry in systemd/ecs-remediator.catalog
// (`journalctl -x` shows it). They are fixed forever: never change or
// reuse one; add a new id for a new kind of message.
const (
	// DriftRepaired: an item had drifted and was repaired (one per change).
	DriftRepaired = "5c620fe93edf42679e0e7d6686fc5f36"
	// AgentRestarted: the ECS agent was restarted to pick up a repair.
	AgentRestarted = "1f6a45a9f8e846b39a9527c7334a948c"
	// AgentRestartDeferred: a restart is needed but waits for the rate
	// limit, or cannot be made (agent.restart: never, D-Bus failing).
	AgentRestartDeferred = "ab7ccc0ba0204d78b44c461a6bfbfbb5"
	// FightDetected: another tool keeps undoing a repair.
	FightDetected = "8a172015304f43d3aec89ee0fc78a1db"
	// RepairImpossible: an item cannot be observed or repaired.
	RepairImpossible = "c35a17c2e06b4ea08bca22e24e85c28f"
	// DoctorFailure: a diagnosis check (credentials, IMDS, agent) fails.
	DoctorFailure = "75d14f664231488a8977f6e2dd32cffe"
	// DoctorRecovered: a diagnosis check that failed passes again.
	DoctorRecovered = "0397f0dda9424ed4bf8c07a9626e33cd"
	// PolicyReloaded: the policy file was read again and is in force.
	PolicyReloaded = "6a5f5764cab24a99a23301d93db8cbc5"
	// PolicyRejected: a reloaded policy file was invalid; the old one stays.
	PolicyRejected = "668394c01d1c4c2291e2de5a1b360443"
)

// MessageIDs lists every id above with its Go name (the catalog test
// checks that each has exactly one catalog entry).
var MessageIDs = map[string]string{
	"DriftRepaired":        DriftRepaired,
	"AgentRestarted":       AgentRestarted,
	"AgentRestartDeferred": AgentRestartDeferred,
	"FightDetected":        FightDetected,
	"RepairImpossible":     RepairImpossible,
	"DoctorFailure":        DoctorFailure,
	"DoctorRecovered":      DoctorRecovered,
	"PolicyReloaded":       PolicyReloaded,
	"PolicyRejected":       PolicyRejected,
}

// MessageID is the zap field that becomes journald's MESSAGE_ID.
func MessageID(id string) zap.Field { return zap.String("message_id", id) }
