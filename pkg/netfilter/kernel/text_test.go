package kernel

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter/rule"
)

// fakeRunner answers command lines from a table, as the binaries would,
// and counts the runs.
type fakeRunner struct {
	out  map[string]string
	runs []string
}

func (f *fakeRunner) Run(_ context.Context, _ []byte, name string, args ...string) ([]byte, error) {
	line := strings.Join(append([]string{name}, args...), " ")
	f.runs = append(f.runs, line)
	out, ok := f.out[line]
	if !ok {
		return nil, &CmdError{Cmd: line, Err: errors.New("exit status 1"), Stderr: "iptables: No chain/target/match by that name."}
	}
	return []byte(out), nil
}

var textInterest = rule.InterestOf([]rule.Want{
	{Table: "nat", Chain: "PREROUTING", Key: "k", Needle: "169.254.170.2"},
	{Table: "filter", Chain: "DOCKER-USER", Key: "k2", Needle: "169.254.169.254", NewChain: true},
})

// The text reader with a runner that stands in for the binaries: -S per
// chain, a user chain nobody created reads as missing, only rules with a
// needle are keyed.
func TestTextReadsChains(t *testing.T) {
	f := &fakeRunner{out: map[string]string{
		"iptables -t nat -S PREROUTING": "-P PREROUTING ACCEPT\n-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER\n" +
			"-A PREROUTING -d 169.254.170.2/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 127.0.0.1:51679\n",
		"iptables -t filter -S FORWARD": "-P FORWARD DROP\n-A FORWARD -j DOCKER-USER\n",
	}}
	tr := &Text{Run: f, Cmd: "iptables", Save: "iptables-save"}
	rs, err := tr.Read(context.Background(), textInterest)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"iptables -t nat -S PREROUTING", "iptables -t filter -S FORWARD", "iptables -t filter -S DOCKER-USER"}; strings.Join(f.runs, "; ") != strings.Join(want, "; ") {
		t.Errorf("runs %q, want %q", f.runs, want)
	}
	pre := rs.Chain("nat", "PREROUTING").Rules
	if len(pre) != 2 || pre[0].Key != "" || pre[1].Key == "" {
		t.Errorf("nat PREROUTING %+v: want the Docker jump unkeyed, the DNAT keyed", pre)
	}
	if rs.Chain("filter", "DOCKER-USER").Exists {
		t.Error("DOCKER-USER: -S failed, want a missing chain")
	}
	if !rs.Chain("filter", "FORWARD").Exists || len(rs.Chain("filter", "FORWARD").Rules) != 1 {
		t.Errorf("FORWARD %+v", rs.Chain("filter", "FORWARD"))
	}
}

// Whole: one -save, kept while Unchanged says the same; a parse error
// names the binary.
func TestTextReadsSave(t *testing.T) {
	f := &fakeRunner{out: map[string]string{
		"ip6tables-legacy-save": "*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -d 169.254.170.2/32 -j RETURN\nCOMMIT\n*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n",
	}}
	key := "a"
	tr := &Text{Run: f, Cmd: "ip6tables-legacy", Save: "ip6tables-legacy-save", V6: true, Whole: true, Unchanged: func() string { return key }}
	for i := 0; i < 2; i++ {
		rs, err := tr.Read(context.Background(), textInterest)
		if err != nil {
			t.Fatal(err)
		}
		if !rs.V6 || len(rs.Chain("nat", "PREROUTING").Rules) != 1 || rs.Chain("filter", "DOCKER-USER").Exists {
			t.Fatalf("read %d: %+v", i, rs.Tables)
		}
	}
	if netNS() != 0 && len(f.runs) != 1 {
		t.Errorf("%d runs of -save with the key unchanged, want 1", len(f.runs))
	}
	key = "b"
	f.out["ip6tables-legacy-save"] = "*nat\n-X\n"
	if _, err := tr.Read(context.Background(), textInterest); err == nil || !strings.Contains(err.Error(), "ip6tables-legacy-save") {
		t.Errorf("a changed key must read again, and a parse error name the binary: %v", err)
	}
}
