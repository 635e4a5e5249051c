package netfilter

import (
	"strconv"
	"strings"
)

// Stable finding item ids.
const (
	ItemCredentialsDNAT     = "network.credentials_dnat"
	ItemCredentialsRedirect = "network.credentials_redirect"
	ItemLocalhostGuard      = "network.localhost_guard"
	ItemIntrospectionBlock  = "network.introspection_block"
	ItemIMDSBlock           = "network.imds_block"
	ItemOtherBackend        = "network.other_backend"
	ItemPersistIptables     = "persist.iptables"
	ItemPersistService      = "persist.restore_service"
)

const (
	credentialsAddr = "169.254.170.2"
	imdsAddr        = "169.254.169.254"
)

// placement says where a missing rule goes.
type placement int

const (
	// appendEnd: at the end of the chain (ecs-init's -A for the NAT rules).
	appendEnd placement = iota
	// top: at the top of the chain, in group order relative to our other
	// rules of the chain (ecs-init's -I for the INPUT rules).
	top
)

// want is one rule this package owns.
type want struct {
	item   string
	v6     bool
	table  string
	chain  string
	args   []string // ecs-init's spelling
	key    string
	needle string // a literal every spelling of the rule contains
	place  placement
	order  int // order within the chain's group (top placement)
	// required: the rule must exist. A known but not required rule (the
	// docker0 ACCEPT while no docker0 exists) is deduplicated and kept in
	// order, never added or removed.
	required bool
	// before: the key of a rule of the same chain this one must precede.
	before string
	// newChain: the chain is a user chain that is created when missing.
	newChain bool
	what     string // for details: what the rule does
}

func (w *want) spell() string { return quoteArgs(w.args) }

// family names the command family of the rule for targets and plans.
func (w *want) family() string {
	if w.v6 {
		return "ip6tables"
	}
	return "iptables"
}

// wants builds the rules the configuration asks for. docker0 tells whether
// a docker0 bridge exists; ip6 whether the IPv6 rules apply.
func (c Config) wants(docker0, ip6 bool) []want {
	var ws []want
	add := func(w want) int {
		k, _, err := ruleKey(quoteArgs(w.args), w.v6)
		if err != nil {
			panic("netfilter: bad built-in rule " + quoteArgs(w.args) + ": " + err.Error())
		}
		w.key = k
		ws = append(ws, w)
		return len(ws) - 1
	}
	agent := strconv.Itoa(c.AgentPort)
	if c.Credentials {
		add(want{item: ItemCredentialsDNAT, table: "nat", chain: "PREROUTING", required: true, place: appendEnd,
			needle: credentialsAddr,
			args:   strings.Fields("-p tcp -d " + credentialsAddr + " --dport 80 -j DNAT --to-destination 127.0.0.1:" + agent),
			what:   "containers' requests to " + credentialsAddr + ":80 go to the agent on 127.0.0.1:" + agent})
		add(want{item: ItemCredentialsRedirect, table: "nat", chain: "OUTPUT", required: true, place: appendEnd,
			needle: credentialsAddr,
			args:   strings.Fields("-p tcp -d " + credentialsAddr + " --dport 80 -j REDIRECT --to-ports " + agent),
			what:   "host-network tasks' requests to " + credentialsAddr + ":80 go to the agent on port " + agent})
	}
	intro := strconv.Itoa(c.IntrospectionPort)
	for _, v6 := range []bool{false, true} {
		if v6 && !ip6 {
			break
		}
		if c.BlockIntrospection {
			acc := add(want{item: ItemIntrospectionBlock, v6: v6, table: "filter", chain: "INPUT", place: top, order: 0,
				required: docker0, needle: intro,
				args: strings.Fields("-p tcp --dport " + intro + " -i docker0 -j ACCEPT"),
				what: "bridge-mode containers reach the agent's introspection port " + intro + " through docker0"})
			drop := add(want{item: ItemIntrospectionBlock, v6: v6, table: "filter", chain: "INPUT", place: top, order: 1,
				required: true, needle: intro,
				args: strings.Fields("-p tcp --dport " + intro + " ! -i lo -j DROP"),
				what: "the agent's introspection port " + intro + " is closed to the network"})
			ws[acc].before = ws[drop].key
		}
		if c.LocalhostGuard && !v6 {
			add(want{item: ItemLocalhostGuard, table: "filter", chain: "INPUT", place: top, order: 2,
				required: true, needle: "127.",
				args: []string{"--dst", "127.0.0.0/8", "!", "--src", "127.0.0.0/8", "-m", "conntrack", "!", "--ctstate", "RELATED,ESTABLISHED,DNAT", "-j", "DROP"},
				what: "with route_localnet=1, services bound to 127.0.0.1 stay closed to the network"})
		}
	}
	if c.BlockIMDS {
		add(want{item: ItemIMDSBlock, table: "filter", chain: "DOCKER-USER", place: top, order: 0,
			required: true, needle: imdsAddr, newChain: true,
			args: strings.Fields("-i docker+ -d " + imdsAddr + "/32 -j DROP"),
			what: "bridge-mode containers cannot use the instance role through IMDS (" + imdsAddr + ")"})
	}
	return ws
}
