package doctor

import (
	"context"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ecs-remediator/ecs-remediator/test/nstest"
)

// agentCredentialsHandler answers like the ECS agent's credentials
// handler (agent/handlers/v1/credentials_handler.go) when asked without an
// id: HTTP 400 with its ErrorMessage JSON.
func agentCredentialsHandler(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, "/v2/credentials") {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	_, _ = w.Write([]byte(`{"code":"NoIdInRequest","message":"CredentialsV2Request: No ID in the request","HTTPErrorCode":400}`))
}

// secretKey is what no detail may ever show.
const secretKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

func secretHandler(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"AccessKeyId":"ASIAEXAMPLE","SecretAccessKey":"` + secretKey + `","Token":"x"}`))
}

func TestCredentialsEndpointInNamespace(t *testing.T) {
	const redirect = "-t nat -A OUTPUT -p tcp -d 169.254.170.2 --dport 80 -j REDIRECT --to-ports 51679"
	type tcase struct {
		name      string
		rule      bool
		route     bool
		handler   http.HandlerFunc // nil: nothing listens on 127.0.0.1:51679
		extra     string           // more iptables arguments, one rule
		want      Status
		detailHas string
	}
	cases := []tcase{
		{"agent answers through the redirect", true, true, agentCredentialsHandler, "", OK, "HTTP 400, application/json, 99 bytes"},
		// Whatever answers, its body is never quoted: it may hold a key.
		{"an answer with credentials", true, true, secretHandler, "", Warn, "HTTP 200, application/json"},
		{"rule but nothing listens", true, true, nil, "", Fail, "nothing listens on 127.0.0.1:51679"},
		{"no rule", false, true, agentCredentialsHandler, "", Fail, "dropped or not routed"},
		{"input policy drop (CIS)", true, true, agentCredentialsHandler, "-P INPUT DROP", Fail, "dropped or not routed"},
		{"another service answers", true, true, http.NotFound, "", Warn, "not like the ECS agent"},
		{"no route at all", false, false, nil, "", Fail, "network unreachable"},
	}
	for _, b := range nstest.Backends {
		for _, tc := range cases {
			t.Run(b.Name+"/"+tc.name, func(t *testing.T) {
				nstest.Require(t, b.Iptables, "ip")
				nstest.Run(t, func() {
					if err := os.WriteFile("/proc/sys/net/ipv4/conf/all/route_localnet", []byte("1"), 0o644); err != nil {
						t.Fatalf("route_localnet in the namespace: %v", err)
					}
					if tc.route {
						nstest.Sh(t, "ip route add 169.254.170.2/32 dev lo src 127.0.0.1")
					}
					if tc.rule {
						nstest.Sh(t, b.Iptables+" "+redirect)
					}
					if tc.extra != "" {
						nstest.Sh(t, b.Iptables+" "+tc.extra)
					}
					if tc.handler != nil {
						ln, err := net.Listen("tcp", "127.0.0.1:51679") // created here: lives in the namespace
						if err != nil {
							t.Fatal(err)
						}
						srv := &http.Server{Handler: tc.handler}
						go srv.Serve(ln)
						defer srv.Close()
					}

					dials := make(chan nsDialRequest)
					c := Config{Timeout: 300 * time.Millisecond, HTTPClient: nsHTTPClient(dials)}.withDefaults()
					done := make(chan Result, 1)
					go func() {
						ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
						defer cancel()
						done <- checkCredentialsEndpoint(ctx, c)
					}()
					r := serveDials(dials, done, c.Timeout)
					if strings.Contains(r.Detail+r.Fix, secretKey) || strings.Contains(r.Detail, "{") {
						t.Fatalf("the answer's body is quoted: %+v", r)
					}
					if r.Item != ItemCredentialsEndpoint || r.Status != tc.want || !strings.Contains(r.Detail, tc.detailHas) {
						t.Fatalf("got %+v, want %s with %q", r, tc.want, tc.detailHas)
					}
					if (r.Fix == "") != (tc.want == OK) {
						t.Fatalf("fix %q for status %s", r.Fix, r.Status)
					}
				})
			})
		}
	}
}
