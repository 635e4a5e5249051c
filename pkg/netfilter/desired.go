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
	// satisfies: when this (known, not required) rule is present, the
	// rules with these keys are not added (ecs-init's older spelling of
	// the same protection).
	satisfies []string
	what      string // for details: what the rule does
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
// the introspection ACCEPT must exist (for Docker's default bridge,
// c.bridge, docker0 when unset); ip6 whether the IPv6 rules apply.
func (c Config) wants(docker0, ip6 bool) []want {
	bridge := c.bridge
	if bridge == "" {
		bridge = "docker0"
	}
	block := c.introspectionEnforced()
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
		if block {
			acc := add(want{item: ItemIntrospectionBlock, v6: v6, table: "filter", chain: "INPUT", place: top, order: 0,
				required: docker0, needle: intro,
				args: strings.Fields("-p tcp --dport " + intro + " -i " + bridge + " -j ACCEPT"),
				what: "bridge-mode containers reach the agent's introspection port " + intro + " through " + bridge})
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
			add(rawGuard())
		}
	}
	ws = append(ws, c.credpathWants()...)
	if c.BlockIMDS {
		add(want{item: ItemIMDSBlock, table: "filter", chain: "DOCKER-USER", place: top, order: 0,
			required: true, needle: imdsAddr, newChain: true,
			args: strings.Fields("-i docker+ -d " + imdsAddr + "/32 -j DROP"),
			what: "bridge-mode containers cannot use the instance role through IMDS (" + imdsAddr + ")"})
	}
	return ws
}

// validIfName reports whether s can be an interface name in a rule (the
// value comes from ecs.config).
func validIfName(s string) bool {
	if len(s) == 0 || len(s) > 15 {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r == '/' || r == '!' || r > '~' || r == '"' || r == '\'' {
			return false
		}
	}
	return true
}

// withOlder adds to ws the known spellings of older ecs-init versions
// that stand for one of ours: where one is present, ours is not added
// next to it. ecs-init before 1.97 closed the introspection port with one
// IPv4 rule on one interface (ECS_OFFHOST_INTROSPECTION_INTERFACE_NAME,
// default eth0) and no ACCEPT (docs/ecs-init.md, "Versions").
func (c Config) withOlder(ws []want) []want {
	var acc, drop string
	for _, w := range ws {
		if w.item == ItemIntrospectionBlock && !w.v6 {
			if w.required && w.order == 1 {
				drop = w.key
			} else if w.order == 0 {
				acc = w.key
			}
		}
	}
	if drop == "" {
		return ws
	}
	ifc := c.sw.OffhostInterface
	if ifc == "" {
		ifc = "eth0"
	}
	if !validIfName(ifc) {
		return ws
	}
	intro := strconv.Itoa(c.IntrospectionPort)
	w := want{item: ItemIntrospectionBlock, table: "filter", chain: "INPUT", place: top, order: 1,
		needle: intro, satisfies: []string{acc, drop},
		args: strings.Fields("-p tcp -i " + ifc + " --dport " + intro + " -j DROP"),
		what: "ecs-init before 1.97 closes the introspection port " + intro + " on " + ifc}
	k, _, err := ruleKey(quoteArgs(w.args), false)
	if err != nil {
		return ws
	}
	w.key = k
	return append(ws, w)
}
