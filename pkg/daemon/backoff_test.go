package daemon

import (
	"context"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
	"github.com/ecs-remediator/ecs-remediator/pkg/policy"
	"github.com/ecs-remediator/ecs-remediator/pkg/reconcile"
)

// alwaysDrifted is an item another tool undoes at once: every pass finds
// it drifted and repairs it.
type alwaysDrifted struct{ repairs atomic.Int64 }

func (a *alwaysDrifted) Check(context.Context) []finding.Finding {
	return []finding.Finding{{Item: "x", Status: finding.Drift}}
}

func (a *alwaysDrifted) Apply(context.Context, bool, io.Writer) ([]finding.Finding, []finding.Change) {
	a.repairs.Add(1)
	return []finding.Finding{{Item: "x", Status: finding.OK}}, []finding.Change{{Item: "x", Action: "rewrote"}}
}

// Regression: the periodic resync repaired on every tick even during a
// fight, so with a short resync_interval the exponential back-off was
// void (test/reliability's fight test saw a repair every resync_interval).
// Now a resync waits for the back-off like an event does.
func TestResyncRespectsFightBackoff(t *testing.T) {
	p := policy.Default()
	p.ResyncInterval = 20 * time.Millisecond
	e := &alwaysDrifted{}
	var fightsSeen atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	err := Run(ctx, Options{
		Log:    zap.NewNop(),
		Policy: p,
		Build: func(*policy.Policy) (*Setup, error) {
			return &Setup{Reconciler: &reconcile.Reconciler{Enforcers: []reconcile.Enforcer{e}}}, nil
		},
		Fight: func(string) { fightsSeen.Add(1) },
	})
	if err != nil {
		t.Fatal(err)
	}
	// Five repairs start the fight; then 1 s, 2 s, ... between repairs: a
	// handful in 2.5 s. Without the back-off a resync every 20 ms gives
	// about a hundred.
	if n := e.repairs.Load(); n > 10 {
		t.Fatalf("%d repairs in 2.5 s of fight with a 20 ms resync: the resync ignores the back-off", n)
	}
	if n := e.repairs.Load(); n < 6 {
		t.Fatalf("%d repairs: the resync stopped holding the state (want the 5 that start the fight and more after the back-off)", n)
	}
	if fightsSeen.Load() != 1 {
		t.Fatalf("fight reported %d times, want 1", fightsSeen.Load())
	}
}
