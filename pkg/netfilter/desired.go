package netfilter

import (
	"strconv"
	"strings"

	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter/rule"
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
	credentialsAddr = rule.CredentialsAddr
	imdsAddr        = "169.254.169.254"
)

// wants builds the rules the configuration asks for. docker0 tells whether
// the introspection ACCEPT must exist (for Docker's default bridge,
// c.bridge, docker0 when unset); ip6 whether the IPv6 rules apply.
func (c Config) wants(docker0, ip6 bool) []rule.Want {
	bridge := c.bridge
	if bridge == "" {
		bridge = "docker0"
	}
	block := c.introspectionEnforced()
	var ws []rule.Want
	add := func(w rule.Want) int {
		k, _, err := rule.Key(rule.Quote(w.Args), w.V6)
		if err != nil {
			panic("netfilter: bad built-in rule " + rule.Quote(w.Args) + ": " + err.Error())
		}
		w.Key = k
		ws = append(ws, w)
		return len(ws) - 1
	}
	agent := strconv.Itoa(c.AgentPort)
	if c.Credentials {
		add(rule.Want{Item: ItemCredentialsDNAT, Table: "nat", Chain: "PREROUTING", Required: true, Place: rule.Append,
			Needle: credentialsAddr,
			Args:   strings.Fields("-p tcp -d " + credentialsAddr + " --dport 80 -j DNAT --to-destination 127.0.0.1:" + agent),
			What:   "containers' requests to " + credentialsAddr + ":80 go to the agent on 127.0.0.1:" + agent})
		add(rule.Want{Item: ItemCredentialsRedirect, Table: "nat", Chain: "OUTPUT", Required: true, Place: rule.Append,
			Needle: credentialsAddr,
			Args:   strings.Fields("-p tcp -d " + credentialsAddr + " --dport 80 -j REDIRECT --to-ports " + agent),
			What:   "host-network tasks' requests to " + credentialsAddr + ":80 go to the agent on port " + agent})
	}
	intro := strconv.Itoa(c.IntrospectionPort)
	for _, v6 := range []bool{false, true} {
		if v6 && !ip6 {
			break
		}
		if block {
			acc := add(rule.Want{Item: ItemIntrospectionBlock, V6: v6, Table: "filter", Chain: "INPUT", Place: rule.Top, Order: 0,
				Required: docker0, Needle: intro,
				Args: strings.Fields("-p tcp --dport " + intro + " -i " + bridge + " -j ACCEPT"),
				What: "bridge-mode containers reach the agent's introspection port " + intro + " through " + bridge})
			drop := add(rule.Want{Item: ItemIntrospectionBlock, V6: v6, Table: "filter", Chain: "INPUT", Place: rule.Top, Order: 1,
				Required: true, Needle: intro,
				Args: strings.Fields("-p tcp --dport " + intro + " ! -i lo -j DROP"),
				What: "the agent's introspection port " + intro + " is closed to the network"})
			ws[acc].Before = ws[drop].Key
		}
		if c.LocalhostGuard && !v6 {
			add(rule.Want{Item: ItemLocalhostGuard, Table: "filter", Chain: "INPUT", Place: rule.Top, Order: 2,
				Required: true, Needle: "127.",
				Args: []string{"--dst", "127.0.0.0/8", "!", "--src", "127.0.0.0/8", "-m", "conntrack", "!", "--ctstate", "RELATED,ESTABLISHED,DNAT", "-j", "DROP"},
				What: "with route_localnet=1, services bound to 127.0.0.1 stay closed to the network"})
			add(rawGuard())
		}
	}
	ws = append(ws, c.credpathWants()...)
	if c.BlockIMDS {
		add(rule.Want{Item: ItemIMDSBlock, Table: "filter", Chain: "DOCKER-USER", Place: rule.Top, Order: 0,
			Required: true, Needle: imdsAddr, NewChain: true,
			Args: strings.Fields("-i docker+ -d " + imdsAddr + "/32 -j DROP"),
			What: "bridge-mode containers cannot use the instance role through IMDS (" + imdsAddr + ")"})
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
func (c Config) withOlder(ws []rule.Want) []rule.Want {
	var acc, drop string
	for _, w := range ws {
		if w.Item == ItemIntrospectionBlock && !w.V6 {
			if w.Required && w.Order == 1 {
				drop = w.Key
			} else if w.Order == 0 {
				acc = w.Key
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
	w := rule.Want{Item: ItemIntrospectionBlock, Table: "filter", Chain: "INPUT", Place: rule.Top, Order: 1,
		Needle: intro, Satisfies: []string{acc, drop},
		Args: strings.Fields("-p tcp -i " + ifc + " --dport " + intro + " -j DROP"),
		What: "ecs-init before 1.97 closes the introspection port " + intro + " on " + ifc}
	k, _, err := rule.Key(rule.Quote(w.Args), false)
	if err != nil {
		return ws
	}
	w.Key = k
	return append(ws, w)
}
