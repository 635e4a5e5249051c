package doctor

import (
	"context"
	"net"
	"testing"
	"time"
)

// TestRun wires every check against real peers on this machine: the IMDS
// simulator, an agent introspection server, a credentials URL where
// nothing listens, a unit-state function and the real /proc.
func TestRun(t *testing.T) {
	c := Config{
		IMDSEndpoint:     startAEMM(t, ""),
		CredentialsURL:   closedURL(t, "/v2/credentials/"),
		IntrospectionURL: agentServer(t, `{"Cluster":"default","ContainerInstanceArn":"arn:aws:ecs:us-east-1:123456789012:container-instance/default/abc","Version":"Amazon ECS Agent - v1.89.0"}`),
		UnitState:        func(context.Context, string) (string, error) { return "active", nil },
		Timeout:          2 * time.Second,
		TaskBridges:      []string{}, // never probe this machine's own bridges
	}
	rs := Run(context.Background(), c)
	order := []string{ItemAgentUnit, ItemAgentIntrospection, ItemCredentialsEndpoint, ItemCredentialsBridgePath,
		ItemIMDSReachable, ItemIMDSv2, ItemIMDSInstanceProfile, ItemIMDSInstanceProfileInf, ItemIMDSRoleCredentials,
		ItemTasksCredentialsEnv}
	if len(rs) != len(order) {
		t.Fatalf("got %d results, want %d: %+v", len(rs), len(order), rs)
	}
	for i, r := range rs {
		if r.Item != order[i] {
			t.Fatalf("result %d is %s, want %s", i, r.Item, order[i])
		}
	}
	wantStatus := map[string]Status{
		ItemAgentUnit: OK, ItemAgentIntrospection: OK, ItemCredentialsEndpoint: Fail, ItemCredentialsBridgePath: Skip,
		ItemIMDSReachable: OK, ItemIMDSv2: OK, ItemIMDSInstanceProfile: OK, ItemIMDSInstanceProfileInf: OK, ItemIMDSRoleCredentials: OK,
	}
	for _, r := range rs {
		if w, ok := wantStatus[r.Item]; ok && r.Status != w {
			t.Errorf("%s = %s (%s), want %s", r.Item, r.Status, r.Detail, w)
		}
	}
	if !Failed(rs) {
		t.Fatal("Failed = false with credentials.endpoint failing")
	}
}

// silentServer accepts connections and never answers: the worst case for
// a deadline.
func silentServer(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				<-done
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() { ln.Close(); close(done) })
	return "http://" + ln.Addr().String()
}

// TestRunSilentPeers: when every peer accepts and never answers, each
// network item fails or is skipped for lack of an answer, none hangs.
func TestRunSilentPeers(t *testing.T) {
	s := silentServer(t)
	rs := Run(context.Background(), Config{
		IMDSEndpoint: s, CredentialsURL: s + "/v2/credentials/", IntrospectionURL: s + "/v1/metadata",
		SysRoot: writeSys(t, map[string]string{"class/dmi/id/sys_vendor": "Amazon EC2"}),
		Timeout: 200 * time.Millisecond, SkipBridgePath: true,
	})
	for _, r := range rs {
		switch r.Item {
		case ItemAgentIntrospection, ItemCredentialsEndpoint, ItemIMDSReachable:
			if r.Status != Fail {
				t.Errorf("%s = %s (%s), want fail", r.Item, r.Status, r.Detail)
			}
		}
	}
}

// BenchmarkRunSilentPeers measures a whole doctor run when every peer
// accepts and never answers, with a 200ms Timeout: the groups run
// concurrently, so one run should take about one Timeout, not three.
func BenchmarkRunSilentPeers(b *testing.B) {
	s := silentServer(b)
	c := Config{
		IMDSEndpoint: s, CredentialsURL: s + "/v2/credentials/", IntrospectionURL: s + "/v1/metadata",
		ProcRoot: b.TempDir(), Timeout: 200 * time.Millisecond, SkipBridgePath: true,
	}
	for b.Loop() {
		Run(context.Background(), c)
	}
}

// BenchmarkRunRefused measures a run when nothing listens anywhere
// (refused connections, the common off-EC2 case).
func BenchmarkRunRefused(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	u := "http://" + ln.Addr().String()
	ln.Close()
	c := Config{IMDSEndpoint: u, CredentialsURL: u + "/v2/credentials/", IntrospectionURL: u + "/v1/metadata", ProcRoot: b.TempDir(), Timeout: 2 * time.Second, SkipBridgePath: true}
	for b.Loop() {
		Run(context.Background(), c)
	}
}

// BenchmarkIMDSHealthy measures the five imds.* checks against the IMDS
// simulator (token PUT, v1 probe and five metadata GETs through the SDK).
func BenchmarkIMDSHealthy(b *testing.B) {
	c := Config{IMDSEndpoint: startAEMM(b, ""), Timeout: 2 * time.Second}.withDefaults()
	for b.Loop() {
		checkIMDS(context.Background(), c)
	}
}

// BenchmarkTasksCredentialsEnv measures one scan of this machine's /proc.
func BenchmarkTasksCredentialsEnv(b *testing.B) {
	for b.Loop() {
		checkTasksCredentialsEnv("/proc")
	}
}
