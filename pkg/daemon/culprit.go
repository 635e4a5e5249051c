package daemon

import (
	"strings"

	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
	"github.com/ecs-remediator/ecs-remediator/pkg/watch"
)

// cause is what the events that asked for one reconcile said about who
// made the drift. Only nf_tables names a process (the committing one, from
// NFT_MSG_NEWGEN); files, sysctls and the legacy backend do not, and the
// daemon says so instead of guessing.
type cause struct {
	nft []string // culprits of the nf_tables transactions, in order, each once
}

// Unknown is the culprit of a change no event named a process for.
const Unknown = "unknown (only nf_tables names the process that changed a rule; files, sysctls and the legacy iptables backend do not)"

func (c *cause) add(ev watch.Event) {
	if ev.Source != watch.SourceNftables || ev.Culprit == "" {
		return
	}
	for _, s := range c.nft {
		if s == ev.Culprit {
			return
		}
	}
	if len(c.nft) < maxCulprits {
		c.nft = append(c.nft, ev.Culprit)
	}
}

// maxCulprits bounds the list (a burst of transactions by many processes).
const maxCulprits = 5

// next is the cause the following reconcile starts from: empty.
func (c cause) next() cause { return cause{} }

// culprit names who made the drift change ch repairs: the processes that
// committed nf_tables transactions since the last reconcile, for a rule;
// Unknown otherwise.
func (c cause) culprit(ch finding.Change) string {
	rule := strings.HasPrefix(ch.Target, "iptables ") || strings.HasPrefix(ch.Target, "ip6tables ")
	if rule && len(c.nft) > 0 {
		return strings.Join(c.nft, ", ")
	}
	return Unknown
}
