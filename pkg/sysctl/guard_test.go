package sysctl

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
)

// guard stands in for pkg/netfilter's enforcer (the namespace proof with
// the real one and the binary is pkg/netfilter's TestRouteLocalnetWaitsForGuard).
type guard struct {
	ok  bool
	why string
}

func (g guard) LocalhostGuardInPlace() (bool, string) { return g.ok, g.why }

func TestLiveWaitsForTheGuard(t *testing.T) {
	c, p := fakeProc(t, "0\n")
	c.PersistPath = ""
	c.Guard = guard{why: "the localhost guard could not be installed: Another app is currently holding the xtables lock"}
	e := New(c)
	var plan strings.Builder
	_, cs := e.Apply(context.Background(), true, &plan)
	if len(cs) != 0 || !strings.Contains(plan.String(), "# not: sysctl -w") {
		t.Errorf("dry run without a guard: %+v %q", cs, plan.String())
	}
	fs, cs := e.Apply(context.Background(), false, nil)
	if b, _ := os.ReadFile(p); string(b) != "0\n" {
		t.Fatalf("wrote %q without a guard", b)
	}
	if len(cs) != 0 || fs[0].Status != finding.Drift || !strings.Contains(fs[0].Detail, "not written: the localhost guard could not be installed: Another app") ||
		!strings.Contains(fs[0].Fix, "network.localhost_guard") {
		t.Errorf("without a guard: %+v %+v", fs, cs)
	}
	e = New(Config{ProcSys: c.ProcSys, Enforce: true, Guard: guard{ok: true}})
	if fs, cs := e.Apply(context.Background(), false, nil); len(cs) != 1 || !finding.Compliant(fs) {
		t.Errorf("with the guard: %+v %+v", fs, cs)
	}
	if b, _ := os.ReadFile(p); string(b) != "1\n" {
		t.Fatalf("with the guard: %q", b)
	}
}
