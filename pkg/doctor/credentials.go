package doctor

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
)

// agentCredentialsMarkers are what the ECS agent says when the credentials
// path is asked without an id: HTTP 400 with
// {"code":"NoIdInRequest","message":"CredentialsV2Request: No ID in the request"}
// (newer agents: "... No Credential ID in the request"). Matched loosely
// and case-insensitively so that wording changes keep working.
var agentCredentialsMarkers = [][]byte{
	[]byte("noidinrequest"),
	[]byte("no id in the request"),
	[]byte("no credential id"),
	[]byte("credentialsv2request"),
	[]byte("credentialsv1request"),
}

// looksLikeAgent reports whether an answer of the credentials path came
// from the ECS agent.
func looksLikeAgent(body []byte) bool {
	low := bytes.ToLower(body)
	for _, m := range agentCredentialsMarkers {
		if bytes.Contains(low, m) {
			return true
		}
	}
	return false
}

// checkCredentialsEndpoint asks the credentials path without an id. The
// request goes from the host through nat OUTPUT (REDIRECT to
// 127.0.0.1:51679); bridge-mode containers come through nat PREROUTING,
// which `check` verifies rule by rule.
func checkCredentialsEndpoint(ctx context.Context, c Config) Result {
	r := Result{Item: ItemCredentialsEndpoint}
	a, err := getAnswer(ctx, c.HTTPClient, http.MethodGet, c.CredentialsURL, nil)
	if err != nil {
		r.Status = Fail
		switch classify(err) {
		case netRefused:
			// A REDIRECT/DNAT rule turned the packet into a local one and
			// the kernel answered with a reset: nothing listens there.
			r.Detail = fmt.Sprintf("GET %s: connection refused: a NAT rule redirects the request, but nothing listens on 127.0.0.1:51679", c.CredentialsURL)
			r.Fix = "is the agent running? (`systemctl status ecs`, `docker ps --filter name=ecs-agent`); " +
				"or the NAT rule for 169.254.170.2 points at the wrong port, or (rarer) there is no NAT rule and a firewall rejects the connection: run `ecs-remediator check` to see which"
		case netTimeout:
			r.Detail = fmt.Sprintf("GET %s: no answer within %s: packets to 169.254.170.2 are dropped or not routed", c.CredentialsURL, c.Timeout)
			r.Fix = "no NAT rule redirects 169.254.170.2:80 to 127.0.0.1:51679 (the packets then leave the host and nobody answers), " +
				"or a firewall drops them (an OUTPUT/INPUT policy of DROP, as on CIS-hardened hosts): run `ecs-remediator check`, then `ecs-remediator apply`; look at `iptables -S` and `iptables -t nat -S`"
		case netUnreachable:
			r.Detail = fmt.Sprintf("GET %s: network unreachable: the host has no route to 169.254.170.2", c.CredentialsURL)
			r.Fix = "the routing table has no route (not even a default route) for 169.254.170.2: check `ip route get 169.254.170.2`, then run `ecs-remediator check`"
		default:
			r.Detail = fmt.Sprintf("GET %s: %v", c.CredentialsURL, err)
			r.Fix = "run `ecs-remediator check` for the NAT rules and route_localnet, and check that the ECS agent runs"
		}
		return r
	}
	// The body is never quoted: an answer of the credentials path may
	// hold a SecretAccessKey (status, content type and length say enough).
	if looksLikeAgent(a.body) {
		r.Status = OK
		r.Detail = fmt.Sprintf("the ECS agent answered through 169.254.170.2 (%s): the NAT path to 127.0.0.1:51679 works", a.describe())
		return r
	}
	r.Status = Warn
	r.Detail = fmt.Sprintf("something answered at %s, but not like the ECS agent (%s)", c.CredentialsURL, a.describe())
	r.Fix = "check that the NAT rules send 169.254.170.2:80 to 127.0.0.1:51679 (`ecs-remediator check`) and that the ECS agent, not another service, listens there (`ss -ltnp 'sport = :51679'`)"
	return r
}
