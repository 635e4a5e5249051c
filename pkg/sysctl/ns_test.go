package sysctl

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
	"github.com/ecs-remediator/ecs-remediator/test/nstest"
)

// The real kernel: in a private network namespace route_localnet is the
// namespace's own, so the test sets it to 0, lets the enforcer find and
// repair it through the real /proc/sys, and the host's value stays as it
// was.
func TestRouteLocalnetInNamespace(t *testing.T) {
	nstest.Require(t)
	const proc = "/proc/sys/net/ipv4/conf/all/route_localnet"
	host, err := os.ReadFile(proc)
	if err != nil {
		t.Fatalf("read host value: %v", err)
	}
	persist := filepath.Join(t.TempDir(), "sysctl.d/90-ecs-remediator.conf")
	var before, after []finding.Finding
	var changes []finding.Change
	var inside string
	nstest.Run(t, func() {
		if err := os.WriteFile(proc, []byte("0\n"), 0o644); err != nil {
			t.Errorf("set 0 in the namespace: %v", err)
			return
		}
		e := New(Config{ProcSys: "/proc/sys", PersistPath: persist, Enforce: true})
		before = e.Check(context.Background())
		after, changes = e.Apply(context.Background(), false, io.Discard)
		b, _ := os.ReadFile(proc)
		inside = strings.TrimSpace(string(b))
	})
	if len(before) != 2 || before[0].Status != finding.Drift {
		t.Fatalf("before: %+v", before)
	}
	if inside != "1" || !finding.Compliant(after) || len(changes) != 2 {
		t.Fatalf("inside=%q after=%+v changes=%+v", inside, after, changes)
	}
	if now, _ := os.ReadFile(proc); string(now) != string(host) {
		t.Fatalf("host value changed: %q -> %q", host, now)
	}
	if b, _ := os.ReadFile(persist); !strings.Contains(string(b), PersistLine) {
		t.Fatalf("persist file %q", b)
	}
}
